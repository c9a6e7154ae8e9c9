"""Threads channel against a local Threads API fake over real sockets."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from publisher.channels import threads
from publisher.channels.http import HttpClient, RetryPolicy
from publisher.errors import ConfigError, PermanentDeliveryError, TransientDeliveryError
from publisher.model import LinkCard
from tests.fakes.server import Faults
from tests.fakes.support import Sleeps, send_thread, thread_posts
from tests.fakes.threads import FakeThreads
from tests.helpers import run_publish
from tests.helpers.channels import build_channel

TOKEN = "threads-test-token-123"
TEXTS = ["一つ目の投稿です。https://example.com/a", "二つ目です。", "三つ目です。"]
CARD = LinkCard(uri="https://example.com/a", title="A", description="About A",
                thumb="https://img.example.com/a.png", alt="A picture")


build = partial(build_channel, threads.ThreadsChannel)  # as the registry builds it


@pytest.fixture
def fake() -> Iterator[FakeThreads]:
    server = FakeThreads(token=TOKEN)
    yield server
    server.close()


def make(fake: FakeThreads, monkeypatch: pytest.MonkeyPatch, **settings: object
         ) -> threads.ThreadsChannel:
    """A channel on the fake with a recording sleep."""
    monkeypatch.setenv("THREADS_ACCESS_TOKEN", TOKEN)
    made = build({"api_base": fake.url, "timeout": 2.0, **settings})
    made.sleep = Sleeps()
    return made


@pytest.fixture
def channel(fake: FakeThreads, monkeypatch: pytest.MonkeyPatch
            ) -> Iterator[threads.ThreadsChannel]:
    made = make(fake, monkeypatch)
    yield made
    made.close()


def test_preflight_checks_the_token_and_the_configured_profile(
    fake: FakeThreads, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert make(fake, monkeypatch, user_id=fake.user_id).preflight() == {"limit": 500}
    with pytest.raises(PermanentDeliveryError, match="belongs to @editor"):
        make(fake, monkeypatch, user_id="999").preflight()
    monkeypatch.setenv("THREADS_ACCESS_TOKEN", "revoked-token")
    wrong = build({"api_base": fake.url})
    with pytest.raises(PermanentDeliveryError, match="code 190") as caught:
        wrong.preflight()
    assert "THREADS_ACCESS_TOKEN" in caught.value.fix and "revoked-token" not in str(caught.value)


def test_a_thread_replies_in_order_with_the_link_card_on_the_first_post(
    channel: threads.ThreadsChannel, fake: FakeThreads
) -> None:
    posts = thread_posts("threads", TEXTS, card=CARD)
    receipts = send_thread(channel, posts)
    assert fake.texts() == TEXTS
    assert [p["reply_to_id"] for p in fake.posts] == ["", receipts[0].provider_id,
                                                       receipts[1].provider_id]
    assert fake.posts[0]["media_type"] == "TEXT"
    assert fake.posts[0]["link_attachment"] == CARD.uri
    assert receipts[0].url == f"https://www.threads.net/@editor/post/{receipts[0].provider_id}"
    assert all(r.extra["container"] in fake.containers for r in receipts)


def test_an_image_container_is_published_only_once_finished(
    fake: FakeThreads, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.image_polls = 3
    channel = make(fake, monkeypatch, attach_image=True, poll_interval=30)
    send_thread(channel, thread_posts("threads", TEXTS[:1], card=CARD))
    assert fake.posts[0]["media_type"] == "IMAGE"
    assert fake.posts[0]["image_url"] == CARD.thumb
    assert channel.sleep.delays == [30.0, 30.0, 30.0]  # type: ignore[attr-defined]
    assert fake.publish_calls == 1  # never published while IN_PROGRESS


def test_a_container_still_processing_after_max_polls_is_transient(
    fake: FakeThreads, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.image_polls = 50
    channel = make(fake, monkeypatch, attach_image=True, max_polls=3)
    with pytest.raises(TransientDeliveryError, match="still being processed"):
        channel.send_post(thread_posts("threads", ["x"], card=CARD)[0], key="k",
                          reply_to=None, root=None)
    assert fake.posts == [] and fake.publish_calls == 0


def test_the_container_is_checkpointed_before_publishing_and_reused_on_resume(
    fake: FakeThreads, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run killed after recording the container: the resumed run publishes that one."""
    first = make(fake, monkeypatch)
    recorded: list[dict[str, str]] = []
    post = thread_posts("threads", TEXTS[:1])[0]
    container = first._create(post, None)  # what the killed run got from step 1
    recorded.append({"container": container})
    resumed = make(fake, monkeypatch)
    receipt = resumed.send_staged(post, key="k", reply_to=None, root=None,
                                  attempted_before=True, staged=recorded[-1],
                                  checkpoint=recorded.append)
    assert len(recorded) == 1  # no second container was made
    assert len(fake.containers) == 1 and fake.texts() == TEXTS[:1]
    assert receipt.extra["container"] == container


