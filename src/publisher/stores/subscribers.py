"""The subscriber list: one store over SQLite or PostgreSQL that never forgets an opt-out.

Statuses are subscribed, unsubscribed, bounced and complained; only `subscribed` is ever yielded
for a send. Each status carries the reason it was set and when, so `subscribers list` can say why
an address is not mailed. `remove` marks an address unsubscribed instead of deleting it, so a later
CSV import cannot quietly sign it up again (`forget` deletes for erasure requests). Addresses are
matched by one canonical form (see stores/addresses.py).

Every rule and statement is here, once; `SqliteSubscriberStore` (stores/sqlite.py) and
`PostgresSubscriberStore` (stores/postgres.py) supply only the `Database`. The schema is
versioned: numbered steps (stores/migrations.py) are applied once and recorded in
`schema_versions`, so stores made by older releases are upgraded in place on first open.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from operator import attrgetter
from pathlib import Path
from typing import ClassVar

from publisher.errors import InputError
from publisher.stores.addresses import (
    RANK,
    STATUSES,
    SUPPRESSED,
    Subscriber,
    canonical_email,
    check_status,
    describe_status,
    iso_time,
    loose_address,
    new_uid,
    new_uids,
    validated_email,
)
from publisher.stores.database import Database, Record, Value, all_of, marks, text, whole
from publisher.stores.migrations import migrate
from publisher.stores.subscriber_csv import (
    ImportReport,
    ImportRow,
    RowProblem,
    read_rows,
    spreadsheet_safe,
)

IMPORT_CHUNK = 50_000  # rows an import reads, checks and sorts for `import_lines` at a time
CHUNKS_PER_TRANSACTION = 4  # an import commits every 200,000 rows
KEYS_PER_QUERY = 500  # under SQLite's and psycopg's parameter limits
ROWS_PER_STATEMENT = 500  # rows of a multi-row INSERT: 4,500 parameters at most
COLUMNS = "id, email, name, status, reason, status_at, uid"
READER_COLUMNS = "id, email, name, uid"  # what a send needs of a subscriber


@dataclass(frozen=True)
class Readers:
    """One page of subscribed addresses as a send reads them: parallel columns, id order.

    A send needs only where to mail, the name and the token id of each reader; a page of
    columns costs a few list builds where a `Subscriber` per reader costs an object each.
    """

    ids: tuple[int, ...]
    emails: tuple[str, ...]
    names: tuple[str, ...]
    uids: tuple[str, ...]  # "" for a row without one (refused when its link is signed)

    def __len__(self) -> int:
        """How many readers the page holds."""
        return len(self.emails)


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


class SubscriberStore:
    """The subscriber list, over the database a backend opened (see `stores.backends`)."""

    shared: ClassVar[bool] = False  # senders on several machines read the same ids
    import_chunk: int = IMPORT_CHUNK  # rows an import reads and checks at a time
    chunks_per_transaction: int = CHUNKS_PER_TRANSACTION

    def __init__(self, db: Database) -> None:
        self.db = db
        migrate(db, "subscribers")

    def close(self) -> None:
        """Close the connection (this thread's, for SQLite)."""
        self.db.close()

    # -- reading ---------------------------------------------------------------------------

    def get(self, email: str) -> Subscriber | None:
        """One subscriber by address, any case or script variant of it (any status)."""
        row = self.db.execute(
            f"SELECT {COLUMNS} FROM subscribers WHERE key = ?", (canonical_email(email),)
        ).fetchone()
        return _subscriber(row) if row else None

    def get_by_uid(self, uid: str) -> Subscriber | None:
        """The subscriber an unsubscribe token's id names."""
        row = self.db.execute(
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

    def active_pages(self, chunk: int = 1000, *, after: int = 0,
                     through: int | None = None) -> Iterator[Readers]:
        """Subscribed readers with an id above `after` (and up to `through`), a page at a time.

        Each page is read when the previous one was used, so an opt-out during a long send is
        honoured from the next page on, as with `iter_active`.
        """
        upper = "" if through is None else " AND id <= ?"
        bound: tuple[int, ...] = () if through is None else (through,)
        last = after
        while rows := self.db.tuples(
            f"SELECT {READER_COLUMNS} FROM subscribers WHERE status = 'subscribed'"
            f" AND id > ?{upper} ORDER BY id LIMIT ?", (last, *bound, chunk),
        ):
            page = _readers(rows)
            yield page
            last = page.ids[-1]

    def active_ids(self, after: int, chunk: int = 10_000) -> Iterator[int]:
        """Ids of subscribed addresses above `after`, for cutting a send into batches."""
        last = after
        while True:
            rows = self.db.execute(
                "SELECT id FROM subscribers WHERE status = 'subscribed' AND id > ?"
                " ORDER BY id LIMIT ?", (last, chunk),
            ).fetchall()
            if not rows:
                return
            yield from (whole(row["id"]) for row in rows)
            last = whole(rows[-1]["id"])

    def count_active(self) -> int:
        """How many addresses a send would reach."""
        row = self.db.execute(
            "SELECT COUNT(*) AS n FROM subscribers WHERE status = 'subscribed'"
        ).fetchone()
        return whole(row["n"]) if row else 0

    def counts(self) -> dict[str, int]:
        """Addresses per status."""
        rows = self.db.execute("SELECT status, COUNT(*) AS n FROM subscribers GROUP BY status")
        found = {text(row["status"]): whole(row["n"]) for row in rows}
        return {status: found.get(status, 0) for status in STATUSES}

    def _pages(self, where: str, chunk: int, after: int) -> Iterator[Subscriber]:
        """Rows matching `where` in id order, read a chunk at a time (keyset pagination)."""
        last = after
        while True:
            rows = self.db.execute(
                f"SELECT {COLUMNS} FROM subscribers WHERE {where} id > ? ORDER BY id LIMIT ?",
                (last, chunk),
            ).fetchall()
            if not rows:
                return
            yield from (_subscriber(row) for row in rows)
            last = whole(rows[-1]["id"])

    # -- writing ---------------------------------------------------------------------------

    def add(self, email: str, name: str = "", *, resubscribe: bool = False,
            reason: str = "added") -> Subscriber:
        """Subscribe an address; one that opted out, bounced or complained needs `resubscribe`."""
        address, key = validated_email(email)
        with self.db.transaction():
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
        with self.db.transaction():
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
            with self.db.transaction():
                for entry in chunk:
                    self._suppress_one(entry, now, report)
        return report

    def forget(self, email: str) -> bool:
        """Delete an address entirely (erasure request); True when it existed."""
        with self.db.transaction():
            gone = self.db.execute(
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
        row = self.db.execute(
            f"SELECT {COLUMNS} FROM subscribers WHERE key = ?", (key,)
        ).fetchone()
        return _subscriber(row) if row else None

    def _insert(self, email: str, key: str, name: str, status: str, reason: str,
                at: float) -> None:
        """A new row with a fresh token id (a concurrent insert of the same key wins)."""
        now = time.time()
        self.db.execute(
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
            self.db.execute(
                "UPDATE subscribers SET name = ?, status = ?, updated_at = ? WHERE key = ?",
                (name, status, now, key),
            )
            return
        self.db.execute(
            "UPDATE subscribers SET name = ?, status = ?, reason = ?, status_at = ?,"
            " updated_at = ? WHERE key = ?",
            (name, status, reason, at if at is not None else now, now, key),
        )

    # -- CSV -------------------------------------------------------------------------------

    def import_csv(self, path: Path, *, resubscribe: bool = False, encoding: str | None = None,
                   mapping: Mapping[str, str] | None = None) -> ImportReport:
        """Merge a CSV (see subscriber_csv); idempotent, and bad rows are reported, not fatal.

        Memory stays flat whatever the file's size: rows are read and written a chunk at a time,
        and the first line of every address goes into a temporary table (`import_lines`), so a
        repeat is named `duplicate of line N` by the database, however far apart the two are.
        """
        report = ImportReport()
        rows = read_rows(path, report, encoding=encoding, mapping=mapping)
        self.db.execute("CREATE TEMP TABLE IF NOT EXISTS import_lines"
                        " (key TEXT PRIMARY KEY, line INTEGER NOT NULL)")
        self.db.execute("DELETE FROM import_lines")  # a failed import's, on this connection
        while self._import_transaction(report, rows, resubscribe=resubscribe):
            pass
        self.db.execute("DROP TABLE import_lines")
        report.problems.sort(key=attrgetter("line"))  # duplicates are found a chunk later
        return report

    def export_csv(self, path: Path) -> int:
        """Write every address with its name, status, reason and time; returns the row count.

        Cells are made spreadsheet-safe (no formula injection); import undoes it.
        """
        import csv

        count = 0
        with path.open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["email", "name", "status", "reason", "status_at"])
            for s in self.iter_all():
                cells = [s.email, s.name, s.status, s.reason, iso_time(s.status_at)]
                writer.writerow([spreadsheet_safe(c) for c in cells])
                count += 1
        return count

    def _rows_by_key(self, keys: list[str]) -> dict[str, Subscriber]:
        """The stored rows for these match keys, by key, a few hundred per query."""
        found: dict[str, Subscriber] = {}
        for start in range(0, len(keys), KEYS_PER_QUERY):
            part = keys[start:start + KEYS_PER_QUERY]
            rows = self.db.execute(
                f"SELECT key, {COLUMNS} FROM subscribers WHERE key IN ({marks(len(part))})", part)
            found.update((text(row["key"]), _subscriber(row)) for row in rows)
        return found

    def _import_transaction(self, report: ImportReport, rows: Iterator[ImportRow], *,
                            resubscribe: bool) -> bool:
        """Up to `chunks_per_transaction` chunks in one transaction; False once the rows ran out.

        Fewer, larger commits write each touched index page fewer times: with addresses in
        random order each commit rewrites nearly every page of the `key` index.
        """
        chunk = list(islice(rows, self.import_chunk))
        if not chunk:
            return False
        with self.db.transaction():
            for left in reversed(range(self.chunks_per_transaction)):
                self._import_chunk(report, chunk, resubscribe=resubscribe)
                if not left:
                    break
                if not (chunk := list(islice(rows, self.import_chunk))):
                    return False
        return True

    def _import_chunk(self, report: ImportReport, chunk: list[ImportRow], *,
                      resubscribe: bool) -> None:
        """One chunk of rows in the caller's transaction: repeats reported, the rest merged."""
        firsts: dict[str, ImportRow] = {}
        repeats: list[ImportRow] = []
        for row in chunk:
            if row.key in firsts:
                repeats.append(row)
            else:
                firsts[row.key] = row
        earlier = self._first_lines(sorted(firsts.values(), key=attrgetter("key")))
        for row in repeats:
            first = earlier.get(row.key, firsts[row.key].line)
            report.problems.append(_duplicate(row, first))
        fresh = []
        for row in firsts.values():
            if row.key in earlier:
                report.problems.append(_duplicate(row, earlier[row.key]))
            else:
                fresh.append(row)
        updates = self._insert_imported(report, fresh, resubscribe=resubscribe)
        now = time.time()
        self.db.executemany(
            "UPDATE subscribers SET name = ?, status = ?, updated_at = ? WHERE key = ?",
            [(name, status, now, key) for key, name, status, reason in updates if not reason])
        self.db.executemany(
            "UPDATE subscribers SET name = ?, status = ?, reason = ?, status_at = ?,"
            " updated_at = ? WHERE key = ?",
            [(name, status, reason, now, now, key) for key, name, status, reason in updates
             if reason])

    def _first_lines(self, rows: list[ImportRow]) -> dict[str, int]:
        """Record these (distinct) rows' lines as their addresses' first; for the addresses an
        earlier chunk already had, that earlier line instead (looked up only when one did).

        The rows come sorted by key: the table's index then takes each chunk in one sweep.
        """
        earlier: dict[str, int] = {}
        for start in range(0, len(rows), ROWS_PER_STATEMENT):
            part = rows[start:start + ROWS_PER_STATEMENT]
            added = self.db.execute(
                f"INSERT INTO import_lines (key, line) VALUES {_groups(len(part), 2)}"
                " ON CONFLICT (key) DO NOTHING", [v for row in part for v in (row.key, row.line)])
            if added.rowcount == len(part):
                continue
            lines = {row.key: row.line for row in part}
            found = self.db.execute(
                f"SELECT key, line FROM import_lines WHERE key IN ({marks(len(part))})",
                list(lines))
            earlier.update((text(r["key"]), whole(r["line"])) for r in found
                           if whole(r["line"]) != lines[text(r["key"])])
        return earlier

    def _insert_imported(self, report: ImportReport, rows: list[ImportRow], *,
                         resubscribe: bool) -> list[tuple[str, str, str, str]]:
        """New rows inserted by multi-row statements; the updates the stored ones need.

        Every row is offered to `INSERT … ON CONFLICT (key) DO NOTHING`; only when a statement
        inserts fewer rows than it was given are the stored rows read back, and a row whose
        token id is not ours was already on the list (or a concurrent insert won): merged.
        The token ids (96 random bits each) go out sorted, so the `uid` index takes a chunk's
        in one sweep.
        """
        now = time.time()
        uids = sorted(new_uids(len(rows)))
        updates: list[tuple[str, str, str, str]] = []
        for start in range(0, len(rows), ROWS_PER_STATEMENT):
            part = rows[start:start + ROWS_PER_STATEMENT]
            ours = uids[start:start + ROWS_PER_STATEMENT]
            added = self.db.execute(
                "INSERT INTO subscribers (email, key, uid, name, status, reason, status_at,"
                f" created_at, updated_at) VALUES {_groups(len(part), 9)}"
                " ON CONFLICT (key) DO NOTHING",
                [v for row, uid in zip(part, ours, strict=True)
                 for v in (row.email, row.key, uid, row.name, row.status or "subscribed",
                           "imported", now, now, now)])
            if added.rowcount == len(part):
                report.added += len(part)
                continue
            found = self._rows_by_key([row.key for row in part])
            for row, uid in zip(part, ours, strict=True):
                stored = found.get(row.key)
                if stored is None:  # deleted by a concurrent `forget` meanwhile: erasure wins
                    report.unchanged += 1
                elif stored.uid == uid:
                    report.added += 1
                else:
                    update = _merge(report, row, stored, resubscribe=resubscribe)
                    if update is not None:
                        updates.append(update)
        return updates


def _merge(report: ImportReport, row: ImportRow, found: Subscriber, *,
           resubscribe: bool) -> tuple[str, str, str, str] | None:
    """The update (key, name, status, reason or '') of one imported row already stored, if any;
    an opted-out address stays so unless asked (the rule, once for every import)."""
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
        return None
    report.updated += 1
    return row.key, name, status, "imported" if status != found.status else ""


def _duplicate(row: ImportRow, first: int) -> RowProblem:
    """The report line of a row repeating an address of the same file."""
    return RowProblem(row.line, row.email, f"duplicate of line {first}: not imported")


def _groups(count: int, width: int) -> str:
    """`(?, ?), (?, ?)` for a multi-row VALUES of `count` rows of `width` columns."""
    group = "(" + ", ".join("?" * width) + ")"
    return ", ".join([group] * count)


def _readers(rows: list[tuple[Value, ...]]) -> Readers:
    """A page of READER_COLUMNS rows as columns, each type-checked once for the whole page
    (a page that fails a check is converted cell by cell, as `_subscriber` does)."""
    ids, emails, names, uids = zip(*rows, strict=True)
    return Readers(ids if all_of(ids, int) else tuple(map(whole, ids)),
                   emails if all_of(emails, str) else tuple(map(str, emails)),
                   names if all_of(names, str) else tuple(map(str, names)),
                   uids if all_of(uids, str) else tuple(map(text, uids)))


def _subscriber(row: Record) -> Subscriber:
    """A row of COLUMNS as a Subscriber (email, name, status and reason are NOT NULL)."""
    return Subscriber(str(row["email"]), str(row["name"]), str(row["status"]),
                      int(row["id"] or 0), str(row["reason"]), float(row["status_at"] or 0),
                      str(row["uid"] or ""))
