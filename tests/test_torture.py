"""Kill torture: SIGKILL `publish` twenty times at seeded random moments, resume, count copies.

Issue 8's promise: a laptop that sleeps or a cancelled CI job never makes anyone get two copies
or none. Each test kills a long send twenty times (20,000 recipients on SendGrid and SMTP, 6,000
on Resend, ten 4-post Mastodon threads killed twice each), each kill a seeded random number of
provider calls into the run plus a random jitter, so kills land mid-request, between a request
and its ledger write, and between batches. Then:

- SendGrid and SMTP (no idempotency key): nobody is delivered twice before `--retry-pending`;
  whoever is missing belongs to a batch `publish status --json` lists as pending (uncertain);
  `--retry-pending` completes them, and copies exist only inside those reported batches.
- Resend (Idempotency-Key) and Mastodon (Idempotency-Key): exactly once, with no uncertainty.

With --run-slow, SendGrid is also killed twenty times at 100,000 recipients in batches of 1000,
the size at which the ledger's multi-row writes and the pre-encoded bodies run (issue 18).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fakes.mastodon import FakeMastodon
from tests.fakes.resend import ResendFake
from tests.fakes.sendgrid import SendGridFake
from tests.fakes.server import Reply, Request
from tests.fakes.smtp import SmtpFake
from tests.helpers import run_publish
from tests.helpers.e2e import (
    EMAIL_KEYS,
    EN_POST,
    SOCIAL_SECRETS,
    THREAD_LENGTH,
    assert_chains,
    email_env,
    emails,
    kill_after,
    pending_items,
    seed_subscribers,
    spawn_publish,
    status,
    tallies,
    write_config,
    write_thread_articles,
)

RECIPIENTS = 20_000
SUBSCRIBERS = emails(RECIPIENTS)
KILLS = 20
EXIT_UNCERTAIN = 7  # the run finished, but an earlier crash left deliveries uncertain
HTTP_BATCH = 100  # 200 provider calls: twenty kills of at most 8 calls each cannot finish it


def torture_newsletter(
    workdir: Path, env: dict[str, str], progress: Callable[[], int],
    steps: tuple[int, int], jitter: float, seed: int,
) -> None:
    """Start the send KILLS times; kill each run `steps` units of progress in, plus jitter."""
    rng = random.Random(seed)
    for run in range(KILLS):
        process = spawn_publish(EN_POST, cwd=workdir, env=env)
        target = progress() + rng.randint(*steps)
        killed = kill_after(process, progress, target, rng.uniform(0, jitter))
        assert killed, f"run {run} finished before its kill: the torture proved nothing"


def assert_uncertain_only_then_complete(
    workdir: Path, env: dict[str, str], channel: str, delivered: Callable[[], list[str]],
    subscribers: list[str] = SUBSCRIBERS,
) -> None:
    """Resume, check the gaps are the reported uncertain batches, retry them, count copies."""
    resumed = run_publish(EN_POST, cwd=workdir, env=env)
    report = status(EN_POST, workdir, env)
    uncertain = pending_items(report, channel)
    assert resumed.returncode == (EXIT_UNCERTAIN if uncertain else 0), resumed.stderr
    batches = {p["batch"] for p in report["pending"] if p["channel"] == channel}
    assert len(batches) <= KILLS  # at most the batch in flight at each kill
    counts = Counter(delivered())
    assert max(counts.values()) == 1  # nothing uncertain was resent without being asked
    assert set(subscribers) - set(counts) <= uncertain  # every gap is a reported batch
    assert tallies(report)[channel] == {"sent": len(subscribers) - len(uncertain),
                                        "pending": len(uncertain), "failed": 0}
    if uncertain:
        assert f"{len(uncertain)} uncertain" in resumed.stdout

    retried = run_publish(EN_POST, "--retry-pending", cwd=workdir, env=env)
    assert retried.returncode == 0, retried.stderr
    counts = Counter(delivered())
    assert set(counts) == set(subscribers)  # nobody is missing
    assert {email for email, n in counts.items() if n > 1} <= uncertain
    assert tallies(status(EN_POST, workdir, env))[channel] == {
        "sent": len(subscribers), "pending": 0, "failed": 0}


def test_sendgrid_survives_twenty_kills_with_copies_only_in_reported_batches(
    workdir: Path
) -> None:
    env = email_env("sendgrid")
    with SendGridFake(api_key=EMAIL_KEYS["sendgrid"][1], keep_bodies=False).running() as fake:
        write_config(workdir, transport="sendgrid",
                     channels={"sendgrid": {"base_url": fake.url, "batch_size": HTTP_BATCH}})
        seed_subscribers(workdir, SUBSCRIBERS, env)
        torture_newsletter(workdir, env, lambda: fake.server.count("POST", "/v3/mail/send"),
                           steps=(1, 8), jitter=0.02, seed=801)
        assert_uncertain_only_then_complete(workdir, env, "sendgrid", fake.deliveries.emails)


@pytest.mark.slow
def test_sendgrid_at_100000_recipients_survives_twenty_kills(workdir: Path) -> None:
    # Issue 18: the same promise at the bulk writers' full size, 1000 recipients per call
    # (100 calls; twenty kills of at most 4 calls each cannot finish it).
    subscribers = emails(100_000)
    env = email_env("sendgrid")
    with SendGridFake(api_key=EMAIL_KEYS["sendgrid"][1], keep_bodies=False).running() as fake:
        write_config(workdir, transport="sendgrid", channels={"sendgrid": {"base_url": fake.url}})
        seed_subscribers(workdir, subscribers, env)
        torture_newsletter(workdir, env, lambda: fake.server.count("POST", "/v3/mail/send"),
                           steps=(1, 4), jitter=0.05, seed=1800)
        assert_uncertain_only_then_complete(workdir, env, "sendgrid", fake.deliveries.emails,
                                            subscribers)


def test_smtp_survives_twenty_kills_with_copies_only_in_reported_batches(workdir: Path) -> None:
    env = email_env("smtp")
    smtp = SmtpFake()
    with smtp.running():
        write_config(workdir, transport="smtp", channels={"smtp": {
            "host": "127.0.0.1", "port": smtp.port, "security": "none", "connections": 4,
            "batch_size": 50}})
        seed_subscribers(workdir, SUBSCRIBERS, env)
        torture_newsletter(workdir, env, lambda: smtp.data_count, steps=(50, 900),
                           jitter=0.01, seed=802)
        assert_uncertain_only_then_complete(workdir, env, "smtp", smtp.deliveries.emails)


def test_resend_survives_twenty_kills_exactly_once(workdir: Path) -> None:
    """A smaller list (Resend sends whole messages, no provider-side fan-out): 60 calls."""
    env = email_env("resend")
    subscribers = SUBSCRIBERS[:6000]
    with ResendFake(api_key=EMAIL_KEYS["resend"][1], keep_bodies=False).running() as fake:
        write_config(workdir, transport="resend",
                     channels={"resend": {"base_url": fake.url, "batch_size": HTTP_BATCH}})
        seed_subscribers(workdir, subscribers, env)
        torture_newsletter(workdir, env, lambda: fake.server.count("POST", "/emails/batch"),
                           steps=(1, 2), jitter=0.05, seed=803)
        resumed = run_publish(EN_POST, cwd=workdir, env=env)
        assert resumed.returncode == 0, resumed.stderr
        assert "uncertain" not in resumed.stdout
        assert fake.replays <= KILLS  # a batch in flight at a kill went again under its key
    assert Counter(fake.deliveries.emails()) == Counter(subscribers)
    report = status(EN_POST, workdir, env)
    assert report["pending"] == []
    assert tallies(report)["resend"] == {"sent": len(subscribers), "pending": 0, "failed": 0}


# --- threads --------------------------------------------------------------------------------

STATUSES = "/api/v1/statuses"
HOLD = 0.03  # seconds the fake holds every answer, so a kill can land mid-request


def _held(handle: Callable[[Request], Reply]) -> Callable[[Request], Reply]:
    """A handler that answers HOLD seconds after doing the work (the answer is in flight)."""

    def slow(request: Request) -> Reply:
        reply = handle(request)
        time.sleep(HOLD)
        return reply

    return slow


def test_mastodon_threads_killed_twenty_times_are_each_posted_exactly_once(
    workdir: Path
) -> None:
    """Ten threads, each killed twice: once fresh, once while resuming, then resumed."""
    rng = random.Random(804)
    fake = FakeMastodon(token=SOCIAL_SECRETS["MASTODON_ACCESS_TOKEN"], processing_polls=0)
    numbers = range(10, 10 + KILLS // 2)
    try:
        fake.http.handle = _held(fake.http.handle)
        write_config(workdir, networks=["mastodon"],
                     channels={"mastodon": {"instance_url": fake.url}})
        posts = write_thread_articles(workdir, numbers)
        for post in posts:
            first = rng.randint(1, 2)
            kill_mid_thread(post, workdir, fake, first, rng)
            kill_mid_thread(post, workdir, fake, rng.randint(1, THREAD_LENGTH - first), rng,
                            last=THREAD_LENGTH - first)
            resumed = run_publish(post, "--thread", cwd=workdir, env=SOCIAL_SECRETS)
            assert resumed.returncode == 0, resumed.stderr
            assert "uncertain" not in resumed.stdout
        statuses = list(fake.statuses)
        for post in posts[::3]:  # the ledger agrees (a sample: each `status` is a process)
            report = status(post, workdir, SOCIAL_SECRETS)
            assert tallies(report)["mastodon"] == {"sent": THREAD_LENGTH, "pending": 0,
                                                   "failed": 0}
    finally:
        fake.close()
    assert_chains([(s["id"], s["in_reply_to_id"], s["text"]) for s in statuses],
                  [f"route {n}" for n in numbers])


def kill_mid_thread(post: str, root: Path, fake: FakeMastodon, nth: int, rng: random.Random,
                    *, last: int = THREAD_LENGTH) -> None:
    """Run `publish POST --thread`; kill it while the nth create is held, or just after.

    The run has at least `last` creates to make, so a kill at the last one lands while it is
    held (the jitter stays under HOLD) and every kill is mid-thread.
    """
    process = spawn_publish(post, "--thread", cwd=root, env=SOCIAL_SECRETS)
    created = fake.http.count("POST", STATUSES)
    jitter = rng.uniform(0, HOLD * (0.9 if nth == last else 1.8))
    killed = kill_after(process, lambda: fake.http.count("POST", STATUSES), created + nth,
                        jitter)
    assert killed, f"{post} finished before its kill"
