"""The unsubscribe and webhook app on the threaded server, on a free port of 127.0.0.1."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from publisher.config.settings import Site
from publisher.stores.subscribers import SubscriberStore
from publisher.unsubscribe.app import make_app, make_server
from publisher.unsubscribe.webhooks import Material, Webhooks


@contextmanager
def serving(
    store: SubscriberStore, secret: str, *, site: Site | None = None,
    material: Material | None = None,
) -> Iterator[str]:
    """The app with these webhooks (default: none configured) running; yields the base URL."""
    webhooks = Webhooks(store, material or Material())
    app = make_app(store, secret, site=site or Site(), webhooks=webhooks)
    server = make_server("127.0.0.1", 0, app)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
