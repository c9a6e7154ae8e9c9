"""`publish unschedule POST`: cancel where the provider allows it, dequeue the rest."""

from __future__ import annotations

import typer

from publisher.cli import render
from publisher.cli.common import EXIT_DELIVERY_FAILED, ConfigOpt, JsonOpt, PostArg, load_settings


def unschedule_command(post: PostArg, config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Cancel POST's scheduled sends at SendGrid, Resend and Mastodon; dequeue the others."""
    import json

    from publisher.delivery.scheduling import unschedule

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
                          f" ({r.count} scheduled send{'' if r.count == 1 else 's'})")
    if any(r.error for r in results):
        raise typer.Exit(EXIT_DELIVERY_FAILED)