def test_a_publish_that_landed_before_the_crash_is_found_not_repeated(
    fake: FakeThreads, monkeypatch: pytest.MonkeyPatch
) -> None:
    posts = thread_posts("threads", TEXTS[:2])
    first = send_thread(make(fake, monkeypatch), posts[:1])
    staged: list[dict[str, str]] = []
    killed = make(fake, monkeypatch)
    container = killed._create(posts[1], first[0])
    staged.append({"container": container})
    fake.publish(container)  # step 2 landed; its answer never reached the killed run
    resumed = make(fake, monkeypatch)
    receipt = resumed.send_staged(posts[1], key="k2", reply_to=first[0], root=first[0],
                                  attempted_before=True, staged=staged[-1],
                                  checkpoint=staged.append)
    assert fake.texts() == TEXTS[:2] and fake.publish_calls == 2
    assert receipt.provider_id == fake.posts[1]["id"]


def test_a_lost_publish_answer_is_retried_without_a_second_post(
    channel: threads.ThreadsChannel, fake: FakeThreads
) -> None:
    fake.set_faults(Faults(rate=1.0, kinds=("drop",), phase="after",
                           paths=(f"/v1.0/{fake.user_id}/threads_publish",), only_first=1))
    receipts = send_thread(channel, thread_posts("threads", TEXTS))
    assert fake.texts() == TEXTS
    assert receipts[0].provider_id == fake.posts[0]["id"]


