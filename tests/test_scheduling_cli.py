"""`publish POST --at`, `publish due`, `publish status` and `publish unschedule` as an editor runs
them: real subprocesses, the provider fakes and aiosmtpd on 127.0.0.1, a real SQLite ledger."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.mastodon import FakeMastodon
from tests.fakes.resend import ResendFake
from tests.fakes.sendgrid import SendGridFake
from tests.fakes.smtp import SmtpFake
from tests.fakes.x import FakeX
from tests.helpers import run_publish
from tests.helpers.e2e import (
    EMAIL_KEYS,
    EN_POST,
    SOCIAL_SECRETS,
    crash_mid_request,
    email_env,
    emails,
    install_gate,
    seed_subscribers,
    spawn_publish,
    write_config,
)

READERS = emails(3)


@dataclass
class Live:
    """The running fakes of one test and the environment `publish` needs for them."""

    sendgrid: SendGridFake
    mastodon: FakeMastodon
    x: FakeX
    env: dict[str, str]


@pytest.fixture
def live(workdir: Path) -> Iterator[Live]:
    """SendGrid for the newsletter, Mastodon (single posts) and X, with three subscribers."""
    key = EMAIL_KEYS["sendgrid"][1]
    masto = FakeMastodon(token=SOCIAL_SECRETS["MASTODON_ACCESS_TOKEN"], processing_polls=0)
    x = FakeX(consumer=(SOCIAL_SECRETS["X_API_KEY"], SOCIAL_SECRETS["X_API_SECRET"]),
              token=(SOCIAL_SECRETS["X_ACCESS_TOKEN"], SOCIAL_SECRETS["X_ACCESS_TOKEN_SECRET"]))
    with SendGridFake(api_key=key).running() as sendgrid:
        write_config(workdir, transport="sendgrid", networks=["mastodon", "x"], channels={
            "sendgrid": {"base_url": sendgrid.url},
            "mastodon": {"instance_url": masto.url, "attach_image": False},
            "x": {"api_base": x.url, "attach_image": False},
        })
        env = {**email_env("sendgrid"), **SOCIAL_SECRETS}
        seed_subscribers(workdir, READERS, env)
        try:
            yield Live(sendgrid, masto, x, env)
        finally:
            masto.close()
            x.close()


def at_text(delta: timedelta) -> str:
    """A time `delta` from now, as an editor writes it (with an offset)."""
    return (datetime.now(UTC) + delta).astimezone().isoformat(timespec="seconds")


def scheduled(root: Path, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """`publish status --json` (no POST): every scheduled output by name."""
    result = run_publish("status", "--json", cwd=root, env=env)
    assert result.returncode == 0, result.stderr
    return {e["output"]: e for e in json.loads(result.stdout)["scheduled"]}


def test_at_hands_providers_the_send_queues_the_rest_and_a_rerun_schedules_nothing_twice(
    workdir: Path, live: Live,
) -> None:
    at = at_text(timedelta(hours=2))
    first = run_publish(EN_POST, "--at", at, cwd=workdir, env=live.env)
    assert first.returncode == 0, first.stderr
    assert "Scheduled at the provider: newsletter, mastodon." in first.stdout
    assert "Queued in the ledger: faq digest, x" in first.stdout
    held = [m["body"] for m in live.sendgrid.scheduled]
    assert len(held) == 1 and live.sendgrid.deliveries.emails() == []
    assert held[0]["send_at"] == int(datetime.fromisoformat(at).timestamp())
    [batch_id] = live.sendgrid.batches
    assert held[0]["batch_id"] == batch_id
    assert len(live.mastodon.scheduled) == 1 and live.mastodon.statuses == []
    assert live.x.tweets == []

    waiting = scheduled(workdir, live.env)
    assert waiting["newsletter"]["where"] == "provider-scheduled"
    assert waiting["newsletter"]["handle"] == batch_id
    assert waiting["mastodon"]["provider_ids"] == [live.mastodon.scheduled[0]["id"]]
    assert waiting["x"]["where"] == waiting["faq"]["where"] == "queued"
    assert {e["at"] for e in waiting.values()} == {datetime.fromisoformat(at).isoformat()}

    again = run_publish(EN_POST, "--at", at, cwd=workdir, env=live.env)
    assert again.returncode == 0, again.stderr
    assert "already scheduled" in again.stdout
    assert len(live.sendgrid.scheduled) == 1 and len(live.sendgrid.batches) == 1
    assert len(live.mastodon.scheduled) == 1

    now = run_publish(EN_POST, cwd=workdir, env=live.env)
    assert now.returncode == 5 and "is scheduled for" in now.stderr
    other = run_publish(EN_POST, "--at", at_text(timedelta(hours=3)), cwd=workdir, env=live.env)
    assert other.returncode == 5 and "already scheduled for" in other.stderr
    nothing = run_publish("due", cwd=workdir, env=live.env)
    assert nothing.returncode == 0 and "Nothing is due." in nothing.stdout
    assert live.x.tweets == [] and len(live.sendgrid.scheduled) == 1


def test_unschedule_cancels_at_each_provider_dequeues_the_rest_and_allows_a_new_time(
    workdir: Path, live: Live,
) -> None:
    assert run_publish(EN_POST, "--at", at_text(timedelta(hours=2)), cwd=workdir,
                       env=live.env).returncode == 0
    [batch_id] = live.sendgrid.batches
    cancelled = run_publish("unschedule", EN_POST, cwd=workdir, env=live.env)
    assert cancelled.returncode == 0, cancelled.stderr
    assert "newsletter (sendgrid): cancelled at the provider (3 scheduled sends)" in (
        cancelled.stdout)
    assert "mastodon (mastodon): cancelled at the provider (1 scheduled send)" in cancelled.stdout
    assert "x (x): dequeued" in cancelled.stdout
    assert live.sendgrid.batches[batch_id] == "cancel" and live.mastodon.scheduled == []
    assert scheduled(workdir, live.env) == {}
    assert run_publish("unschedule", EN_POST, cwd=workdir, env=live.env).stdout.endswith(
        "nothing is scheduled.\n")

    later = run_publish(EN_POST, "--at", at_text(timedelta(hours=5)), cwd=workdir, env=live.env)
    assert later.returncode == 0, later.stderr
    assert len(live.sendgrid.batches) == 2 and len(live.mastodon.scheduled) == 1
    assert live.sendgrid.release(now=time.time() + 6 * 3600) == 3  # the cancelled batch: none
    assert sorted(live.sendgrid.deliveries.emails()) == sorted(READERS)


def test_beyond_sendgrids_72_hours_the_newsletter_is_queued_and_says_why(
    workdir: Path, live: Live,
) -> None:
    result = run_publish(EN_POST, "--at", at_text(timedelta(days=4)), cwd=workdir, env=live.env)
    assert result.returncode == 0, result.stderr
    assert "sendgrid schedules at most 72 hours ahead" in result.stdout
    assert live.sendgrid.batches == {} and live.sendgrid.scheduled == []
    assert scheduled(workdir, live.env)["newsletter"]["where"] == "queued"


@pytest.mark.parametrize(("value", "words"), [
    ("2026-12-02T08:00", "has no time zone"),
    ("next tuesday", "is not a date and time"),
    ("2020-01-01T00:00Z", "is in the past"),
])
def test_a_bad_time_is_one_line_exit_2_and_nothing_is_sent(
    workdir: Path, live: Live, value: str, words: str,
) -> None:
    result = run_publish(EN_POST, "--at", value, cwd=workdir, env=live.env)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: --at: ") and words in line
    assert "Traceback" not in result.stderr
    assert live.sendgrid.batches == {} and live.mastodon.scheduled == [] and live.x.tweets == []


def test_queued_outputs_go_out_once_when_due_even_with_two_due_runs_at_once(
    workdir: Path,
) -> None:
    smtp = SmtpFake()
    with smtp.running():
        write_config(workdir, transport="smtp", channels={"smtp": {
            "host": "127.0.0.1", "port": smtp.port, "security": "none"}})
        env = email_env("smtp")
        seed_subscribers(workdir, READERS, env)
        at = datetime.now(UTC) + timedelta(seconds=4)
        queued = run_publish(EN_POST, "--at", at.isoformat(), cwd=workdir, env=env)
        assert queued.returncode == 0, queued.stderr
        assert "Queued in the ledger: faq digest, newsletter" in queued.stdout
        early = run_publish("due", cwd=workdir, env=env)
        assert early.returncode == 0 and "Nothing is due." in early.stdout
        assert smtp.received == []

        time.sleep(max(0.0, (at - datetime.now(UTC)).total_seconds()) + 0.2)
        racers = [spawn_publish("due", cwd=workdir, env=env) for _ in range(2)]
        results = [(r.wait(timeout=120), r.communicate()) for r in racers]
        codes = sorted(code for code, _ in results)
        assert codes in ([0, 0], [0, 5]), results
        if codes == [0, 5]:
            assert "another publish run is sending this post" in "".join(
                err for _, (_, err) in results)
        assert sorted(r for m in smtp.received for r in m.rcpt_tos) == sorted(READERS)

        after = run_publish("due", cwd=workdir, env=env)
        assert after.returncode == 0 and "Nothing is due." in after.stdout
        assert {e["state"] for e in scheduled_of(workdir, env)} == {"sent"}
        assert len(smtp.received) == len(READERS)


def scheduled_of(root: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    """`publish status POST --json`'s scheduled part (every state)."""
    result = run_publish("status", EN_POST, "--json", cwd=root, env=env)
    assert result.returncode == 0, result.stderr
    entries: list[dict[str, Any]] = json.loads(result.stdout)["scheduled"]
    return entries


