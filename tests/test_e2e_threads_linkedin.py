"""All five networks live through the real `publish` CLI, and Threads' two steps under SIGKILL.

The fakes run in this process on 127.0.0.1; `publish` runs as a subprocess with every network
secret in its environment. The card image is served locally too.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.bluesky import FakeBluesky
from tests.fakes.linkedin import FakeLinkedIn
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.server import FakeHTTPServer, Reply
from tests.fakes.threads import FakeThreads
from tests.fakes.x import FakeX
from tests.helpers import run_publish
from tests.helpers.e2e import (
    BLUESKY_HANDLE,
    EN_POST,
    SOCIAL_SECRETS,
    crash_mid_request,
    install_gate,
    status,
    tallies,
    write_config,
)

POST = "posts/composting-five.md"
NETWORKS = ("x", "bluesky", "mastodon", "threads", "linkedin")
ARTICLE_URL = "https://example.org/news/city-composting"  # the sample post's url:
SECRETS = {**SOCIAL_SECRETS, "THREADS_ACCESS_TOKEN": "threads-e2e-token-41",
           "LINKEDIN_ACCESS_TOKEN": "linkedin-e2e-token-42"}


@dataclass
class Five:
    """Every social fake, and the image host, running."""

    x: FakeX
    bluesky: FakeBluesky
    mastodon: FakeMastodon
    threads: FakeThreads
    linkedin: FakeLinkedIn
    images: FakeHTTPServer

    def counts(self) -> dict[str, int]:
        """How many posts each network holds."""
        return {"x": len(self.x.tweets), "bluesky": len(self.bluesky.posts),
                "mastodon": len(self.mastodon.statuses), "threads": len(self.threads.posts),
                "linkedin": len(self.linkedin.posts)}

    def tables(self, networks: tuple[str, ...] = NETWORKS) -> dict[str, dict[str, Any]]:
        """The [channels.*] tables that send each network to its fake."""
        every = {"x": {"api_base": self.x.url},
                 "bluesky": {"handle": BLUESKY_HANDLE, "pds_url": self.bluesky.url},
                 "mastodon": {"instance_url": self.mastodon.url},
                 "threads": {"api_base": self.threads.url, "user_id": self.threads.user_id,
                             "poll_interval": 0.01},
                 "linkedin": {"api_base": self.linkedin.url, "author": self.linkedin.author}}
        return {n: every[n] for n in networks}


def _card_png() -> bytes:
    """A small PNG for the link card."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (600, 315), (40, 120, 80)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def five(workdir: Path) -> Iterator[Five]:
    """Running fakes, and a copy of the English sample whose card image is served locally."""
    png = _card_png()
    images = FakeHTTPServer(lambda request: Reply(200, png, {"Content-Type": "image/png"}))
    images.start()
    running = Five(
        x=FakeX(consumer=(SECRETS["X_API_KEY"], SECRETS["X_API_SECRET"]),
                token=(SECRETS["X_ACCESS_TOKEN"], SECRETS["X_ACCESS_TOKEN_SECRET"])),
        bluesky=FakeBluesky(handle=BLUESKY_HANDLE, password=SECRETS["BLUESKY_APP_PASSWORD"]),
        mastodon=FakeMastodon(token=SECRETS["MASTODON_ACCESS_TOKEN"], processing_polls=0),
        threads=FakeThreads(token=SECRETS["THREADS_ACCESS_TOKEN"]),
        linkedin=FakeLinkedIn(token=SECRETS["LINKEDIN_ACCESS_TOKEN"]),
        images=images,
    )
    source = (workdir / EN_POST).read_text(encoding="utf-8")
    local = re.sub(r"(?m)^image: .*$", f"image: {images.url}/card.png", source, count=1)
    (workdir / POST).write_text(local, encoding="utf-8")
    try:
        yield running
    finally:
        for fake in (running.x, running.bluesky, running.mastodon, running.threads,
                     running.linkedin):
            fake.close()
        images.stop()


def configure(root: Path, five: Five, networks: tuple[str, ...] = NETWORKS) -> None:
    """publisher.toml with these networks live (the newsletter to the outbox)."""
    write_config(root, networks=list(networks), channels=five.tables(networks))


