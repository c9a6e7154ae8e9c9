"""`publish status POST`: what of a post was sent, and what failed or is uncertain."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from publisher.cli import render
from publisher.cli.common import ConfigOpt, JsonOpt, load_settings
from publisher.text.counts import counted

if TYPE_CHECKING:
    from rich.console import Console

    from publisher.delivery.scheduling import Held

OptionalPost = Annotated[Path | None, typer.Argument(
    metavar="[POST]", help="The article; without it, everything scheduled and every feed's items.")]


def status_command(
    post: OptionalPost = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
    failed: Annotated[
        bool, typer.Option("--failed", help="List only failed and uncertain deliveries.")
    ] = False,
) -> None:
    """Show, per channel, what of POST was sent and what is scheduled; without POST, every
    scheduled send (provider-scheduled or queued, time, ids) and every feed's items."""
    from publisher.cli.report import status_report
    from publisher.delivery.feed import feed_entries
    from publisher.delivery.pipeline import load_article
    from publisher.delivery.scheduling import provider_held, schedule_entries
    from publisher.stores.backends import open_ledger
    from publisher.stores.feeds import FeedLog

    settings = load_settings(config)
    now = datetime.now(UTC)
    if post is None:
        ledger = open_ledger(settings.ledger)
        try:
            entries = schedule_entries(ledger, now=now)
            feeds = feed_entries(FeedLog(ledger))
        finally:
            ledger.close()
        if as_json:
            print(json.dumps({"scheduled": entries, "feeds": feeds}, ensure_ascii=False))
            return
        _print_scheduled(entries, title="Scheduled")
        _print_feeds(feeds)
        return
    article = load_article(post, settings)
    edition_id = article.content_hash
    ledger = open_ledger(settings.ledger)
    try:
        report = status_report(ledger, edition_id, article.slug,
                               max_attempts=settings.max_attempts, failed_only=failed)
        report["scheduled"] = schedule_entries(ledger, now=now, slug=article.slug)
        held = [h for h in provider_held(ledger, article.slug, now=now)
                if h.edition_id == edition_id]
    finally:
        ledger.close()
    _mark_held(report, held)
    if as_json:
        print(json.dumps(report, ensure_ascii=False))
        return
    _print_status(article.title, report, post)
    if report["scheduled"]:
        _print_scheduled(report["scheduled"], title=f"{article.title}: scheduled")


def _print_scheduled(entries: list[dict[str, Any]], *, title: str) -> None:
    """One row per scheduled output: where it waits, until when, its state and the ids."""
    from rich.table import Table

    from publisher.delivery.scheduling import HANDED_OVER, held_words

    console = render.console()
    if not entries:
        console.print("Nothing is scheduled.")
        return
    table = Table(title=render.escape(title))
    for column in ("post", "output", "channel", "where", "at", "state", "ids"):
        table.add_column(column)
    for e in entries:
        ids = e["handle"] or ", ".join(e["provider_ids"][:3]) + (
            f" (+{len(e['provider_ids']) - 3})" if len(e["provider_ids"]) > 3 else "")
        where = e["where"] + (f": {e['reason']}" if e["reason"] else "")
        state = (held_words(e["channel"], e["at"], passed=True) if e["state"] == HANDED_OVER
                 else e["state"])
        table.add_row(render.escape(e["source"]), e["output"], e["channel"],
                      render.escape(where), e["at"], render.escape(state), render.escape(ids))
    console.print(table)


def _mark_held(report: dict[str, Any], held: list[Held]) -> None:
    """Sends a provider holds for `--at` are its to send, not delivered: say so in the report.

    Each such `sent` row gets `scheduled_for` (the time the provider was asked to send it)
    and `passed`; each channel counts them under `held`.
    """
    times = {(h.channel, item): h for h in held for item in h.items}
    for row in report.get("sent", []):
        found = times.get((row["channel"], row["item"]))
        if found is not None:
            row["scheduled_for"], row["passed"] = found.at, found.passed
    for tally in report.get("channels", []):
        tally["held"] = sum(1 for row in report["sent"]
                            if row["channel"] == tally["channel"] and "scheduled_for" in row)


def _print_feeds(feeds: list[dict[str, Any]], shown: int = 10) -> None:
    """Per feed: its counts, then its latest items (guid, state, ledger post, when)."""
    from rich.table import Table

    console = render.console()
    for feed in feeds:
        items = feed["items"]
        table = Table(title=render.escape(
            f"{feed['feed']}: {feed['published']} published, {feed['left_out']} left out, "
            f"{feed['pending']} pending"))
        for column in ("guid", "state", "post", "at"):
            table.add_column(column)
        for item in items[-shown:]:
            table.add_row(render.escape(item["guid"]), item["state"],
                          render.escape(item["post"]), item["at"])
        console.print(table)
        if len(items) > shown:
            console.print(f"({len(items) - shown} earlier items: `publish status --json` "
                          "lists every one)")


