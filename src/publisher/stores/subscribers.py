"""The subscriber list: one store over SQLite or PostgreSQL that never forgets an opt-out.

Statuses are subscribed, unsubscribed, bounced and complained; only `subscribed` is ever yielded
for a send. Each status carries the reason it was set and when, so `subscribers list` can say why
an address is not mailed. `remove` marks an address unsubscribed instead of deleting it, so a later
CSV import cannot quietly sign it up again (`forget` deletes for erasure requests).

Addresses are matched by one canonical form (`canonical_email`): the domain in its IDNA ASCII
form, lower-cased, and the local part NFC-normalized and Unicode case-folded. RFC 5321 §2.4 lets a
server treat local parts case-sensitively, but the providers we send through (SendGrid, Postmark,
Resend) and the mailbox providers do not: their suppression lists match case-insensitively, so
two case variants are one reader. Dots and `+tags` are left alone: only Gmail ignores them, and
folding them would merge different people at every other provider.

All SQL here is shared by both databases; a `Backend` supplies the connection, the transaction and
the one base table whose column types differ. The schema is versioned: numbered migrations are
applied once and recorded in `schema_versions`, so stores made by older releases are upgraded in
place on first open.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Protocol

from publisher.errors import ConfigError, InputError
from publisher.stores.sqlite import connect

STATUSES = ("subscribed", "unsubscribed", "bounced", "complained")
SUPPRESSED = frozenset(STATUSES[1:])
# A suppression never weakens an address: a complaint outranks a bounce, a bounce an opt-out.
# Sync applies several provider lists in turn; this order keeps a second sync a no-op.
RANK = {"subscribed": 0, "unsubscribed": 1, "bounced": 2, "complained": 3}
IMPORT_CHUNK = 5000
COMPONENT = "subscribers"
COLUMNS = "id, email, name, status, reason, status_at, uid"
SQLITE_BASE = """
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
    """One address on the list, with why and since when it has its status."""

    email: str
    name: str = ""
    status: str = "subscribed"
    id: int = 0
    reason: str = ""
    status_at: float = 0.0
    uid: str = ""  # random, per subscriber: what unsubscribe tokens carry instead of the address


@dataclass(frozen=True)
class Suppression:
    """Word that an address must not be mailed (a bounce, a complaint, an opt-out) and why."""

    email: str
    status: str
    reason: str
    at: float | None = None  # when it happened, if the provider says; else now


@dataclass(frozen=True)
class StatusChange:
    """One address whose status a suppression changed (`before` None: it was not on the list)."""

    email: str
    before: str | None
    after: str
    reason: str


@dataclass
class SuppressReport:
    """What `suppress` did: the changes, and how many entries changed nothing."""

    changed: list[StatusChange] = field(default_factory=list)
    unchanged: int = 0

    def tally(self) -> dict[str, int]:
        """Changes per suppressed status plus the unchanged count (the `sync --json` shape)."""
        counts = dict.fromkeys(("bounced", "complained", "unsubscribed"), 0)
        for change in self.changed:
            counts[change.after] += 1
        return {**counts, "unchanged": self.unchanged}


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
    resubscribed: list[str] = field(default_factory=list)  # only with resubscribe=True
    problems: list[RowProblem] = field(default_factory=list)


@dataclass(frozen=True)
class ImportRow:
    """One valid CSV row: its line, the normalized address, its match key, name and status."""

    line: int
    email: str
    key: str
    name: str
    status: str


class Cursor(Protocol):
    """The part of a DB-API cursor the store reads."""

    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Backend(Protocol):
    """One database under the store: statements with `?` placeholders, and transactions."""

    @property
    def base_schema(self) -> Sequence[str]: ...

    def execute(self, sql: str, params: Sequence[object] = ()) -> Cursor: ...
    def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None: ...
    def transaction(self) -> AbstractContextManager[None]: ...
    def lock_schema(self) -> None: ...
    def close(self) -> None: ...