def test_one_run_posts_to_all_five_networks_and_a_second_run_sends_nothing(
    workdir: Path, five: Five
) -> None:
    configure(workdir, five)
    checked = run_publish("check", cwd=workdir, env=SECRETS)
    assert checked.returncode == 0, checked.stderr
    assert "threads" in checked.stdout and "linkedin" in checked.stdout

    first = run_publish(POST, "--thread", cwd=workdir, env=SECRETS)
    assert first.returncode == 0, (first.stdout, first.stderr)
    counts = five.counts()
    assert counts["linkedin"] == 1 and all(counts[n] >= 1 for n in NETWORKS), counts
    assert counts["threads"] == counts["x"] > 1  # Threads threads like X does
    parents = [p["reply_to_id"] for p in five.threads.posts]
    assert parents == ["", *[p["id"] for p in five.threads.posts[:-1]]]
    assert five.threads.posts[0]["link_attachment"].startswith(ARTICLE_URL)
    (shared,) = five.linkedin.posts
    assert shared["content"]["article"]["thumbnail"] in five.linkedin.images
    assert shared["shown"] == _plain(shared["commentary"])  # nothing cut by a stray reserved
    report = status(POST, workdir, SECRETS)
    assert tallies(report)["linkedin"] == {"sent": 1, "pending": 0, "failed": 0}
    urns = [s["provider_id"] for s in report["sent"] if s["channel"] == "linkedin"]
    assert urns == [shared["urn"]]  # the x-restli-id is what the ledger keeps

    second = run_publish(POST, "--thread", cwd=workdir, env=SECRETS)
    assert second.returncode == 0, second.stderr
    assert "Nothing new to send" in second.stdout
    assert five.counts() == counts


def _plain(commentary: str) -> str:
    """The commentary as a reader sees it when nothing is cut (escapes and templates undone)."""
    from tests.fakes.linkedin import shown_text

    return shown_text(commentary)


@pytest.mark.parametrize("moment", ["container-made", "publish-lost", "publish-landed"])
def test_a_kill_between_container_and_publish_posts_each_threads_post_once(
    workdir: Path, five: Five, moment: str
) -> None:
    configure(workdir, five, ("threads",))
    fake = five.threads
    path = f"/v1.0/{fake.user_id}/" + ("threads" if moment == "container-made"
                                       else "threads_publish")
    gate = install_gate(fake.http, path, nth=2, lose=moment == "publish-lost")
    early = crash_mid_request(gate, POST, "--thread", cwd=workdir, env=SECRETS)
    assert early is None, early
    assert len(fake.posts) == (2 if moment == "publish-landed" else 1)

    resumed = run_publish(POST, "--thread", cwd=workdir, env=SECRETS)
    assert resumed.returncode == 0, (resumed.stdout, resumed.stderr)
    texts = fake.texts()
    assert len(texts) == len(set(texts)) > 2  # every post once, none twice
    assert [p["reply_to_id"] for p in fake.posts] == ["", *[p["id"] for p in fake.posts[:-1]]]
    made = len(fake.containers)
    # The recorded container is reused; only one made but never recorded is left unpublished.
    assert made == len(texts) + (1 if moment == "container-made" else 0)
    report = status(POST, workdir, SECRETS)
    assert tallies(report)["threads"] == {"sent": len(texts), "pending": 0, "failed": 0}
    again = run_publish(POST, "--thread", cwd=workdir, env=SECRETS)
    assert "Nothing new to send" in again.stdout and fake.texts() == texts


def test_retract_deletes_the_threads_and_linkedin_posts_once(workdir: Path, five: Five) -> None:
    networks = ("threads", "linkedin")
    configure(workdir, five, networks)
    posted = run_publish(POST, "--thread", cwd=workdir, env=SECRETS)
    assert posted.returncode == 0, posted.stderr
    made = five.counts()
    gone = run_publish("retract", POST, "--yes", cwd=workdir, env=SECRETS)
    assert gone.returncode == 0, (gone.stdout, gone.stderr)
    assert five.threads.posts == [] and five.linkedin.posts == []
    assert len(five.threads.deleted) == made["threads"] and len(five.linkedin.deleted) == 1
    again = run_publish("retract", POST, "--yes", cwd=workdir, env=SECRETS)
    assert again.returncode == 0, again.stderr
    assert len(five.threads.deleted) == made["threads"] and len(five.linkedin.deleted) == 1
    rerun = run_publish(POST, "--thread", cwd=workdir, env=SECRETS)
    assert rerun.returncode == 0 and five.counts()["linkedin"] == 0  # retracted stays retracted
