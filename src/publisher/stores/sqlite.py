"""Opening the project's SQLite files the same way everywhere: WAL, and patient when busy."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

BUSY_SECONDS = 30.0


def connect(path: Path, schema: str = "") -> sqlite3.Connection:
    """A WAL-mode connection with the schema in place, waiting out other processes' locks.

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
            if schema:
                db.executescript(schema)
            return db
        except sqlite3.OperationalError as exc:
            db.close()
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)
