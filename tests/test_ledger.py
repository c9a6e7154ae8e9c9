"""The ledger's promises: pending before sent, conflicts on changed posts, one sender at a time."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pytest

from publisher.errors import LedgerConflict
from publisher.stores.backends import ledger_class, store_class
from publisher.stores.sqlite import SqliteLedger
from tests.helpers import run_publish


@pytest.fixture
def ledger(tmp_path: Path) -> SqliteLedger:
    return SqliteLedger(tmp_path / "ledger.sqlite3")


def test_rows_go_pending_then_sent_with_the_provider_id(ledger: SqliteLedger) -> None:
    ledger.mark_pending("ed1", "post", "smtp", ["a@example.com", "b@example.com"], batch="k1")
    assert ledger.get("ed1", "smtp", "a@example.com").state == "pending"  # type: ignore[union-attr]
    ledger.mark_sent("ed1", "smtp", {"a@example.com": ("id-1", "", {})})
    ledger.mark_failed("ed1", "smtp", {"b@example.com": "550 no such user"})
    a, b = ledger.get("ed1", "smtp", "a@example.com"), ledger.get("ed1", "smtp", "b@example.com")
    assert a is not None and (a.state, a.provider_id, a.batch) == ("sent", "id-1", "k1")
    assert b is not None and (b.state, b.error) == ("failed", "550 no such user")
    [tally] = ledger.tally("ed1")
    assert (tally.sent, tally.pending, tally.failed) == (1, 0, 1)


def test_states_reads_many_items_across_chunks(ledger: SqliteLedger) -> None:
    emails = [f"r{i}@example.com" for i in range(1200)]
    ledger.mark_pending("ed", "post", "sendgrid", emails, batch="b")
    found = ledger.states("ed", "sendgrid", [*emails, "absent@example.com"])
    assert len(found) == 1200 and "absent@example.com" not in found


def test_a_changed_article_needs_resend(ledger: SqliteLedger) -> None:
    ledger.mark_pending("old", "post", "outbox", ["x#1"])
    ledger.mark_sent("old", "outbox", {"x#1": ("p", "", {})})
    with pytest.raises(LedgerConflict, match="changed") as caught:
        ledger.check_edition("post", "new", resend=False, source="posts/a.md")
    assert "--resend" in caught.value.one_line()
    ledger.check_edition("post", "new", resend=True, source="posts/a.md")
    ledger.check_edition("post", "old", resend=False, source="posts/a.md")


def test_the_send_lock_admits_one_holder(ledger: SqliteLedger, tmp_path: Path) -> None:
    other = SqliteLedger(tmp_path / "ledger.sqlite3")
    with (
        ledger.lock("post"),
        pytest.raises(LedgerConflict, match="another publish run"),
        other.lock("post", wait=0.3),
    ):
        pass
    with other.lock("post"):
        pass


def _hold_lock_then_die(path: str, ready: str) -> None:
    ledger = SqliteLedger(Path(path))
    with ledger.lock("post"):
        Path(ready).touch()
        time.sleep(60)


def test_a_dead_holder_does_not_block_the_next_run(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    child = multiprocessing.get_context("spawn").Process(
        target=_hold_lock_then_die, args=(str(tmp_path / "l.sqlite3"), str(ready))
    )
    child.start()
    deadline = time.monotonic() + 20
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    ledger = SqliteLedger(tmp_path / "l.sqlite3")
    with pytest.raises(LedgerConflict), ledger.lock("post"):
        pass
    os.kill(child.pid or 0, 9)
    child.join()
    with ledger.lock("post"):
        pass


def _open_at(path: str, start: float) -> None:
    while time.time() < start:
        time.sleep(0.001)
    SqliteLedger(Path(path)).close()


def test_runs_opening_a_new_ledger_at_once_all_succeed(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    start = time.time() + 1.5
    children = [
        context.Process(target=_open_at, args=(str(tmp_path / "new.sqlite3"), start))
        for _ in range(6)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(30)
    assert [child.exitcode for child in children] == [0] * 6


def test_only_postgresql_backends_are_shared_by_several_senders(tmp_path: Path) -> None:
    url = "postgresql://news@db.example/news"
    assert ledger_class(url).shared and store_class(url).shared
    assert not ledger_class(tmp_path / "l.sqlite3").shared
    assert not store_class(tmp_path / "s.sqlite3").shared


def test_join_with_a_sqlite_ledger_is_refused_before_anything_opens(workdir: Path) -> None:
    result = run_publish("posts/city-composting.md", "--join", cwd=workdir)
    assert result.returncode == 3, result.stderr
    assert "--join needs the ledger and the subscribers on PostgreSQL" in result.stderr
    assert not (workdir / ".publisher" / "ledger.sqlite3").exists()
