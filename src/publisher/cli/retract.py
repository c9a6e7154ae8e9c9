"""`publish retract POST`: delete what a post put on the social networks."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from publisher.cli import render
from publisher.cli.common import EXIT_DELIVERY_FAILED, ConfigOpt, PostArg, load_settings
from publisher.text.counts import counted

if TYPE_CHECKING:
    from rich.console import Console

    from publisher.delivery.corrections import LivePost, Retraction
    from publisher.delivery.scheduling import Held


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
        newsletter_reach,
        open_deleters,
        refuse_scheduled,
        retract,
        without_retracted_links,
    )
    from publisher.delivery.pipeline import load_article
    from publisher.stores.backends import open_ledger

    check_network(network)
    settings = load_settings(config)
    article = load_article(post, settings)
    err = render.console(stderr=True)
    now = datetime.now(UTC)
    ledger = open_ledger(settings.ledger)
    try:
        with ledger.lock(article.slug, source=str(post)):
            targets = live_posts(ledger, article.slug, network)
            if not targets:
                where = f"on {network}" if network else "on any network"
                err.print(f"note: nothing of {render.escape(str(post))} is posted {where}: "
                          "nothing to retract.")
                _newsletter_notes(err, post, *newsletter_reach(ledger, article.slug, now=now))
                return
            refuse_scheduled([t.rows[0] for t in targets], str(post), "delete")
            if not _confirmed(err, post, targets, yes=yes):
                err.print("Nothing was deleted.")
                return
            channels = open_deleters(settings, targets)
            try:
                report = retract(ledger, article.slug, targets, channels, now=now)
            finally:
                for channel in channels.values():
                    channel.close()
    finally:
        ledger.close()
    console = render.console()
    _print_retraction(console, err, post, report)
    if write_back and without_retracted_links(post, report.removed_urls):
        console.print(f"removed the retracted links from syndication: in {post}")
    if report.errors:
        raise typer.Exit(EXIT_DELIVERY_FAILED)


def _confirmed(err: Console, post: Path, targets: list[LivePost], *, yes: bool) -> bool:
    """List what would be deleted and ask; off a terminal only --yes confirms (never a hang)."""
    from publisher.errors import InputError

    for target in targets:
        err.print(f"will delete {target.name} {target.rows[0].item} "
                  f"{render.escape(target.url or target.provider_id)}")
    if yes:
        return True
    if not sys.stdin.isatty():
        raise InputError("retract deletes live posts and needs confirmation",
                         where=str(post), fix="pass --yes to confirm")
    return typer.confirm(f"Delete {counted(len(targets), 'post')}?")


def _print_retraction(console: Console, err: Console, post: Path, report: Retraction) -> None:
    """Per network what was deleted or already gone, each error, and the newsletter's reach."""
    for name in sorted({*report.deleted, *report.already_gone}):
        gone = report.already_gone.get(name, 0)
        console.print(f"retracted {name}: {report.deleted.get(name, 0)} deleted"
                      + (f", {gone} already gone" if gone else ""))
    for problem in report.errors:
        err.print(f"[red]error:[/] {render.escape(problem)}")
    _newsletter_notes(err, post, report.newsletter_readers, report.newsletter_held)


def _newsletter_notes(err: Console, post: Path, readers: int, held: list[Held]) -> None:
    """What is true of the newsletter: delivered (no recall), held by a provider, or handed over.

    A send scheduled at SendGrid or Resend is with the provider, not the readers, until its
    time; after it publisher was never told whether the provider sent it.
    """
    if readers:
        err.print(f"note: the newsletter cannot be recalled: {counted(readers, 'recipient')}"
                  f" already {'have' if readers > 1 else 'has'} it.")
    for send in held:
        count = counted(len(send.readers), "recipient")
        if send.passed:
            err.print(f"note: the newsletter was handed to {send.channel} for {send.at}, which "
                      f"has passed: {send.channel} was to send it to {count} then; publisher is "
                      f"not told whether it did (check {send.channel}), and it cannot be "
                      "recalled.")
        else:
            err.print(f"note: the newsletter is not with readers yet: {send.channel} holds it "
                      f"for {count} until {send.at}; to stop it, run "
                      f"`publish unschedule {render.escape(str(post))}` before then.")
