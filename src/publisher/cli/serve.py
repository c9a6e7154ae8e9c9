"""`publish serve`: the unsubscribe page and the providers' webhooks over HTTP."""

from __future__ import annotations

from typing import Annotated

import typer

from publisher.cli import render
from publisher.cli.common import ConfigOpt, load_settings


def serve_command(
    config: ConfigOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8025,
) -> None:
    """Serve the unsubscribe page (RFC 8058 one-click POST) and the providers' webhooks."""
    from publisher.stores.backends import open_store
    from publisher.unsubscribe.app import make_app, make_server
    from publisher.unsubscribe.tokens import unsubscribe_secret
    from publisher.unsubscribe.webhooks import PROVIDERS, Webhooks

    settings = load_settings(config)
    store = open_store(settings.subscribers)
    hooks = Webhooks.from_config(settings, store)
    app_ = make_app(store, unsubscribe_secret(), site=settings.site, webhooks=hooks)
    with make_server(host, port, app_) as server:
        console = render.console(stderr=True)
        console.print(f"listening on http://{host}:{server.server_port}/unsubscribe")
        for provider in PROVIDERS:
            state = "on" if hooks.configured(provider) else "off (not configured: answers 503)"
            console.print(f"  /webhooks/{provider}: {state}")
        server.serve_forever()

