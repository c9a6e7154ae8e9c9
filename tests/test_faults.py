"""Fault injection: whole sends through the CLI while the fakes misbehave on a seeded share.

A third of the requests to every route (preflight included) fail: 500 and 429 (with the
provider's own reset headers, ~1 s) before the fake does anything; a slow answer past the
channel's `timeout` and a dropped connection after the fake did the work, the case a client
cannot tell from a lost request. Each send is rerun until the ledger says done (with
`--retry-pending` when it lists uncertain batches), then:

- every recipient and every post arrived, exactly once on Resend, Mastodon and Bluesky (their
  idempotency keys absorb the retries), and on SendGrid copies only ever went to recipients of
  batches `publish status --json` had reported as uncertain;
- after each 429 the client waited at least as long as the reset header asked, and not much
  longer: the gaps are measured at the fake, request arrival to request arrival (a 429 on a
  call's last attempt ends that run with exit 4; the rerun picks up, and that gap is skipped).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.bluesky import FakeBluesky
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.resend import ResendFake
from tests.fakes.sendgrid import SendGridFake
from tests.fakes.server import FAULT_KINDS, Faults
from tests.helpers import run_publish
from tests.helpers.e2e import (
    BLUESKY_HANDLE,
    EMAIL_KEYS,
    EN_POST,
    SOCIAL_SECRETS,
    THREAD_LENGTH,
    Answer,
    AnswerLog,
    assert_chains,
    email_env,
    emails,
    log_answers,
    pending_items,
    seed_subscribers,
    status,
    tallies,
    write_config,
    write_thread_articles,
)

SUBSCRIBERS = emails(2000)
BATCH = 100
TIMEOUT = 0.4  # the channel's `timeout`; a slow fault answers after SLOW seconds
SLOW = 1.0
MAX_RUNS = 25
OVERSLEEP = 0.6  # the most a retry may come later than the reset asked (jitter is ≤ 0.05 s)
EXIT_OK = (0, 4, 7)  # done; a channel stopped on an uncertain call; uncertain batches remain


def faults(seed: int) -> Faults:
    """A third of all requests fail, every kind; slow and drop happen after the work is done."""
    return Faults(rate=0.3, kinds=FAULT_KINDS, seed=seed, reset_seconds=1, slow_seconds=SLOW,
                  after_kinds=("slow", "drop"))


def epoch_reset(name: str) -> Callable[[Answer], float]:
    """Seconds asked by a reset header given as epoch seconds."""
    return lambda answer: float(answer.headers[name]) - answer.at


def iso_reset(name: str) -> Callable[[Answer], float]:
    """Seconds asked by a reset header given as an ISO 8601 time (Mastodon)."""
    return lambda answer: datetime.fromisoformat(
        answer.headers[name].replace("Z", "+00:00")).timestamp() - answer.at


def delta_reset(name: str) -> Callable[[Answer], float]:
    """Seconds asked by a header given as delta seconds (Retry-After)."""
    return lambda answer: float(answer.headers[name])


def assert_backoff_honoured(log: AnswerLog, hint: Callable[[Answer], float]) -> int:
    """Each retry after a 429 came no sooner than asked and not much later; the count."""
    waits = log.waits_after_429(hint)
    for path, asked, waited in waits:
        assert asked - 0.02 <= waited <= asked + OVERSLEEP, (path, asked, waited)
    total_asked = sum(asked for _, asked, _ in waits)
    assert sum(waited for _, _, waited in waits) <= total_asked + 0.2 * len(waits) + 0.5
    return len(waits)


def run_until_done(root: Path, post: str, channel: str, total: int, env: dict[str, str],
                   *args: str, log: AnswerLog | None = None) -> set[str]:
    """Rerun `publish POST` until the ledger shows every item sent; the items ever uncertain."""
    uncertain_ever: set[str] = set()
    for _ in range(MAX_RUNS):
        report = status(post, root, env)
        pending = pending_items(report, channel)
        uncertain_ever |= pending
        if tallies(report).get(channel) == {"sent": total, "pending": 0, "failed": 0}:
            return uncertain_ever
        retry = ("--retry-pending",) if pending else ()
        result = run_publish(post, *args, *retry, cwd=root, env=env)
        assert result.returncode in EXIT_OK, (result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        if log is not None:
            log.run_ends.append(time.time())
    raise AssertionError(f"{post} not complete after {MAX_RUNS} runs")


@dataclass(frozen=True)
class Mailer:
    """A provider fake and how its 429 asks for a wait."""

    name: str
    hint: Callable[[Answer], float]
    make: Callable[[int], Any]


MAILERS = {
    "sendgrid": Mailer("sendgrid", epoch_reset("X-RateLimit-Reset"),
                       lambda seed: SendGridFake(api_key=EMAIL_KEYS["sendgrid"][1],
                                                 faults=faults(seed), keep_bodies=False)),
    "resend": Mailer("resend", delta_reset("retry-after"),
                     lambda seed: ResendFake(api_key=EMAIL_KEYS["resend"][1],
                                             faults=faults(seed), keep_bodies=False)),
}


@pytest.mark.parametrize("name", list(MAILERS))
def test_a_newsletter_through_faults_reaches_everyone_once(workdir: Path, name: str) -> None:
    mailer = MAILERS[name]
    env = email_env(name)
    fake = mailer.make(86)
    with fake.running():
        write_config(workdir, transport=name, channels={name: {
            "base_url": fake.url, "batch_size": BATCH, "timeout": TIMEOUT}})
        seed_subscribers(workdir, SUBSCRIBERS, env)
        log = log_answers(fake.server)
        uncertain = run_until_done(workdir, EN_POST, name, len(SUBSCRIBERS), env, log=log)
        injected = fake.server.faults.injected
    assert set(injected) == set(FAULT_KINDS), injected  # every kind of fault was exercised
    counts = Counter(fake.deliveries.emails())
    assert set(counts) == set(SUBSCRIBERS)
    duplicated = {email for email, n in counts.items() if n > 1}
    if name == "resend":
        assert duplicated == set() and uncertain == set()  # the key absorbed every retry
    else:
        assert uncertain, "the dropped answers must have left uncertain batches"
        assert duplicated <= uncertain
    assert assert_backoff_honoured(log, mailer.hint) >= 1


@dataclass(frozen=True)
class Network:
    """A social fake with faults, how publisher.toml points at it, and its posts as chains."""

    hint: Callable[[Answer], float]
    channel: dict[str, Any]
    http: Any
    chains: Callable[[], list[tuple[str, str | None, str]]]
    close: Callable[[], None]


@pytest.fixture(params=["mastodon", "bluesky"])
def network(request: pytest.FixtureRequest) -> Iterator[tuple[str, Network]]:
    """Each idempotent thread network in turn, misbehaving from its first request."""
    if request.param == "mastodon":
        mastodon = FakeMastodon(token=SOCIAL_SECRETS["MASTODON_ACCESS_TOKEN"],
                                processing_polls=0)
        net = Network(iso_reset("X-RateLimit-Reset"),
                      {"instance_url": mastodon.url, "timeout": TIMEOUT}, mastodon.http,
                      lambda: [(s["id"], s["in_reply_to_id"], s["text"])
                               for s in mastodon.statuses], mastodon.close)
    else:
        bluesky = FakeBluesky(handle=BLUESKY_HANDLE,
                              password=SOCIAL_SECRETS["BLUESKY_APP_PASSWORD"])
        net = Network(epoch_reset("ratelimit-reset"),
                      {"handle": BLUESKY_HANDLE, "pds_url": bluesky.url, "timeout": TIMEOUT},
                      bluesky.http, lambda: _bluesky_chains(bluesky), bluesky.close)
    net.http.faults = faults(89)
    try:
        yield request.param, net
    finally:
        net.close()


def _bluesky_chains(fake: FakeBluesky) -> list[tuple[str, str | None, str]]:
    """(uri, parent uri, text) of every post record."""
    return [(p["uri"], p["record"].get("reply", {}).get("parent", {}).get("uri"),
             p["record"]["text"]) for p in fake.posts]


def test_threads_through_faults_are_posted_once_in_order(
    workdir: Path, network: tuple[str, Network]
) -> None:
    name, net = network
    write_config(workdir, networks=[name], channels={name: net.channel})
    log = log_answers(net.http)
    numbers = range(40, 43)
    for post in write_thread_articles(workdir, numbers):
        uncertain = run_until_done(workdir, post, name, THREAD_LENGTH, SOCIAL_SECRETS,
                                   "--thread", log=log)
        assert uncertain == set()  # an idempotent network never asks the editor
    assert_chains(net.chains(), [f"route {n}" for n in numbers])
    assert set(net.http.faults.injected) == set(FAULT_KINDS), net.http.faults.injected
    assert assert_backoff_honoured(log, net.hint) >= 1
