"""The `publish` command: parse arguments, call the core, map errors to exit codes, print.

`publish POST` is the default command (`publish run POST` spelled out); every other verb is a
subcommand. Exit codes: 0 everyone got everything, 1 internal error, 2 bad input or usage,
3 configuration or credentials (also refused at preflight), 4 something was not delivered,
5 the ledger refused (changed post, send in progress), 6 lint found errors, 7 deliveries are
uncertain (see `publish status`, resend with `--retry-pending`), 130 interrupted.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from publisher.errors import PublisherError, SystemFault

if TYPE_CHECKING:
    from rich.console import Console

    from publisher.delivery.pipeline import Prepared
    from publisher.delivery.send import Outcome

DEFAULT_COMMAND = "run"
EXIT_DELIVERY_FAILED = 4
EXIT_REFUSED = 5  # the ledger forbade an output (e.g. a thread under a single post)
EXIT_UNCERTAIN = 7  # nothing failed, but some deliveries may or may not have landed


class DefaultCommandGroup(TyperGroup):
    """Treat `publish POST …` as `publish run POST …` when POST is not a subcommand."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """Insert the default command before the first word that is not a known subcommand."""
        words = [a for a in args if not a.startswith("-")]
        wants_group_help = not words and any(a in ("--help", "-h") for a in args)
        if args and not wants_group_help and (not words or words[0] not in self.commands):
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=DefaultCommandGroup,
    help="Turn one Markdown article into a newsletter, social posts and an FAQ digest.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

PostArg = Annotated[
    Path, typer.Argument(metavar="POST", help="The article: Markdown with YAML front matter.")
]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="publisher.toml to use (default: ./publisher.toml).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]


def _console(stderr: bool = False) -> Console:
    """A rich console, imported only when something is printed."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _escape(text: str) -> str:
    """Dynamic text shown through rich: brackets in titles or errors are not markup."""
    from rich.markup import escape

    return escape(text)


def _config(path: Path | None) -> Any:
    """Settings from the file, or the embedded defaults."""
    from publisher.config.settings import load_config

    return load_config(path)


@app.command(DEFAULT_COMMAND)
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
) -> None:
    """Build every output of POST and deliver it (the default command)."""
    from publisher.delivery.pipeline import (
        Options,
        prepare,
        publish,
        refuse_warnings,
        sample_recipients,
    )
    from publisher.edition.build import edition_json
    from publisher.plan import select_channels

    _refuse_write_back_to_wordpress(post, write_back)
    chosen = select_channels(only, skip)
    proofs = _proof_addresses(proof or [], only=only, skip=skip, dry_run=dry_run, resend=resend,
                              join=join, retry_pending=retry_pending, write_back=write_back)
    settings = _config(config)
    options = Options(post, out, templates, thread, dry_run, resend, retry_pending, join=join,
                      strict=strict, channels=chosen, proof=proofs, retry_failed=retry_failed)
    if update:
        _update(post, settings, options, dry_run=dry_run, resend=resend, only=only, skip=skip,
                proof=bool(proofs), join=join)
        return
    prepared = prepare(options, settings)
    if as_json:
        reader = next(sample_recipients(settings))
        data = edition_json(prepared.edition, reader)
        sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2))
        sys.stdout.write("\n")
    console = _console(stderr=as_json)
    for warning in prepared.edition.warnings:
        _console(stderr=True).print(f"[yellow]warning:[/] {_escape(_mask(warning))}")
    refuse_warnings(prepared, options)
    if dry_run:
        _print_plan(console, prepared, chosen)
        return
    if proofs:
        from publisher.delivery.pipeline import send_proofs

        outcomes = [send_proofs(prepared, settings, proofs)]
        _print_outcomes(console, prepared, outcomes, max_attempts=settings.max_attempts)
        _exit_for(outcomes)
        return
    outcomes = publish(prepared, settings, options, progress=_progress_factory())
    _print_outcomes(console, prepared, outcomes, max_attempts=settings.max_attempts)
    if write_back:
        from publisher.delivery.pipeline import syndicate

        if syndicate(post, outcomes):
            console.print(f"wrote syndication links into {post}")
    _exit_for(outcomes)


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
    console, err = _console(), _console(stderr=True)
    if report.current:
        console.print(f"Nothing to update: {_escape(str(post))} is the edition that was sent.")
        return
    for name in sorted({*report.edited, *report.unchanged, *report.cannot_edit}):
        parts = [f"{n} {word}" for n, word in (
            (report.edited.get(name, 0), "edited"), (report.unchanged.get(name, 0), "unchanged"),
            (report.cannot_edit.get(name, 0), "changed but not editable")) if n]
        console.print(f"{name}: {', '.join(parts)}")
    if report.cannot_edit:
        names = ", ".join(sorted(report.cannot_edit))
        err.print(f"note: {names} cannot edit posts (their APIs have no edit): the live posts "
                  f"keep the old text. To replace them: `publish retract {_escape(str(post))} "
                  f"--network NAME`, then `publish {_escape(str(post))} --resend`.")
    console.print("Updated: the outbox and FAQ files follow the corrected article; "
                  "the newsletter was not sent again.")