def test_due_tells_the_truth_when_a_queued_send_fails(workdir: Path) -> None:
    smtp = SmtpFake()
    env = email_env("smtp")
    with smtp.running():
        write_config(workdir, transport="smtp", channels={"smtp": {
            "host": "127.0.0.1", "port": smtp.port, "security": "none"}})
        seed_subscribers(workdir, READERS, env)
        at = datetime.now(UTC) + timedelta(seconds=2)
        queued = run_publish(EN_POST, "--at", at.isoformat(), cwd=workdir, env=env)
        assert queued.returncode == 0, queued.stderr
    time.sleep(max(0.0, (at - datetime.now(UTC)).total_seconds()) + 0.2)
    failed = run_publish("due", cwd=workdir, env=env)  # nothing listens on the port any more
    assert failed.returncode == 4 and "error: smtp: cannot connect" in failed.stderr
    assert "Traceback" not in failed.stderr and smtp.received == []
    assert {e["state"] for e in scheduled_of(workdir, env)} == {"scheduled"}


def test_resend_schedules_one_email_per_reader_and_unschedule_cancels_each(
    workdir: Path,
) -> None:
    key = EMAIL_KEYS["resend"][1]
    with ResendFake(api_key=key).running() as fake:
        write_config(workdir, transport="resend", channels={"resend": {"base_url": fake.url}})
        env = email_env("resend")
        seed_subscribers(workdir, READERS, env)
        result = run_publish(EN_POST, "--at", at_text(timedelta(days=3)), cwd=workdir, env=env)
        assert result.returncode == 0, result.stderr
        assert fake.server.count("POST", "/emails") == 3 and len(fake.emails) == 3
        assert fake.server.count("POST", "/emails/batch") == 0
        ids = scheduled(workdir, env)["newsletter"]["provider_ids"]
        assert sorted(ids) == sorted(fake.emails)
        cancelled = run_publish("unschedule", EN_POST, cwd=workdir, env=env)
        assert cancelled.returncode == 0, cancelled.stderr
        assert {e["last_event"] for e in fake.emails.values()} == {"canceled"}
        assert fake.release(now=time.time() + 4 * 86400) == 0