def test_an_expired_recorded_container_is_replaced(
    fake: FakeThreads, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = make(fake, monkeypatch)
    post = thread_posts("threads", TEXTS[:1])[0]
    old = channel._create(post, None)
    fake.containers[old]["status"] = "EXPIRED"
    made: list[dict[str, str]] = []
    resumed = make(fake, monkeypatch)
    resumed.send_staged(post, key="k", reply_to=None, root=None, attempted_before=True,
                        staged={"container": old}, checkpoint=made.append)
    assert made and made[0]["container"] != old and fake.texts() == TEXTS[:1]


def test_more_than_five_links_is_refused_before_any_container(
    channel: threads.ThreadsChannel, fake: FakeThreads
) -> None:
    text = " ".join(f"https://example.com/{i}" for i in range(6))
    with pytest.raises(PermanentDeliveryError, match="6 links"):
        channel.send_post(thread_posts("threads", [text])[0], key="k", reply_to=None,
                          root=None)
    assert fake.containers == {}


def test_the_fake_enforces_the_link_and_length_limits_itself(
    fake: FakeThreads, channel: threads.ThreadsChannel
) -> None:
    six = " ".join(f"https://example.com/{i}" for i in range(6))
    refused = channel.http.request("POST", f"/v1.0/{fake.user_id}/threads", ok=(400,),
                                   data={"media_type": "TEXT", "text": six})
    assert "THREADS_API__LINK_LIMIT_EXCEEDED" in refused.json()["error"]["message"]
    long = channel.http.request("POST", f"/v1.0/{fake.user_id}/threads", ok=(400,),
                                data={"media_type": "TEXT", "text": "😀" * 126})  # 504 bytes
    assert set(long.json()["error"]) >= {"message", "type", "code", "fbtrace_id"}
    unknown = channel.http.request("POST", f"/v1.0/{fake.user_id}/threads_publish", ok=(400,),
                                   data={"creation_id": "nope"})
    assert unknown.json()["error"]["code"] == 100


def test_over_long_text_is_permanent_with_metas_message(
    channel: threads.ThreadsChannel, fake: FakeThreads
) -> None:
    with pytest.raises(PermanentDeliveryError, match="at most 500 characters"):
        send_thread(channel, thread_posts("threads", ["あ" * 501]))
    assert fake.posts == []


def test_rate_limits_are_retried_then_posted_once(
    channel: threads.ThreadsChannel, fake: FakeThreads
) -> None:
    fake.set_faults(Faults(rate=1.0, kinds=("429",), only_first=2))
    sleeps = Sleeps()
    send_thread(channel, thread_posts("threads", TEXTS[:1]), sleep=sleeps,
                policy=RetryPolicy(attempts=5))
    assert fake.texts() == TEXTS[:1] and len(sleeps.delays) == 2


def test_delete_removes_the_post_and_a_second_delete_says_gone(
    channel: threads.ThreadsChannel, fake: FakeThreads
) -> None:
    (receipt,) = send_thread(channel, thread_posts("threads", TEXTS[:1]))
    assert channel.delete_post(receipt, attempted_before=False) is True
    assert fake.posts == [] and fake.deleted[0]["id"] == receipt.provider_id
    assert channel.delete_post(receipt, attempted_before=True) is False


def test_refresh_token_returns_a_new_long_lived_token(fake: FakeThreads) -> None:
    http = HttpClient("threads", fake.url)
    token, lifetime = threads.refresh_token(http, TOKEN)
    assert token != TOKEN and lifetime == 60 * 86_400
    assert token in fake.tokens
    with pytest.raises(PermanentDeliveryError, match="24 hours"):  # issued just now
        threads.refresh_token(http, token)


def test_missing_token_and_bad_base_are_config_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("THREADS_ACCESS_TOKEN", raising=False)
    monkeypatch.setenv("PUBLISHER_NO_KEYRING", "1")
    with pytest.raises(ConfigError, match="THREADS_ACCESS_TOKEN"):
        build({})
    with pytest.raises(ConfigError, match="api_base"):
        build({"api_base": "graph.threads.net"})


def test_keys_refresh_replaces_the_token_in_dot_env(fake: FakeThreads, tmp_path: Path) -> None:
    (tmp_path / "publisher.toml").write_text(
        f'[channels.threads]\napi_base = "{fake.url}"\n', encoding="utf-8")
    (tmp_path / ".env").write_text(f"OTHER=1\nTHREADS_ACCESS_TOKEN={TOKEN}\n", encoding="utf-8")
    result = run_publish("keys", "refresh", "threads", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "valid for 60 more days, stored in .env" in result.stdout
    stored = dict(line.split("=", 1) for line in
                  (tmp_path / ".env").read_text(encoding="utf-8").splitlines())
    assert stored["OTHER"] == "1" and stored["THREADS_ACCESS_TOKEN"] in fake.tokens
    assert stored["THREADS_ACCESS_TOKEN"] != TOKEN
    assert stored["THREADS_ACCESS_TOKEN"] not in result.stdout + result.stderr

    again = run_publish("keys", "refresh", "threads", cwd=tmp_path)  # issued a moment ago
    assert again.returncode == 3 and "24 hours" in again.stderr
    from_env = run_publish("keys", "refresh", "threads", cwd=tmp_path,
                           env={"THREADS_ACCESS_TOKEN": TOKEN})
    assert from_env.returncode == 3 and "cannot rewrite" in from_env.stderr
