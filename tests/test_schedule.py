"""Scheduling: `--at` parsing and placement (pure), and each provider's scheduled send against
its fake over real sockets (send_at / scheduled_at, their limits, cancelling)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
import requests

from publisher.channels import context_for, mastodon, resend, sendgrid
from publisher.errors import InputError, PermanentDeliveryError
from publisher.schedule import PROVIDER, QUEUED, Placement, Window, is_due, parse_at, place
from tests.fakes.mail import SITE, batch, recipients
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.resend import ResendFake
from tests.fakes.sendgrid import SendGridFake
from tests.fakes.support import thread_posts

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
MASTODON = mastodon.MastodonChannel.facts.schedule
SG_KEY = "SG.schedule-test-key-abcdefghijklmnop"
RE_KEY = "re_schedule_test_key_0123456789"
TOKEN = "mastodon-schedule-token-456"


# -- parsing and placement (pure: now is given) -----------------------------------------------


def test_an_iso_time_with_an_offset_is_read_in_its_zone() -> None:
    at = parse_at("2026-12-02T08:00+09:00", now=NOW)
    assert at == datetime(2026, 12, 1, 23, 0, tzinfo=UTC)
    assert parse_at("2026-12-01T13:00Z", now=NOW) == NOW + timedelta(hours=1)


@pytest.mark.parametrize(("text", "words"), [
    ("2026-12-02T08:00", "has no time zone"),
    ("tomorrow at nine", "is not a date and time"),
    ("2026-13-02T08:00Z", "is not a date and time"),
    ("2026-12-01T11:59+00:00", "is in the past"),
    ("2026-12-01T12:00Z", "is in the past"),
])
def test_a_time_without_zone_unreadable_or_past_is_one_input_error(text: str, words: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_at(text, now=NOW)
    line = caught.value.one_line()
    assert line.startswith("--at: ") and words in line and " — " in line
    assert caught.value.exit_code == 2


def test_placement_follows_each_providers_window() -> None:
    sg = sendgrid.SendGridChannel.facts.schedule
    assert place(sg, NOW + timedelta(hours=71), now=NOW).mode == PROVIDER
    beyond = place(sg, NOW + timedelta(hours=73), now=NOW, provider="sendgrid")
    assert beyond.mode == QUEUED and "at most 72 hours ahead" in beyond.reason
    soon = place(MASTODON, NOW + timedelta(minutes=4), now=NOW, provider="mastodon")
    assert soon.mode == QUEUED and "more than 7 minutes ahead" in soon.reason
    assert place(MASTODON, NOW + timedelta(hours=1), now=NOW).mode == PROVIDER
    thread = place(MASTODON, NOW + timedelta(hours=1), now=NOW, posts=3,
                   provider="mastodon")
    assert thread.mode == QUEUED and "thread" in thread.reason
    assert place(None, NOW + timedelta(days=9), now=NOW) == Placement(QUEUED)
    far = Window(earliest=timedelta(days=10))
    assert place(far, NOW + timedelta(days=9), now=NOW).mode == QUEUED
    assert is_due(NOW, now=NOW) and not is_due(NOW + timedelta(seconds=1), now=NOW)


# -- SendGrid ---------------------------------------------------------------------------------


@pytest.fixture
def sg_fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[SendGridFake]:
    monkeypatch.setenv("PUBLISHER_NO_KEYRING", "1")
    monkeypatch.setenv("SENDGRID_API_KEY", SG_KEY)
    with SendGridFake(SG_KEY).running() as fake:
        yield fake


def test_sendgrid_holds_a_batch_until_send_at_and_a_cancelled_batch_never_goes(
    sg_fake: SendGridFake,
) -> None:
    sg = sendgrid.SendGridChannel.from_config(
        context_for("sendgrid", {"base_url": sg_fake.url, "timeout": 2}, SITE))
    at = datetime.now(UTC) + timedelta(hours=2)
    kept, dropped = sg.open_schedule(at), sg.open_schedule(at)
    assert kept != dropped and set(sg_fake.batches) == {kept, dropped}
    sg.send_batch(replace(batch(recipients(3)), send_at=at, schedule_id=kept))
    sg.send_batch(replace(batch(recipients(2, start=10), key="b2"), send_at=at,
                          schedule_id=dropped))
    [first, second] = [m["body"] for m in sg_fake.scheduled]
    assert first["send_at"] == int(at.timestamp()) and first["batch_id"] == kept
    assert sg_fake.deliveries.emails() == []
    assert sg.cancel_schedule(dropped, ["m1", "m2"]) == 2
    assert sg.cancel_schedule(dropped, ["m1", "m2"]) == 2  # a repeated cancel is done, not an error
    assert sg_fake.release(now=at.timestamp()) == 3
    assert len(sg_fake.deliveries.emails()) == 3 and len(sg_fake.discarded) == 1
    assert second["batch_id"] == dropped


def test_sendgrid_refuses_send_at_beyond_72_hours_and_a_late_cancel(sg_fake: SendGridFake) -> None:
    sg = sendgrid.SendGridChannel.from_config(
        context_for("sendgrid", {"base_url": sg_fake.url, "timeout": 2}, SITE))
    far = datetime.now(UTC) + timedelta(hours=73)
    handle = sg.open_schedule(far)
    with pytest.raises(PermanentDeliveryError) as caught:
        sg.send_batch(replace(batch(recipients(1)), send_at=far, schedule_id=handle))
    assert "HTTP 400" in caught.value.problem and "72 hours" in caught.value.problem
    soon = datetime.now(UTC) + timedelta(minutes=8)
    sg.send_batch(replace(batch(recipients(1)), send_at=soon, schedule_id=handle))
    with pytest.raises(PermanentDeliveryError) as late:
        sg.cancel_schedule(handle, ["m"])
    assert "10 minutes" in late.value.one_line()
    body = requests.post(f"{sg_fake.url}/v3/mail/send", timeout=2,
                         headers={"Authorization": f"Bearer {SG_KEY}"},
                         json={**sg.body(batch(recipients(1))), "send_at": "tomorrow"}).json()
    assert body["errors"][0]["field"] == "send_at"


# -- Resend -----------------------------------------------------------------------------------


@pytest.fixture
def re_fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResendFake]:
    monkeypatch.setenv("PUBLISHER_NO_KEYRING", "1")
    monkeypatch.setenv("RESEND_API_KEY", RE_KEY)
    with ResendFake(RE_KEY).running() as fake:
        yield fake


def test_resend_schedules_each_email_alone_exactly_once_and_cancels_by_id(
    re_fake: ResendFake,
) -> None:
    rs = resend.ResendChannel.from_config(
        context_for("resend", {"base_url": re_fake.url, "timeout": 2}, SITE))
    at = datetime.now(UTC) + timedelta(days=2)
    scheduled = replace(batch(recipients(3)), send_at=at)
    result = rs.send_batch(scheduled)
    again = rs.send_batch(scheduled)  # a retry replays each email's key
    assert result.accepted == again.accepted and len(set(result.accepted.values())) == 3
    assert re_fake.server.count("POST", "/emails/batch") == 0
    assert len(re_fake.emails) == 3 and re_fake.deliveries.emails() == []
    ids = list(result.accepted.values())
    assert rs.cancel_schedule("", ids[:1]) == 1
    assert rs.cancel_schedule("", ids[:1]) == 1  # canceled already: done
    assert re_fake.release(now=at.timestamp()) == 2
    assert sorted(re_fake.deliveries.emails()) == sorted(list(result.accepted)[1:])
    with pytest.raises(PermanentDeliveryError) as gone:
        rs.cancel_schedule("", ids[1:2])
    assert "can no longer be canceled" in gone.value.problem


def test_resend_refuses_a_bad_scheduled_at_and_scheduling_in_a_batch(re_fake: ResendFake) -> None:
    rs = resend.ResendChannel.from_config(
        context_for("resend", {"base_url": re_fake.url, "timeout": 2}, SITE))
    with pytest.raises(PermanentDeliveryError) as far:
        rs.send_batch(replace(batch(recipients(1)), send_at=datetime.now(UTC) + timedelta(days=31)))
    assert "HTTP 422" in far.value.problem and "30 days" in far.value.problem
    auth = {"Authorization": f"Bearer {RE_KEY}"}
    email = rs.email(batch(recipients(1)), recipients(1)[0])
    bad = requests.post(f"{re_fake.url}/emails", timeout=2, headers=auth,
                        json={**email, "scheduled_at": "next full moon"})
    assert bad.status_code == 422 and bad.json()["name"] == "validation_error"
    natural = requests.post(f"{re_fake.url}/emails", timeout=2, headers=auth,
                            json={**email, "scheduled_at": "in 5 min"})
    assert natural.status_code == 200
    in_batch = requests.post(f"{re_fake.url}/emails/batch", timeout=2, headers=auth,
                             json=[{**email, "scheduled_at": "in 5 min"}])
    assert in_batch.status_code == 422 and "scheduled_at" in in_batch.json()["message"]


# -- Mastodon ---------------------------------------------------------------------------------


@pytest.fixture
def masto(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeMastodon,
                                                             mastodon.MastodonChannel]]:
    fake = FakeMastodon(token=TOKEN)
    monkeypatch.setenv("MASTODON_ACCESS_TOKEN", TOKEN)
    channel = mastodon.MastodonChannel.from_config(context_for("mastodon", {
        "instance_url": fake.url, "timeout": 2.0, "attach_image": False}))
    yield fake, channel
    channel.close()
    fake.close()


def test_mastodon_keeps_a_scheduled_status_once_and_deletes_it(
    masto: tuple[FakeMastodon, mastodon.MastodonChannel],
) -> None:
    fake, channel = masto
    [post] = thread_posts("mastodon", ["予約投稿です。"])
    at = datetime.now(timezone(timedelta(hours=9))) + timedelta(hours=1)
    receipt = channel.schedule_post(post, key="k1", at=at)
    assert channel.schedule_post(post, key="k1", at=at) == receipt  # Idempotency-Key replay
    [entity] = fake.scheduled
    assert entity["id"] == receipt.provider_id and entity["params"]["text"] == "予約投稿です。"
    assert fake.statuses == [] and receipt.extra["scheduled_at"] == entity["scheduled_at"]
    assert channel.cancel_schedule("", [receipt.provider_id]) == 1
    assert channel.cancel_schedule("", [receipt.provider_id]) == 1  # 404: gone already
    assert fake.scheduled == [] and fake.release(now=time.time() + 7200) == 0


def test_mastodon_refuses_a_time_under_five_minutes_and_posts_at_the_time(
    masto: tuple[FakeMastodon, mastodon.MastodonChannel],
) -> None:
    fake, channel = masto
    [post] = thread_posts("mastodon", ["すぐ。"])
    with pytest.raises(PermanentDeliveryError) as soon:
        channel.schedule_post(post, key="k2", at=datetime.now(UTC) + timedelta(minutes=4))
    assert "HTTP 422" in soon.value.problem and "must be in the future" in soon.value.problem
    channel.schedule_post(post, key="k3", at=datetime.now(UTC) + timedelta(minutes=6))
    assert fake.release(now=time.time() + 400) == 1
    assert fake.texts() == ["すぐ。"] and fake.scheduled == []
