"""Write ledger-d833183.*.sql: ledgers made by the previous release's own code, for test_migrations.

Run from the repository root with the previous release's sources first on the path:

    git archive d833183 src | tar -x -C /tmp/prev
    PYTHONPATH=/tmp/prev/src:. .venv/bin/python tests/data/make_previous_ledgers.py

It drives that release's `Ledger` (SQLite) and `PgLedger` (on a throwaway server from tests/pg.py)
through a small send, then dumps schema and rows as SQL.
"""

from __future__ import annotations

import os
import pwd
import sqlite3
import tempfile
from pathlib import Path

from publisher.ledger import PERMANENT, Ledger  # type: ignore[attr-defined]  # the old layout

from tests.helpers.pg import find_bindir

HERE = Path(__file__).parent
TABLES = ("deliveries", "actions", "locks", "batches")


def fill(ledger: Ledger) -> None:
    """One newsletter (sent, refused, left pending), one X post, a skipped channel."""
    ledger.mark_pending("ed1", "post", "smtp", ["a@example.com", "b@example.com",
                                                "c@example.com"], batch="k1")
    ledger.mark_sent("ed1", "smtp", {"a@example.com": ("id-a", "", {})})
    ledger.mark_failed("ed1", "smtp", {"b@example.com": "550 no such user"}, PERMANENT)
    ledger.mark_pending("ed1", "post", "x", ["x#1"], batch="kx")
    ledger.mark_sent("ed1", "x", {"x#1": ("111", "https://x.com/i/web/status/111", {"of": 1})})
    ledger.mark_action("ed1", "post", "", "bluesky", "skip", state="done")


def sqlite_dump() -> str:
    """The SQLite ledger, as `.dump` writes it."""
    with tempfile.TemporaryDirectory() as folder:
        ledger = Ledger(Path(folder) / "ledger.sqlite3")
        fill(ledger)
        ledger.close()
        db = sqlite3.connect(Path(folder) / "ledger.sqlite3")
        dump = "\n".join(db.iterdump()) + "\n"
        db.close()
    return dump


def postgres_dump() -> str:
    """The PostgreSQL ledger: the release's schema script, then its rows as INSERTs."""
    import psycopg

    from publisher import ledger_pg  # type: ignore[attr-defined]
    from tests.helpers.pg import _throwaway_cluster

    owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
    bindir = find_bindir()
    assert bindir is not None
    cluster = _throwaway_cluster(bindir, owner)
    server = next(cluster)
    url = server.url("postgres")
    ledger = ledger_pg.PgLedger(server.url("postgres", with_password=False))
    fill(ledger)
    ledger.plan_batches("ed1", "sendgrid", 2, lambda after: iter([5, 6, 9]), reopen=True)
    ledger.claim_batch("ed1", "sendgrid")
    ledger.close()
    parts = [ledger_pg.SCHEMA.strip(), ledger_pg.ACTIONS_SCHEMA.strip()]
    with psycopg.ClientCursor(psycopg.connect(url, autocommit=True)) as cursor:
        for table in TABLES:
            cursor.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3")
            names = ", ".join(c.name for c in cursor.description or ())
            for row in cursor.fetchall():
                marks = ", ".join(["%s"] * len(row))
                parts.append(cursor.mogrify(f"INSERT INTO {table} ({names}) VALUES ({marks});",
                                            row))
    next(cluster, None)
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    (HERE / "ledger-d833183.sqlite.sql").write_text(sqlite_dump(), encoding="utf-8")
    (HERE / "ledger-d833183.postgresql.sql").write_text(postgres_dump(), encoding="utf-8")