class SubscriberStore:
    """The subscriber list; `SubscriberStore(path)` is a SQLite file (see `open_store`)."""

    def __init__(self, path: Path | str) -> None:
        self._attach(SqliteBackend(Path(path)))

    def _attach(self, backend: Backend) -> None:
        """Use this database, bringing its schema up to date first."""
        self.backend = backend
        migrate(backend)

    def close(self) -> None:
        """Close the connection (this thread's, for SQLite)."""
        self.backend.close()

    # -- reading ---------------------------------------------------------------------------

    def get(self, email: str) -> Subscriber | None:
        """One subscriber by address, any case or script variant of it (any status)."""
        row = self.backend.execute(
            f"SELECT {COLUMNS} FROM subscribers WHERE key = ?", (canonical_email(email),)
        ).fetchone()
        return _subscriber(row) if row else None

    def get_by_uid(self, uid: str) -> Subscriber | None:
        """The subscriber an unsubscribe token's id names."""
        row = self.backend.execute(
            f"SELECT {COLUMNS} FROM subscribers WHERE uid = ?", (uid,)
        ).fetchone()
        return _subscriber(row) if row else None

    def iter_active(self, chunk: int = 1000, *, after: int = 0) -> Iterator[Subscriber]:
        """Every subscribed address with an id above `after`, in id order, a page at a time."""
        yield from self._pages("status = 'subscribed' AND", chunk, after)

    def iter_all(self, chunk: int = 1000) -> Iterator[Subscriber]:
        """Every address whatever its status, for export and `subscribers list`."""
        yield from self._pages("", chunk, 0)

    def iter_between(self, first_id: int, last_id: int, chunk: int = 1000) -> Iterator[Subscriber]:
        """The subscribed addresses of one batch's id range, in id order."""
        for subscriber in self.iter_active(chunk, after=first_id - 1):
            if subscriber.id > last_id:
                return
            yield subscriber

    def active_ids(self, after: int, chunk: int = 10_000) -> Iterator[int]:
        """Ids of subscribed addresses above `after`, for cutting a send into batches."""
        last = after
        while True:
            rows = self.backend.execute(
                "SELECT id FROM subscribers WHERE status = 'subscribed' AND id > ?"
                " ORDER BY id LIMIT ?", (last, chunk),
            ).fetchall()
            if not rows:
                return
            yield from (int(row[0]) for row in rows)
            last = rows[-1][0]

    def count_active(self) -> int:
        """How many addresses a send would reach."""
        row = self.backend.execute(
            "SELECT COUNT(*) FROM subscribers WHERE status = 'subscribed'"
        ).fetchone()
        return int(row[0])

    def counts(self) -> dict[str, int]:
        """Addresses per status."""
        rows = self.backend.execute("SELECT status, COUNT(*) FROM subscribers GROUP BY status")
        found = dict(rows.fetchall())
        return {status: int(found.get(status, 0)) for status in STATUSES}

    def _pages(self, where: str, chunk: int, after: int) -> Iterator[Subscriber]:
        """Rows matching `where` in id order, read a chunk at a time (keyset pagination)."""
        last = after
        while True:
            rows = self.backend.execute(
                f"SELECT {COLUMNS} FROM subscribers WHERE {where} id > ? ORDER BY id LIMIT ?",
                (last, chunk),
            ).fetchall()
            if not rows:
                return
            yield from (_subscriber(row) for row in rows)
            last = rows[-1][0]

    # -- writing ---------------------------------------------------------------------------

    def add(self, email: str, name: str = "", *, resubscribe: bool = False,
            reason: str = "added") -> Subscriber:
        """Subscribe an address; one that opted out, bounced or complained needs `resubscribe`."""
        address, key = validated_email(email)
        with self.backend.transaction():
            found = self._row(key)
            if found is None:
                self._insert(address, key, name.strip(), "subscribed", reason, time.time())
            elif found.status in SUPPRESSED and not resubscribe:
                raise InputError(
                    f"{found.email} is {found.status} ({describe_status(found)})",
                    where="subscribers",
                    fix="pass --resubscribe only if they asked to subscribe again",
                )
            else:
                self._update(key, name.strip() or found.name,
                             "subscribed", reason if found.status != "subscribed" else None)
        subscriber = self.get(key)
        assert subscriber is not None
        return subscriber

    def set_status(self, email: str, status: str, reason: str = "") -> Subscriber:
        """Change an address's status; InputError for an unknown address or status."""
        check_status(status)
        key = canonical_email(email)
        with self.backend.transaction():
            found = self._row(key)
            if found is not None and found.status != status:
                self._update(key, found.name, status, reason or f"set to {status}")
        if found is None:
            raise InputError(f"{email} is not on the list", where="subscribers",
                             fix="check the address with `publish subscribers list`")
        subscriber = self.get(key)
        assert subscriber is not None
        return subscriber

    def remove(self, email: str) -> Subscriber:
        """Unsubscribe an address (kept as unsubscribed so no import re-adds it)."""
        return self.set_status(email, "unsubscribed", "removed with `subscribers remove`")

    def unsubscribe(self, email: str, reason: str = "one-click unsubscribe") -> None:
        """Record an opt-out even for an address we no longer hold (one-click links)."""
        self.suppress([Suppression(email, "unsubscribed", reason)])

    def suppress(self, entries: Iterable[Suppression]) -> SuppressReport:
        """Mark addresses bounced, complained or unsubscribed; idempotent, says what changed.

        An address not on the list is recorded suppressed, so no later import adds it. A status
        is only ever strengthened (see RANK): the same bounce twice, or an opt-out of a bounced
        address, changes nothing.
        """
        report = SuppressReport()
        now = time.time()
        items = iter(entries)
        while chunk := list(islice(items, IMPORT_CHUNK)):
            with self.backend.transaction():
                for entry in chunk:
                    self._suppress_one(entry, now, report)
        return report

    def forget(self, email: str) -> bool:
        """Delete an address entirely (erasure request); True when it existed."""
        with self.backend.transaction():
            gone = self.backend.execute(
                "DELETE FROM subscribers WHERE key = ?", (canonical_email(email),)
            )
            return gone.rowcount > 0

    def _suppress_one(self, entry: Suppression, now: float, report: SuppressReport) -> None:
        """Apply one suppression inside the caller's transaction."""
        if entry.status not in SUPPRESSED:
            raise ValueError(f"not a suppressed status: {entry.status!r}")
        key = canonical_email(entry.email)
        at = entry.at if entry.at is not None else now
        found = self._row(key)
        if found is None:
            self._insert(loose_address(entry.email), key, "", entry.status, entry.reason, at)
            report.changed.append(StatusChange(entry.email.strip(), None, entry.status,
                                               entry.reason))
        elif RANK[entry.status] > RANK[found.status]:
            self._update(key, found.name, entry.status, entry.reason, at)
            report.changed.append(StatusChange(found.email, found.status, entry.status,
                                               entry.reason))
        else:
            report.unchanged += 1

    def _row(self, key: str) -> Subscriber | None:
        """The row for a match key, inside the caller's transaction."""
        row = self.backend.execute(
            f"SELECT {COLUMNS} FROM subscribers WHERE key = ?", (key,)
        ).fetchone()
        return _subscriber(row) if row else None

    def _insert(self, email: str, key: str, name: str, status: str, reason: str,
                at: float) -> None:
        """A new row with a fresh token id (a concurrent insert of the same key wins)."""
        now = time.time()
        self.backend.execute(
            "INSERT INTO subscribers (email, key, uid, name, status, reason, status_at,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (key) DO NOTHING",
            (email, key, new_uid(), name, status, reason, at, now, now),
        )

    def _update(self, key: str, name: str, status: str, reason: str | None,
                at: float | None = None) -> None:
        """Set name and status; a new `reason` also restamps the status time."""
        now = time.time()
        if reason is None:
            self.backend.execute(
                "UPDATE subscribers SET name = ?, status = ?, updated_at = ? WHERE key = ?",
                (name, status, now, key),
            )
            return
        self.backend.execute(
            "UPDATE subscribers SET name = ?, status = ?, reason = ?, status_at = ?,"
            " updated_at = ? WHERE key = ?",
            (name, status, reason, at if at is not None else now, now, key),
        )

    # -- CSV -------------------------------------------------------------------------------

    def import_csv(self, path: Path, *, resubscribe: bool = False, encoding: str | None = None,
                   mapping: Mapping[str, str] | None = None) -> ImportReport:
        """Merge a CSV (see subscriber_csv); idempotent, and bad rows are reported, not fatal."""
        from publisher.stores.subscriber_csv import read_rows

        report = ImportReport()
        rows = read_rows(path, report, encoding=encoding, mapping=mapping)
        while chunk := list(islice(rows, IMPORT_CHUNK)):  # bounded memory for huge files
            with self.backend.transaction():
                for row in chunk:
                    self._merge(report, row, resubscribe=resubscribe)
        return report

    def export_csv(self, path: Path) -> int:
        """Write every address with its name, status, reason and time; returns the row count.

        Cells are made spreadsheet-safe (no formula injection); import undoes it.
        """
        import csv

        from publisher.stores.subscriber_csv import spreadsheet_safe

        count = 0
        with path.open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["email", "name", "status", "reason", "status_at"])
            for s in self.iter_all():
                cells = [s.email, s.name, s.status, s.reason, iso_time(s.status_at)]
                writer.writerow([spreadsheet_safe(c) for c in cells])
                count += 1
        return count

    def _merge(self, report: ImportReport, row: ImportRow, *, resubscribe: bool) -> None:
        """Insert or update one imported row; an opted-out address stays so unless asked."""
        found = self._row(row.key)
        if found is None:
            self._insert(row.email, row.key, row.name, row.status or "subscribed", "imported",
                         time.time())
            report.added += 1
            return
        status = row.status or "subscribed"  # a row without a status asks to subscribe
        if found.status in SUPPRESSED and status == "subscribed":
            if resubscribe:
                report.resubscribed.append(found.email)
            else:
                report.kept_suppressed += 1
                status = found.status
        name = row.name or found.name
        if (name, status) == (found.name, found.status):
            report.unchanged += 1
            return
        self._update(row.key, name, status,
                     "imported" if status != found.status else None)
        report.updated += 1


