"""One ledger row per provider call (issue 18): status and resume stay exact per recipient.

Where one call sends a whole batch (SendGrid, Postmark, Resend), the ledger keeps one row per
call with its members' exact subscriber ids and addresses. These tests check that every reader
is still recorded exactly once: by the Ledger itself on SQLite and PostgreSQL, and through the
real CLI against the SendGrid fake after a crash mid-batch, a failed batch, readers who leave
and readers who join between runs, and a ledger whose rows the previous code wrote per recipient.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from publisher.delivery.send import batch_key
from publisher.stores.backends import open_ledger, open_store
from publisher.stores.ledger import BatchRow, Ledger, Row, decode_ids, encode_ids
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
    status,
    tallies,
    write_config,
)
from tests.helpers.pg import pg_server, pg_url

__all__ = ["pg_server", "pg_url"]  # fixtures, imported so pytest finds them

MEMBERS = [(i, f"r{i}@example.com") for i in (3, 4, 5, 9, 10, 200)]


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    """An empty ledger of each kind."""
    if request.param == "postgresql":
        pytest.importorskip("psycopg")
        target = str(request.getfixturevalue("pg_url"))
    else:
        target = str(tmp_path / "ledger.sqlite3")
    opened = open_ledger(target)
    yield opened
    opened.close()


def split(members: list[tuple[int, str]]) -> tuple[list[int], list[str]]:
    """(ids, addresses) of members."""
    return [i for i, _ in members], [e for _, e in members]


def by_state(ledger: Ledger, edition: str = "ed") -> dict[str, dict[str, str]]:
    """Per state, each reader's batch key, as `rows()` (and so `publish status`) reads them."""
    found: dict[str, dict[str, str]] = {}
    for row in ledger.rows(edition):
        assert row.item not in {i for items in found.values() for i in items}, row.item
        found.setdefault(row.state, {})[row.item] = row.batch
    return found


def counts(ledger: Ledger, edition: str = "ed") -> tuple[int, int, int]:
    [tally] = ledger.tally(edition)
    return tally.sent, tally.pending, tally.failed


def test_ids_round_trip_through_their_delta_encoding() -> None:
    for ids in [(1,), (5, 6, 7, 10), (2, 1000, 1001, 10**12)]:
        assert decode_ids(encode_ids(ids)) == ids
    assert encode_ids((5, 6, 7, 10)) == "5,1,1,3"


def test_the_batch_key_is_the_one_hashed_member_by_member_before() -> None:
    members = ["a@example.com", "b@example.com", "c@example.com"]
    digest = hashlib.sha256(b"ed\0sendgrid")
    for member in members:  # how keys were made before: a pending batch keeps its key
        digest.update(b"\0" + member.encode())
    digest.update(b"\0@salt")
    assert batch_key("ed", "sendgrid", members, salt="salt") == digest.hexdigest()[:32]


def test_members_out_of_id_order_are_stored_in_id_order(ledger: Ledger) -> None:
    [written] = ledger.mark_batch_pending("ed", "post", "sendgrid", "k1", [9, 3, 5],
                                          ["r9@x.example", "r3@x.example", "r5@x.example"], {})
    assert written.ids == (3, 5, 9) and written.items[0] == "r3@x.example"
    [read] = ledger.batch_rows("ed")
    assert (read.ids, read.items) == (written.ids, written.items)


def test_a_batch_row_reads_as_its_members_pending_then_sent(ledger: Ledger) -> None:
    [written] = ledger.mark_batch_pending("ed", "post", "sendgrid", "k1", *split(MEMBERS), {})
    assert written.ids == (3, 4, 5, 9, 10, 200) and counts(ledger) == (0, 6, 0)
    assert by_state(ledger) == {"pending": {e: "k1" for _, e in MEMBERS}}
    ledger.settle_batch([written], {e: "msg-1" for _, e in MEMBERS}, refused={}, uncertain={})
    assert counts(ledger) == (6, 0, 0)
    assert {r.provider_id for r in ledger.rows("ed", state="sent")} == {"msg-1"}
    assert len(ledger.batch_rows("ed")) == 1 and not ledger.has_items("ed", "sendgrid")
    covered = ledger.covering("ed", "sendgrid", [4, 6, 200, 201])
    assert {i: found[0].items[found[1]] for i, found in covered.items()} == {
        4: "r4@example.com", 200: "r200@example.com"}  # 6 lies in the range but is no member


