"""Postmark channel against the local contract-enforcing fake, over real sockets."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import pytest

from publisher.channels import postmark
from publisher.errors import ConfigError, PermanentDeliveryError
from tests.fakes.mail import SITE, batch, recipients, send_all
from tests.fakes.postmark import PostmarkFake
from tests.helpers.channels import build_channel

TOKEN = "pm-local-test-token-0123456789abcdef"


build = partial(build_channel, postmark.PostmarkChannel, site=SITE)  # as the registry builds it


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBLISHER_NO_KEYRING", "1")
    monkeypatch.setenv("POSTMARK_SERVER_TOKEN", TOKEN)


@pytest.fixture
def fake() -> Iterator[PostmarkFake]:
    with PostmarkFake(TOKEN, inactive=["user3@example.com"]).running() as fake:
        yield fake


def channel(fake: PostmarkFake, **settings: object) -> postmark.PostmarkChannel:
    return build({"base_url": fake.url, "timeout": 2, **settings})


def test_each_message_is_personalised_on_the_broadcast_stream(fake: PostmarkFake) -> None:
    people = recipients(3)
    pm = channel(fake)
    pm.preflight()
    result = pm.send_batch(batch(people))
    assert fake.server.count("POST", "/email/batch") == 1
    assert sorted(result.accepted) == sorted(p.email for p in people)
    for person in people:
        [message] = fake.deliveries.for_email(person.email)
        assert result.accepted[person.email] == message["id"]
        assert message["stream"] == "broadcast"
        assert person.unsubscribe_url.replace("&", "&amp;") in message["html"]
        assert f"配信停止: {person.unsubscribe_url}" in message["text"]
        assert message["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_partial_failure_rejects_only_the_failed_entries(fake: PostmarkFake) -> None:
    people = recipients(5)
    result = channel(fake).send_batch(batch(people))
    assert set(result.rejected) == {"user3@example.com"}
    assert "ErrorCode 406" in result.rejected["user3@example.com"]
    assert len(result.accepted) == 4 and "user3@example.com" not in result.accepted
    assert fake.deliveries.for_email("user3@example.com") == []


def test_unknown_stream_is_rejected_per_entry(fake: PostmarkFake) -> None:
    result = channel(fake, message_stream="newsletters").send_batch(batch(recipients(2)))
    assert not result.accepted
    assert all("1235" in why for why in result.rejected.values())


def test_500_per_call_is_enforced_and_respected(fake: PostmarkFake) -> None:
    pm = channel(fake)
    assert pm.batch_size == 500
    with pytest.raises(PermanentDeliveryError, match="Too many batch messages"):
        pm.send_batch(batch(recipients(501, start=10)))
    accepted = send_all(pm.send_batch, recipients(1200, start=10), pm.batch_size)
    assert len(accepted) == 1200 and fake.server.count("POST", "/email/batch") == 1 + 3
    with pytest.raises(ConfigError):
        channel(fake, batch_size=501)