class SqliteBackend:
    """A SQLite file, one WAL connection per thread (`publish serve` writes while a send reads)."""

    base_schema: Sequence[str] = (SQLITE_BASE,)

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()

    def execute(self, sql: str, params: Sequence[object] = ()) -> Cursor:
        """Run one statement on this thread's connection."""
        return self._db().execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        """Run one statement per row."""
        self._db().executemany(sql, rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on error."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def lock_schema(self) -> None:
        """Nothing to do: BEGIN IMMEDIATE already keeps other writers out."""

    def close(self) -> None:
        """Close this thread's connection."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

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


# -- schema migrations -----------------------------------------------------------------------


def _migration_1(backend: Backend) -> None:
    """The original table (a no-op on stores made before migrations were recorded)."""
    for statement in backend.base_schema:
        _script(backend, statement)


def _migration_2(backend: Backend) -> None:
    """Match key, token id, status reason and time; merge rows one canonical address shares."""
    for column in ("key TEXT", "uid TEXT", "reason TEXT NOT NULL DEFAULT ''",
                   "status_at DOUBLE PRECISION"):
        backend.execute(f"ALTER TABLE subscribers ADD COLUMN {column}")
    rows = backend.execute(
        "SELECT id, email, name, status, updated_at FROM subscribers ORDER BY id"
    ).fetchall()
    keep: dict[str, tuple[int, str, str, float]] = {}
    drop: list[tuple[int]] = []
    for row_id, email, name, status, updated_at in rows:
        key = canonical_email(email)
        first = keep.get(key)
        if first is None:
            keep[key] = (row_id, name, status, updated_at)
            continue
        drop.append((row_id,))  # a case or script variant ASCII-only matching let in twice
        strongest = status if RANK[status] > RANK[first[2]] else first[2]
        keep[key] = (first[0], first[1] or name, strongest, max(first[3], updated_at))
    backend.executemany("DELETE FROM subscribers WHERE id = ?", drop)
    backend.executemany(
        "UPDATE subscribers SET key = ?, uid = ?, name = ?, status = ?, status_at = ?"
        " WHERE id = ?",
        ((key, new_uid(), name, status, at, row_id)
         for key, (row_id, name, status, at) in keep.items()),
    )
    backend.execute("CREATE UNIQUE INDEX subscribers_key ON subscribers (key)")
    backend.execute("CREATE UNIQUE INDEX subscribers_uid ON subscribers (uid)")
    backend.execute("DROP INDEX IF EXISTS subscribers_email")  # PostgreSQL's lower(email) rule


MIGRATIONS: Sequence[tuple[int, Callable[[Backend], None]]] = (
    (1, _migration_1),
    (2, _migration_2),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


def migrate(backend: Backend) -> None:
    """Apply the migrations this database lacks, once, recording each in schema_versions."""
    if schema_version(backend) >= SCHEMA_VERSION:
        return
    with backend.transaction():
        backend.lock_schema()
        backend.execute(
            "CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY,"
            " version INTEGER NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
        )
        current = schema_version(backend)  # again, under the lock: another process may have won
        for version, step in MIGRATIONS:
            if version > current:
                step(backend)
                backend.execute(
                    "INSERT INTO schema_versions (component, version, applied_at)"
                    " VALUES (?, ?, ?) ON CONFLICT (component) DO UPDATE"
                    " SET version = excluded.version, applied_at = excluded.applied_at",
                    (COMPONENT, version, time.time()),
                )


def schema_version(backend: Backend) -> int:
    """The store's recorded schema version (0 when none is recorded yet)."""
    try:
        row = backend.execute(
            "SELECT version FROM schema_versions WHERE component = ?", (COMPONENT,)
        ).fetchone()
    except Exception as exc:  # no such table yet: sqlite3 and psycopg name it differently
        if "schema_versions" not in str(exc):
            raise
        return 0
    return int(row[0]) if row else 0


def _script(backend: Backend, script: str) -> None:
    """Run each statement of a schema script."""
    for statement in script.split(";"):
        if statement.strip():
            backend.execute(statement)


# -- addresses ---------------------------------------------------------------------------------


def canonical_email(address: str) -> str:
    """The match key: case-folded NFC local part @ lower-case IDNA (ASCII) domain."""
    from email_validator import EmailNotValidError, validate_email

    text = address.strip()
    try:
        found = validate_email(text, check_deliverability=False)
    except EmailNotValidError:
        local, _, domain = text.rpartition("@")
        return _key(local, _ascii_domain(domain))
    return _key(found.local_part, found.ascii_domain)


def validated_email(address: str) -> tuple[str, str]:
    """The normalized address and its match key, or InputError saying what is wrong."""
    from email_validator import EmailNotValidError, validate_email

    try:
        found = validate_email(address.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InputError(f"invalid address {address!r}: {exc}", where="subscribers",
                         fix="correct the address") from exc
    return str(found.normalized), _key(found.local_part, found.ascii_domain)


def normalize_email(email: str) -> str:
    """The address in normalized form, or InputError saying what is wrong with it."""
    return validated_email(email)[0]


def loose_address(address: str) -> str:
    """A provider's address as we store it: normalized if valid, else as given (still matched)."""
    try:
        return validated_email(address)[0]
    except InputError:
        return address.strip()


def _key(local: str, ascii_domain: str) -> str:
    """Join the folded parts."""
    return f"{unicodedata.normalize('NFC', local.casefold())}@{ascii_domain.lower()}"


def _ascii_domain(domain: str) -> str:
    """A domain's IDNA form (UTS #46), or the lower-cased text when it is not a valid name."""
    import idna

    try:
        return str(idna.encode(domain, uts46=True).decode("ascii"))
    except idna.IDNAError:
        return domain.lower()


def new_uid() -> str:
    """A fresh random subscriber id for unsubscribe tokens (96 bits, URL-safe)."""
    return secrets.token_urlsafe(12)


def check_status(status: str) -> None:
    """InputError for a status the store does not know."""
    if status not in STATUSES:
        raise InputError(f"unknown status {status!r}", where="subscribers",
                         fix=f"use one of: {', '.join(STATUSES)}")


def iso_time(stamp: float) -> str:
    """A status time as ISO 8601 UTC to the second ('' when unknown)."""
    if not stamp:
        return ""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))


def describe_status(subscriber: Subscriber) -> str:
    """`reason, since <time>` for messages and `subscribers list`."""
    reason = subscriber.reason or "reason not recorded"
    when = iso_time(subscriber.status_at)
    return f"{reason}, since {when}" if when else reason


def _subscriber(row: Sequence[Any]) -> Subscriber:
    """A row of COLUMNS as a Subscriber."""
    row_id, email, name, status, reason, status_at, uid = row
    return Subscriber(email, name, status, int(row_id), reason or "", float(status_at or 0.0),
                      uid or "")