def test_refused_and_unanswered_members_leave_the_batch_row(ledger: Ledger) -> None:
    written = ledger.mark_batch_pending("ed", "post", "sendgrid", "k1", *split(MEMBERS), {})
    emails_ = [e for _, e in MEMBERS]
    accepted = {e: f"id-{e}" for e in emails_[2:5]}  # a provider with an id per message
    ledger.settle_batch(written, accepted,
                        refused={emails_[0]: ("550 no such user", "permanent"),
                                 emails_[1]: ("421 try later", "transient")},
                        uncertain={emails_[5]: "the answer was lost"})
    assert counts(ledger) == (3, 1, 2)
    rows = {r.item: r for r in ledger.rows("ed")}
    assert (rows[emails_[0]].state, rows[emails_[0]].failure) == ("failed", "permanent")
    assert (rows[emails_[1]].state, rows[emails_[1]].failure) == ("failed", "transient")
    assert (rows[emails_[5]].state, rows[emails_[5]].error) == ("pending", "the answer was lost")
    assert {rows[e].provider_id for e in accepted} == set(accepted.values())
    [batch] = ledger.batch_rows("ed")
    assert batch.ids == (5, 9, 10)  # only the accepted stay in the batch row
    assert set(ledger.states("ed", "sendgrid", emails_)) == {emails_[0], emails_[1], emails_[5]}


def test_a_retried_subset_leaves_the_rest_of_its_row_and_counts_attempts(ledger: Ledger) -> None:
    written = ledger.mark_batch_pending("ed", "post", "sendgrid", "k1", *split(MEMBERS), {})
    ledger.fail_batch(written, "400 bad request", "stopped")
    assert counts(ledger) == (0, 0, 6)
    prior = ledger.covering("ed", "sendgrid", [i for i, _ in MEMBERS])
    # r9 unsubscribed since: the retry takes the other five, plus one new reader (id 300)
    retry = [m for m in MEMBERS if m[0] != 9] + [(300, "r300@example.com")]
    again = ledger.mark_batch_pending("ed", "post", "sendgrid", "k2", *split(retry),
                                      {i: prior[i] for i, _ in retry if i in prior})
    assert [(r.ids, r.attempts) for r in again] == [((300,), 1), ((3, 4, 5, 10, 200), 2)]
    assert by_state(ledger) == {"failed": {"r9@example.com": "k1"},
                                "pending": {e: "k2" for _, e in retry}}
    [left] = ledger.batch_rows("ed", state="failed")
    assert (left.ids, left.attempts, left.error) == ((9,), 1, "400 bad request")
    ledger.settle_batch(again, {e: "m2" for _, e in retry}, refused={}, uncertain={})
    assert counts(ledger) == (6, 0, 1)


def test_a_per_recipient_row_moves_into_the_batch_row_that_sends_it(ledger: Ledger) -> None:
    ledger.mark_pending("ed", "post", "sendgrid", ["r3@example.com", "r4@example.com"], batch="k0")
    ledger.mark_failed("ed", "sendgrid", {"r3@example.com": "timeout"})
    old = ledger.states("ed", "sendgrid", ["r3@example.com"])["r3@example.com"]
    written = ledger.mark_batch_pending("ed", "post", "sendgrid", "k1", *split(MEMBERS[:1]),
                                        {3: old})
    assert [r.attempts for r in written] == [2]
    assert by_state(ledger) == {"pending": {"r3@example.com": "k1", "r4@example.com": "k0"}}
    assert counts(ledger) == (0, 2, 0)


def test_forget_and_carry_over_follow_batch_members(ledger: Ledger) -> None:
    written = ledger.mark_batch_pending("ed", "post", "sendgrid", "k1", *split(MEMBERS), {})
    ledger.settle_batch(written, {e: "m" for _, e in MEMBERS}, refused={}, uncertain={})
    ledger.carry_over("post", "ed", "ed2")
    assert by_state(ledger, "ed2") == by_state(ledger, "ed")
    assert ledger.editions("post")[0] in {"ed", "ed2"} and ledger.other_editions("post", "ed2")
    ledger.forget("ed", "sendgrid", ["r4@example.com", "r200@example.com"])
    assert counts(ledger) == (4, 0, 0) and "r4@example.com" not in by_state(ledger)["sent"]
    assert counts(ledger, "ed2") == (6, 0, 0)


# -- through the CLI, against the SendGrid fake ---------------------------------------------

READERS = emails(1000)
BATCH = 100


class Refuse:
    """Answers the nth mail send with a 400: a definite failure, nothing delivered."""

    def __init__(self, inner: Any, nth: int) -> None:
        self.inner, self.nth, self.seen = inner, nth, 0

    def __call__(self, request: Request) -> Reply:
        if request.method == "POST" and request.path == "/v3/mail/send":
            self.seen += 1
            if self.seen == self.nth:
                return Reply(400, {"errors": [{"message": "refused once (test)"}]})
        result: Reply = self.inner(request)
        return result


