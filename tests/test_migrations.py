"""A ledger made by the previous release opens, migrates once, and keeps every promise it recorded.

The fixtures tests/data/ledger-d833183.{sqlite,postgresql}.sql were written by the previous
release's own code (d833183's `Ledger` and `PgLedger`) driven through a small send; see
tests/data/make_previous_ledgers.py for how to make them again. Each case runs on SQLite and on
PostgreSQL (tests/helpers/pg.py starts a throwaway server, or skips, or fails under CI).
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from publisher.errors import ConfigError, LedgerConflict
from publisher.stores.backends import open_ledger, open_store
from publisher.stores.ledger import Ledger
from publisher.stores.migrations import LEDGER, SUBSCRIBERS, ledger_step, recorded_version
from tests.helpers.pg import pg_server, pg_url

__all__ = ["pg_server", "pg_url"]  # fixtures, imported so pytest finds them

DATA = Path(__file__).parent / "data"
TABLES = ("deliveries", "actions", "locks", "batches", "feed_sources", "feed_items",
          "schedules", "batch_deliveries")


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A `ledger` setting naming an empty database of each kind."""
    if request.param == "postgresql":
        pytest.importorskip("psycopg")
        return str(request.getfixturevalue("pg_url"))
    return str(tmp_path / "ledger.sqlite3")


def load(target: str, script: str) -> None:
    """Run a schema-and-rows script against the database, as the old release left it."""
    if target.startswith("postgresql"):
        import psycopg

        with psycopg.connect(target, autocommit=True) as db:
            db.execute(script.encode())
        return
    db = sqlite3.connect(target)
    db.executescript(script)
    db.close()


def previous_release(target: str) -> None:
    """The previous release's ledger for this backend."""
    kind = "postgresql" if target.startswith("postgresql") else "sqlite"
    load(target, (DATA / f"ledger-d833183.{kind}.sql").read_text(encoding="utf-8"))


@pytest.fixture
def migrated(target: str) -> Iterator[Ledger]:
    previous_release(target)
    ledger = open_ledger(target)
    yield ledger
    ledger.close()


def test_the_previous_release_ledger_migrates_to_the_last_step(migrated: Ledger) -> None:
    assert recorded_version(migrated.db, "ledger") == len(LEDGER) >= 5
    assert set(TABLES) <= migrated.db.tables()


def test_what_it_recorded_still_holds(migrated: Ledger) -> None:
    sent, refused, pending = (migrated.get("ed1", "smtp", f"{c}@example.com") for c in "abc")
    assert sent is not None and (sent.state, sent.provider_id) == ("sent", "id-a")
    assert refused is not None and refused.failure == "permanent"
    assert not refused.retryable(max_attempts=3)
    assert pending is not None and pending.state == "pending"
    post = migrated.get("ed1", "x", "x#1")
    assert post is not None and post.extra == {"of": 1} and post.url.endswith("/111")
    assert [(t.channel, t.sent, t.pending, t.failed) for t in migrated.tally("ed1")] == [
        ("smtp", 1, 1, 1), ("x", 1, 0, 0)]
    assert [a.item for a in migrated.actions("skip", slug="post")] == ["bluesky"]
    with pytest.raises(LedgerConflict, match="changed"):
        migrated.check_edition("post", "ed2", resend=False, source="posts/a.md")


def test_a_migrated_ledger_takes_new_rows_and_the_lock(migrated: Ledger) -> None:
    migrated.mark_pending("ed1", "post", "smtp", ["c@example.com"], batch="k2")
    row = migrated.get("ed1", "smtp", "c@example.com")
    assert row is not None and (row.attempts, row.batch) == (2, "k2")
    migrated.mark_action("ed1", "post", "x", "x#1", "retract", target="111", state="done")
    assert [a.target for a in migrated.actions("retract", edition_id="ed1")] == ["111"]
    with migrated.lock("post"):
        migrated.heartbeat("post")


def test_a_migrated_ledger_moves_an_old_row_into_a_batch_row_exactly(migrated: Ledger) -> None:
    old = migrated.get("ed1", "smtp", "c@example.com")  # pending, left by the old release
    assert old is not None
    written = migrated.mark_batch_pending("ed1", "post", "smtp", "k3",
                                          [3, 4], ["c@example.com", "d@example.com"], {3: old})
    assert [(r.items, r.attempts) for r in written] == [(("d@example.com",), 1),
                                                        (("c@example.com",), old.attempts + 1)]
    assert migrated.get("ed1", "smtp", "c@example.com") is None  # one record per reader
    assert [(t.channel, t.sent, t.pending, t.failed) for t in migrated.tally("ed1")] == [
        ("smtp", 1, 2, 1), ("x", 1, 0, 0)]
    migrated.settle_batch(written, {"c@example.com": "m1", "d@example.com": "m1"}, refused={},
                          uncertain={})
    assert [(r.item, r.state) for r in migrated.rows("ed1", "smtp")] == [
        ("a@example.com", "sent"), ("b@example.com", "failed"), ("c@example.com", "sent"),
        ("d@example.com", "sent")]


