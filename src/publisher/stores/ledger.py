"""The ledger: a SQLite record of every delivery, written pending before a call and sent after.

One row per (edition, channel, item): the edition is the article's content hash, the item a
recipient address, a thread position or an outbox file. A second run skips sent rows; a row left
pending by a crash is resolved by the channel's idempotency key or reported as uncertain. A lock
row per post keeps two senders from working the same post at once.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from publisher.config.secrets import mask
from publisher.errors import ConfigError, LedgerConflict, SystemFault
from publisher.stores.pgurl import check_setting, is_database_url
from publisher.stores.sqlite import connect

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    edition TEXT NOT NULL,
    post TEXT NOT NULL,
    channel TEXT NOT NULL,
    item TEXT NOT NULL,
    batch TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    provider_id TEXT NOT NULL DEFAULT '',
    url TEXT NOT NULL DEFAULT '',
    extra TEXT NOT NULL DEFAULT '{}',
    error TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL,
    failure TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (edition, channel, item)
);
CREATE INDEX IF NOT EXISTS deliveries_by_post ON deliveries (post, edition);
CREATE TABLE IF NOT EXISTS locks (
    post TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    heartbeat REAL NOT NULL
);
"""
STALE_LOCK_SECONDS = 120.0
# What the editor did to an edition besides delivering it: channels left out (`skip`), proofs,
# and corrections of live posts (`edit`, `retract`). A table of its own, created on open, so an
# older ledger upgrades by itself and `deliveries` keeps meaning "what an edition delivered".
ACTIONS_SCHEMA = """
CREATE TABLE IF NOT EXISTS actions (
    edition TEXT NOT NULL,
    post TEXT NOT NULL,
    channel TEXT NOT NULL,
    item TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('skip', 'proof', 'edit', 'retract')),
    target TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
    error TEXT NOT NULL DEFAULT '',
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (edition, channel, item, kind, target)
);
CREATE INDEX IF NOT EXISTS actions_by_post ON actions (post, kind);
"""
ACTION_COLUMNS = "edition, post, channel, item, kind, target, state, error"
MAX_ATTEMPTS = 3  # default `max_attempts`: runs that try a transient failure before giving up
# What kind of failure a failed row records, which decides whether a later run tries it again:
PERMANENT = "permanent"  # the provider refused this item for good (5xx reply, ESP entry error)
TRANSIENT = "transient"  # refused for now (4xx, 429, 5xx HTTP, timeout): retried up to the limit
STOPPED = "stopped"  # the channel stopped on an error to fix (credentials…): retried up to it
FAILURE_KINDS = (PERMANENT, TRANSIENT, STOPPED)
# SQLite result codes that mean the disk, not the query, is at fault
# (https://www.sqlite.org/rescode.html): full, I/O error, read-only, cannot open, no permission.
DISK_FAULTS = ("SQLITE_FULL", "SQLITE_IOERR", "SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")


@dataclass(frozen=True)
class Row:
    """One delivery as recorded."""

    edition: str
    post: str
    channel: str
    item: str
    batch: str
    state: str
    provider_id: str
    url: str
    extra: Mapping[str, Any]
    error: str
    attempts: int
    updated_at: float = 0.0  # when the last attempt (or its outcome) was recorded, epoch seconds
    failure: str = ""  # one of FAILURE_KINDS when state is failed ('' in older ledgers: transient)

    def retryable(self, max_attempts: int) -> bool:
        """Whether a failed row is tried again: not refused for good, attempts left."""
        return self.failure != PERMANENT and self.attempts < max_attempts


@dataclass(frozen=True)
class Action:
    """One recorded action: a channel left out, a proof, an edit or a retraction of a post.

    target is what the action is about: the corrected edition for an edit, the provider id of
    the deleted post for a retraction, the run for a proof.
    """

    edition: str
    post: str
    channel: str
    item: str
    kind: str
    target: str
    state: str
    error: str


