"""X, Bluesky and Mastodon fakes running together (the `nets` fixture), and a config for them."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fakes.bluesky import FakeBluesky
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.server import FakeHTTPServer, Reply
from tests.fakes.x import FakeX
from tests.helpers.e2e import BLUESKY_HANDLE, EN_POST, SOCIAL_SECRETS, write_config

NETWORKS = ("bluesky", "mastodon", "x")
POST = "posts/composting-e2e.md"


@dataclass
class Networks:
    """The three fakes and the image host, all running."""

    x: FakeX
    bluesky: FakeBluesky
    mastodon: FakeMastodon
    images: FakeHTTPServer

    def server(self, network: str) -> Any:
        """The HTTP server behind one network's fake."""
        return getattr(self, network).http

    def close(self) -> None:
        """Stop every server."""
        for fake in (self.x, self.bluesky, self.mastodon):
            fake.close()
        self.images.stop()


def card_png() -> bytes:
    """A small PNG for the link card."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (600, 315), (40, 120, 80)).save(out, "PNG")
    return out.getvalue()


@contextmanager
def running_networks(workdir: Path) -> Iterator[Networks]:
    """Running fakes, and a copy of the English sample whose card image is served locally."""
    png = card_png()
    images = FakeHTTPServer(lambda request: Reply(200, png, {"Content-Type": "image/png"}))
    images.start()
    running = Networks(
        x=FakeX(consumer=(SOCIAL_SECRETS["X_API_KEY"], SOCIAL_SECRETS["X_API_SECRET"]),
                token=(SOCIAL_SECRETS["X_ACCESS_TOKEN"], SOCIAL_SECRETS["X_ACCESS_TOKEN_SECRET"])),
        bluesky=FakeBluesky(handle=BLUESKY_HANDLE,
                            password=SOCIAL_SECRETS["BLUESKY_APP_PASSWORD"]),
        mastodon=FakeMastodon(token=SOCIAL_SECRETS["MASTODON_ACCESS_TOKEN"], processing_polls=0),
        images=images,
    )
    source = (workdir / EN_POST).read_text(encoding="utf-8")
    local = re.sub(r"(?m)^image: .*$", f"image: {images.url}/card.png", source, count=1)
    (workdir / POST).write_text(local, encoding="utf-8")
    try:
        yield running
    finally:
        running.close()


def configure(root: Path, nets: Networks, networks: tuple[str, ...] = NETWORKS) -> None:
    """publisher.toml with live channels for the given networks (the newsletter to the outbox)."""
    tables = {
        "x": {"api_base": nets.x.url},
        "bluesky": {"handle": BLUESKY_HANDLE, "pds_url": nets.bluesky.url},
        "mastodon": {"instance_url": nets.mastodon.url},
    }
    write_config(root, networks=list(networks),
                 channels={n: tables[n] for n in networks})


def post_counts(nets: Networks) -> dict[str, int]:
    """How many posts each network holds."""
    return {"x": len(nets.x.tweets), "bluesky": len(nets.bluesky.posts),
            "mastodon": len(nets.mastodon.statuses)}