def _print_status(title: str, report: dict[str, Any], post: Path) -> None:
    """Per-channel counts, what was left out or retracted, every failed and uncertain delivery.

    Readers' addresses are masked (the text may land in a CI log); `--json` keeps them.
    """
    console = render.console()
    whole = "channels" in report  # not `--failed`, which asks only for the problems
    if whole:
        _print_tally(console, title, report)
    _print_problems(console, report, post)
    if whole:
        _print_deliveries(console, report)
    elif not report["failed"] and not report["uncertain"]:
        console.print(f"{render.escape(title)}: nothing failed or uncertain.")


def _print_tally(console: Console, title: str, report: dict[str, Any]) -> None:
    """One row per channel (sent, pending, failed, retracted or held), or 'nothing yet'."""
    from rich.table import Table

    if not report["channels"] and not report["skipped"]:
        console.print(f"{render.escape(title)}: nothing delivered yet.")
        return
    table = Table(title=render.escape(title))
    for column in ("channel", "sent", "pending", "failed", "note"):
        table.add_column(column)
    for t in report["channels"]:
        note = f"{t['retracted']} retracted" if t["retracted"] else ""
        note = ", ".join(n for n in (note, _held_note(t, report["sent"])) if n)
        table.add_row(t["channel"], str(t["sent"]), str(t["pending"]), str(t["failed"]), note)
    for name in report["skipped"]:
        table.add_row(name, "-", "-", "-", "skipped")
    console.print(table)


def _print_problems(console: Console, report: dict[str, Any], post: Path) -> None:
    """Each failed delivery with why and what happens next; each uncertain one with the fix."""
    from publisher.cli.report import masked_item

    for row in report["failed"]:
        console.print(
            f"[red]failed[/] {row['channel']} {render.escape(masked_item(row['item']))}"
            f" — {render.escape(row['reason'])}"
            f" — {row['kind']}, {counted(row['attempts'], 'attempt')}, last {row['last_attempt']},"
            f" {_NEXT[row['next']]}")
    for row in report["uncertain"]:
        console.print(
            f"[yellow]uncertain[/] {row['channel']} {render.escape(masked_item(row['item']))}"
            f" (batch {row['batch']})"
            f" — {render.escape(row['reason'])} — {counted(row['attempts'], 'attempt')},"
            f" last {row['last_attempt']}; resend with `publish {post} --retry-pending`")


def _print_deliveries(console: Console, report: dict[str, Any]) -> None:
    """What was retracted, the first 20 deliveries (held ones as held), and the proofs."""
    from publisher.cli.report import masked_item
    from publisher.delivery.scheduling import held_words

    for row in report["retracted"]:
        console.print(f"retracted {row['channel']} {row['item']} ({row['provider_id']})")
    for row in report["sent"][:20]:
        item = render.escape(masked_item(row["item"]))  # a reader's address is personal data
        state = f" ({render.escape(row['state'])})" if row["state"] else ""
        verb = ("sent" if "scheduled_for" not in row else
                render.escape(held_words(row["channel"], row["scheduled_for"],
                                         passed=row["passed"])) + ":")
        console.print(f"{verb} {row['channel']} {item} → {row['provider_id']}{state}"
                      f" {row['url']}".rstrip())
    if report["proofs"]:
        sent = sum(1 for proof in report["proofs"] if proof["state"] == "sent")
        failed = len(report["proofs"]) - sent
        console.print(f"{counted(sent, 'proof')} sent" + (f", {failed} failed" if failed else "")
                      + " (not counted as deliveries)")


def _held_note(tally: dict[str, Any], sent: list[dict[str, Any]]) -> str:
    """'3 held by sendgrid until T' or '3 handed to sendgrid for T — past; check sendgrid'."""
    from publisher.delivery.scheduling import held_words

    rows = [r for r in sent if r["channel"] == tally["channel"] and "scheduled_for" in r]
    if not rows:
        return ""
    first = min(rows, key=lambda r: str(r["scheduled_for"]))
    words = held_words(tally["channel"], first["scheduled_for"], passed=first["passed"])
    return f"{tally['held']} {words}"


_NEXT = {"retry": "retried on the next run", "given-up": "given up (--retry-failed tries again)",
         "refused": "not retried (--retry-failed tries again)"}
