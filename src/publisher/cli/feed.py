"""`publish feed URL`: publish a feed's new items, oldest first, each exactly once.

Exit codes as for `publish POST` (cli/app.py), and: 2 for a first run on a feed without --latest,
--since or --all, for a feed that is no RSS or Atom feed, a 4xx or a refused address; 3 for a
feed server that cannot be reached, answers 5xx or is too slow.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from publisher.cli import render
from publisher.cli.common import ConfigOpt, JsonOpt, load_settings

if TYPE_CHECKING:
    from rich.console import Console

    from publisher.config.settings import Config
    from publisher.delivery.feed import FeedPlan
    from publisher.delivery.pipeline import Prepared
    from publisher.source.feed.choose import Limits


def feed_command(
    url: Annotated[str, typer.Argument(metavar="URL", help="The RSS 2.0 or Atom feed.")],
    latest: Annotated[int | None, typer.Option(
        "--latest", metavar="N", help="Only the N newest items not yet published.")] = None,
    since: Annotated[str | None, typer.Option(
        "--since", metavar="DATE",
        help="Only items dated on or after DATE (2026-11-01, or a time with a zone).")] = None,
    everything: Annotated[bool, typer.Option(
        "--all", help="Every item not yet published (a first run must choose a limit or this).")
    ] = False,
    resend: Annotated[bool, typer.Option(
        help="Send again, as a new edition, a published item whose text changed.")] = False,
    config: ConfigOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Outbox folder.")] = None,
    templates: Annotated[Path | None, typer.Option(help="Folder overriding templates/.")] = None,
    as_json: JsonOpt = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would go.")] = False,
    strict: Annotated[
        bool, typer.Option(help="Treat warnings as errors: exit 2 before sending anything.")
    ] = False,
    only: Annotated[str | None, typer.Option("--only", metavar="NAMES",
                                             help="Deliver only these outputs.")] = None,
    skip: Annotated[str | None, typer.Option("--skip", metavar="NAMES",
                                             help="Leave these out this time.")] = None,
) -> None:
    """Publish each item of the feed not yet published, oldest first, exactly once."""
    from publisher.delivery.feed import FeedOptions, plan_feed, send_feed

    limits = _limits(latest, since, everything)
    chosen = None
    if only or skip:
        from publisher.plan import select_channels

        chosen = select_channels(only, skip)
    settings = load_settings(config)
    options = FeedOptions(url, limits, resend=resend, strict=strict, out=out,
                          templates=templates, channels=chosen)
    plan = plan_feed(options, settings)
    err = render.console(stderr=True)
    for warning in plan.warnings:
        err.print(f"[yellow]warning:[/] {render.escape(render.mask(warning))}")
    if strict and plan.warnings:
        from publisher.delivery.pipeline import strict_refusal

        raise strict_refusal(len(plan.warnings), where=url)
    console = render.console(stderr=as_json)
    if plan.unchanged:
        console.print("The feed has not changed since the last run: nothing new to send.")
        _write_json([], as_json)
        return
    if dry_run:
        _print_dry_run(console, plan)
        _write_json([_edition(entry.prepared, settings) for entry in plan.entries], as_json)
        return
    from publisher.cli.send import exit_for, print_outcomes

    entries = send_feed(plan, options, settings)
    for entry in entries:
        print_outcomes(console, entry.prepared, entry.outcomes,
                        max_attempts=settings.max_attempts)
    _write_json([_edition(entry.prepared, settings) for entry in entries], as_json)
    console.print(_summary(plan))
    exit_for([outcome for entry in entries for outcome in entry.outcomes])


def _limits(latest: int | None, since: str | None, everything: bool) -> Limits:
    """--latest, --since and --all as Limits, each checked."""
    from publisher.errors import InputError
    from publisher.source.feed.choose import Limits

    if everything and (latest is not None or since is not None):
        raise InputError("--all takes every item; it cannot be combined with --latest or"
                         " --since", where="--all", fix="give either --all or the limits")
    if latest is not None and latest < 1:
        raise InputError(f"--latest must be 1 or more, not {latest}", where="--latest",
                         fix="e.g. --latest 3")
    return Limits(latest, _since(since) if since is not None else None, everything)


def _since(text: str) -> datetime:
    """--since: a date (midnight UTC) or a time with its zone."""
    from publisher.errors import InputError

    try:
        found = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InputError(f"--since {text!r} is not a date", where="--since",
                         fix="write e.g. 2026-11-01 or 2026-11-01T09:00+09:00") from exc
    if len(text) <= 10:
        return found.replace(tzinfo=UTC)
    if found.tzinfo is None:
        raise InputError(f"--since {text!r} has a time but no zone", where="--since",
                         fix="add the zone, e.g. 2026-11-01T09:00+09:00 or …Z")
    return found


def _print_dry_run(console: Console, plan: FeedPlan) -> None:
    """What a real run would publish, oldest first, and what it would leave out."""
    for entry in plan.entries:
        when = entry.item.when.date().isoformat() if entry.item.when else "undated"
        again = " (changed: sent again as a new edition)" if entry.resend else ""
        console.print(f"would publish: {when}  {render.escape(entry.article.title)}"
                      f"  → {render.escape(entry.article.slug)}{again}")
    console.print(_summary(plan, dry_run=True))


def _summary(plan: FeedPlan, *, dry_run: bool = False) -> str:
    """One line: how many items went, were there before, or were left out."""
    from publisher.delivery.feed import settled

    verb = "would publish" if dry_run else "published"
    done = [e for e in plan.entries if dry_run or settled(e.outcomes)]
    parts = [f"{len(done)} {verb}"]
    if len(done) < len(plan.entries):
        parts.append(f"{len(plan.entries) - len(done)} not fully delivered (the next run"
                     " takes it up again; see above)")
    if plan.already:
        parts.append(f"{plan.already} published before")
    if plan.held:
        parts.append(f"{plan.held} left out before")
    if plan.passed:
        parts.append(f"{len(plan.passed)} older left out by the limit")
    title = f"{plan.title}: " if plan.title else ""
    return render.escape(f"{title}{', '.join(parts)}.")


def _edition(prepared: Prepared, settings: Config) -> dict[str, object]:
    """The edition JSON `publish POST --json` prints, for one item."""
    from publisher.delivery.pipeline import sample_recipients
    from publisher.edition.build import edition_json

    return dict(edition_json(prepared.edition, next(sample_recipients(settings))))


def _write_json(editions: list[dict[str, object]], as_json: bool) -> None:
    """--json: the editions published, as a JSON list on stdout."""
    if as_json:
        sys.stdout.write(json.dumps(editions, ensure_ascii=False, indent=2) + "\n")
