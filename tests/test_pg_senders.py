"""Two `publish` processes share one send through a PostgreSQL ledger, against the SendGrid fake.

`publish POST` takes the post's lock and cuts the send into numbered batches; `publish POST
--join` (as if on another machine) claims batches with FOR UPDATE SKIP LOCKED instead of exiting 5.
The fake sees every subscriber exactly once, and each process sends part of the list.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fakes.sendgrid import SendGridFake
from tests.fakes.server import Reply, Request
from tests.helpers import run_publish
from tests.helpers.e2e import (
    EMAIL_KEYS,
    EN_POST,
    crash_mid_request,
    email_env,
    emails,
    install_gate,
    pending_items,
    seed_subscribers,
    spawn_publish,
    status,
    tallies,
    wait_for,
    write_config,
)
from tests.helpers.pg import pg_server, pg_url

__all__ = ["pg_server", "pg_url"]  # fixtures, imported so pytest finds them

SUBSCRIBERS = emails(3000)
BATCH = 50  # 60 batches to share


def configure(workdir: Path, fake: SendGridFake, database: str,
              networks: tuple[str, ...] = ()) -> None:
    """publisher.toml: SendGrid through the fake, ledger and subscribers in PostgreSQL."""
    path = write_config(workdir, transport="sendgrid", networks=networks,
                        channels={"sendgrid": {"base_url": fake.url, "batch_size": BATCH}})
    body = path.read_text(encoding="utf-8")
    path.write_text(f'ledger = "{database}"\nsubscribers = "{database}"\n\n{body}',
                    encoding="utf-8")


def sent_by(stdout: str) -> int:
    """How many recipients this process reported as new on the sendgrid line of its summary."""
    [line] = [line for line in stdout.splitlines() if "sendgrid" in line]
    found = re.search(r"(\d+) new", line)
    return int(found.group(1)) if found else 0


def test_publish_and_publish_join_split_a_send_with_no_duplicates(
    workdir: Path, pg_url: str
) -> None:
    env = email_env("sendgrid")
    with SendGridFake(api_key=EMAIL_KEYS["sendgrid"][1], keep_bodies=False).running() as fake:
        configure(workdir, fake, pg_url)
        seed_subscribers(workdir, SUBSCRIBERS, env)
        gate = install_gate(fake.server, "/v3/mail/send", nth=3)  # the lead pauses in batch 3
        lead = spawn_publish(EN_POST, cwd=workdir, env=env)
        try:
            wait_for(lambda: gate.reached.is_set() or lead.poll() is not None,
                     "the lead's third batch", timeout=60)
            assert gate.reached.is_set(), lead.communicate()

            refused = run_publish(EN_POST, cwd=workdir, env=env)  # without --join: as before
            assert refused.returncode == 5, refused.stderr
            assert "another publish run" in refused.stderr and "--join" in refused.stderr

            joiner = run_publish(EN_POST, "--join", cwd=workdir, env=env)
            assert joiner.returncode == 0, joiner.stderr
        finally:
            gate.release()
        out, err = lead.communicate(timeout=120)
        assert lead.returncode == 0, err
        counts = Counter(fake.deliveries.emails())
        again = run_publish(EN_POST, cwd=workdir, env=env)  # a rerun passes over every batch
    assert counts == Counter(SUBSCRIBERS)  # everyone once: nobody missing, nobody twice
    by_lead, by_joiner = sent_by(out), sent_by(joiner.stdout)
    assert by_lead == 3 * BATCH and by_joiner == len(SUBSCRIBERS) - 3 * BATCH
    assert "faq digest" in out and "faq digest" not in joiner.stdout  # only the lead does that
    assert tallies(status(EN_POST, workdir, env))["sendgrid"] == {
        "sent": len(SUBSCRIBERS), "pending": 0, "failed": 0}
    assert again.returncode == 0 and "Nothing new to send" in again.stdout, again.stderr
    assert "3000 already sent" in again.stdout


def slowed(handler: Callable[[Request], Reply], seconds: float) -> Callable[[Request], Reply]:
    """The fake's handler, taking a little longer per send, so two senders overlap."""
    def handle(request: Request) -> Reply:
        if request.path == "/v3/mail/send":
            time.sleep(seconds)
        return handler(request)
    return handle


