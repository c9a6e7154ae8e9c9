"""`publish POST` (`publish run POST`): build every output, deliver it, print what went where."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from publisher.cli import render
from publisher.cli.common import (
    EXIT_DELIVERY_FAILED,
    EXIT_REFUSED,
    EXIT_UNCERTAIN,
    ConfigOpt,
    JsonOpt,
    PostArg,
    load_settings,
)
from publisher.text.counts import counted

if TYPE_CHECKING:
    from rich.console import Console

    from publisher.config.settings import Config
    from publisher.delivery.pipeline import Options, Prepared
    from publisher.delivery.send import Outcome


def run_command(
    post: PostArg,
    config: ConfigOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Outbox folder.")] = None,
    templates: Annotated[Path | None, typer.Option(help="Folder overriding templates/.")] = None,
    as_json: JsonOpt = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Render and plan only.")] = False,
    thread: Annotated[bool | None, typer.Option("--thread/--no-thread")] = None,
    resend: Annotated[bool, typer.Option(help="Send a changed article as a new edition.")] = False,
    retry_pending: Annotated[
        bool, typer.Option(help="Resend deliveries a crash left uncertain.")
    ] = False,
    write_back: Annotated[
        bool, typer.Option(help="Add the posts' public URLs to the article's `syndication:`.")
    ] = False,
    join: Annotated[
        bool, typer.Option(help="Help a send in progress (PostgreSQL ledger) instead of exit 5.")
    ] = False,
    strict: Annotated[
        bool, typer.Option(help="Treat warnings as errors: exit 2 before sending anything.")
    ] = False,
    only: Annotated[str | None, typer.Option(
        "--only", metavar="NAMES",
        help="Deliver only these: newsletter,x,bluesky,mastodon,threads,linkedin,faq.")] = None,
    skip: Annotated[str | None, typer.Option(
        "--skip", metavar="NAMES", help="Leave these out this time (a later run sends them).")
    ] = None,
    update: Annotated[bool, typer.Option(
        "--update", help="Correct the live posts of a changed article (no newsletter resend).")
    ] = False,
    proof: Annotated[list[str] | None, typer.Option(
        "--proof", metavar="ADDRESS",
        help="Send only the newsletter, marked [PROOF], to this address (repeatable).")] = None,
    retry_failed: Annotated[
        bool, typer.Option(help="Try refused and given-up deliveries again (after a fix).")
    ] = False,
    at: Annotated[str | None, typer.Option(
        "--at", metavar="TIME",
        help="Send at this time (ISO 8601 with a zone): providers that can schedule hold it, "
             "the rest wait for `publish due`.")] = None,
) -> None:
    """Build every output of POST and deliver it (the default command)."""
    from publisher.delivery.pipeline import Options, prepare, refuse_warnings
    from publisher.plan import select_channels

    _refuse_write_back_to_wordpress(post, write_back)
    chosen = select_channels(only, skip)
    now, when = _when(at, join=join, write_back=write_back)
    proofs = _proof_addresses(proof or [], only=only, skip=skip, dry_run=dry_run, resend=resend,
                              join=join, retry_pending=retry_pending, write_back=write_back,
                              at=bool(at))
    settings = load_settings(config)
    options = Options(post, out, templates, thread, dry_run, resend, retry_pending, join=join,
                      strict=strict, channels=chosen, proof=proofs, retry_failed=retry_failed,
                      at=when, now=now)
    if update:
        _update(post, settings, options, dry_run=dry_run, resend=resend, only=only, skip=skip,
                proof=bool(proofs), join=join, at=bool(at))
        return
    prepared = prepare(options, settings)
    waits = _dry_schedule(prepared, chosen, when, now) if dry_run and when else None
    if as_json:
        _print_edition_json(prepared, settings, waits)
    console = render.console(stderr=as_json)
    for warning in prepared.edition.warnings:
        render.console(stderr=True).print(f"[yellow]warning:[/] {render.safe(warning)}")
    refuse_warnings(prepared, options)
    if dry_run:
        _print_plan(console, prepared, chosen)
        if waits is not None:
            _print_waits(console, waits)
        return
    _deliver(console, prepared, settings, options, write_back=write_back)


def _print_edition_json(prepared: Prepared, settings: Config,
                        waits: dict[str, Any] | None) -> None:
    """The edition JSON on stdout as the sample reader gets it, with a dry run's schedule."""
    from publisher.delivery.pipeline import sample_recipients
    from publisher.edition.build import edition_json

    data = edition_json(prepared.edition, next(sample_recipients(settings)))
    if waits is not None:
        data["schedule"] = waits
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2))
    sys.stdout.write("\n")


def _deliver(console: Console, prepared: Prepared, settings: Config, options: Options, *,
             write_back: bool) -> None:
    """Send the proofs, or every output (then write back the links), and exit as they went."""
    from publisher.delivery.pipeline import publish, send_proofs, syndicate

    if options.proof:
        outcomes = [send_proofs(prepared, settings, options.proof)]
    else:
        outcomes = publish(prepared, settings, options, progress=_progress_factory())
    print_outcomes(console, prepared, outcomes, max_attempts=settings.max_attempts)
    if write_back and syndicate(options.post, outcomes):
        console.print(f"wrote syndication links into {options.post}")
    exit_for(outcomes)


