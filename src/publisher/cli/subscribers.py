"""`publish subscribers …`: import, export, add, remove, list and sync the subscriber list."""

from __future__ import annotations

import json
from itertools import chain, islice
from pathlib import Path
from typing import Annotated, Any

import typer

from publisher.cli import render
from publisher.cli.common import EXIT_DELIVERY_FAILED, ConfigOpt, JsonOpt, load_settings

subscribers_app = typer.Typer(help="Manage the subscriber list.", no_args_is_help=True)
EmailArg = Annotated[str, typer.Argument(help="The subscriber's email address.")]
ResubscribeOpt = Annotated[bool, typer.Option(
    "--resubscribe", help="Subscribe again addresses that unsubscribed, bounced or complained.")]


def _store(config: Path | None) -> Any:
    """The configured subscriber store."""
    from publisher.stores.backends import open_store

    return open_store(load_settings(config).subscribers)


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
    console = render.console()
    console.print(f"added {report.added}, updated {report.updated}, unchanged {report.unchanged},"
                  f" kept opted-out {report.kept_suppressed}, bad rows {len(report.problems)}")
    lines = chain((f"[yellow]resubscribed[/] {render.escape(email)}"
                   for email in report.resubscribed),
                  (f"[yellow]{render.escape(f'{csv_file}:{p.line}:')}[/] {render.escape(p.reason)}"
                   for p in report.problems))
    err = render.console(stderr=True)
    while block := list(islice(lines, 1000)):  # a file may have a great many bad rows
        err.print("\n".join(block), emoji=False)  # else rich shows `list.csv:1234:` as 🔢


@subscribers_app.command("export")
def subscribers_export(
    csv_file: Annotated[Path, typer.Argument(help="Where to write the CSV.")],
    config: ConfigOpt = None,
) -> None:
    """Write every address with its name and status."""
    count = _store(config).export_csv(csv_file)
    render.console().print(f"wrote {count} subscribers to {csv_file}")


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
    render.console().print(f"subscribed {render.escape(subscriber.email)}")


def _log_resubscribed(email: str, before: Any) -> None:
    """The stderr record of an explicit resubscribe: who, and what status it overrode."""
    from publisher.stores.addresses import describe_status

    render.console(stderr=True).print(
        f"[yellow]resubscribed[/] {render.escape(email)} (was {before.status}: "
        f"{render.escape(describe_status(before))})")


@subscribers_app.command("remove")
def subscribers_remove(email: EmailArg, config: ConfigOpt = None) -> None:
    """Unsubscribe an address (kept as unsubscribed, so no import re-adds it)."""
    _store(config).remove(email)
    render.console().print(f"unsubscribed {email}")


@subscribers_app.command("list")
def subscribers_list(
    config: ConfigOpt = None,
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List addresses with their status, and why and since when they have it."""
    from publisher.stores.addresses import check_status, iso_time

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
    render.console(stderr=True).print(counts)


@subscribers_app.command("sync")
def subscribers_sync(
    config: ConfigOpt = None,
    provider: Annotated[list[str] | None, typer.Option(
        "--provider", help="Only this provider (sendgrid, postmark, resend); repeatable.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Pull the email providers' bounces, complaints and unsubscribes into the list."""
    from publisher.unsubscribe.sync import sync

    settings = load_settings(config)
    store = _store(config)
    results = sync(settings, store, provider or ())
    err = render.console(stderr=True)
    if as_json:
        print(json.dumps({r.provider: r.report.tally() for r in results if not r.skipped
                          and not r.error}))
    for result in results:
        if not as_json:
            _print_sync(result)
        if result.skipped:
            err.print(f"[yellow]{result.provider}:[/] {render.escape(result.skipped)}")
        if result.blocks:
            err.print(f"{result.provider}: {result.blocks} blocked addresses reported, not"
                      " suppressed (SendGrid keeps sending to blocks)")
        if result.error:
            err.print(f"[red]error:[/] {render.escape(result.error)}")
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

