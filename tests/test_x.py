"""X channel (tweepy + v2 media upload) against a local fake API over real sockets."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from PIL import Image

from publisher.channels import x
from publisher.channels.http import RetryPolicy
from publisher.errors import ConfigError, PermanentDeliveryError
from publisher.model import LinkCard
from tests.fakes.server import Faults
from tests.fakes.support import Sleeps, send_thread, thread_posts
from tests.fakes.x import FakeX
from tests.helpers.channels import build_channel

SECRETS = {"X_API_KEY": "x-consumer-key-1", "X_API_SECRET": "x-consumer-secret-1",
           "X_ACCESS_TOKEN": "x-access-token-1", "X_ACCESS_TOKEN_SECRET": "x-access-secret-1"}
TEXTS = ["中央アジアの記事を書きました。https://example.com/posts/1", "二つ目の投稿。",
         "三つ目の投稿。", "四つ目。"]


build = partial(build_channel, x.XChannel)  # as the registry builds it


@pytest.fixture
def fake() -> Iterator[FakeX]:
    server = FakeX()
    yield server
    server.close()


def make_channel(fake: FakeX, monkeypatch: pytest.MonkeyPatch, **settings: object
                 ) -> x.XChannel:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return build({"api_base": fake.url, "timeout": 2.0, **settings})


@pytest.fixture
def channel(fake: FakeX, monkeypatch: pytest.MonkeyPatch) -> Iterator[x.XChannel]:
    made = make_channel(fake, monkeypatch)
    made.sleep = Sleeps()
    yield made
    made.close()


def test_thread_of_four_chains_replies(channel: x.XChannel, fake: FakeX) -> None:
    receipts = send_thread(channel, thread_posts("x", TEXTS))
    assert fake.texts() == TEXTS
    assert [t["in_reply_to"] for t in fake.tweets] == [
        None, receipts[0].provider_id, receipts[1].provider_id, receipts[2].provider_id]
    assert receipts[0].url == f"https://x.com/i/web/status/{receipts[0].provider_id}"


def test_over_280_weighted_characters_is_permanent(channel: x.XChannel, fake: FakeX) -> None:
    with pytest.raises(PermanentDeliveryError, match="too long"):
        send_thread(channel, thread_posts("x", ["あ" * 141]))  # CJK weighs 2: 282
    assert fake.tweets == []


def test_reply_to_a_missing_post_is_refused(channel: x.XChannel, fake: FakeX) -> None:
    from publisher.channels import Receipt

    post = thread_posts("x", TEXTS[:2])[1]
    with pytest.raises(PermanentDeliveryError, match="does not exist"):
        channel.send_post(post, key="k", reply_to=Receipt("999"), root=Receipt("999"))


def test_duplicate_without_an_earlier_attempt_is_an_error(
    channel: x.XChannel, fake: FakeX, monkeypatch: pytest.MonkeyPatch
) -> None:
    post = thread_posts("x", ["前にも投稿した文"])[0]
    channel.send_post(post, key="old-edition", reply_to=None, root=None)
    fresh = make_channel(fake, monkeypatch)
    with pytest.raises(PermanentDeliveryError, match="duplicate of an earlier one"):
        fresh.send_post(post, key="new-edition", reply_to=None, root=None)
    assert len(fake.tweets) == 1


def test_resume_after_a_kill_treats_the_duplicate_as_sent(
    channel: x.XChannel, fake: FakeX, monkeypatch: pytest.MonkeyPatch
) -> None:
    posts = thread_posts("x", TEXTS)
    first_run = send_thread(channel, posts[:3])  # killed after post 3 reached X
    resumed = make_channel(fake, monkeypatch)
    receipts = send_thread(resumed, posts, receipts=first_run[:2], attempted={"ed1-x-3"})
    assert fake.texts() == TEXTS
    assert receipts[2].provider_id == first_run[2].provider_id
    assert fake.tweets[3]["in_reply_to"] == first_run[2].provider_id


def test_faults_still_deliver_each_post_exactly_once(
    fake: FakeX, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = make_channel(fake, monkeypatch, timeout=0.2)
    fake.set_faults(Faults(rate=0.4, seed=1, phase="after", slow_seconds=0.4, reset_seconds=1))
    receipts = send_thread(channel, thread_posts("x", TEXTS), policy=RetryPolicy(attempts=30))
    assert fake.texts() == TEXTS
    assert [t["id"] for t in fake.tweets] == [r.provider_id for r in receipts]
    assert set(fake.http.faults.injected) == {"500", "429", "slow", "drop"}


def test_card_image_goes_through_chunked_upload_with_alt_text_when_asked(
    fake: FakeX, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    channel = make_channel(fake, monkeypatch, attach_image=True)
    channel.sleep = Sleeps()
    picture = tmp_path / "card.png"
    Image.new("RGB", (800, 400), (20, 120, 200)).save(picture)
    monkeypatch.chdir(tmp_path)  # a relative image is read from the post's folder, here cwd
    card = LinkCard(uri="https://example.com/posts/1", title="t", description="d",
                    thumb="card.png", alt="青い長方形")
    send_thread(channel, thread_posts("x", TEXTS[:2], card=card))
    channel.close()
    media_id = fake.tweets[0]["media_ids"][0]
    assert fake.media[media_id]["state"] == "succeeded"
    assert fake.media[media_id]["received"] == picture.stat().st_size
    assert fake.media[media_id]["alt_text"] == "青い長方形"
    assert channel.sleep.delays == [1.0]  # one STATUS
    assert fake.tweets[1]["media_ids"] == []


def test_by_default_the_image_is_left_to_x_own_link_card(
    channel: x.XChannel, fake: FakeX, tmp_path: Path
) -> None:
    card = LinkCard(uri="https://example.com/posts/1", title="t", description="d",
                    thumb=str(tmp_path / "never-read.png"))
    channel.prepare_media(thread_posts("x", TEXTS[:1], card=card)[0], key="k")
    send_thread(channel, thread_posts("x", TEXTS[:1], card=card))
    assert fake.tweets[0]["media_ids"] == [] and fake.media == {}


def test_oauth2_user_token(fake: FakeX, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_OAUTH2_USER_TOKEN", fake.bearer)
    channel = build({"api_base": fake.url, "auth": "oauth2"})
    send_thread(channel, thread_posts("x", TEXTS[:2]))
    assert fake.texts() == TEXTS[:2]


def test_unknown_auth_mode_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="auth"):
        build({"auth": "basic"})