@pytest.mark.parametrize("networks", [(), ("x", "bluesky")])
def test_two_senders_started_together_send_everyone_once(
    workdir: Path, pg_url: str, networks: tuple[str, ...]
) -> None:
    """Both start at once with --join: one leads, the other helps; the claims never overlap.
    With social networks in the plan too, only the lead posts them and both exit 0."""
    env = email_env("sendgrid")
    with SendGridFake(api_key=EMAIL_KEYS["sendgrid"][1], keep_bodies=False).running() as fake:
        configure(workdir, fake, pg_url, networks)
        seed_subscribers(workdir, SUBSCRIBERS, env)
        fake.server.handle = slowed(fake.server.handle, 0.01)
        start = threading.Barrier(2)
        results: dict[int, tuple[int | None, str, str]] = {}

        def sender(index: int) -> None:
            start.wait()
            process = spawn_publish(EN_POST, "--join", cwd=workdir, env=env)
            out, err = process.communicate(timeout=120)
            results[index] = (process.returncode, out, err)

        threads = [threading.Thread(target=sender, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        counts = Counter(fake.deliveries.emails())
    assert [code for code, _, _ in results.values()] == [0, 0], results
    assert counts == Counter(SUBSCRIBERS)
    assert sum(sent_by(out) for _, out, _ in results.values()) == len(SUBSCRIBERS)
    assert sum("faq digest" in out for _, out, _ in results.values()) == 1  # exactly one lead
    for network in networks:  # the lead's summary names each network, the joiner's none
        assert sorted(network in out.split() for _, out, _ in results.values()) == [False, True]


def test_join_needs_postgresql(workdir: Path) -> None:
    env = email_env("sendgrid")
    with SendGridFake(api_key=EMAIL_KEYS["sendgrid"][1], keep_bodies=False).running() as fake:
        write_config(workdir, transport="sendgrid", channels={"sendgrid": {"base_url": fake.url}})
        refused = run_publish(EN_POST, "--join", cwd=workdir, env=env)
    assert refused.returncode == 3
    assert "--join needs the ledger and the subscribers on PostgreSQL" in refused.stderr


@pytest.mark.parametrize("key", ["ledger", "subscribers"])
def test_a_password_in_publisher_toml_is_refused_and_never_printed(
    workdir: Path, key: str
) -> None:
    (workdir / "publisher.toml").write_text(
        f'{key} = "postgresql://news:toml-pass-5521@127.0.0.1:1/news"\n', encoding="utf-8")
    command = ("status", EN_POST) if key == "ledger" else ("subscribers", "list")
    result = run_publish(*command, cwd=workdir)
    assert result.returncode == 3, result.stderr
    assert "toml-pass-5521" not in result.stdout + result.stderr
    assert "a database password is written in the config" in result.stderr


def test_a_killed_sender_leaves_its_batch_uncertain_and_retry_pending_completes(
    workdir: Path, pg_url: str
) -> None:
    """SIGKILL the lead mid-request: the next sender takes over the lock and the abandoned claim,
    and the batch in flight is reported uncertain exactly as with the SQLite ledger."""
    env = email_env("sendgrid")
    with SendGridFake(api_key=EMAIL_KEYS["sendgrid"][1], keep_bodies=False).running() as fake:
        configure(workdir, fake, pg_url)
        seed_subscribers(workdir, SUBSCRIBERS, env)
        gate = install_gate(fake.server, "/v3/mail/send", nth=4)
        assert crash_mid_request(gate, EN_POST, cwd=workdir, env=env) is None
        rerun = run_publish(EN_POST, "--join", cwd=workdir, env=env)  # nobody to join: it leads
        assert rerun.returncode == 7, rerun.stderr  # finished, but a batch is uncertain
        assert f"{BATCH} uncertain" in rerun.stdout
        report = status(EN_POST, workdir, env)
        assert tallies(report)["sendgrid"] == {"sent": len(SUBSCRIBERS) - BATCH,
                                               "pending": BATCH, "failed": 0}
        uncertain = pending_items(report, "sendgrid")
        retried = run_publish(EN_POST, "--retry-pending", cwd=workdir, env=env)
        assert retried.returncode == 0, retried.stderr
        counts = Counter(fake.deliveries.emails())
    assert set(counts) == set(SUBSCRIBERS)
    assert {email for email, n in counts.items() if n > 1} == uncertain  # it had landed
