"""Resend channel against the local contract-enforcing fake: batches, errors, idempotency replay."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from functools import partial

import pytest

from publisher.channels import resend
from publisher.errors import PermanentDeliveryError
from tests.fakes.mail import SITE, Sleeps, batch, newsletter, recipients, send_all
from tests.fakes.resend import ResendFake
from tests.fakes.server import Faults
from tests.helpers.channels import build_channel

KEY = "re_local_test_key_0123456789abcdef"


build = partial(build_channel, resend.ResendChannel, site=SITE)  # as the registry builds it


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBLISHER_NO_KEYRING", "1")
    monkeypatch.setenv("RESEND_API_KEY", KEY)


@pytest.fixture
def fake() -> Iterator[ResendFake]:
    with ResendFake(KEY).running() as fake:
        yield fake


def channel(fake: ResendFake, **settings: object) -> resend.ResendChannel:
    return build({"base_url": fake.url, "timeout": 2, **settings})


def test_batch_is_personalised_and_ids_map_back_in_order(fake: ResendFake) -> None:
    people = recipients(3)
    rs = channel(fake)
    assert rs.facts.idempotent and rs.batch_size == 100
    rs.preflight()
    result = rs.send_batch(batch(people))
    for person in people:
        [message] = fake.deliveries.for_email(person.email)
        assert result.accepted[person.email] == message["id"]
        assert person.unsubscribe_url.replace("&", "&amp;") in message["html"]
        assert message["headers"]["List-Unsubscribe"].startswith(f"<{person.unsubscribe_url}>")


def test_replaying_the_same_key_does_not_duplicate(fake: ResendFake) -> None:
    rs = channel(fake)
    first = rs.send_batch(batch(recipients(5), key="ed1-b7"))
    again = rs.send_batch(batch(recipients(5), key="ed1-b7"))  # a resumed run, same batch
    assert again == first
    assert fake.replays == 1 and len(fake.deliveries.messages) == 5
    assert not fake.deliveries.duplicates()


def test_lost_answers_are_retried_under_the_key_and_land_exactly_once() -> None:
    faults = Faults(rate=0.5, kinds=("drop", "slow", "500"), seed=2, phase="after",
                    slow_seconds=0.6)
    with ResendFake(KEY, faults=faults).running() as fake:
        rs = channel(fake, timeout=0.3)
        accepted = send_all(rs.send_batch, recipients(60), 10, sleeps=Sleeps())
        assert len(accepted) == 60
        assert fake.replays >= 1  # some answers were lost after delivery, then replayed
        assert not fake.deliveries.duplicates() and len(fake.deliveries.messages) == 60


def test_same_key_with_another_body_is_a_permanent_conflict(fake: ResendFake) -> None:
    rs = channel(fake)
    rs.send_batch(batch(recipients(2), key="ed1-b1"))
    changed = batch(recipients(2), key="ed1-b1", news=replace(newsletter(), subject="変更"))
    with pytest.raises(PermanentDeliveryError, match=r"409.*different request payload"):
        rs.send_batch(changed)
    assert len(fake.deliveries.messages) == 2


def test_more_than_100_is_refused_by_the_fake(fake: ResendFake) -> None:
    with pytest.raises(PermanentDeliveryError, match=r"HTTP 422.*maximum is 100"):
        channel(fake).send_batch(batch(recipients(101)))
    assert fake.deliveries.messages == []


def test_a_sending_only_key_passes_preflight() -> None:
    with ResendFake(KEY, sending_only=True).running() as fake:
        channel(fake).preflight()
