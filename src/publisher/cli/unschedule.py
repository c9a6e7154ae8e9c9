"""`publish unschedule POST`: cancel where the provider allows it, dequeue the rest."""

from __future__ import annotations

import typer

from publisher.cli import render
from publisher.cli.common import (
    EXIT_DELIVERY_FAILED,
    EXIT_UNCERTAIN,
    ConfigOpt,
    JsonOpt,
    PostArg,
    load_settings,
)
from publisher.text.counts import counted


def unschedule_command(post: PostArg, config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Cancel POST's scheduled sends at SendGrid, Resend and Mastodon; dequeue the others."""
    import json

    from publisher.delivery.due import unschedule

    results = unschedule(post, load_settings(config))
    if as_json:
        print(json.dumps([r.__dict__ for r in results], ensure_ascii=False))
    console, errors = render.console(stderr=as_json), render.console(stderr=True)
    if not results:
        console.print(f"{render.escape(str(post))}: nothing is scheduled.")
    for r in results:
        if r.error:
            errors.print(f"[red]not cancelled:[/] {r.output} ({r.channel}): {render.safe(r.error)}")
        elif r.where == "queued":
            console.print(f"{r.output} ({r.channel}): dequeued")
        else:
            console.print(f"{r.output} ({r.channel}): cancelled at the provider"
                          f" ({counted(r.count, 'scheduled send')})")
        if r.uncertain:
            errors.print(f"[yellow]uncertain:[/] {r.output} ({r.channel}): {r.uncertain} scheduled"
                         " send(s) left no id (the answer was lost), so they could not be"
                         f" cancelled — check the provider; `publish status {post}` lists them")
    if any(r.error for r in results):
        raise typer.Exit(EXIT_DELIVERY_FAILED)
    if any(r.uncertain for r in results):
        raise typer.Exit(EXIT_UNCERTAIN)