def test_a_migrated_ledger_keeps_schedules_once_and_renews_a_cancelled_one(
    migrated: Ledger,
) -> None:
    from publisher.stores.schedules import Scheduled, ScheduleLog

    log = ScheduleLog(migrated)
    first = Scheduled("ed1", "post", "posts/a.md", "newsletter", "sendgrid",
                      "2026-12-02T08:00:00+09:00", "provider", handle="b1", nonce="n1")
    log.add([first, Scheduled("ed1", "post", "posts/a.md", "x", "x", first.at, "queued")])
    log.add([Scheduled(**{**first.__dict__, "handle": "b2"})])  # a rerun: the first row holds
    assert [(r.output, r.handle) for r in log.rows(slug="post")] == [("newsletter", "b1"),
                                                                     ("x", "")]
    log.set_state("ed1", ["newsletter", "x"], "cancelled")
    log.add([Scheduled(**{**first.__dict__, "handle": "b3"})])  # scheduled again after cancel
    assert [(r.output, r.state, r.handle) for r in log.rows(slug="post")] == [
        ("newsletter", "scheduled", "b3"), ("x", "cancelled", "")]
    assert [r.output for r in log.rows(state="scheduled")] == ["newsletter"]


def test_a_migrated_ledger_has_the_columns_of_a_new_one(migrated: Ledger, tmp_path: Path) -> None:
    fresh = open_ledger(tmp_path / "fresh.sqlite3")
    assert {t: migrated.db.columns(t) for t in TABLES} == {t: fresh.db.columns(t) for t in TABLES}
    fresh.close()


def test_opening_again_applies_nothing(target: str) -> None:
    previous_release(target)
    open_ledger(target).close()
    first = open_ledger(target)
    stamp = first.db.execute("SELECT applied_at FROM schema_versions").fetchall()
    first.close()
    again = open_ledger(target)
    assert again.db.execute("SELECT applied_at FROM schema_versions").fetchall() == stamp
    again.close()


def test_a_ledger_from_a_newer_release_is_refused(target: str) -> None:
    open_ledger(target).close()
    load(target, "UPDATE schema_versions SET version = 999 WHERE component = 'ledger'")
    with pytest.raises(ConfigError, match="newer than this release") as caught:
        open_ledger(target)
    assert "upgrade publisher" in caught.value.one_line()


def test_a_ledger_older_than_failure_kinds_gains_the_column(tmp_path: Path) -> None:
    target = str(tmp_path / "older.sqlite3")
    load(target, "CREATE TABLE deliveries (edition TEXT NOT NULL, post TEXT NOT NULL,"
                 " channel TEXT NOT NULL, item TEXT NOT NULL, batch TEXT NOT NULL DEFAULT '',"
                 " state TEXT NOT NULL, provider_id TEXT NOT NULL DEFAULT '',"
                 " url TEXT NOT NULL DEFAULT '', extra TEXT NOT NULL DEFAULT '{}',"
                 " error TEXT NOT NULL DEFAULT '', attempts INTEGER NOT NULL DEFAULT 0,"
                 " updated_at REAL NOT NULL, PRIMARY KEY (edition, channel, item));"
                 " INSERT INTO deliveries (edition, post, channel, item, state, attempts,"
                 " updated_at) VALUES ('e', 'p', 'smtp', 'a@example.com', 'failed', 1, 1.0);")
    ledger = open_ledger(target)
    row = ledger.get("e", "smtp", "a@example.com")
    assert row is not None and row.failure == "" and row.retryable(max_attempts=3)
    ledger.close()


def test_steps_are_numbered_in_order() -> None:
    with pytest.raises(ValueError, match="follows step"):
        ledger_step(len(LEDGER) + 2)(lambda db: None)
    assert len(LEDGER) >= 4


def _open_both_at(target: str, start: float, store_first: bool) -> None:
    while time.time() < start:
        time.sleep(0.001)
    for opener in (open_store, open_ledger) if store_first else (open_ledger, open_store):
        opener(target).close()


def test_runs_opening_a_new_database_at_once_migrate_it_once(target: str) -> None:
    context = multiprocessing.get_context("spawn")
    start = time.time() + 2.0
    children = [context.Process(target=_open_both_at, args=(target, start, n % 2 == 0))
                for n in range(6)]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
    assert [child.exitcode for child in children] == [0] * 6
    ledger = open_ledger(target)
    rows = ledger.db.execute("SELECT component, version FROM schema_versions ORDER BY component")
    assert [(r["component"], r["version"]) for r in rows] == [
        ("ledger", len(LEDGER)), ("subscribers", len(SUBSCRIBERS))]
    ledger.close()
