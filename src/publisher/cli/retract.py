"""`publish retract POST`: delete what a post put on the social networks."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from publisher.cli import render
from publisher.cli.common import EXIT_DELIVERY_FAILED, ConfigOpt, PostArg, load_settings


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
        refuse_scheduled,
        retract,
        without_retracted_links,
    )
    from publisher.delivery.pipeline import load_article
    from publisher.errors import InputError
    from publisher.stores.backends import open_ledger

    check_network(network)
    settings = load_settings(config)
    article = load_article(post, settings)
    err = render.console(stderr=True)
    ledger = open_ledger(settings.ledger)
    try:
        with ledger.lock(article.slug, source=str(post)):
            targets = live_posts(ledger, article.slug, network)
            if not targets:
                where = f"on {network}" if network else "on any network"
                err.print(f"note: nothing of {render.escape(str(post))} is posted {where}: "
                          "nothing to retract.")
                return
            refuse_scheduled([t.rows[0] for t in targets], str(post), "delete")
            for target in targets:
                err.print(f"will delete {target.name} {target.rows[0].item} "
                          f"{render.escape(target.url or target.provider_id)}")
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
    console = render.console()
    for name in sorted({*report.deleted, *report.already_gone}):
        gone = report.already_gone.get(name, 0)
        console.print(f"retracted {name}: {report.deleted.get(name, 0)} deleted"
                      + (f", {gone} already gone" if gone else ""))
    for problem in report.errors:
        err.print(f"[red]error:[/] {render.escape(problem)}")
    if report.newsletter_readers:
        err.print(f"note: the newsletter cannot be recalled: {report.newsletter_readers} "
                  f"recipient{'s' if report.newsletter_readers > 1 else ''} already have it.")
    if write_back and without_retracted_links(post, report.removed_urls):
        console.print(f"removed the retracted links from syndication: in {post}")
    if report.errors:
        raise typer.Exit(EXIT_DELIVERY_FAILED)