def test_a_schedule_killed_mid_request_resumes_without_scheduling_twice(
    workdir: Path, live: Live,
) -> None:
    at = at_text(timedelta(hours=2))
    gate = install_gate(live.mastodon.http, "/api/v1/statuses", nth=1)
    early = crash_mid_request(gate, EN_POST, "--at", at, cwd=workdir, env=live.env)
    assert early is None, early
    assert len(live.mastodon.scheduled) == 1  # it landed; the answer never came back
    resumed = run_publish(EN_POST, "--at", at, cwd=workdir, env=live.env)
    assert resumed.returncode == 0, (resumed.stdout, resumed.stderr)
    assert len(live.mastodon.scheduled) == 1 and len(live.sendgrid.batches) == 1
    assert len(live.sendgrid.scheduled) == 1
    waiting = scheduled(workdir, live.env)
    assert waiting["mastodon"]["provider_ids"] == [live.mastodon.scheduled[0]["id"]]


def test_unschedule_after_a_crash_says_which_sends_it_could_not_cancel(workdir: Path) -> None:
    key = EMAIL_KEYS["resend"][1]
    with ResendFake(api_key=key).running() as fake:
        write_config(workdir, transport="resend", channels={"resend": {"base_url": fake.url}})
        env = email_env("resend")
        seed_subscribers(workdir, READERS, env)
        gate = install_gate(fake.server, "/emails", nth=2)
        early = crash_mid_request(gate, EN_POST, "--at", at_text(timedelta(days=1)),
                                  cwd=workdir, env=env)
        assert early is None, early
        assert len(fake.emails) == 2  # two emails were scheduled; the run died before the ids
        cancelled = run_publish("unschedule", EN_POST, cwd=workdir, env=env)
        assert cancelled.returncode == 7, (cancelled.stdout, cancelled.stderr)
        assert "3 scheduled send(s) left no id" in cancelled.stderr
        assert "check the provider" in cancelled.stderr and "Traceback" not in cancelled.stderr
        report = json.loads(run_publish("status", EN_POST, "--json", cwd=workdir,
                                        env=env).stdout)
        assert {p["item"] for p in report["pending"]} == set(READERS)


