"""Mastodon channel against a local fake instance over real sockets."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from PIL import Image

from publisher.channels import mastodon
from publisher.channels.http import RetryPolicy
from publisher.errors import ConfigError, PermanentDeliveryError
from publisher.model import LinkCard
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.server import Faults
from tests.fakes.support import Sleeps, send_thread, thread_posts
from tests.helpers.channels import build_channel

TOKEN = "mastodon-test-token-123"
TEXTS = ["一つ目の投稿です。https://example.com/a", "二つ目です。", "三つ目です。", "四つ目。"]


build = partial(build_channel, mastodon.MastodonChannel)  # as the registry builds it


@pytest.fixture
def fake() -> Iterator[FakeMastodon]:
    server = FakeMastodon(token=TOKEN)
    yield server
    server.close()


@pytest.fixture
def channel(fake: FakeMastodon, monkeypatch: pytest.MonkeyPatch) -> Iterator[
        mastodon.MastodonChannel]:
    monkeypatch.setenv("MASTODON_ACCESS_TOKEN", TOKEN)
    made = build({"instance_url": fake.url, "timeout": 2.0})
    made.sleep = Sleeps()
    yield made
    made.close()


def test_preflight_returns_the_instance_limits(channel: mastodon.MastodonChannel) -> None:
    assert channel.preflight() == {"limit": 1000, "url_length": 23}


def test_thread_of_four_replies_in_order(
    channel: mastodon.MastodonChannel, fake: FakeMastodon
) -> None:
    receipts = send_thread(channel, thread_posts("mastodon", TEXTS))
    assert fake.texts() == TEXTS
    parents = [s["in_reply_to_id"] for s in fake.statuses]
    assert parents == [None, receipts[0].provider_id, receipts[1].provider_id,
                       receipts[2].provider_id]
    assert {s["language"] for s in fake.statuses} == {"ja"}
    assert receipts[3].url == f"{fake.url}/@editor/{receipts[3].provider_id}"


def test_resume_after_a_kill_replays_the_pending_post(
    channel: mastodon.MastodonChannel, fake: FakeMastodon, monkeypatch: pytest.MonkeyPatch
) -> None:
    posts = thread_posts("mastodon", TEXTS)
    first_run = send_thread(channel, posts[:3])  # the process died after post 3 was sent
    monkeypatch.setenv("MASTODON_ACCESS_TOKEN", TOKEN)
    resumed = build({"instance_url": fake.url})
    receipts = send_thread(resumed, posts, receipts=first_run[:2],  # ledger: 3 still pending
                           attempted={"ed1-mastodon-3"})
    assert fake.texts() == TEXTS
    assert receipts[2] == first_run[2]
    assert fake.statuses[3]["in_reply_to_id"] == first_run[2].provider_id


def test_over_length_is_permanent_with_the_server_message(
    channel: mastodon.MastodonChannel, fake: FakeMastodon
) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        send_thread(channel, thread_posts("mastodon", ["あ" * 1001]))
    assert "Text character limit of 1000 exceeded" in str(caught.value)
    assert fake.statuses == []


def test_same_idempotency_key_returns_the_same_status(
    channel: mastodon.MastodonChannel, fake: FakeMastodon
) -> None:
    post = thread_posts("mastodon", ["一度だけ"])[0]
    first = channel.send_post(post, key="same", reply_to=None, root=None)
    again = channel.send_post(post, key="same", reply_to=None, root=None)
    assert first == again
    assert len(fake.statuses) == 1


def test_faults_still_deliver_each_post_exactly_once(
    fake: FakeMastodon, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MASTODON_ACCESS_TOKEN", TOKEN)
    channel = build({"instance_url": fake.url, "timeout": 0.2})
    # phase "after": the status is created, then the answer fails — the worst case for retries
    fake.set_faults(Faults(rate=0.5, seed=4, phase="after", slow_seconds=0.4, reset_seconds=1))
    receipts = send_thread(channel, thread_posts("mastodon", TEXTS),
                           policy=RetryPolicy(attempts=30))
    assert fake.texts() == TEXTS
    assert [s["id"] for s in fake.statuses] == [r.provider_id for r in receipts]
    assert set(fake.http.faults.injected) == {"500", "429", "slow", "drop"}


def test_card_image_is_uploaded_with_alt_text_and_awaited(
    channel: mastodon.MastodonChannel, fake: FakeMastodon, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    picture = tmp_path / "card.png"
    Image.new("RGB", (64, 32), (200, 30, 30)).save(picture)
    monkeypatch.chdir(tmp_path)  # a relative image is read from the post's folder, here cwd
    card = LinkCard(uri="https://example.com/a", title="記事の題", description="説明",
                    thumb="card.png", alt="赤い長方形の画像")
    send_thread(channel, thread_posts("mastodon", TEXTS[:2], card=card))
    assert len(fake.statuses[0]["media_ids"]) == 1
    media = fake.media[fake.statuses[0]["media_ids"][0]]
    assert media["description"] == "赤い長方形の画像"
    assert isinstance(channel.sleep, Sleeps)
    assert channel.sleep.delays == [1.0] * 3  # 202, then 206, 206, then 200
    assert fake.statuses[1]["media_ids"] == []


def test_attach_image_false_posts_without_media(
    fake: FakeMastodon, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MASTODON_ACCESS_TOKEN", TOKEN)
    channel = build({"instance_url": fake.url, "attach_image": False})
    card = LinkCard(uri="https://example.com/a", title="t", description="d",
                    thumb=str(tmp_path / "never-read.png"))
    send_thread(channel, thread_posts("mastodon", TEXTS[:1], card=card))
    channel.close()
    assert fake.statuses[0]["media_ids"] == [] and fake.media == {}


def test_state_survives_a_restart_of_the_fake(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "mastodon.json"
    monkeypatch.setenv("MASTODON_ACCESS_TOKEN", TOKEN)
    first = FakeMastodon(token=TOKEN, state_file=state)
    post = thread_posts("mastodon", ["再起動の前"])[0]
    before = build({"instance_url": first.url}).send_post(
        post, key="k", reply_to=None, root=None)
    first.close()
    second = FakeMastodon(token=TOKEN, state_file=state)
    try:
        after = build({"instance_url": second.url}).send_post(
            post, key="k", reply_to=None, root=None)
        assert after.provider_id == before.provider_id
        assert second.texts() == ["再起動の前"]
    finally:
        second.close()


def test_missing_instance_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="instance_url"):
        build({})
