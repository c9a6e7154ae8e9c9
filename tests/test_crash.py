"""SIGKILL `publish` in the middle of a send of thousands, run again, and count the copies.

Issue 6's promise: after a crash at any moment, a rerun sends only what was not sent. SendGrid
has no idempotency key, so a batch whose request left before the kill is *uncertain*: the rerun
must report it (never silently resend it), `publish status --json` must list it, and only
`--retry-pending` resends it, so the only possible duplicates are the recipients of batches the
ledger reported. Resend's Idempotency-Key makes the same crash exactly-once with no exceptions.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.fakes.resend import ResendFake
from tests.fakes.sendgrid import SendGridFake
from tests.fakes.server import read_deliveries
from tests.helpers import run_publish
from tests.helpers.e2e import (
    EMAIL_KEYS,
    EN_POST,
    crash_mid_request,
    email_env,
    emails,
    fake_process,
    install_gate,
    pending_items,
    seed_subscribers,
    sigkill,
    spawn_publish,
    status,
    tallies,
    wait_for,
    write_config,
)

SUBSCRIBERS = emails(3000)
BATCH = 100  # 30 provider calls, so the kill lands with work done before and after it
KILL_AT = 11  # the batch in flight when the process dies


@pytest.mark.parametrize("request_landed", [True, False], ids=["landed", "lost"])
def test_sendgrid_crash_reports_the_uncertain_batch_and_retry_pending_completes(
    workdir: Path, request_landed: bool
) -> None:
    env = email_env("sendgrid")
    with SendGridFake(api_key=EMAIL_KEYS["sendgrid"][1], keep_bodies=False).running() as fake:
        write_config(workdir, transport="sendgrid",
                     channels={"sendgrid": {"base_url": fake.url, "batch_size": BATCH}})
        seed_subscribers(workdir, SUBSCRIBERS, env)
        gate = install_gate(fake.server, "/v3/mail/send", nth=KILL_AT, lose=not request_landed)
        early = crash_mid_request(gate, EN_POST, cwd=workdir, env=env)
        assert early is None, early
        landed = len(fake.deliveries.emails())
        assert landed == BATCH * (KILL_AT if request_landed else KILL_AT - 1)

        rerun = run_publish(EN_POST, cwd=workdir, env=env)
        assert rerun.returncode == 7, rerun.stderr  # finished, but a batch is uncertain
        assert f"{BATCH} uncertain" in rerun.stdout
        assert f"publish status {EN_POST}" in rerun.stderr and "--retry-pending" in rerun.stderr
        assert "Nothing new to send" not in rerun.stdout
        report = status(EN_POST, workdir, env)
        uncertain = pending_items(report, "sendgrid")
        assert len(uncertain) == BATCH
        assert len({p["batch"] for p in report["pending"]}) == 1  # one batch, named by its key
        assert tallies(report)["sendgrid"] == {"sent": 3000 - BATCH, "pending": BATCH,
                                               "failed": 0}
        counts = Counter(fake.deliveries.emails())
        assert set(SUBSCRIBERS) - set(counts) == (set() if request_landed else uncertain)
        assert max(counts.values()) == 1  # the rerun resent nothing uncertain

        retried = run_publish(EN_POST, "--retry-pending", cwd=workdir, env=env)
        assert retried.returncode == 0, retried.stderr
        again = run_publish(EN_POST, "--retry-pending", cwd=workdir, env=env)
        assert again.returncode == 0 and "Nothing new to send" in again.stdout
        counts = Counter(fake.deliveries.emails())
    assert set(counts) == set(SUBSCRIBERS)  # nobody is missing
    duplicated = {email for email, n in counts.items() if n > 1}
    assert duplicated <= uncertain  # copies only where the ledger said it could not know
    assert duplicated == (uncertain if request_landed else set())
    final = status(EN_POST, workdir, env)
    assert tallies(final)["sendgrid"] == {"sent": 3000, "pending": 0, "failed": 0}


def test_resend_crash_is_exactly_once_without_retry_pending(workdir: Path) -> None:
    env = email_env("resend")
    with ResendFake(api_key=EMAIL_KEYS["resend"][1], keep_bodies=False).running() as fake:
        write_config(workdir, transport="resend",
                     channels={"resend": {"base_url": fake.url, "batch_size": BATCH}})
        seed_subscribers(workdir, SUBSCRIBERS, env)
        gate = install_gate(fake.server, "/emails/batch", nth=KILL_AT)
        early = crash_mid_request(gate, EN_POST, cwd=workdir, env=env)
        assert early is None, early
        assert len(fake.deliveries.emails()) == BATCH * KILL_AT

        rerun = run_publish(EN_POST, cwd=workdir, env=env)
        assert rerun.returncode == 0, rerun.stderr
        assert "uncertain" not in rerun.stdout
        assert fake.replays == 1  # the pending batch went again under its key and was replayed
    assert Counter(fake.deliveries.emails()) == Counter(SUBSCRIBERS)
    assert tallies(status(EN_POST, workdir, env))["resend"] == {"sent": 3000, "pending": 0,
                                                                "failed": 0}


def test_kill_at_an_unplanned_moment_against_a_separate_fake_process(workdir: Path) -> None:
    """The fake runs as its own process writing deliveries to a file; the kill lands wherever."""
    env = email_env("sendgrid")
    deliveries = workdir / "deliveries.jsonl"
    key = EMAIL_KEYS["sendgrid"][1]
    with fake_process("sendgrid", deliveries, key=key, delay=0.1) as url:
        write_config(workdir, transport="sendgrid",
                     channels={"sendgrid": {"base_url": url, "batch_size": BATCH}})
        seed_subscribers(workdir, SUBSCRIBERS, env)
        process = spawn_publish(EN_POST, cwd=workdir, env=env)
        wait_for(lambda: sum(read_deliveries(deliveries).values()) >= 600
                 or process.poll() is not None, "a fifth of the deliveries")
        assert process.poll() is None, process.communicate()
        sigkill(process)

        rerun = run_publish(EN_POST, cwd=workdir, env=env)
        uncertain = pending_items(status(EN_POST, workdir, env), "sendgrid")
        assert rerun.returncode == (7 if uncertain else 0), rerun.stderr
        assert len(uncertain) in (0, BATCH)  # at most the one batch that was in flight
        if uncertain:
            assert f"{BATCH} uncertain" in rerun.stdout
            retried = run_publish(EN_POST, "--retry-pending", cwd=workdir, env=env)
            assert retried.returncode == 0, retried.stderr
        counts = read_deliveries(deliveries)
    assert set(counts) == set(SUBSCRIBERS)
    assert {email for email, n in counts.items() if n > 1} <= uncertain
