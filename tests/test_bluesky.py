"""Bluesky channel against a local fake PDS over real sockets."""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
import requests
from PIL import Image

from publisher.channels import bluesky
from publisher.channels.http import RetryPolicy, with_retries
from publisher.errors import ConfigError, PermanentDeliveryError
from publisher.model import Facet, LinkCard, SocialPost
from publisher.networks.facets import detect_facets
from tests.fakes.bluesky import TID_RE, FakeBluesky
from tests.fakes.server import Faults
from tests.fakes.support import Sleeps, send_thread, thread_posts
from tests.helpers.channels import build_channel

HANDLE = "editor.example.com"
PASSWORD = "app-pass-word-1234"
LINK = "https://example.com/posts/central-asia"
TEXTS = [f"中央アジアの記事です。\n{LINK} #外交", "二つ目の投稿。", "三つ目の投稿。", "四つ目。"]


build = partial(build_channel, bluesky.BlueskyChannel)  # as the registry builds it


def facets_for(text: str) -> tuple[Facet, ...]:
    """Link, tag and cashtag facets over UTF-8 byte offsets, as the composer makes them."""
    return detect_facets(text)


@pytest.fixture
def fake() -> Iterator[FakeBluesky]:
    server = FakeBluesky(handle=HANDLE, password=PASSWORD)
    yield server
    server.close()


@pytest.fixture
def channel(fake: FakeBluesky, monkeypatch: pytest.MonkeyPatch) -> Iterator[
        bluesky.BlueskyChannel]:
    monkeypatch.setenv("BLUESKY_APP_PASSWORD", PASSWORD)
    made = build({"handle": HANDLE, "pds_url": fake.url, "timeout": 2.0})
    yield made
    made.close()


def posts(texts: list[str] = TEXTS, card: LinkCard | None = None) -> list[SocialPost]:
    return thread_posts("bluesky", texts, card=card, facets=[facets_for(t) for t in texts])


def test_thread_of_four_with_facets_and_reply_refs(
    channel: bluesky.BlueskyChannel, fake: FakeBluesky
) -> None:
    receipts = send_thread(channel, posts())
    assert fake.texts() == TEXTS
    root = {"uri": receipts[0].extra["uri"], "cid": receipts[0].extra["cid"]}
    for number, stored in enumerate(fake.posts[1:], start=1):
        parent = receipts[number - 1]
        assert stored["record"]["reply"] == {
            "root": root, "parent": {"uri": parent.extra["uri"], "cid": parent.extra["cid"]}}
    assert fake.posts[0]["record"]["langs"] == ["ja"]
    assert [f["features"][0]["$type"] for f in fake.posts[0]["record"]["facets"]] == [
        "app.bsky.richtext.facet#link", "app.bsky.richtext.facet#tag"]
    rkey = receipts[0].extra["rkey"]
    assert receipts[0].url == f"https://bsky.app/profile/{HANDLE}/post/{rkey}"


def test_new_facets_reach_the_server_as_the_app_would_make_them(
    channel: bluesky.BlueskyChannel, fake: FakeBluesky
) -> None:
    text = "詳細 https://uzbgateway.example/a と example.com/b ＃外交 $aapl"
    send_thread(channel, posts([text]))
    features = [f["features"][0] for f in fake.posts[0]["record"]["facets"]]
    assert [f.get("uri") or f.get("tag") for f in features] == [
        "https://uzbgateway.example/a", "https://example.com/b", "外交", "$AAPL"]


def test_facets_on_character_offsets_are_rejected(channel: bluesky.BlueskyChannel) -> None:
    text = TEXTS[0]
    start = text.index("https")  # code points, not bytes: the classic CJK mistake
    wrong = (Facet(start, start + len(LINK), "link", LINK),)
    with pytest.raises(PermanentDeliveryError, match="Record/facets/0"):
        send_thread(channel, thread_posts("bluesky", [text], facets=[wrong]))


def test_over_300_graphemes_is_permanent(channel: bluesky.BlueskyChannel,
                                         fake: FakeBluesky) -> None:
    with pytest.raises(PermanentDeliveryError, match="300 graphemes"):
        send_thread(channel, thread_posts("bluesky", ["字" * 301]))
    assert fake.posts == []


def test_expired_access_token_is_refreshed(channel: bluesky.BlueskyChannel,
                                           fake: FakeBluesky) -> None:
    send_thread(channel, posts()[:1])
    fake.skew = 3 * 3600.0  # the PDS's clock says the access JWT has expired
    send_thread(channel, posts(["期限切れの後"]), key_prefix="ed2")
    assert fake.refreshes == 1
    assert fake.texts() == [TEXTS[0], "期限切れの後"]