def test_at_dry_run_shows_where_each_output_would_wait_and_changes_nothing(
    workdir: Path, live: Live,
) -> None:
    at = at_text(timedelta(hours=2))
    shown = run_publish(EN_POST, "--at", at, "--dry-run", cwd=workdir, env=live.env)
    assert shown.returncode == 0, shown.stderr
    assert "dry run: nothing scheduled, recorded or sent" in shown.stdout
    assert "newsletter: scheduled at sendgrid" in shown.stdout
    assert "mastodon: scheduled at mastodon" in shown.stdout
    assert "x: queued in the ledger for `publish due`" in shown.stdout
    assert "faq digest: queued in the ledger" in shown.stdout

    far = run_publish(EN_POST, "--at", at_text(timedelta(days=5)), "--dry-run", "--json",
                      cwd=workdir, env=live.env)
    assert far.returncode == 0, far.stderr
    waits = json.loads(far.stdout)["schedule"]
    by_output = {e["output"]: e for e in waits["outputs"]}
    assert by_output["newsletter"] == {
        "output": "newsletter", "channel": "sendgrid", "where": "queued",
        "reason": "sendgrid schedules at most 72 hours ahead"}
    assert by_output["mastodon"]["where"] == "provider-scheduled"
    assert by_output["x"]["where"] == "queued"

    assert live.sendgrid.scheduled == [] and live.sendgrid.batches == {}
    assert live.mastodon.scheduled == [] and live.mastodon.statuses == []
    assert live.x.tweets == []
    assert scheduled(workdir, live.env) == {}


def test_retract_and_update_of_a_status_mastodon_posted_at_the_time_say_why_and_exit_4(
    workdir: Path, live: Live,
) -> None:
    at = at_text(timedelta(hours=2))
    assert run_publish(EN_POST, "--at", at, cwd=workdir, env=live.env).returncode == 0
    assert live.mastodon.release(now=time.time() + 3 * 3600) == 1  # Mastodon posts it, new id
    [posted] = live.mastodon.statuses

    retracted = run_publish("retract", EN_POST, "--network", "mastodon", "--yes",
                            cwd=workdir, env=live.env)
    assert retracted.returncode == 4, retracted.stdout + retracted.stderr
    [line] = retracted.stderr.strip().splitlines()
    assert "was scheduled at mastodon" in line and "cannot find the post to delete" in line
    assert live.mastodon.statuses == [posted] and live.mastodon.deleted == []

    path = workdir / EN_POST
    path.write_text(path.read_text("utf-8").replace("composting cart", "green cart"), "utf-8")
    updated = run_publish(EN_POST, "--update", cwd=workdir, env=live.env)
    assert updated.returncode == 4, updated.stdout + updated.stderr
    [line] = updated.stderr.strip().splitlines()
    assert "cannot find the post to edit" in line and "Traceback" not in updated.stderr
    assert live.mastodon.statuses == [posted] and posted.get("edits", 0) == 0


def pass_the_time(root: Path, output: str, at: str) -> None:
    """The clock moves past a scheduled time: the ledger's row now says `at` (in the past)."""
    with sqlite3.connect(root / ".publisher" / "ledger.sqlite3") as db:
        db.execute("UPDATE schedules SET at=? WHERE output=?", (at, output))


