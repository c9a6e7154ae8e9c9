"""`publish` through each newsletter platform as a user runs it, and SIGKILLed mid-send.

The platform owns the list, so publisher's own subscriber list and unsubscribe secret play no
part. One run hands over one campaign and every reader gets one copy; a second run sends nothing.
A kill between "create" and "send" (the start request held, processed or not) and a rerun leave
one campaign, sent once.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.buttondown import ButtondownFake
from tests.fakes.ghost import GhostFake
from tests.fakes.listmonk import ListmonkFake
from tests.fakes.mailchimp import MailchimpFake
from tests.fakes.server import Reply, Request
from tests.helpers import run_publish
from tests.helpers.e2e import (
    EN_POST,
    sigkill,
    spawn_publish,
    status,
    tallies,
    wait_for,
    write_config,
)

READERS = [f"reader{i}@platform.example" for i in range(4)]
GHOST_KEY = "6489b2a1c0ffee0001a2b3c4:" + "3c" * 32
MAILCHIMP_KEY = "fedcba9876543210fedcba9876543210-us19"


@dataclass(frozen=True)
class Platform:
    """One platform as a user configures it, and its "send" request (the second step)."""

    env: dict[str, str]
    fake: Callable[[], Any]
    settings: Callable[[Any], dict[str, Any]]
    start: re.Pattern[str]  # method and path of the request that makes the campaign go out
    create: re.Pattern[str]  # … and of the one that creates it
    made: Callable[[Any], int]  # how many campaigns the fake holds


PLATFORMS = {
    "buttondown": Platform(
        {"BUTTONDOWN_API_KEY": "bd-e2e-key-1f2e3d"},
        lambda: ButtondownFake("bd-e2e-key-1f2e3d", subscribers=READERS),
        lambda fake: {"base_url": fake.url}, re.compile(r"PATCH /v1/emails/[^/]+$"),
        re.compile(r"POST /v1/emails$"), lambda fake: len(fake.emails)),
    "listmonk": Platform(
        {"LISTMONK_API_TOKEN": "lm-e2e-token-4c5b6a"},
        lambda: ListmonkFake("publisher", "lm-e2e-token-4c5b6a", subscribers=READERS),
        lambda fake: {"base_url": fake.url, "api_user": "publisher", "lists": ["Newsletter"]},
        re.compile(r"PUT /api/campaigns/\d+/status$"), re.compile(r"POST /api/campaigns$"),
        lambda fake: len(fake.campaigns)),
    "ghost": Platform(
        {"GHOST_ADMIN_API_KEY": GHOST_KEY},
        lambda: GhostFake(GHOST_KEY, newsletters=["weekly"], subscribers=READERS),
        lambda fake: {"base_url": fake.url, "newsletter": "weekly"},
        re.compile(r"PUT /ghost/api/admin/posts/[^/]+/$"),
        re.compile(r"POST /ghost/api/admin/posts/$"), lambda fake: len(fake.posts)),
    "mailchimp": Platform(
        {"MAILCHIMP_API_KEY": MAILCHIMP_KEY},
        lambda: MailchimpFake(MAILCHIMP_KEY, lists=["a1b2c3d4e5"], subscribers=READERS),
        lambda fake: {"base_url": fake.url, "list_id": "a1b2c3d4e5"},
        re.compile(r"POST /us19/3\.0/campaigns/[^/]+/actions/send$"),
        re.compile(r"POST /us19/3\.0/campaigns$"), lambda fake: len(fake.campaigns)),
}


@dataclass
class StartGate:
    """Holds the first "send" request until released: processed first, or lost unprocessed."""

    inner: Callable[[Request], Reply]
    start: re.Pattern[str]
    lose: bool
    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def __call__(self, request: Request) -> Reply:
        """Handle the request; hold the first start request."""
        first = self.start.fullmatch(f"{request.method} {request.path}") is not None and (
            not self.reached.is_set())
        if first and self.lose:
            self._hold()
            return Reply(503, {"message": "lost in transit (test gate)"})
        reply = self.inner(request)
        if first:
            self._hold()
        return reply

    def _hold(self) -> None:
        """Tell the test, wait for it."""
        self.reached.set()
        self.released.wait(30)


@pytest.fixture(params=sorted(PLATFORMS))
def platform(request: pytest.FixtureRequest) -> tuple[str, Platform]:
    return request.param, PLATFORMS[request.param]


@pytest.fixture
def fake(platform: tuple[str, Platform]) -> Iterator[Any]:
    with platform[1].fake().running() as running:
        yield running


def configure(workdir: Path, name: str, spec: Platform, fake: Any) -> None:
    write_config(workdir, transport=name, channels={name: spec.settings(fake)})


def test_one_run_sends_the_newsletter_and_a_second_run_sends_nothing(
    workdir: Path, platform: tuple[str, Platform], fake: Any
) -> None:
    name, spec = platform
    configure(workdir, name, spec, fake)
    checked = run_publish("check", cwd=workdir, env=spec.env)
    assert checked.returncode == 0, checked.stderr
    first = run_publish(EN_POST, cwd=workdir, env=spec.env)
    assert first.returncode == 0, first.stderr
    assert fake.audience.copies() == {reader: 1 for reader in READERS}
    [campaign] = fake.audience.sends
    second = run_publish(EN_POST, cwd=workdir, env=spec.env)
    assert second.returncode == 0 and "Nothing new to send" in second.stdout, second.stderr
    assert fake.audience.copies() == {reader: 1 for reader in READERS}
    report = status(EN_POST, workdir, spec.env)
    [row] = [r for r in report["sent"] if r["channel"] == name]
    assert row["provider_id"] == campaign and row["state"]
    shown = run_publish("status", EN_POST, cwd=workdir, env=spec.env)
    assert campaign in shown.stdout and row["state"] in shown.stdout


@pytest.mark.parametrize(("step", "landed"), [
    ("start", True), ("start", False), ("create", True)],
    ids=["send-landed", "send-lost", "create-landed"])
def test_a_kill_between_create_and_send_leaves_one_campaign_sent_once(
    workdir: Path, platform: tuple[str, Platform], fake: Any, step: str, landed: bool
) -> None:
    name, spec = platform
    configure(workdir, name, spec, fake)
    gate = StartGate(fake.server.handle, getattr(spec, step), lose=not landed)
    fake.server.handle = gate
    process = spawn_publish(EN_POST, cwd=workdir, env=spec.env)
    try:
        wait_for(lambda: gate.reached.is_set() or process.poll() is not None,
                 "the send request", timeout=60)
        assert gate.reached.is_set(), process.communicate()
        sigkill(process)
    finally:
        gate.released.set()
        if process.poll() is None:
            sigkill(process)
    assert sum(fake.audience.sends.values()) == (1 if landed and step == "start" else 0)
    rerun = run_publish(EN_POST, cwd=workdir, env=spec.env)
    assert rerun.returncode == 0, rerun.stderr
    assert len(fake.audience.sends) == 1 and set(fake.audience.sends.values()) == {1}
    assert spec.made(fake) == 1  # the rerun found the campaign instead of making another
    assert fake.audience.copies() == {reader: 1 for reader in READERS}
    assert tallies(status(EN_POST, workdir, spec.env))[name] == {"sent": 1, "pending": 0,
                                                                "failed": 0}


def test_proof_goes_through_the_platforms_test_send(
    workdir: Path, platform: tuple[str, Platform], fake: Any
) -> None:
    name, spec = platform
    configure(workdir, name, spec, fake)
    proofed = run_publish(EN_POST, "--proof", "editor@platform.example", cwd=workdir,
                          env=spec.env)
    assert proofed.returncode == 0, proofed.stderr
    assert [p["email"] for p in fake.audience.proofs] == ["editor@platform.example"]
    assert fake.audience.copies() == {}
    sent = run_publish(EN_POST, cwd=workdir, env=spec.env)
    assert sent.returncode == 0, sent.stderr
    assert len(fake.audience.sends) == 1  # the proofed draft is the campaign that went out
    late = run_publish(EN_POST, "--proof", "editor@platform.example", cwd=workdir, env=spec.env)
    assert late.returncode == 4 and "already went to the list" in late.stdout + late.stderr
    assert len(fake.audience.proofs) == 1


def test_buttondown_holds_an_at_send_and_unschedule_sets_it_back_to_a_draft(
    workdir: Path
) -> None:
    spec = PLATFORMS["buttondown"]
    at = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    with spec.fake().running() as fake:
        configure(workdir, "buttondown", spec, fake)
        held = run_publish(EN_POST, "--at", at.isoformat(), cwd=workdir, env=spec.env)
        assert held.returncode == 0, held.stderr
        [email] = fake.emails.values()
        assert email["status"] == "scheduled" and fake.audience.sends == {}
        assert datetime.fromisoformat(email["publish_date"].replace("Z", "+00:00")) == at
        again = run_publish(EN_POST, "--at", at.isoformat(), cwd=workdir, env=spec.env)
        assert again.returncode == 0 and len(fake.emails) == 1, again.stderr
        cancelled = run_publish("unschedule", EN_POST, cwd=workdir, env=spec.env)
        assert cancelled.returncode == 0, cancelled.stderr
        assert email["status"] == "draft" and fake.audience.sends == {}
        now = run_publish(EN_POST, cwd=workdir, env=spec.env)
        assert now.returncode == 0, now.stderr
    assert fake.audience.sends == {email["id"]: 1}  # the same email, sent once