def _when(at: str | None, **others: bool) -> tuple[datetime, datetime | None]:
    """The clock, read once here, and --at parsed against it (refused before anything runs)."""
    from publisher.errors import InputError
    from publisher.schedule import parse_at

    now = datetime.now(UTC)
    if at is None:
        return now, None
    clash = [name for name, value in others.items() if value]
    if clash:
        raise InputError(f"--at cannot be combined with --{clash[0].replace('_', '-')}",
                         where="--at", fix="schedule the post alone")
    return now, parse_at(at, now=now)


def _dry_schedule(prepared: Prepared, chosen: frozenset[str], at: datetime, now: datetime
                  ) -> dict[str, Any]:
    """`--at --dry-run`: where each output would wait, as the documented JSON shape."""
    from publisher.delivery.scheduling import preview
    from publisher.schedule import PROVIDER, iso

    return {"at": iso(at), "outputs": [
        {"output": output, "channel": channel,
         "where": "provider-scheduled" if placed.mode == PROVIDER else "queued",
         "reason": placed.reason}
        for output, channel, placed in preview(prepared.plan, chosen, at, now=now)]}


def _print_waits(console: Console, waits: dict[str, Any]) -> None:
    """One line per output: held by its provider until the time, or queued for `publish due`."""
    console.print(f"At {waits['at']} (dry run: nothing scheduled, recorded or sent):")
    for entry in waits["outputs"]:
        output, channel = render.escape(entry["output"]), render.escape(entry["channel"])
        if entry["where"] == "provider-scheduled":
            console.print(f"  {output}: scheduled at {channel}, which sends it at the time")
        else:
            why = f" ({render.escape(entry['reason'])})" if entry["reason"] else ""
            console.print(f"  {output}: queued in the ledger for `publish due`{why}")


def _refuse_write_back_to_wordpress(post: Path, write_back: bool) -> None:
    """--write-back edits a Markdown file; a WordPress post has none to edit."""
    from publisher.source.read import is_wordpress_ref

    if write_back and is_wordpress_ref(str(post)):
        from publisher.errors import InputError

        raise InputError("--write-back writes into a Markdown file, and a WordPress post is none",
                         where=str(post), fix="run without --write-back")


def _update(post: Path, settings: Any, options: Any, **others: Any) -> None:
    """--update: edit the live posts that changed, say which networks cannot edit, exit 0."""
    from publisher.delivery.corrections import update
    from publisher.errors import InputError

    clash = [name for name, value in others.items() if value]
    if clash:
        raise InputError(f"--update cannot be combined with --{clash[0].replace('_', '-')}",
                         where="--update", fix="correct first, then run the other command")
    report = update(post, settings, options)
    console, err = render.console(), render.console(stderr=True)
    if report.current:
        shown = render.escape(str(post))
        console.print(f"Nothing to update: {shown} is the edition that was sent.")
        return
    for name in sorted({*report.edited, *report.unchanged, *report.cannot_edit}):
        parts = [f"{n} {word}" for n, word in (
            (report.edited.get(name, 0), "edited"), (report.unchanged.get(name, 0), "unchanged"),
            (report.cannot_edit.get(name, 0), "changed but not editable")) if n]
        console.print(f"{name}: {', '.join(parts)}")
    if report.cannot_edit:
        names = ", ".join(sorted(report.cannot_edit))
        shown = render.escape(str(post))
        err.print(f"note: {names} cannot edit posts (their APIs have no edit): the live posts "
                  f"keep the old text. To replace them: `publish retract {shown} "
                  f"--network NAME`, then `publish {shown} --resend`.")
    console.print("Updated: the outbox and FAQ files follow the corrected article; "
                  "the newsletter was not sent again.")


def _proof_addresses(given: list[str], **others: Any) -> tuple[str, ...]:
    """The --proof addresses, validated; a proof goes alone, so other send options are refused."""
    if not given:
        return ()
    from publisher.errors import InputError
    from publisher.stores.addresses import normalize_email

    clash = [name for name, value in others.items() if value]
    if clash:
        flag = "--" + clash[0].replace("_", "-")
        raise InputError(f"--proof cannot be combined with {flag}", where="--proof",
                         fix="send the proof alone, then run the real send")
    try:
        return tuple(dict.fromkeys(normalize_email(address) for address in given))
    except InputError as exc:
        raise InputError(exc.problem, where="--proof", fix="pass a valid address") from exc


def exit_for(outcomes: list[Outcome]) -> None:
    """4 when something was not delivered, 5 when the ledger refused an output, 7 when uncertain."""
    if any(o.undelivered for o in outcomes):
        raise typer.Exit(EXIT_DELIVERY_FAILED)
    if any(o.refused for o in outcomes):
        raise typer.Exit(EXIT_REFUSED)
    if any(o.uncertain or o.lost for o in outcomes):
        raise typer.Exit(EXIT_UNCERTAIN)


