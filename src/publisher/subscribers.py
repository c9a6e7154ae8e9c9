"""The subscriber list: a SQLite store that streams active subscribers and never forgets an opt-out.

Statuses are subscribed, unsubscribed, bounced and complained; only `subscribed` is ever yielded
for a send. `remove` marks an address unsubscribed instead of deleting it, so a later CSV import
cannot quietly sign it up again (`forget` deletes for erasure requests). Addresses are unique
case-insensitively and stored in email-validator's normalized form.
"""

from __future__ import annotations

import csv
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from publisher.errors import ConfigError, InputError
from publisher.sqlite import connect

STATUSES = ("subscribed", "unsubscribed", "bounced", "complained")
SUPPRESSED = frozenset(STATUSES[1:])
IMPORT_CHUNK = 5000
SCHEMA = """
CREATE TABLE IF NOT EXISTS subscribers (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE COLLATE NOCASE,
    name TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'subscribed'
        CHECK (status IN ('subscribed', 'unsubscribed', 'bounced', 'complained')),
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS subscribers_by_status ON subscribers (status, id);
"""


@dataclass(frozen=True)
class Subscriber:
    """One address on the list."""

    email: str
    name: str = ""
    status: str = "subscribed"
    id: int = 0


@dataclass(frozen=True)
class RowProblem:
    """A CSV row that was not imported, and why."""

    line: int
    value: str
    reason: str


@dataclass
class ImportReport:
    """What an import did; bad rows are listed, never fatal."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    kept_suppressed: int = 0  # rows that would have re-subscribed an opted-out address
    problems: list[RowProblem] = field(default_factory=list)


class SubscriberStore:
    """Subscribers in one SQLite file (WAL, so `publish serve` can write while a send reads)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._db().executescript(SCHEMA)

    def close(self) -> None:
        """Close this thread's connection."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    # -- reading ---------------------------------------------------------------------------

    def get(self, email: str) -> Subscriber | None:
        """One subscriber by address (any status)."""
        row = self._db().execute(
            "SELECT id, email, name, status FROM subscribers WHERE email = ?", (email.strip(),)
        ).fetchone()
        return Subscriber(row[1], row[2], row[3], row[0]) if row else None

    def iter_active(self, chunk: int = 1000) -> Iterator[Subscriber]:
        """Every subscribed address in id order, read a chunk at a time (keyset pagination)."""
        last = 0
        while True:
            rows = self._db().execute(
                "SELECT id, email, name FROM subscribers WHERE status = 'subscribed' AND id > ?"
                " ORDER BY id LIMIT ?",
                (last, chunk),
            ).fetchall()
            if not rows:
                return
            for row_id, email, name in rows:
                yield Subscriber(email, name, "subscribed", row_id)
            last = rows[-1][0]

    def iter_all(self, chunk: int = 1000) -> Iterator[Subscriber]:
        """Every address whatever its status, for export and `subscribers list`."""
        last = 0
        while True:
            rows = self._db().execute(
                "SELECT id, email, name, status FROM subscribers WHERE id > ? ORDER BY id LIMIT ?",
                (last, chunk),
            ).fetchall()
            if not rows:
                return
            for row_id, email, name, status in rows:
                yield Subscriber(email, name, status, row_id)
            last = rows[-1][0]

    def count_active(self) -> int:
        """How many addresses a send would reach."""
        row = self._db().execute(
            "SELECT COUNT(*) FROM subscribers WHERE status = 'subscribed'"
        ).fetchone()
        return int(row[0])

    def counts(self) -> dict[str, int]:
        """Addresses per status."""
        rows = self._db().execute("SELECT status, COUNT(*) FROM subscribers GROUP BY status")
        found = dict(rows.fetchall())
        return {status: int(found.get(status, 0)) for status in STATUSES}

    # -- writing ---------------------------------------------------------------------------

    def add(self, email: str, name: str = "") -> Subscriber:
        """Subscribe an address (an explicit opt-in, so it re-subscribes an opted-out one)."""
        address = normalize_email(email)
        now = time.time()
        with self._write() as db:
            db.execute(
                "INSERT INTO subscribers (email, name, status, created_at, updated_at)"
                " VALUES (?, ?, 'subscribed', ?, ?) ON CONFLICT (email) DO UPDATE SET"
                " status = 'subscribed', name = CASE WHEN excluded.name <> '' THEN excluded.name"
                " ELSE name END, updated_at = excluded.updated_at",
                (address, name.strip(), now, now),
            )
        found = self.get(address)
        assert found is not None
        return found

    def set_status(self, email: str, status: str) -> Subscriber:
        """Change an address's status; InputError for an unknown address or status."""
        check_status(status)
        with self._write() as db:
            changed = db.execute(
                "UPDATE subscribers SET status = ?, updated_at = ? WHERE email = ?",
                (status, time.time(), email.strip()),
            ).rowcount
        found = self.get(email) if changed else None
        if found is None:
            raise InputError(f"{email} is not on the list", where="subscribers",
                             fix="check the address with `publish subscribers list`")
        return found

    def remove(self, email: str) -> Subscriber:
        """Unsubscribe an address (kept as unsubscribed so no import re-adds it)."""
        return self.set_status(email, "unsubscribed")

    def unsubscribe(self, email: str) -> None:
        """Record an opt-out even for an address we no longer hold (one-click links)."""
        now = time.time()
        with self._write() as db:
            db.execute(
                "INSERT INTO subscribers (email, status, created_at, updated_at)"
                " VALUES (?, 'unsubscribed', ?, ?) ON CONFLICT (email) DO UPDATE SET"
                " status = 'unsubscribed', updated_at = excluded.updated_at",
                (email.strip(), now, now),
            )

    def forget(self, email: str) -> bool:
        """Delete an address entirely (erasure request); True when it existed."""
        with self._write() as db:
            gone = db.execute("DELETE FROM subscribers WHERE email = ?", (email.strip(),))
            return gone.rowcount > 0

    # -- CSV -------------------------------------------------------------------------------

    def import_csv(self, path: Path) -> ImportReport:
        """Merge a CSV (email[,name][,status]); idempotent, and bad rows are reported, not fatal."""
        report = ImportReport()
        rows = _read_csv(path, report)
        while chunk := list(islice(rows, IMPORT_CHUNK)):  # bounded memory for huge files
            with self._write() as db:
                for line, email, name, status in chunk:
                    _merge(db, report, line, email, name, status)
        return report

    def export_csv(self, path: Path) -> int:
        """Write every address with its name and status; returns the row count."""
        count = 0
        with path.open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["email", "name", "status"])
            for subscriber in self.iter_all():
                writer.writerow([subscriber.email, subscriber.name, subscriber.status])
                count += 1
        return count

    # -- connections -----------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        """This thread's connection (sqlite3 connections must not cross threads)."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            try:
                db = connect(self.path)
            except (OSError, sqlite3.Error) as exc:
                raise ConfigError(f"cannot open the subscriber store ({exc})",
                                  where=str(self.path), fix="check the `subscribers` path") from exc
            self._local.db = db
        return db

    def _write(self) -> _Transaction:
        """A BEGIN IMMEDIATE transaction on this thread's connection."""
        return _Transaction(self._db())


