"""deliver.py reads and uploads a post's image before the ledger marks the post pending.

Real ledger (SQLite in a temp dir), the real X channel against the local fake X, and a local
image host that drops connections: a failed image must fail the post, never leave it uncertain.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from publisher.channels.http import RetryPolicy
from publisher.config.load import config_from_mapping
from publisher.delivery.pipeline import Options, image_loader, prepare
from publisher.delivery.send import Run, deliver
from publisher.stores.sqlite import SqliteLedger
from tests.fakes.server import FakeHTTPServer, Faults, Reply
from tests.fakes.support import Sleeps
from tests.fakes.x import FakeX

SECRETS = {"X_API_KEY": "x-consumer-key-1", "X_API_SECRET": "x-consumer-secret-1",
           "X_ACCESS_TOKEN": "x-access-token-1", "X_ACCESS_TOKEN_SECRET": "x-access-secret-1"}
POST = """---
title: Tool shelf opens
url: https://example.com/posts/tools
image: {image}
image_alt: Drills on a shelf
summary: The library lends tools now.
---
The library lends drills, saws and rakes with a regular card.
"""


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeX]:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PUBLISHER_NO_KEYRING", "1")
    server = FakeX()
    yield server
    server.close()


def run_for(
    tmp_path: Path, fake: FakeX, image: str, *, attempts: int = 2
) -> tuple[Run, SqliteLedger]:
    """A delivery run of a one-post article to X with images attached, and its ledger."""
    folder = tmp_path / "posts"
    folder.mkdir(exist_ok=True)
    (folder / "tools.md").write_text(POST.format(image=image), encoding="utf-8")
    config = config_from_mapping({
        "outbox": str(tmp_path / "outbox"),
        "social": {"networks": ["x"]},
        "images": {"allow_private": ["127.0.0.1"]},  # the image host here is on loopback
        "channels": {"x": {"api_base": fake.url, "attach_image": True, "timeout": 2.0}},
    })
    prepared = prepare(Options(folder / "tools.md"), config)
    ledger = SqliteLedger(tmp_path / "ledger.sqlite3")
    run = Run(ledger=ledger, edition=prepared.edition, plan=prepared.plan,
              channels=prepared.live, recipients=lambda: iter(()),
              policy=RetryPolicy(attempts=attempts), sleep=Sleeps(),
              images=image_loader(prepared.article, config))
    return run, ledger


def only_x(run: Run) -> Run:
    """The run restricted to the X step (the outbox steps are not under test)."""
    from dataclasses import replace

    steps = tuple(s for s in run.plan.steps if s.channel == "x")
    run.plan = replace(run.plan, steps=steps)
    return run


def test_a_dropped_image_download_fails_the_post_and_leaves_nothing_pending(
    tmp_path: Path, fake: FakeX
) -> None:
    images = FakeHTTPServer(lambda request: Reply(200, b"", {}),
                            faults=Faults(rate=1.0, kinds=("drop",)))
    images.start()
    try:
        run, ledger = run_for(tmp_path, fake, f"{images.url}/hero.png")
        outcomes = deliver(only_x(run))
    finally:
        images.stop()
    assert outcomes[0].error is not None and outcomes[0].error.startswith("x: "), outcomes[0].error
    rows = ledger.rows(run.plan.edition_id, "x")
    assert [r.state for r in rows] == ["failed"]  # a definite failure, not an uncertain post
    assert fake.tweets == [] and fake.media == {}


def test_the_image_next_to_the_post_is_uploaded_before_the_post_and_alt_text_set(
    tmp_path: Path, fake: FakeX
) -> None:
    (tmp_path / "posts" / "img").mkdir(parents=True)
    Image.new("RGB", (120, 60), (10, 200, 90)).save(tmp_path / "posts" / "img" / "hero.png")
    run, ledger = run_for(tmp_path, fake, "img/hero.png")
    outcomes = deliver(only_x(run))
    assert not outcomes[0].error, outcomes[0].error
    assert [r.state for r in ledger.rows(run.plan.edition_id, "x")] == ["sent"]
    (media_id,) = fake.tweets[0]["media_ids"]
    assert fake.media[media_id]["alt_text"] == "Drills on a shelf"


def test_a_missing_image_on_a_pending_post_keeps_it_uncertain(
    tmp_path: Path, fake: FakeX
) -> None:
    run, ledger = run_for(tmp_path, fake, "img/none.png")
    step = next(s for s in run.plan.steps if s.channel == "x")
    ledger.mark_pending(run.plan.edition_id, run.plan.slug, "x", list(step.items), batch="b")
    run.retry_pending = True  # the editor asks to resend; the image is gone meanwhile
    outcomes = deliver(only_x(run))
    assert outcomes[0].error and "cannot read image" in outcomes[0].error
    assert [r.state for r in ledger.rows(run.plan.edition_id, "x")] == ["pending"]