@dataclass(frozen=True)
class ChannelTally:
    """How many deliveries of a channel are sent, pending or failed."""

    channel: str
    sent: int
    pending: int
    failed: int


class DeliveryLedger(Protocol):
    """What delivery needs from a ledger, whether SQLite (`Ledger`) or PostgreSQL (`PgLedger`)."""

    def close(self) -> None: ...
    def check_edition(self, post: str, edition: str, *, resend: bool, source: str) -> None: ...
    def other_editions(self, post: str, edition: str) -> list[str]: ...
    def get(self, edition: str, channel: str, item: str) -> Row | None: ...
    def states(self, edition: str, channel: str, items: Sequence[str]) -> dict[str, Row]: ...
    def rows(
        self, edition: str, channel: str | None = None, state: str | None = None
    ) -> list[Row]: ...
    def mark_pending(
        self, edition: str, post: str, channel: str, items: Iterable[str], batch: str = ""
    ) -> None: ...
    def mark_sent(
        self, edition: str, channel: str,
        receipts: Mapping[str, tuple[str, str, Mapping[str, Any]]],
    ) -> None: ...
    def mark_failed(
        self, edition: str, channel: str, reasons: Mapping[str, str], kind: str = TRANSIENT
    ) -> None: ...
    def mark_uncertain(self, edition: str, channel: str, reasons: Mapping[str, str]) -> None: ...
    def tally(self, edition: str) -> list[ChannelTally]: ...
    def editions(self, post: str) -> list[str]: ...
    def lock(
        self, post: str, *, wait: float = 0.0, source: str = ""
    ) -> AbstractContextManager[None]: ...
    def heartbeat(self, post: str) -> None: ...
    def mark_action(
        self, edition: str, post: str, channel: str, item: str, kind: str, *,
        target: str = "", state: str = "pending", error: str = "",
    ) -> None: ...
    def actions(
        self, kind: str, *, post: str | None = None, edition: str | None = None
    ) -> list[Action]: ...
    def drop_actions(self, edition: str, kind: str, items: Iterable[str]) -> None: ...
    def carry_over(self, post: str, source: str, target: str) -> None: ...