def _proof_addresses(given: list[str], **others: Any) -> tuple[str, ...]:
    """The --proof addresses, validated; a proof goes alone, so other send options are refused."""
    if not given:
        return ()
    from publisher.errors import InputError
    from publisher.stores.subscribers import normalize_email

    clash = [name for name, value in others.items() if value]
    if clash:
        flag = "--" + clash[0].replace("_", "-")
        raise InputError(f"--proof cannot be combined with {flag}", where="--proof",
                         fix="send the proof alone, then run the real send")
    try:
        return tuple(dict.fromkeys(normalize_email(address) for address in given))
    except InputError as exc:
        raise InputError(exc.problem, where="--proof", fix="pass a valid address") from exc


def _exit_for(outcomes: list[Outcome]) -> None:
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

    table = Table(title=_escape(f"Plan for {prepared.article.title} (dry run: nothing sent)"))
    for column in ("output", "length / limit", "channel", "items"):
        table.add_column(column)
    for step in prepared.plan.steps:
        items = _audience(prepared, step.channel) if step.kind == "email" else str(len(step.items))
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
    readers = f"{count:,} subscriber{'' if count == 1 else 's'}" if count is not None else ""
    if channel == "outbox":
        return f"1 sample ({readers})" if readers else "1 sample"
    return readers or "subscribers"


def _print_outcomes(
    console: Console, prepared: Prepared, outcomes: list[Outcome], *, max_attempts: int
) -> None:
    """The rich summary: each output, its size against its limit, where it went, new or not."""
    from rich.table import Table

    from publisher.cli.report import failure_lines, uncertain_lines

    table = Table(title=_escape(prepared.article.title))
    for column in ("output", "length / limit", "where", "status"):
        table.add_column(column)
    for outcome in outcomes:
        where = outcome.channel
        if outcome.channel == "outbox":
            where = str(prepared.folder)
        status = outcome.status
        style = "red" if outcome.undelivered else (
            "green" if outcome.new else ("yellow" if outcome.skipped else "dim"))
        table.add_row(outcome.output, outcome.measure, _escape(where), f"[{style}]{status}[/]")
    console.print(table)
    errors = _console(stderr=True)
    for outcome in outcomes:
        if outcome.error:
            errors.print(f"[red]error:[/] {_escape(_mask(outcome.error))}")
    if any(o.output == "newsletter" and o.channel == "outbox" and o.new for o in outcomes):
        _print_reach(console, prepared, "wrote the sample newsletter.eml")
    for line in failure_lines(outcomes, max_attempts=max_attempts):
        errors.print(f"[red]failed:[/] {_escape(_mask(line))}")
    for line in uncertain_lines(outcomes, post=prepared.article.source):
        errors.print(f"[yellow]uncertain:[/] {_escape(_mask(line))}")
    settled = not any(o.error or o.failed or o.uncertain or o.lost for o in outcomes)
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
            console=_console(stderr=True), transient=True,
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