def ledger_counts(workdir: Path) -> tuple[int, int]:
    """(batch rows, per-recipient rows) of SendGrid in the project's SQLite ledger."""
    db = sqlite3.connect(workdir / ".publisher" / "ledger.sqlite3")
    try:
        batches = db.execute("SELECT COUNT(*) FROM batch_deliveries").fetchone()[0]
        items = db.execute("SELECT COUNT(*) FROM deliveries WHERE channel='sendgrid'"
                           ).fetchone()[0]
    finally:
        db.close()
    return int(batches), int(items)


def leave_and_join(workdir: Path, leaving: list[str], joining: list[str]) -> None:
    """Readers unsubscribe and new ones subscribe between two runs."""
    store = open_store(workdir / ".publisher" / "subscribers.sqlite3")
    try:
        for email in leaving:
            store.unsubscribe(email)
        for email in joining:
            store.add(email)
    finally:
        store.close()


def sent_items(report: dict[str, Any]) -> list[str]:
    return [s["item"] for s in report["sent"] if s["channel"] == "sendgrid"]


def test_a_send_writes_one_row_per_call_and_status_lists_every_reader(workdir: Path) -> None:
    env = email_env("sendgrid")
    with SendGridFake(api_key=EMAIL_KEYS["sendgrid"][1], keep_bodies=False).running() as fake:
        write_config(workdir, transport="sendgrid",
                     channels={"sendgrid": {"base_url": fake.url, "batch_size": BATCH}})
        seed_subscribers(workdir, READERS, env)
        first = run_publish(EN_POST, cwd=workdir, env=env)
        assert first.returncode == 0, first.stderr
        assert ledger_counts(workdir) == (len(READERS) // BATCH, 0)
        second = run_publish(EN_POST, cwd=workdir, env=env)
        assert second.returncode == 0 and "Nothing new to send" in second.stdout
        assert Counter(fake.deliveries.emails()) == Counter(READERS)
    report = status(EN_POST, workdir, env)
    assert tallies(report)["sendgrid"] == {"sent": 1000, "pending": 0, "failed": 0}
    assert sorted(sent_items(report)) == sorted(READERS)
    assert all(s["provider_id"] for s in report["sent"])


def test_crash_mid_batch_then_readers_leave_and_join_then_retry_pending(workdir: Path) -> None:
    env = email_env("sendgrid")
    with SendGridFake(api_key=EMAIL_KEYS["sendgrid"][1], keep_bodies=False).running() as fake:
        write_config(workdir, transport="sendgrid",
                     channels={"sendgrid": {"base_url": fake.url, "batch_size": BATCH}})
        seed_subscribers(workdir, READERS, env)
        gate = install_gate(fake.server, "/v3/mail/send", nth=4)  # lands, the answer is lost
        assert crash_mid_request(gate, EN_POST, cwd=workdir, env=env) is None
        uncertain = set(READERS[300:400])
        report = status(EN_POST, workdir, env)
        assert pending_items(report, "sendgrid") == uncertain
        assert tallies(report)["sendgrid"] == {"sent": 300, "pending": 100, "failed": 0}

        # one uncertain reader and one already sent leave; two new readers join
        joined = ["late1@e2e.example", "late2@e2e.example"]
        leave_and_join(workdir, [READERS[350], READERS[10]], joined)
        rerun = run_publish(EN_POST, cwd=workdir, env=env)
        assert rerun.returncode == 7, rerun.stderr  # finished, the crashed batch is uncertain
        assert "99 uncertain" in rerun.stdout  # the one who left is not streamed, still pending
        report = status(EN_POST, workdir, env)
        assert pending_items(report, "sendgrid") == uncertain  # untouched, not resent
        assert tallies(report)["sendgrid"] == {"sent": 1000 - 100 + 2, "pending": 100,
                                               "failed": 0}
        assert READERS[10] in sent_items(report)  # sent before leaving: still sent
        counts = Counter(fake.deliveries.emails())
        assert max(counts.values()) == 1 and all(counts[e] == 1 for e in joined)

        retried = run_publish(EN_POST, "--retry-pending", cwd=workdir, env=env)
        assert retried.returncode == 0, retried.stderr
        report = status(EN_POST, workdir, env)
        assert pending_items(report, "sendgrid") == {READERS[350]}  # left: never resent
        assert tallies(report)["sendgrid"] == {"sent": 1001, "pending": 1, "failed": 0}
        again = run_publish(EN_POST, "--retry-pending", cwd=workdir, env=env)
        assert again.returncode == 0 and "Nothing new to send" in again.stdout
        counts = Counter(fake.deliveries.emails())
    assert set(counts) == set(READERS) | set(joined)
    assert {e for e, n in counts.items() if n > 1} == uncertain - {READERS[350]}
    assert sorted(sent_items(report)) == sorted({*READERS, *joined} - {READERS[350]})


def test_a_failed_batch_is_retried_without_the_reader_who_left(workdir: Path) -> None:
    env = email_env("sendgrid")
    with SendGridFake(api_key=EMAIL_KEYS["sendgrid"][1], keep_bodies=False).running() as fake:
        write_config(workdir, transport="sendgrid",
                     channels={"sendgrid": {"base_url": fake.url, "batch_size": BATCH}})
        seed_subscribers(workdir, READERS, env)
        fake.server.handle = Refuse(fake.server.handle, nth=3)
        first = run_publish(EN_POST, cwd=workdir, env=env)
        assert first.returncode == 4, first.stderr  # the channel stopped at the refused batch
        report = status(EN_POST, workdir, env)
        failed = {f["item"]: f for f in report["failed"]}
        assert set(failed) == set(READERS[200:300])
        assert {f["next"] for f in failed.values()} == {"retry"}
        assert tallies(report)["sendgrid"] == {"sent": 200, "pending": 0, "failed": 100}

        leave_and_join(workdir, [READERS[250]], ["late@e2e.example"])
        rerun = run_publish(EN_POST, cwd=workdir, env=env)
        assert rerun.returncode == 0, rerun.stderr  # the one who left is no longer sent to…
        report = status(EN_POST, workdir, env)
        # …and stays failed in the ledger, as per-recipient rows kept him
        assert [(f["item"], f["attempts"]) for f in report["failed"]] == [(READERS[250], 1)]
        assert tallies(report)["sendgrid"] == {"sent": 1000, "pending": 0, "failed": 1}
        counts = Counter(fake.deliveries.emails())
    assert counts == Counter({*READERS, "late@e2e.example"} - {READERS[250]})


def test_a_ledger_written_per_recipient_resumes_exactly(workdir: Path) -> None:
    """The previous code's rows (one per recipient) read and resume as they did."""
    env = email_env("sendgrid")
    with SendGridFake(api_key=EMAIL_KEYS["sendgrid"][1], keep_bodies=False).running() as fake:
        write_config(workdir, transport="sendgrid",
                     channels={"sendgrid": {"base_url": fake.url, "batch_size": BATCH}})
        seed_subscribers(workdir, READERS, env)
        gate = install_gate(fake.server, "/v3/mail/send", nth=4)
        assert crash_mid_request(gate, EN_POST, cwd=workdir, env=env) is None
        before = status(EN_POST, workdir, env)
        as_previous_code_wrote_it(workdir / ".publisher" / "ledger.sqlite3")
        assert ledger_counts(workdir) == (0, 400)
        assert status(EN_POST, workdir, env) == before

        leave_and_join(workdir, [], ["late@e2e.example"])
        rerun = run_publish(EN_POST, cwd=workdir, env=env)
        assert rerun.returncode == 7 and "100 uncertain" in rerun.stdout, rerun.stderr
        retried = run_publish(EN_POST, "--retry-pending", cwd=workdir, env=env)
        assert retried.returncode == 0, retried.stderr
        counts = Counter(fake.deliveries.emails())
    assert counts == Counter([*READERS, *READERS[300:400], "late@e2e.example"])
    report = status(EN_POST, workdir, env)
    assert tallies(report)["sendgrid"] == {"sent": 1001, "pending": 0, "failed": 0}
    batches, items = ledger_counts(workdir)
    assert items == 300 and batches == 8  # 6 + the one who joined, and the retried 100 moved


def as_previous_code_wrote_it(path: Path) -> None:
    """Rewrite each batch row as the per-recipient rows the previous code wrote instead."""
    from publisher.stores.sqlite import SqliteLedger

    ledger = SqliteLedger(path)
    try:
        rows: list[tuple[BatchRow, Row]] = []
        for edition in {r["edition"] for r in ledger.db.execute(
                "SELECT edition FROM batch_deliveries")}:
            rows.extend((b, r) for b in ledger.batch_rows(str(edition)) for r in b.rows())
        with ledger.db.transaction():
            ledger.db.executemany(
                "INSERT INTO deliveries (edition, post, channel, item, batch, state, provider_id,"
                " error, attempts, updated_at, failure) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(r.edition_id, r.slug, r.channel, r.item, r.batch, r.state, r.provider_id, r.error,
                  r.attempts, r.updated_at, r.failure) for _, r in rows])
            ledger.db.execute("DELETE FROM batch_deliveries")
    finally:
        ledger.close()