class ActionLog:
    """The `actions` table and the edition carry-over, shared by both backends.

    A backend supplies `_write(sql, rows)` and `_read(sql, args)`; SQL uses `?` placeholders.
    """

    def _write(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        raise NotImplementedError  # pragma: no cover

    def _read(self, sql: str, args: Sequence[Any]) -> list[Mapping[str, Any]]:
        raise NotImplementedError  # pragma: no cover

    def mark_action(
        self, edition: str, post: str, channel: str, item: str, kind: str, *,
        target: str = "", state: str = "pending", error: str = "",
    ) -> None:
        """Record (or move on) one action; pending before the provider call, done after."""
        self._write(
            f"INSERT INTO actions ({ACTION_COLUMNS}, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (edition, channel, item, kind, target) DO UPDATE SET"
            " state=excluded.state, error=excluded.error, updated_at=excluded.updated_at",
            [(edition, post, channel, item, kind, target, state, error, time.time())],
        )

    def actions(
        self, kind: str, *, post: str | None = None, edition: str | None = None
    ) -> list[Action]:
        """Actions of one kind for a post or an edition, oldest first."""
        sql, args = f"SELECT {ACTION_COLUMNS} FROM actions WHERE kind=?", [kind]
        if post is not None:
            sql, args = sql + " AND post=?", [*args, post]
        if edition is not None:
            sql, args = sql + " AND edition=?", [*args, edition]
        return [Action(**dict(r)) for r in self._read(sql + " ORDER BY updated_at", args)]

    def drop_actions(self, edition: str, kind: str, items: Iterable[str]) -> None:
        """Forget actions that no longer hold (e.g. a skipped channel that has now been sent)."""
        self._write("DELETE FROM actions WHERE edition=? AND kind=? AND item=?",
                    [(edition, kind, item) for item in items])

    def carry_over(self, post: str, source: str, target: str) -> None:
        """Make `target` the post's current edition: it inherits what `source` delivered.

        Used by `--update`: the corrected article was never sent, but everything the first
        edition delivered (and retracted, and left out) stands for it.
        """
        self._write(
            "INSERT INTO deliveries (edition, post, channel, item, batch, state, provider_id,"
            " url, extra, error, attempts, updated_at) SELECT ?, post, channel, item, batch,"
            " state, provider_id, url, extra, error, attempts, updated_at FROM deliveries"
            " WHERE edition=? AND post=? ON CONFLICT (edition, channel, item) DO NOTHING",
            [(target, source, post)],
        )
        self._write(
            f"INSERT INTO actions ({ACTION_COLUMNS}, updated_at) SELECT ?, post, channel, item,"
            " kind, target, state, error, updated_at FROM actions WHERE edition=? AND post=?"
            " AND kind IN ('skip', 'retract')"
            " ON CONFLICT (edition, channel, item, kind, target) DO NOTHING",
            [(target, source, post)],
        )


@dataclass(frozen=True)
class Claim:
    """A numbered batch of one send, claimed by one sender: subscribers first_id..last_id."""

    edition: str
    channel: str
    number: int
    first_id: int
    last_id: int


class BatchClaims(Protocol):
    """A ledger several senders can share: numbered batches of subscriber ids, claimed singly."""

    def plan_batches(
        self, edition: str, channel: str, size: int, active_ids: Callable[[int], Iterable[int]],
        *, reopen: bool,
    ) -> int: ...
    def planned(self, edition: str, channel: str) -> bool: ...
    def claim_batch(self, edition: str, channel: str) -> Claim | None: ...
    def touch_batch(self, claim: Claim) -> None: ...
    def finish_batch(self, claim: Claim) -> None: ...
    def release_batch(self, claim: Claim) -> None: ...


def open_ledger(target: str | Path) -> DeliveryLedger:
    """The ledger a setting names: a SQLite file path, or a postgresql:// URL."""
    if is_database_url(target):
        check_setting(str(target), key="ledger")
        from publisher.stores.ledger_pg import PgLedger

        return PgLedger(str(target))
    return Ledger(Path(target))


class Ledger(ActionLog):
    """The delivery record of one project, in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.db = connect(path, SCHEMA + ACTIONS_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(
                f"cannot open the ledger ({exc})", where=str(path), fix="check the `ledger` path"
            ) from exc
        self.db.row_factory = sqlite3.Row
        add_failure_column(self.db)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{time.time_ns()}"

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE so writers queue instead of failing).

        A disk that is full, read-only or failing is a SystemFault naming the ledger file.
        """
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if not getattr(exc, "sqlite_errorname", "").startswith(DISK_FAULTS):
                raise
            raise SystemFault(
                f"cannot write the ledger ({exc})", where=str(self.path),
                fix="free disk space or make its folder writable, then run again (it resumes)",
            ) from exc

    def _write(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement per row in one transaction."""
        with self.transaction() as db:
            db.executemany(sql, rows)

    def _read(self, sql: str, args: Sequence[Any]) -> list[Mapping[str, Any]]:
        """Rows of a query as mappings."""
        return [dict(r) for r in self.db.execute(sql, args)]

    # -- editions --------------------------------------------------------------------------

    def other_editions(self, post: str, edition: str) -> list[str]:
        """Editions of this post, other than this one, that already delivered something."""
        rows = self.db.execute(
            "SELECT DISTINCT edition FROM deliveries WHERE post=? AND edition<>? AND state='sent'",
            (post, edition),
        )
        return [r["edition"] for r in rows]

    def check_edition(self, post: str, edition: str, *, resend: bool, source: str) -> None:
        """Refuse to send a changed article unless the editor asked for a new edition."""
        refuse_changed_article(self, post, edition, resend=resend, source=source)

    # -- rows ------------------------------------------------------------------------------

    def get(self, edition: str, channel: str, item: str) -> Row | None:
        """The row for one delivery, if any."""
        found = self.db.execute(
            "SELECT * FROM deliveries WHERE edition=? AND channel=? AND item=?",
            (edition, channel, item),
        ).fetchone()
        return row_from(found) if found else None

    def states(self, edition: str, channel: str, items: Sequence[str]) -> dict[str, Row]:
        """Rows for many items at once (one query per chunk, for large sends)."""
        found: dict[str, Row] = {}
        for start in range(0, len(items), 500):
            chunk = list(items[start : start + 500])
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT * FROM deliveries WHERE edition=? AND channel=? AND item IN ({marks})",
                (edition, channel, *chunk),
            )
            found.update({r["item"]: row_from(r) for r in rows})
        return found

    def rows(self, edition: str, channel: str | None = None, state: str | None = None) -> list[Row]:
        """All rows of an edition, optionally of one channel or state, in a stable order."""
        sql, args = "SELECT * FROM deliveries WHERE edition=?", [edition]
        if channel:
            sql, args = sql + " AND channel=?", [*args, channel]
        if state:
            sql, args = sql + " AND state=?", [*args, state]
        return [row_from(r) for r in self.db.execute(sql + " ORDER BY channel, item", args)]

    def mark_pending(
        self, edition: str, post: str, channel: str, items: Iterable[str], batch: str = ""
    ) -> None:
        """Record intent before the provider call, in one transaction."""
        now = time.time()
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO deliveries (edition, post, channel, item, batch, state, attempts,"
                " updated_at) VALUES (?, ?, ?, ?, ?, 'pending', 1, ?)"
                " ON CONFLICT (edition, channel, item) DO UPDATE SET state='pending',"
                " batch=excluded.batch, attempts=attempts+1, error='', failure='',"
                " updated_at=excluded.updated_at",
                [(edition, post, channel, item, batch, now) for item in items],
            )

    def mark_sent(
        self,
        edition: str,
        channel: str,
        receipts: Mapping[str, tuple[str, str, Mapping[str, Any]]],
    ) -> None:
        """Record provider ids (and public URLs) after a successful call."""
        now = time.time()
        with self.transaction() as db:
            db.executemany(
                "UPDATE deliveries SET state='sent', provider_id=?, url=?, extra=?, error='',"
                " updated_at=? WHERE edition=? AND channel=? AND item=?",
                [
                    (pid, url, json.dumps(dict(extra), ensure_ascii=False) if extra else "{}",
                     now, edition, channel, item)
                    for item, (pid, url, extra) in receipts.items()
                ],
            )

    def mark_failed(
        self, edition: str, channel: str, reasons: Mapping[str, str], kind: str = TRANSIENT
    ) -> None:
        """Record a definite failure and its kind, which decides whether a later run retries it."""
        now = time.time()
        with self.transaction() as db:
            db.executemany(
                "UPDATE deliveries SET state='failed', error=?, failure=?, updated_at=?"
                " WHERE edition=? AND channel=? AND item=?",
                [(mask(why), kind, now, edition, channel, item) for item, why in reasons.items()],
            )

    def mark_uncertain(self, edition: str, channel: str, reasons: Mapping[str, str]) -> None:
        """Say why pending rows are uncertain (the answer was lost); they stay pending."""
        now = time.time()
        with self.transaction() as db:
            db.executemany(
                "UPDATE deliveries SET error=?, updated_at=?"
                " WHERE edition=? AND channel=? AND item=? AND state='pending'",
                [(mask(why), now, edition, channel, item) for item, why in reasons.items()],
            )

    def tally(self, edition: str) -> list[ChannelTally]:
        """Per-channel counts for `publish status`."""
        rows = self.db.execute(
            "SELECT channel, SUM(state='sent') s, SUM(state='pending') p, SUM(state='failed') f"
            " FROM deliveries WHERE edition=? GROUP BY channel ORDER BY channel",
            (edition,),
        )
        return [ChannelTally(r["channel"], r["s"], r["p"], r["f"]) for r in rows]

    def editions(self, post: str) -> list[str]:
        """Every edition of a post that has rows, newest activity first."""
        rows = self.db.execute(
            "SELECT edition, MAX(updated_at) t FROM deliveries WHERE post=?"
            " GROUP BY edition ORDER BY t DESC",
            (post,),
        )
        return [r["edition"] for r in rows]

    # -- the send lock ---------------------------------------------------------------------

    @contextmanager
    def lock(self, post: str, *, wait: float = 0.0, source: str = "") -> Iterator[None]:
        """Hold the post's send lock; another live sender makes this wait, then refuse."""
        wait_for_lock(lambda: self._try_lock(post), wait=wait, where=source or post)
        try:
            yield
        finally:
            self.db.execute("DELETE FROM locks WHERE post=? AND owner=?", (post, self.owner))

    def heartbeat(self, post: str) -> None:
        """Tell other senders this run is alive."""
        self.db.execute(
            "UPDATE locks SET heartbeat=? WHERE post=? AND owner=?", (time.time(), post, self.owner)
        )

    def _try_lock(self, post: str) -> bool:
        """Take the lock if it is free or its holder is gone."""
        host, pid, now = socket.gethostname(), os.getpid(), time.time()
        with self.transaction() as db:
            held = db.execute("SELECT * FROM locks WHERE post=?", (post,)).fetchone()
            if held is not None and not _is_stale(held, host, now):
                return False
            db.execute(
                "INSERT OR REPLACE INTO locks (post, owner, host, pid, heartbeat)"
                " VALUES (?, ?, ?, ?, ?)",
                (post, self.owner, host, pid, now),
            )
        return True


BUSY_FIX = "wait for it to finish, then run again (it will skip what was sent)"


def refuse_changed_article(
    ledger: DeliveryLedger, post: str, edition: str, *, resend: bool, source: str
) -> None:
    """LedgerConflict when another edition of the post was sent and this one was not asked for."""
    if resend or ledger.tally(edition):
        return
    if ledger.other_editions(post, edition):
        raise LedgerConflict(
            "this post was already sent, and the article has changed since",
            where=source,
            fix="pass --resend to send the changed article as a new edition",
        )


def wait_for_lock(
    try_lock: Callable[[], bool], *, wait: float, where: str, fix: str = BUSY_FIX
) -> None:
    """Retry taking a send lock until `wait` seconds pass, then refuse with LedgerConflict."""
    deadline = time.monotonic() + wait
    while not try_lock():
        if time.monotonic() >= deadline:
            raise LedgerConflict(
                "another publish run is sending this post right now", where=where, fix=fix
            )
        time.sleep(0.2)


def add_failure_column(db: sqlite3.Connection) -> None:
    """Ledgers made before failures had kinds gain the column (their failures count transient)."""
    columns = {r[1] for r in db.execute("PRAGMA table_info(deliveries)")}
    if "failure" in columns:
        return
    try:
        db.execute("ALTER TABLE deliveries ADD COLUMN failure TEXT NOT NULL DEFAULT ''")
    except sqlite3.OperationalError as exc:  # another run added it a moment ago
        if "duplicate column" not in str(exc):
            raise


def _is_stale(held: sqlite3.Row, host: str, now: float) -> bool:
    """A lock whose process died on this host, or whose heartbeat stopped elsewhere."""
    if held["host"] == host:
        return not _pid_alive(held["pid"])
    return bool(now - held["heartbeat"] > STALE_LOCK_SECONDS)


def _pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def row_from(r: Mapping[str, Any] | sqlite3.Row) -> Row:
    """A database row as a Row."""
    return Row(
        edition=r["edition"], post=r["post"], channel=r["channel"], item=r["item"],
        batch=r["batch"], state=r["state"], provider_id=r["provider_id"], url=r["url"],
        extra=json.loads(r["extra"] or "{}"), error=r["error"], attempts=r["attempts"],
        updated_at=float(r["updated_at"]), failure=r["failure"],
    )