@app.command("measure")
def measure_command(
    text: Annotated[str, typer.Argument(help="The text to count, as you would post it.")],
    network: Annotated[str, typer.Option("--network", "-n", help="x, bluesky, mastodon…")] = "x",
    limit: Annotated[int | None, typer.Option(help="Override the network's limit.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Count TEXT exactly as NETWORK does and compare it with the limit."""
    from publisher.networks.counting import measure

    result = measure(network, text, limit=limit)
    if as_json:
        data = {"network": result.network, "length": result.length, "limit": result.limit,
                "fits": result.fits, "unit": result.unit}
        print(json.dumps(data))
    else:
        verdict = "fits" if result.fits else f"too long by {result.length - result.limit}"
        print(f"{result.network}: {result.length}/{result.limit} {result.unit} — {verdict}")
    if not result.fits:
        raise typer.Exit(2)


@app.command("status")
def status_command(
    post: PostArg,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
    failed: Annotated[
        bool, typer.Option("--failed", help="List only failed and uncertain deliveries.")
    ] = False,
) -> None:
    """Show, per channel, what of POST was sent; list failed and uncertain deliveries."""
    from publisher.cli.report import status_report
    from publisher.delivery.pipeline import load_article
    from publisher.stores.ledger import open_ledger

    settings = _config(config)
    article = load_article(post, settings)
    edition = article.content_hash
    ledger = open_ledger(settings.ledger)
    try:
        report = status_report(ledger, edition, article.slug,
                               max_attempts=settings.max_attempts, failed_only=failed)
    finally:
        ledger.close()
    if as_json:
        print(json.dumps(report, ensure_ascii=False))
        return
    _print_status(article.title, report, post)


def _print_status(title: str, report: dict[str, Any], post: Path) -> None:
    """Per-channel counts, what was left out or retracted, every failed and uncertain delivery."""
    from rich.table import Table

    console = _console()
    if "channels" in report:
        if not report["channels"] and not report["skipped"]:
            console.print(f"{_escape(title)}: nothing delivered yet.")
            return
        table = Table(title=_escape(title))
        for column in ("channel", "sent", "pending", "failed", "note"):
            table.add_column(column)
        for t in report["channels"]:
            note = f"{t['retracted']} retracted" if t["retracted"] else ""
            table.add_row(t["channel"], str(t["sent"]), str(t["pending"]), str(t["failed"]), note)
        for name in report["skipped"]:
            table.add_row(name, "-", "-", "-", "skipped")
        console.print(table)
    for row in report["failed"]:
        console.print(
            f"[red]failed[/] {row['channel']} {_escape(row['item'])} — {_escape(row['reason'])}"
            f" — {row['kind']}, {_attempts(row['attempts'])}, last {row['last_attempt']},"
            f" {_NEXT[row['next']]}")
    for row in report["uncertain"]:
        console.print(
            f"[yellow]uncertain[/] {row['channel']} {_escape(row['item'])} (batch {row['batch']})"
            f" — {_escape(row['reason'])} — {_attempts(row['attempts'])},"
            f" last {row['last_attempt']}; resend with `publish {post} --retry-pending`")
    if "channels" not in report:
        if not report["failed"] and not report["uncertain"]:
            console.print(f"{_escape(title)}: nothing failed or uncertain.")
        return
    for row in report["retracted"]:
        console.print(f"retracted {row['channel']} {row['item']} ({row['provider_id']})")
    for row in report["sent"][:20]:
        console.print(f"sent {row['channel']} {row['item']} → {row['provider_id']} {row['url']}"
                      .rstrip())
    if report["proofs"]:
        count = len(report["proofs"])
        console.print(f"{count} proof{'s' if count > 1 else ''} sent (not counted as deliveries)")


_NEXT = {"retry": "retried on the next run", "given-up": "given up (--retry-failed tries again)",
         "refused": "not retried (--retry-failed tries again)"}


def _attempts(count: int) -> str:
    """'1 attempt', '3 attempts'."""
    return f"{count} attempt{'' if count == 1 else 's'}"


@app.command("retract")
def retract_command(
    post: PostArg,
    config: ConfigOpt = None,
    network: Annotated[str | None, typer.Option(
        "--network", "-n", help="Only this network: x, bluesky, mastodon, threads, linkedin.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    write_back: Annotated[
        bool, typer.Option(help="Remove the deleted posts' URLs from the article's `syndication:`.")
    ] = False,
) -> None:
    """Delete what POST put on the social networks (the newsletter cannot be recalled)."""
    from publisher.delivery.corrections import (
        check_network,
        live_posts,
        open_deleters,
        retract,
        without_retracted_links,
    )
    from publisher.delivery.pipeline import load_article
    from publisher.errors import InputError
    from publisher.stores.ledger import open_ledger

    check_network(network)
    settings = _config(config)
    article = load_article(post, settings)
    err = _console(stderr=True)
    ledger = open_ledger(settings.ledger)
    try:
        with ledger.lock(article.slug, source=str(post)):
            targets = live_posts(ledger, article.slug, network)
            if not targets:
                where = f"on {network}" if network else "on any network"
                err.print(f"note: nothing of {_escape(str(post))} is posted {where}: "
                          "nothing to retract.")
                return
            for target in targets:
                err.print(f"will delete {target.name} {target.rows[0].item} "
                          f"{_escape(target.url or target.provider_id)}")
            if not yes:
                if not sys.stdin.isatty():
                    raise InputError("retract deletes live posts and needs confirmation",
                                     where=str(post), fix="pass --yes to confirm")
                if not typer.confirm(f"Delete these {len(targets)} posts?"):
                    err.print("Nothing was deleted.")
                    return
            channels = open_deleters(settings, targets)
            try:
                report = retract(ledger, article.slug, targets, channels)
            finally:
                for channel in channels.values():
                    channel.close()
    finally:
        ledger.close()
    console = _console()
    for name in sorted({*report.deleted, *report.already_gone}):
        gone = report.already_gone.get(name, 0)
        console.print(f"retracted {name}: {report.deleted.get(name, 0)} deleted"
                      + (f", {gone} already gone" if gone else ""))
    for problem in report.errors:
        err.print(f"[red]error:[/] {_escape(problem)}")
    if report.newsletter_readers:
        err.print(f"note: the newsletter cannot be recalled: {report.newsletter_readers} "
                  f"recipient{'s' if report.newsletter_readers > 1 else ''} already have it.")
    if write_back and without_retracted_links(post, report.removed_urls):
        console.print(f"removed the retracted links from syndication: in {post}")
    if report.errors:
        raise typer.Exit(EXIT_DELIVERY_FAILED)


@app.command("check")
def check_command(config: ConfigOpt = None) -> None:
    """Preflight: validate the config and every live channel's credentials; send nothing."""
    from publisher.delivery.pipeline import check_channels, config_summary
    from publisher.unsubscribe.sync import scope_warnings

    settings = _config(config)
    console = _console()
    for name, hints in check_channels(settings).items():
        extra = ", ".join(f"{k}={v}" for k, v in hints.items())
        console.print(f"[green]ok[/] {name}" + (f" ({extra})" if extra else ""))
    for warning in scope_warnings(settings):
        _console(stderr=True).print(f"[yellow]warning:[/] {_escape(warning)}")
    console.print(f"[green]ok[/] {_escape(config_summary(settings))}")


@app.command("preview")
def preview_command(
    post: PostArg,
    config: ConfigOpt = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Where to write the files (default: the post's outbox folder).")] = None,
    templates: Annotated[Path | None, typer.Option(help="Folder overriding templates/.")] = None,
    thread: Annotated[bool | None, typer.Option("--thread/--no-thread")] = None,
    png: Annotated[bool, typer.Option(
        "--png", help="Also write screenshots through headless Chromium.")] = False,
    serve: Annotated[bool, typer.Option(
        "--serve", help="Serve the page on 127.0.0.1 until Ctrl-C.")] = False,
    port: Annotated[int, typer.Option(help="Port for --serve (0: any free port).")] = 0,
    open_browser: Annotated[bool, typer.Option("--open", help="Open it in a browser.")] = False,
) -> None:
    """Write preview.html (newsletter, every network's posts, FAQ, JSON-LD, warnings and lint)."""
    from publisher.delivery.pipeline import Options, write_preview

    settings = _config(config)
    files, warnings = write_preview(Options(post, templates=templates, thread=thread), settings,
                                    out=out)
    for warning in warnings:
        _console(stderr=True).print(f"[yellow]warning:[/] {_escape(_mask(warning))}")
    for path in files:
        print(path)
    page = files[0]
    if png:
        from publisher.cli.browser import take_screenshots

        for shot in take_screenshots(page):
            print(shot)
    if serve:
        from publisher.cli.browser import serve_folder

        serve_folder(page, port=port, open_browser=open_browser,
                     announce=lambda url: _console(stderr=True).print(f"serving {url}"))
    elif open_browser:
        import webbrowser

        webbrowser.open(page.resolve().as_uri())


@app.command("lint")
def lint_command(
    post: PostArg,
    config: ConfigOpt = None,
    templates: Annotated[Path | None, typer.Option(help="Folder overriding templates/.")] = None,
) -> None:
    """Check the newsletter: Gmail clipping, alt text, links, unsubscribe, address, subject."""
    from publisher.delivery.pipeline import Options, prepare
    from publisher.edition.newsletter.lint import lint_newsletter, raise_on_errors

    settings = _config(config)
    prepared = prepare(Options(post, templates=templates, dry_run=True), settings)
    findings = lint_newsletter(prepared.edition.newsletter, prepared.article, settings)
    console = _console()
    for finding in findings:
        color = "red" if finding.level == "error" else "yellow"
        console.print(f"[{color}]{finding.level}[/] {finding.code}: {_escape(finding.message)}")
    if not findings:
        console.print(f"{post}: no problems found")
    raise_on_errors(findings, where=str(post))


@app.command("digest")
def digest_command(
    folder: Annotated[Path, typer.Argument(help="Folder of posts to gather FAQs from.")],
    since: Annotated[str | None, typer.Option(help="Posts dated on/after YYYY-MM-DD.")] = None,
    last: Annotated[int | None, typer.Option(help="Only the N newest posts.")] = None,
    lang: Annotated[str | None, typer.Option(
        help="Only posts in this language (default: one digest per language).")] = None,
    url: Annotated[str | None, typer.Option(
        help="Where the digest's posts link ({date}, {lang}, {slug} filled in).")] = None,
    config: ConfigOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Outbox folder.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Gather the FAQs of several posts: one digest per language (newsletter, JSON-LD, Markdown)."""
    from publisher.delivery.pipeline import write_cross_digest

    settings = _config(config)
    result = write_cross_digest(folder, settings, since=since, last=last, out=out, lang=lang,
                                url=url)
    if as_json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return
    console = _console()
    for digest in result["digests"]:
        posts = digest["with_faq"]
        console.print(f"{digest['lang']}: {digest['questions']} questions from {posts} "
                      + ("post" if posts == 1 else "posts"))
        if digest["without_faq"]:
            console.print(f"  no FAQ in {len(digest['without_faq'])} more selected: "
                          + ", ".join(digest["without_faq"]))
        for path in digest["files"]:
            console.print(f"  {path}")
        if digest["url"]:
            console.print(f"  its posts link to {digest['url']}")
        else:
            console.print("  [yellow]warning[/]: its posts carry no link — pass --url or set "
                          + _escape("[faq] digest_url or [site] url in publisher.toml"))
        console.print(f"  send it like any other post: {digest['publish']}")


subscribers_app = typer.Typer(help="Manage the subscriber list.", no_args_is_help=True)
app.add_typer(subscribers_app, name="subscribers")
EmailArg = Annotated[str, typer.Argument(help="The subscriber's email address.")]
ResubscribeOpt = Annotated[bool, typer.Option(
    "--resubscribe", help="Subscribe again addresses that unsubscribed, bounced or complained.")]


def _store(config: Path | None) -> Any:
    """The configured subscriber store."""
    from publisher.stores.subscribers_pg import open_store

    return open_store(_config(config).subscribers)


@subscribers_app.command("import")
def subscribers_import(
    csv_file: Annotated[Path, typer.Argument(help="CSV export (Mailchimp, Substack, Kit, …).")],
    resubscribe: ResubscribeOpt = False,
    encoding: Annotated[str | None, typer.Option(
        help="The file's encoding (default: detected; e.g. cp932, utf-16).")] = None,
    mapping: Annotated[str | None, typer.Option(
        "--map", help="Which columns hold what: email=Col,name=Col[,status=Col].")] = None,
    config: ConfigOpt = None,
) -> None:
    """Merge a CSV into the list; safe to repeat; bad and duplicate rows are reported."""
    from publisher.stores.subscriber_csv import parse_mapping

    columns = parse_mapping(mapping) if mapping else None
    report = _store(config).import_csv(csv_file, resubscribe=resubscribe, encoding=encoding,
                                       mapping=columns)
    console = _console()
    console.print(f"added {report.added}, updated {report.updated}, unchanged {report.unchanged},"
                  f" kept opted-out {report.kept_suppressed}, bad rows {len(report.problems)}")
    for email in report.resubscribed:
        _console(stderr=True).print(f"[yellow]resubscribed[/] {_escape(email)}")
    for problem in report.problems:
        where = _escape(f"{csv_file}:{problem.line}:")
        _console(stderr=True).print(f"[yellow]{where}[/] {_escape(problem.reason)}")


@subscribers_app.command("export")
def subscribers_export(
    csv_file: Annotated[Path, typer.Argument(help="Where to write the CSV.")],
    config: ConfigOpt = None,
) -> None:
    """Write every address with its name and status."""
    count = _store(config).export_csv(csv_file)
    _console().print(f"wrote {count} subscribers to {csv_file}")


@subscribers_app.command("add")
def subscribers_add(
    email: EmailArg,
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    resubscribe: ResubscribeOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Subscribe an address (one that opted out, bounced or complained needs --resubscribe)."""
    store = _store(config)
    before = store.get(email)
    subscriber = store.add(email, name, resubscribe=resubscribe,
                           reason="resubscribed with `subscribers add --resubscribe`"
                           if resubscribe else "added with `subscribers add`")
    if before is not None and before.status != "subscribed":
        _log_resubscribed(subscriber.email, before)
    _console().print(f"subscribed {_escape(subscriber.email)}")


def _log_resubscribed(email: str, before: Any) -> None:
    """The stderr record of an explicit resubscribe: who, and what status it overrode."""
    from publisher.stores.subscribers import describe_status

    _console(stderr=True).print(
        f"[yellow]resubscribed[/] {_escape(email)} (was {before.status}: "
        f"{_escape(describe_status(before))})")


@subscribers_app.command("remove")
def subscribers_remove(email: EmailArg, config: ConfigOpt = None) -> None:
    """Unsubscribe an address (kept as unsubscribed, so no import re-adds it)."""
    _store(config).remove(email)
    _console().print(f"unsubscribed {email}")


@subscribers_app.command("list")
def subscribers_list(
    config: ConfigOpt = None,
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List addresses with their status, and why and since when they have it."""
    from publisher.stores.subscribers import check_status, iso_time

    if status is not None:
        check_status(status)
    store = _store(config)
    chosen = (s for s in store.iter_all() if status is None or s.status == status)
    if as_json:
        print(json.dumps([{"email": s.email, "name": s.name, "status": s.status,
                           "reason": s.reason, "status_at": iso_time(s.status_at)}
                          for s in chosen], ensure_ascii=False))
    else:
        for s in chosen:
            print("\t".join((s.email, s.status, s.reason, iso_time(s.status_at), s.name)))
    counts = ", ".join(f"{n} {s}" for s, n in store.counts().items())
    _console(stderr=True).print(counts)


@subscribers_app.command("sync")
def subscribers_sync(
    config: ConfigOpt = None,
    provider: Annotated[list[str] | None, typer.Option(
        "--provider", help="Only this provider (sendgrid, postmark, resend); repeatable.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Pull the email providers' bounces, complaints and unsubscribes into the list."""
    from publisher.unsubscribe.sync import sync

    settings = _config(config)
    store = _store(config)
    results = sync(settings, store, provider or ())
    err = _console(stderr=True)
    if as_json:
        print(json.dumps({r.provider: r.report.tally() for r in results if not r.skipped
                          and not r.error}))
    for result in results:
        if not as_json:
            _print_sync(result)
        if result.skipped:
            err.print(f"[yellow]{result.provider}:[/] {_escape(result.skipped)}")
        if result.blocks:
            err.print(f"{result.provider}: {result.blocks} blocked addresses reported, not"
                      " suppressed (SendGrid keeps sending to blocks)")
        if result.error:
            err.print(f"[red]error:[/] {_escape(result.error)}")
    if any(r.error for r in results):
        raise typer.Exit(EXIT_DELIVERY_FAILED)


def _print_sync(result: Any) -> None:
    """One provider's changes: counts per status, then the first changed addresses."""
    if result.skipped or result.error:
        return
    tally = result.report.tally()
    changed = {status: n for status, n in tally.items() if status != "unchanged" and n}
    if not changed:
        print(f"{result.provider}: no changes ({tally['unchanged']} already suppressed)")
        return
    counts = ", ".join(f"{n} {status}" for status, n in changed.items())
    print(f"{result.provider}: {counts} ({tally['unchanged']} unchanged)")
    for change in result.report.changed[:20]:
        print(f"  {change.email}: {change.before or 'not on the list'} → {change.after}"
              f" ({change.reason})")
    if len(result.report.changed) > 20:
        print(f"  … and {len(result.report.changed) - 20} more")


@app.command("serve")
def serve_command(
    config: ConfigOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8025,
) -> None:
    """Serve the unsubscribe page (RFC 8058 one-click POST) and the providers' webhooks."""
    from publisher.stores.subscribers_pg import open_store
    from publisher.unsubscribe.app import make_app, make_server
    from publisher.unsubscribe.tokens import unsubscribe_secret
    from publisher.unsubscribe.webhooks import PROVIDERS, Webhooks

    settings = _config(config)
    store = open_store(settings.subscribers)
    hooks = Webhooks.from_config(settings, store)
    app_ = make_app(store, unsubscribe_secret(), site=settings.site, webhooks=hooks)
    with make_server(host, port, app_) as server:
        console = _console(stderr=True)
        console.print(f"listening on http://{host}:{server.server_port}/unsubscribe")
        for provider in PROVIDERS:
            state = "on" if hooks.configured(provider) else "off (not configured: answers 503)"
            console.print(f"  /webhooks/{provider}: {state}")
        server.serve_forever()


keys_app = typer.Typer(help="Store secrets in the system keyring.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("set")
def keys_set_command(
    name: Annotated[str, typer.Argument(help="The secret's name, e.g. SENDGRID_API_KEY.")],
) -> None:
    """Prompt for a secret (never echoed) and store it in the keyring; or read it from stdin."""
    from publisher.config.secrets import set_secret
    from publisher.errors import InputError

    if sys.stdin is None or not sys.stdin.isatty():  # piped: `printf %s "$KEY" | publish keys set`
        value = sys.stdin.readline().rstrip("\r\n") if sys.stdin is not None else ""
    else:
        try:
            value = typer.prompt(name, hide_input=True)
        except typer.Abort as exc:  # Ctrl-D at the prompt
            raise InputError("no value given", where=name, fix="type the secret at the prompt"
                             ) from exc
    if not value.strip():
        raise InputError("no value given on standard input", where=name,
                         fix=f"pipe it in (printf %s \"$VALUE\" | publish keys set {name})"
                         " or run it in a terminal to be prompted")
    set_secret(name, value)
    _console().print(f"stored {name} in the keyring")


def main() -> None:
    """Entry point: one line on stderr and a documented exit code for every known error."""
    args = sys.argv[1:]
    debug = "--debug" in args or bool(os.environ.get("PUBLISHER_DEBUG"))
    args = [a for a in args if a != "--debug"]
    try:
        code = app(args=args, prog_name="publish", standalone_mode=False)
    except PublisherError as exc:
        if debug:
            _print_traceback(exc)
        else:
            _console(stderr=True).print(f"[red]error:[/] {_escape(_mask(exc.one_line()))}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):  # typer's own usage errors
            exc.show()
            sys.exit(exc.exit_code)
        fault = _damaged_database(exc)
        if fault is not None and not debug:
            _console(stderr=True).print(f"[red]error:[/] {_escape(_mask(fault.one_line()))}")
            sys.exit(fault.exit_code)
        if debug:
            _print_traceback(exc)
        else:
            _console(stderr=True).print(
                f"[red]internal error:[/] {type(exc).__name__}: {_escape(_mask(str(exc)))}"
                " — rerun with --debug and report"
            )
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


def _damaged_database(exc: Exception) -> SystemFault | None:
    """A SQLite file whose pages are damaged ("database disk image is malformed", "file is not
    a database") is a fault of the disk or of a copy, not a bug: one line and exit 3."""
    sqlite3 = sys.modules.get("sqlite3")  # not imported: no SQLite error is possible
    if sqlite3 is None or type(exc) is not sqlite3.DatabaseError:
        return None
    return SystemFault(
        f"a SQLite file of this project is damaged ({exc})",
        where="the ledger or the subscriber list",
        fix="restore it from a backup or rebuild it with  sqlite3 FILE .recover,"
            " then check  publish status  before sending again",
    )


def _mask(text: str) -> str:
    """Text with every secret handed out so far hidden (secrets.py is light to import)."""
    from publisher.config.secrets import mask

    return mask(text)


def _print_traceback(exc: BaseException) -> None:
    """--debug: the whole traceback, with secrets masked like every other line we print."""
    import traceback

    sys.stderr.write(_mask("".join(traceback.format_exception(exc))))
