"""The stores in SQLite files: WAL, patient when busy, one connection per thread.

Only the primitives live here (connect, execute, transactions, the dialect); every rule is in
`publisher.stores.ledger` and `publisher.stores.subscribers`. BEGIN IMMEDIATE takes the write
lock at the start of a transaction, so writers queue instead of failing, and it already keeps
other processes out: `lock(name)` has nothing left to do.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from publisher.errors import ConfigError, SystemFault
from publisher.stores.database import Cursor, Dialect, Value
from publisher.stores.ledger import STALE_CLAIM_SECONDS, Ledger
from publisher.stores.subscribers import SubscriberStore

BUSY_SECONDS = 30.0
EPOCH_NOW = "((julianday('now') - 2440587.5) * 86400.0)"  # unix time; julianday has ms
DIALECT = Dialect(
    name="sqlite", clock=EPOCH_NOW, clock_type="DOUBLE PRECISION",
    age=EPOCH_NOW + " - {column}", serial_key="INTEGER PRIMARY KEY", byte_order="",
    skip_locked="",  # a transaction holds the whole file: nobody else is in it to skip
)
# SQLite result codes that mean the disk, not the query, is at fault
# (https://www.sqlite.org/rescode.html): full, I/O error, read-only, cannot open, no permission.
DISK_FAULTS = ("SQLITE_FULL", "SQLITE_IOERR", "SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")


def connect(path: Path) -> sqlite3.Connection:
    """A WAL-mode connection that waits out other processes' locks.

    Switching to WAL takes an exclusive lock and SQLite does not apply its busy timeout to
    that switch (https://www.sqlite.org/wal.html#activating_and_configuring_wal_mode), so two
    runs opening a new file at the same moment retry here instead of failing.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + BUSY_SECONDS
    while True:
        db = sqlite3.connect(path, timeout=BUSY_SECONDS, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.row_factory = sqlite3.Row
            return db
        except sqlite3.OperationalError as exc:
            db.close()
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


class SqliteDatabase:
    """One SQLite file, one connection per thread (`publish serve` writes while a send reads)."""

    dialect = DIALECT

    def __init__(self, path: Path, *, key: str, label: str) -> None:
        self.path, self.key, self.label = path, key, label
        self.where = str(path)
        self._local = threading.local()
        self._db()  # a file that cannot be opened is said now, not at the first statement

    def execute(self, sql: str, params: Sequence[Value] = ()) -> Cursor:
        """Run one statement on this thread's connection."""
        return self._db().execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Value]]) -> None:
        """Run one statement per row."""
        self._db().executemany(sql, rows)

    def tuples(self, sql: str, params: Sequence[Value] = ()) -> list[tuple[Value, ...]]:
        """Run one query; its rows as plain tuples (no `sqlite3.Row` per row)."""
        cursor = self._db().cursor()
        cursor.row_factory = None
        rows: list[tuple[Value, ...]] = cursor.execute(sql, params).fetchall()
        return rows

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on error; a failing disk is a SystemFault."""
        db = self._db()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if not getattr(exc, "sqlite_errorname", "").startswith(DISK_FAULTS):
                raise
            raise SystemFault(
                f"cannot write {self.label} ({exc})", where=self.where,
                fix="free disk space or make its folder writable, then run again (it resumes)",
            ) from exc

    def lock(self, name: str) -> None:
        """Nothing to do: BEGIN IMMEDIATE already keeps other writers out."""

    def columns(self, table: str) -> set[str]:
        """The table's column names."""
        return {str(r["name"]) for r in self._db().execute(f"PRAGMA table_info({table})")}

    def tables(self) -> set[str]:
        """The database's table names."""
        rows = self._db().execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {str(r["name"]) for r in rows}

    @property
    def closed(self) -> bool:
        """Whether this thread's connection was closed."""
        return getattr(self._local, "db", None) is None

    def close(self) -> None:
        """Close this thread's connection."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    def _db(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            try:
                db = connect(self.path)
            except (OSError, sqlite3.Error) as exc:
                raise ConfigError(f"cannot open {self.label} ({exc})", where=str(self.path),
                                  fix=f"check the `{self.key}` path") from exc
            self._local.db = db
        return db


class SqliteLedger(Ledger):
    """The delivery record of one project, in one SQLite file (`ledger = "ledger.sqlite3"`)."""

    def __init__(self, target: str | Path, *,
                 stale_claim_seconds: float = STALE_CLAIM_SECONDS) -> None:
        self.path = Path(target)
        db = SqliteDatabase(self.path, key="ledger", label="the ledger")
        super().__init__(db, stale_claim_seconds=stale_claim_seconds)


class SqliteSubscriberStore(SubscriberStore):
    """The subscriber list in one SQLite file (`subscribers = "subscribers.sqlite3"`)."""

    def __init__(self, target: str | Path) -> None:
        self.path = Path(target)
        super().__init__(SqliteDatabase(self.path, key="subscribers",
                                        label="the subscriber store"))