def test_token_near_expiry_is_refreshed_before_the_call(
    fake: FakeBluesky, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.access_ttl = 30  # under the channel's one-minute margin
    monkeypatch.setenv("BLUESKY_APP_PASSWORD", PASSWORD)
    channel = build({"handle": HANDLE, "pds_url": fake.url})
    send_thread(channel, posts()[:2])
    assert fake.refreshes >= 1 and len(fake.posts) == 2


def test_large_thumbnail_is_shrunk_under_one_megabyte(
    channel: bluesky.BlueskyChannel, fake: FakeBluesky, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    picture = tmp_path / "huge.png"
    Image.frombytes("RGB", (1000, 1000), os.urandom(3_000_000)).save(picture)
    assert picture.stat().st_size > 1_000_000
    monkeypatch.chdir(tmp_path)  # a relative image is read from the post's folder, here cwd
    card = LinkCard(uri=LINK, title="中央アジア", description="記事の説明", thumb="huge.png")
    send_thread(channel, posts(TEXTS[:2], card=card))
    external = fake.posts[0]["record"]["embed"]["external"]
    assert external["uri"] == LINK and external["title"] == "中央アジア"
    assert 0 < external["thumb"]["size"] <= 1_000_000
    assert external["thumb"]["mimeType"] == "image/jpeg"
    assert "embed" not in fake.posts[1]["record"]


def test_fake_refuses_a_thumb_over_one_megabyte(fake: FakeBluesky) -> None:
    session = requests.post(f"{fake.url}/xrpc/com.atproto.server.createSession",
                            json={"identifier": HANDLE, "password": PASSWORD}, timeout=5).json()
    auth = {"Authorization": f"Bearer {session['accessJwt']}"}
    blob = requests.post(f"{fake.url}/xrpc/com.atproto.repo.uploadBlob", data=b"x" * 1_000_001,
                         headers={**auth, "Content-Type": "image/png"}, timeout=5).json()["blob"]
    record = {"$type": "app.bsky.feed.post", "text": "t", "createdAt": "2024-01-01T00:00:00Z",
              "embed": {"$type": "app.bsky.embed.external", "external": {
                  "uri": LINK, "title": "t", "description": "d", "thumb": blob}}}
    answer = requests.post(f"{fake.url}/xrpc/com.atproto.repo.createRecord", headers=auth,
                           json={"repo": session["did"], "collection": "app.bsky.feed.post",
                                 "record": record}, timeout=5)
    assert answer.status_code == 400 and "too big" in answer.json()["message"]


def test_resume_after_a_kill_finds_the_post_already_made(
    channel: bluesky.BlueskyChannel, fake: FakeBluesky, monkeypatch: pytest.MonkeyPatch
) -> None:
    thread = posts()
    first_run = send_thread(channel, thread[:3])  # killed after post 3 reached the PDS
    monkeypatch.setenv("BLUESKY_APP_PASSWORD", PASSWORD)
    resumed = build({"handle": HANDLE, "pds_url": fake.url})
    receipts = send_thread(resumed, thread, receipts=first_run[:2],
                           attempted={"ed1-bluesky-3"})
    assert fake.texts() == TEXTS
    assert receipts[2] == first_run[2]
    assert fake.posts[3]["record"]["reply"]["parent"]["uri"] == first_run[2].extra["uri"]


def test_same_key_can_never_make_two_posts(
    channel: bluesky.BlueskyChannel, fake: FakeBluesky, monkeypatch: pytest.MonkeyPatch
) -> None:
    post = posts()[0]
    first = channel.send_post(post, key="k1", reply_to=None, root=None)
    monkeypatch.setenv("BLUESKY_APP_PASSWORD", PASSWORD)
    unaware = build({"handle": HANDLE, "pds_url": fake.url})
    # without the ledger's hint the PDS refuses the existing rkey (500); the retry finds the post
    retried = with_retries(lambda: unaware.send_post(post, key="k1", reply_to=None, root=None),
                           sleep=Sleeps())
    assert retried == first
    assert len(fake.posts) == 1


def test_rate_limit_storm_honours_ratelimit_reset(
    channel: bluesky.BlueskyChannel, fake: FakeBluesky
) -> None:
    fake.set_faults(Faults(rate=1.0, kinds=("429",), only_first=3, reset_seconds=20))
    sleeps = Sleeps()
    send_thread(channel, posts()[:1], sleep=sleeps)
    assert len(sleeps.delays) == 3 and all(19.0 < d < 22.0 for d in sleeps.delays)
    assert len(fake.posts) == 1


def test_faults_still_deliver_each_post_exactly_once(
    fake: FakeBluesky, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BLUESKY_APP_PASSWORD", PASSWORD)
    channel = build({"handle": HANDLE, "pds_url": fake.url, "timeout": 0.2})
    fake.set_faults(Faults(rate=0.4, seed=1, phase="after", slow_seconds=0.4, reset_seconds=1))
    send_thread(channel, posts(), policy=RetryPolicy(attempts=30))
    assert fake.texts() == TEXTS
    assert set(fake.http.faults.injected) == {"500", "429", "slow", "drop"}


def test_rkey_is_a_stable_tid_in_the_past() -> None:
    keys = [bluesky.rkey_for(f"edition-{n}") for n in range(200)]
    assert all(TID_RE.match(k) for k in keys)
    assert len(set(keys)) == 200
    assert bluesky.rkey_for("edition-1") == keys[1]
    for key in keys:
        value = 0
        for char in key:
            value = value * 32 + "234567abcdefghijklmnopqrstuvwxyz".index(char)
        seconds = (value >> 10) / 1_000_000
        assert 1_672_531_200 <= seconds < 1_704_067_200  # within 2023, never in the future


def test_missing_handle_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="handle"):
        build({})