def test_retract_with_a_newsletter_sendgrid_holds_says_it_is_not_with_readers_yet(
    workdir: Path, live: Live,
) -> None:
    assert run_publish(EN_POST, "--skip", "newsletter", cwd=workdir,
                       env=live.env).returncode == 0
    at = at_text(timedelta(hours=2))
    held = run_publish(EN_POST, "--only", "newsletter", "--at", at, cwd=workdir, env=live.env)
    assert held.returncode == 0, held.stderr
    assert live.sendgrid.deliveries.emails() == [] and len(live.sendgrid.scheduled) == 1

    gone = run_publish("retract", EN_POST, "--yes", cwd=workdir, env=live.env)
    assert gone.returncode == 0, gone.stderr
    assert live.mastodon.deleted and live.x.deletes
    assert "already have" not in gone.stderr and "cannot be recalled" not in gone.stderr
    when = datetime.fromisoformat(at).isoformat()
    assert (f"note: the newsletter is not with readers yet: sendgrid holds it for 3 recipients"
            f" until {when}; to stop it, run `publish unschedule {EN_POST}` before then."
            in " ".join(gone.stderr.split()))

    nothing = run_publish("retract", EN_POST, "--yes", cwd=workdir, env=live.env)
    assert nothing.returncode == 0 and "nothing to retract" in nothing.stderr
    assert "sendgrid holds it for 3 recipients" in " ".join(nothing.stderr.split())

    past = (datetime.now(UTC) - timedelta(minutes=5)).isoformat(timespec="seconds")
    pass_the_time(workdir, "newsletter", past)
    after = run_publish("retract", EN_POST, "--yes", cwd=workdir, env=live.env)
    flat = " ".join(after.stderr.split())
    assert after.returncode == 0, after.stderr
    assert (f"note: the newsletter was handed to sendgrid for {past}, which has passed:"
            " sendgrid was to send it to 3 recipients then; publisher is not told whether it"
            " did (check sendgrid), and it cannot be recalled.") in flat
    assert "already have" not in flat and "not with readers yet" not in flat


def test_status_says_a_provider_held_send_is_held_then_handed_over_never_sent(
    workdir: Path, live: Live,
) -> None:
    at = at_text(timedelta(hours=2))
    when = datetime.fromisoformat(at).isoformat()
    assert run_publish(EN_POST, "--at", at, cwd=workdir, env=live.env).returncode == 0
    wide = {**live.env, "COLUMNS": "250"}
    before = run_publish("status", EN_POST, cwd=workdir, env=wide)
    assert before.returncode == 0, before.stderr
    assert f"3 held by sendgrid until {when}" in before.stdout
    assert f"held by sendgrid until {when}: sendgrid r" in before.stdout
    assert "sent sendgrid" not in before.stdout and "handed to" not in before.stdout
    report = json.loads(run_publish("status", EN_POST, "--json", cwd=workdir,
                                    env=live.env).stdout)
    mails = [r for r in report["sent"] if r["channel"] == "sendgrid"]
    assert len(mails) == 3 and {(r["scheduled_for"], r["passed"]) for r in mails} == {
        (when, False)}
    assert {t["channel"]: t["held"] for t in report["channels"]} == {"sendgrid": 3, "mastodon": 1}
    assert {e["state"] for e in scheduled(workdir, live.env).values()} == {"scheduled"}

    past = (datetime.now(UTC) - timedelta(minutes=5)).isoformat(timespec="seconds")
    for output in ("newsletter", "mastodon"):
        pass_the_time(workdir, output, past)
    waiting = scheduled(workdir, live.env)
    assert waiting["newsletter"]["state"] == waiting["mastodon"]["state"] == "handed-over"
    assert waiting["x"]["state"] == waiting["faq"]["state"] == "scheduled"  # `due` sends them
    listing = run_publish("status", cwd=workdir, env=wide)
    assert f"handed to sendgrid for {past} — past; check sendgrid" in listing.stdout
    after = run_publish("status", EN_POST, cwd=workdir, env=wide)
    assert f"3 handed to sendgrid for {past} — past; check sendgrid" in after.stdout
    assert f"1 handed to mastodon for {past} — past; check mastodon" in after.stdout
    assert "sent sendgrid" not in after.stdout and "held by" not in after.stdout
    assert live.sendgrid.deliveries.emails() == []  # nothing was claimed delivered, nor is it