class _Transaction:
    """Context manager: BEGIN IMMEDIATE … COMMIT, or ROLLBACK on error."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")


def check_status(status: str) -> None:
    """InputError for a status the store does not know."""
    if status not in STATUSES:
        raise InputError(f"unknown status {status!r}", where="subscribers",
                         fix=f"use one of: {', '.join(STATUSES)}")


def normalize_email(email: str) -> str:
    """The address in normalized form, or InputError saying what is wrong with it."""
    from email_validator import EmailNotValidError, validate_email

    try:
        return str(validate_email(email.strip(), check_deliverability=False).normalized)
    except EmailNotValidError as exc:
        raise InputError(f"invalid address {email!r}: {exc}", where="subscribers",
                         fix="correct the address") from exc


def _read_csv(path: Path, report: ImportReport) -> Iterator[tuple[int, str, str, str]]:
    """Valid (line, email, name, status) rows; problems go into the report."""
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise InputError(f"cannot read {path} ({exc.strerror})", where=str(path),
                         fix="check the file path") from exc
    with handle:
        reader = csv.reader(handle)
        columns = ["email", "name", "status"]
        for row in reader:
            line = reader.line_num
            cells = [c.strip() for c in row]
            if not any(cells) or cells[0].startswith("#"):
                continue
            if line == 1 and cells[0].lower() in ("email", "e-mail", "address"):
                columns = [c.lower() for c in cells]
                continue
            yield from _parse_row(line, dict(zip(columns, cells, strict=False)), report)


def _parse_row(
    line: int, row: dict[str, str], report: ImportReport
) -> Iterator[tuple[int, str, str, str]]:
    """Validate one row's address and status."""
    raw = row.get("email", "")
    status = (row.get("status") or "").lower()
    if status and status not in STATUSES:
        report.problems.append(RowProblem(line, raw, f"unknown status {status!r}"))
        return
    try:
        email = normalize_email(raw)
    except InputError as exc:
        reason = str(exc.__cause__) if exc.__cause__ else exc.problem
        report.problems.append(RowProblem(line, raw, reason))
        return
    yield line, email, row.get("name", ""), status


def _merge(
    db: sqlite3.Connection, report: ImportReport, line: int, email: str, name: str, status: str
) -> None:
    """Insert or update one imported row without ever re-subscribing an opted-out address."""
    now = time.time()
    found = db.execute("SELECT name, status FROM subscribers WHERE email = ?", (email,)).fetchone()
    if found is None:
        db.execute(
            "INSERT INTO subscribers (email, name, status, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (email, name, status or "subscribed", now, now),
        )
        report.added += 1
        return
    old_name, old_status = found
    new_status = status or old_status
    if old_status in SUPPRESSED and new_status == "subscribed":
        report.kept_suppressed += 1
        new_status = old_status
    new_name = name or old_name
    if (new_name, new_status) == (old_name, old_status):
        report.unchanged += 1
        return
    db.execute(
        "UPDATE subscribers SET name = ?, status = ?, updated_at = ? WHERE email = ?",
        (new_name, new_status, now, email),
    )
    report.updated += 1