def _print_plan(console: Console, prepared: Prepared, chosen: frozenset[str]) -> None:
    """The dry-run plan: what would go where (and what --only/--skip leave out)."""
    from rich.table import Table

    from publisher.plan import channel_name

    table = Table(title=render.escape(f"Plan for {prepared.article.title} (dry run: nothing sent)"))
    for column in ("output", "length / limit", "channel", "items"):
        table.add_column(column)
    for step in prepared.plan.steps:
        items = (_audience(prepared, step.channel) if step.kind == "email"
                 else f"1 campaign to {step.channel}'s list" if step.kind == "campaign"
                 else str(len(step.items)))
        if channel_name(step.output) not in chosen:
            items = "skipped"
        table.add_row(step.output, step.measure, step.channel, items)
    console.print(table)
    if any(s.kind == "email" and s.channel == "outbox" for s in prepared.plan.steps):
        _print_reach(console, prepared, "the newsletter goes to one sample reader")


def _print_reach(console: Console, prepared: Prepared, done: str) -> None:
    """With a list imported, what the outbox stands in for: how many a real send would reach."""
    if prepared.subscribers is not None:
        console.print(f"outbox: {done}; a real transport would reach "
                      f"{_audience(prepared, 'live')}")


def _audience(prepared: Prepared, channel: str) -> str:
    """Who the newsletter reaches: the subscriber count, or the outbox's one sample reader."""
    count = prepared.subscribers
    readers = counted(count, "subscriber") if count is not None else ""
    if channel == "outbox":
        return f"1 sample ({readers})" if readers else "1 sample"
    return readers or "subscribers"


def print_outcomes(
    console: Console, prepared: Prepared, outcomes: list[Outcome], *, max_attempts: int
) -> None:
    """The rich summary: each output, its size against its limit, where it went, new or not."""
    from rich.table import Table

    from publisher.cli.report import failure_lines, uncertain_lines

    table = Table(title=render.escape(prepared.article.title))
    for column in ("output", "length / limit", "where", "status"):
        table.add_column(column)
    for outcome in outcomes:
        where = outcome.channel
        if outcome.channel == "outbox":
            where = str(prepared.folder)
        status = outcome.status
        style = "red" if outcome.undelivered else (
            "green" if outcome.new else ("yellow" if outcome.skipped else "dim"))
        table.add_row(outcome.output, outcome.measure, render.escape(where),
                      f"[{style}]{status}[/]")
    console.print(table)
    errors = render.console(stderr=True)
    for outcome in outcomes:
        if outcome.error:
            errors.print(f"[red]error:[/] {render.safe(outcome.error)}")
    if any(o.output == "newsletter" and o.channel == "outbox" and o.new for o in outcomes):
        _print_reach(console, prepared, "wrote the sample newsletter.eml")
    for line in failure_lines(outcomes, max_attempts=max_attempts):
        errors.print(f"[red]failed:[/] {render.safe(line)}")
    for line in uncertain_lines(outcomes, post=prepared.article.source):
        errors.print(f"[yellow]uncertain:[/] {render.safe(line)}")
    settled = not any(o.error or o.failed or o.uncertain or o.lost for o in outcomes)
    if any(o.queued or o.scheduled_for for o in outcomes):
        _print_schedule(console, outcomes)
        return
    if settled and all(o.new == 0 for o in outcomes):
        left = [o.output for o in outcomes if o.skipped]
        retracted = [o.output for o in outcomes if o.retracted]
        if left or retracted:
            console.print(
                "Nothing new to send"
                + (f"; left out this time: {', '.join(left)}" if left else "")
                + (f"; retracted, posted again only with --resend: {', '.join(retracted)}"
                   if retracted else "") + ".")
        else:
            console.print("Nothing new to send: every output was already delivered.")


def _progress_factory() -> Any:
    """A rich progress bar on stderr (recipients, rate, time left); none off a terminal."""
    if not sys.stderr.isatty():
        return None
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    def start(label: str, total: int) -> Any:
        bar = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
            console=render.console(stderr=True), transient=True,
        )
        bar.start()
        task = bar.add_task(label, total=total or None, rate="")

        def advance(count: int) -> None:
            bar.advance(task, count)
            speed = bar.tasks[0].speed
            bar.update(task, rate=f"{speed:,.0f}/s" if speed else "")
            if bar.finished:
                bar.stop()

        return advance

    return start



def _print_schedule(console: Console, outcomes: list[Outcome]) -> None:
    """After `--at`: what the providers hold, and what waits for `publish due`."""
    held = [o.output for o in outcomes if o.scheduled_for and not o.undelivered]
    queued = [o.output for o in outcomes if o.queued]
    if held:
        console.print(f"Scheduled at the provider: {', '.join(held)}.")
    if queued:
        console.print(f"Queued in the ledger: {', '.join(queued)} — run `publish due` at or after"
                      " the time (cron or CI); it sends each exactly once.")
