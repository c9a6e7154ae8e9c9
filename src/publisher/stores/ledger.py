"""The ledger: a record of every delivery, written pending before a call and sent after.

One row per (edition, channel, item): the edition is the article's content hash, the item a
recipient address, a thread position or an outbox file. A second run skips sent rows; a row left
pending by a crash is resolved by the channel's idempotency key or reported as uncertain. A lock
row per post keeps two senders from working the same post at once. In Python the hash is
`edition_id` and the post's ledger name `slug`; the columns keep their first names, `edition` and
`post`.

`Ledger` holds every rule once, over a `Database` (stores/database.py); `SqliteLedger`
(stores/sqlite.py) and `PostgresLedger` (stores/postgres.py) supply only the connection. A ledger
that several senders on several machines can reach at once (`shared`) also splits one email send
into numbered `batches` of subscriber ids: each sender claims the next open batch with
`SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL
(https://www.postgresql.org/docs/current/sql-select.html#SQL-FOR-UPDATE-SHARE), so no two take
the same one and none waits on another. A claim whose owner stopped heartbeating (or whose process
is gone, on the same host) may be taken again; its recipients still go through pending/sent rows,
so what a dead sender may have sent stays uncertain exactly as after a crash.
"""

from __future__ import annotations

import json
import operator
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import accumulate, islice
from typing import ClassVar

from publisher.config.secrets import mask
from publisher.errors import LedgerConflict
from publisher.stores.database import Database, Record, Value, marks, number, text, whole
from publisher.stores.migrations import migrate

STALE_LOCK_SECONDS = 120.0
STALE_CLAIM_SECONDS = STALE_LOCK_SECONDS
MAX_ATTEMPTS = 3  # default `max_attempts`: runs that try a transient failure before giving up
# What kind of failure a failed row records, which decides whether a later run tries it again:
PERMANENT = "permanent"  # the provider refused this item for good (5xx reply, ESP entry error)
TRANSIENT = "transient"  # refused for now (4xx, 429, 5xx HTTP, timeout): retried up to the limit
STOPPED = "stopped"  # the channel stopped on an error to fix (credentials…): retried up to it
FAILURE_KINDS = (PERMANENT, TRANSIENT, STOPPED)
BUSY_FIX = "wait for it to finish, then run again (it will skip what was sent)"
COLUMNS = ("edition, post, channel, item, batch, state, provider_id, url, extra, error, attempts,"
           " updated_at, failure")
ACTION_COLUMNS = "edition, post, channel, item, kind, target, state, error"
BATCH_COLUMNS = ("edition, post, channel, batch, first_id, last_id, size, ids, items, state,"
                 " provider_id, provider_ids, error, failure, attempts, updated_at")
PLAN_STEP = 50  # batches planned per transaction, so joiners need not wait for the whole plan
CHUNK = 500  # items per IN (…) list: well under SQLite's 32766 parameters
Extra = Mapping[str, object]  # a channel's references to a post (Bluesky's uri and cid…), JSON
Receipts = Mapping[str, tuple[str, str, Extra]]  # item → (provider id, public URL, extra)


@dataclass(frozen=True)
class Row:
    """One delivery as recorded."""

    edition_id: str
    slug: str
    channel: str
    item: str
    batch: str
    state: str
    provider_id: str
    url: str
    extra: Extra
    error: str
    attempts: int
    updated_at: float = 0.0  # when the last attempt (or its outcome) was recorded, epoch seconds
    failure: str = ""  # one of FAILURE_KINDS when state is failed ('' in older ledgers: transient)

    def retryable(self, max_attempts: int) -> bool:
        """Whether a failed row is tried again: not refused for good, attempts left."""
        return self.failure != PERMANENT and self.attempts < max_attempts


@dataclass(frozen=True)
class BatchRow:
    """One provider call's recipients as one row: their ids and addresses, and how it went.

    Every member shares the row's state; a member the call refused or left unanswered is moved
    to a per-recipient row of its own, so each reader is recorded exactly once.
    """

    edition_id: str
    slug: str
    channel: str
    batch: str  # the call's key (its Idempotency-Key where the provider has one)
    ids: tuple[int, ...]  # subscriber ids, ascending
    items: tuple[str, ...]  # their addresses, in the same order
    state: str
    provider_id: str = ""
    provider_ids: tuple[str, ...] = ()  # one per member, when the provider gave each its own
    error: str = ""
    failure: str = ""
    attempts: int = 1
    updated_at: float = 0.0

    @property
    def name(self) -> tuple[str, int]:
        """What names the row within its edition and channel: its key and its lowest id."""
        return self.batch, self.ids[0]

    def row(self, index: int) -> Row:
        """One member as a per-recipient row, for status, resume and corrections."""
        return Row(
            edition_id=self.edition_id, slug=self.slug, channel=self.channel,
            item=self.items[index], batch=self.batch, state=self.state,
            provider_id=self.provider_ids[index] if self.provider_ids else self.provider_id,
            url="", extra={}, error=self.error, attempts=self.attempts,
            updated_at=self.updated_at, failure=self.failure,
        )

    def rows(self) -> list[Row]:
        """Every member as a per-recipient row."""
        return [self.row(i) for i in range(len(self.ids))]

    def keeping(self, keep: Sequence[int]) -> BatchRow | None:
        """The row with only the members at these indexes (None when none is left)."""
        if not keep:
            return None
        pids = tuple(self.provider_ids[i] for i in keep) if self.provider_ids else ()
        return replace(self, ids=tuple(self.ids[i] for i in keep),
                       items=tuple(self.items[i] for i in keep), provider_ids=pids)


@dataclass(frozen=True)
class Action:
    """One recorded action: a channel left out, a proof, an edit or a retraction of a post.

    target is what the action is about: the corrected edition for an edit, the provider id of
    the deleted post for a retraction, the run for a proof.
    """

    edition_id: str
    slug: str
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


@dataclass(frozen=True)
class Claim:
    """A numbered batch of one send, claimed by one sender: subscribers first_id..last_id."""

    edition_id: str
    channel: str
    number: int
    first_id: int
    last_id: int


class Ledger:
    """The delivery record of one project, over the database a backend opened."""

    shared: ClassVar[bool] = False  # senders on several machines may claim batches at once

    def __init__(self, db: Database, *, stale_claim_seconds: float = STALE_CLAIM_SECONDS) -> None:
        self.db = db
        migrate(db, "ledger")
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.owner = f"{self.host}:{self.pid}:{time.time_ns()}"
        self.stale_claim_seconds = stale_claim_seconds

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    def _write(self, sql: str, rows: Iterable[Sequence[Value]]) -> None:
        """One statement per row, all in one transaction (a whole batch at a time)."""
        with self.db.transaction():
            self.db.executemany(sql, rows)

    # -- editions --------------------------------------------------------------------------

    def other_editions(self, slug: str, edition_id: str) -> list[str]:
        """Editions of this post, other than this one, that already delivered something."""
        rows = self.db.execute(
            "SELECT edition FROM deliveries WHERE post=? AND edition<>? AND state='sent' UNION"
            " SELECT edition FROM batch_deliveries WHERE post=? AND edition<>? AND state='sent'",
            (slug, edition_id, slug, edition_id),
        )
        return [text(r["edition"]) for r in rows]

    def check_edition(self, slug: str, edition_id: str, *, resend: bool, source: str) -> None:
        """Refuse to send a changed article unless the editor asked for a new edition."""
        if resend or self.tally(edition_id):
            return
        if self.other_editions(slug, edition_id):
            raise LedgerConflict(
                "this post was already sent, and the article has changed since",
                where=source,
                fix="pass --resend to send the changed article as a new edition",
            )

    def editions(self, slug: str) -> list[str]:
        """Every edition of a post that has rows, newest activity first."""
        rows = self.db.execute(
            "SELECT edition, MAX(updated_at) t FROM (SELECT edition, updated_at FROM deliveries"
            " WHERE post=? UNION ALL SELECT edition, updated_at FROM batch_deliveries WHERE post=?)"
            " AS done GROUP BY edition ORDER BY t DESC",
            (slug, slug),
        )
        return [text(r["edition"]) for r in rows]

    # -- rows ------------------------------------------------------------------------------

    def get(self, edition_id: str, channel: str, item: str) -> Row | None:
        """The row for one delivery, if any."""
        found = self.db.execute(
            f"SELECT {COLUMNS} FROM deliveries WHERE edition=? AND channel=? AND item=?",
            (edition_id, channel, item),
        ).fetchone()
        return row_from(found) if found else None

    def states(self, edition_id: str, channel: str, items: Sequence[str]) -> dict[str, Row]:
        """Rows for many items at once (one query per chunk, for large sends)."""
        found: dict[str, Row] = {}
        for start in range(0, len(items), CHUNK):
            chunk = items[start : start + CHUNK]
            rows = self.db.execute(
                f"SELECT {COLUMNS} FROM deliveries WHERE edition=? AND channel=?"
                f" AND item IN ({marks(len(chunk))})", (edition_id, channel, *chunk),
            )
            found.update({text(r["item"]): row_from(r) for r in rows})
        return found

    def rows(
        self, edition_id: str, channel: str | None = None, state: str | None = None
    ) -> list[Row]:
        """All deliveries of an edition, optionally of one channel or state, in a stable order.

        A batch row counts as one row per member, so every reader reads the same either way.
        """
        sql, args = f"SELECT {COLUMNS} FROM deliveries WHERE edition=?", [edition_id]
        if channel:
            sql, args = sql + " AND channel=?", [*args, channel]
        if state:
            sql, args = sql + " AND state=?", [*args, state]
        found = [row_from(r) for r in self.db.execute(sql, args)]
        found.extend(r for b in self.batch_rows(edition_id, channel, state) for r in b.rows())
        found.sort(key=lambda r: (r.channel, r.item))  # code points: the bytes' order in UTF-8
        return found

    def tally(self, edition_id: str) -> list[ChannelTally]:
        """Per-channel counts for `publish status`."""
        rows = self.db.execute(
            "SELECT channel, SUM(CASE WHEN state='sent' THEN 1 ELSE 0 END) s,"
            " SUM(CASE WHEN state='pending' THEN 1 ELSE 0 END) p,"
            " SUM(CASE WHEN state='failed' THEN 1 ELSE 0 END) f FROM deliveries WHERE edition=?"
            f" GROUP BY channel ORDER BY channel{self.db.dialect.byte_order}",
            (edition_id,),
        )
        counts = {text(r["channel"]): [whole(r["s"]), whole(r["p"]), whole(r["f"])] for r in rows}
        batches = self.db.execute(
            "SELECT channel, state, SUM(size) n FROM batch_deliveries WHERE edition=?"
            " GROUP BY channel, state", (edition_id,),
        )
        for r in batches:
            count = counts.setdefault(text(r["channel"]), [0, 0, 0])
            count[("sent", "pending", "failed").index(text(r["state"]))] += whole(r["n"])
        return [ChannelTally(channel, *count) for channel, count in sorted(counts.items())]

    def mark_pending(
        self, edition_id: str, slug: str, channel: str, items: Iterable[str], batch: str = ""
    ) -> None:
        """Record intent before the provider call, in one transaction (one statement per CHUNK)."""
        now, keys = time.time(), list(items)
        with self.db.transaction():
            for start in range(0, len(keys), CHUNK):
                chunk = keys[start : start + CHUNK]
                self.db.execute(
                    "INSERT INTO deliveries (edition, post, channel, item, batch, state, attempts,"
                    " updated_at) VALUES "
                    + ", ".join(["(?, ?, ?, ?, ?, 'pending', 1, ?)"] * len(chunk))
                    + " ON CONFLICT (edition, channel, item) DO UPDATE SET state='pending',"
                    " batch=excluded.batch, attempts=deliveries.attempts+1, error='', failure='',"
                    " updated_at=excluded.updated_at",
                    [v for item in chunk for v in (edition_id, slug, channel, item, batch, now)],
                )

    def mark_sent(self, edition_id: str, channel: str, receipts: Receipts) -> None:
        """Record provider ids (and public URLs) after a successful call, in one transaction.

        Receipts that share an id, URL and extras (a batch provider gives one id per call) are
        written by one UPDATE per CHUNK of items; the others one row at a time.
        """
        now = time.time()
        groups: dict[tuple[str, str, str], list[str]] = {}
        for item, (pid, url, extra) in receipts.items():
            encoded = json.dumps(dict(extra), ensure_ascii=False) if extra else "{}"
            groups.setdefault((pid, url, encoded), []).append(item)
        single = [(*key, now, edition_id, channel, items[0])
                  for key, items in groups.items() if len(items) == 1]
        with self.db.transaction():
            for (pid, url, encoded), items in groups.items():
                for start in range(0, len(items) if len(items) > 1 else 0, CHUNK):
                    chunk = items[start : start + CHUNK]
                    self.db.execute(
                        "UPDATE deliveries SET state='sent', provider_id=?, url=?, extra=?,"
                        " error='', updated_at=? WHERE edition=? AND channel=?"
                        f" AND item IN ({marks(len(chunk))})",
                        (pid, url, encoded, now, edition_id, channel, *chunk),
                    )
            self.db.executemany(
                "UPDATE deliveries SET state='sent', provider_id=?, url=?, extra=?, error='',"
                " updated_at=? WHERE edition=? AND channel=? AND item=?", single,
            )

    def mark_failed(
        self, edition_id: str, channel: str, reasons: Mapping[str, str], kind: str = TRANSIENT
    ) -> None:
        """Record a definite failure and its kind, which decides whether a later run retries it."""
        now = time.time()
        self._write(
            "UPDATE deliveries SET state='failed', error=?, failure=?, updated_at=?"
            " WHERE edition=? AND channel=? AND item=?",
            [(mask(why), kind, now, edition_id, channel, item) for item, why in reasons.items()],
        )

    def mark_uncertain(self, edition_id: str, channel: str, reasons: Mapping[str, str]) -> None:
        """Say why pending rows are uncertain (the answer was lost); they stay pending."""
        now = time.time()
        self._write(
            "UPDATE deliveries SET error=?, updated_at=?"
            " WHERE edition=? AND channel=? AND item=? AND state='pending'",
            [(mask(why), now, edition_id, channel, item) for item, why in reasons.items()],
        )

    def mark_progress(self, edition_id: str, channel: str, item: str, extra: Extra) -> None:
        """Keep a two-step delivery's first step (Threads' container) as its pending row's extra."""
        self._write(
            "UPDATE deliveries SET extra=?, updated_at=?"
            " WHERE edition=? AND channel=? AND item=? AND state='pending'",
            [(json.dumps(dict(extra), ensure_ascii=False), time.time(), edition_id, channel, item)],
        )

    # -- one row per batch -----------------------------------------------------------------

    def batch_rows(
        self, edition_id: str, channel: str | None = None, state: str | None = None
    ) -> list[BatchRow]:
        """Batch rows of an edition, optionally of one channel or state, lowest ids first."""
        sql, args = f"SELECT {BATCH_COLUMNS} FROM batch_deliveries WHERE edition=?", [edition_id]
        if channel:
            sql, args = sql + " AND channel=?", [*args, channel]
        if state:
            sql, args = sql + " AND state=?", [*args, state]
        found = self.db.execute(f"{sql} ORDER BY channel{self.db.dialect.byte_order}, first_id",
                                args)
        return [batch_from(r) for r in found]

    def covering(
        self, edition_id: str, channel: str, ids: Sequence[int]
    ) -> dict[int, tuple[BatchRow, int]]:
        """For each of these subscriber ids that a batch row holds: that row, the member's index.

        Only rows whose id range overlaps the ids are read; membership is each row's exact ids.
        """
        if not ids:
            return {}
        wanted, found = set(ids), dict[int, tuple[BatchRow, int]]()
        rows = self.db.execute(
            f"SELECT {BATCH_COLUMNS} FROM batch_deliveries WHERE edition=? AND channel=?"
            " AND last_id>=? AND first_id<=?", (edition_id, channel, min(ids), max(ids)),
        )
        for r in rows:
            batch = batch_from(r)
            found.update((member, (batch, index)) for index, member in enumerate(batch.ids)
                         if member in wanted)
        return found

    def has_items(self, edition_id: str, channel: str) -> bool:
        """Whether any per-recipient row exists for this channel (older sends, refusals)."""
        found = self.db.execute(
            "SELECT 1 AS one FROM deliveries WHERE edition=? AND channel=? LIMIT 1",
            (edition_id, channel),
        ).fetchone()
        return found is not None

    def mark_batch_pending(
        self, edition_id: str, slug: str, channel: str, key: str, ids: Sequence[int],
        items: Sequence[str], prior: Mapping[int, Row | tuple[BatchRow, int]],
    ) -> list[BatchRow]:
        """Record intent before one call: its members (ids, addresses) as batch rows, at once.

        A member tried before (`prior`: its per-recipient row, or its batch row and index)
        leaves that row, whose other members stay as they were, and keeps counting attempts:
        members with different counts get a row each, under the call's one key.
        """
        now, drop = time.time(), list[str]()
        if not prior and list(ids) == sorted(ids):  # the usual first send, in id order
            fresh = BatchRow(edition_id, slug, channel, key, tuple(ids), tuple(items),
                             "pending", updated_at=now)
            with self.db.transaction():
                self._insert_batch(fresh)
            return [fresh]
        groups: dict[int, list[tuple[int, str]]] = {}
        earlier: dict[tuple[str, int], tuple[BatchRow, set[int]]] = {}
        for member in sorted(zip(ids, items, strict=True)):
            was, attempts = prior.get(member[0]), 0
            if isinstance(was, Row):
                attempts = was.attempts
                drop.append(was.item)
            elif was is not None:
                batch, index = was
                attempts = batch.attempts
                earlier.setdefault(batch.name, (batch, set()))[1].add(index)
            groups.setdefault(attempts, []).append(member)
        written = [BatchRow(edition_id, slug, channel, key, tuple(i for i, _ in group),
                            tuple(e for _, e in group), "pending", attempts=attempts + 1,
                            updated_at=now) for attempts, group in sorted(groups.items())]
        with self.db.transaction():
            if earlier:  # read again under a lock: another sender may have split the row since
                self.db.lock(f"batch:{edition_id}:{channel}")
                taking = [batch.ids[i] for batch, taken in earlier.values() for i in taken]
                earlier.clear()
                for batch, index in self.covering(edition_id, channel, taking).values():
                    earlier.setdefault(batch.name, (batch, set()))[1].add(index)
            for batch, taken in earlier.values():
                self._delete_batch(batch)
                rest = batch.keeping([i for i in range(len(batch.ids)) if i not in taken])
                if rest is not None:
                    self._insert_batch(rest)
            for start in range(0, len(drop), CHUNK):
                chunk = drop[start : start + CHUNK]
                self.db.execute("DELETE FROM deliveries WHERE edition=? AND channel=? AND item"
                                f" IN ({marks(len(chunk))})", (edition_id, channel, *chunk))
            for row in written:
                self._insert_batch(row)
        return written

    def settle_batch(
        self, written: Sequence[BatchRow], accepted: Mapping[str, str], *,
        refused: Mapping[str, tuple[str, str]], uncertain: Mapping[str, str],
    ) -> None:
        """After the call: accepted members (address → provider id) are sent, in one transaction.

        The others leave the batch row for per-recipient rows: `refused` (address → reason and
        failure kind) failed, `uncertain` (address → reason) and any unanswered one pending.
        """
        now = time.time()
        with self.db.transaction():
            for row in written:
                pids = list(map(accepted.get, row.items))
                if None not in pids and len(set(pids)) == 1:
                    self.db.execute(
                        "UPDATE batch_deliveries SET state='sent', provider_id=?, provider_ids='',"
                        " error='', failure='', updated_at=? WHERE edition=? AND channel=?"
                        " AND batch=? AND first_id=?",
                        (pids[0], now, row.edition_id, row.channel, row.batch, row.ids[0]))
                    continue
                self._delete_batch(row)
                kept = [pid for pid in pids if pid is not None]
                sent = row.keeping([i for i, pid in enumerate(pids) if pid is not None])
                if sent is not None:
                    one = len(set(kept)) == 1
                    self._insert_batch(replace(sent, state="sent", updated_at=now,
                                               provider_id=kept[0] if one else "",
                                               provider_ids=() if one else tuple(kept)))
                self._insert_items(row, [
                    (item, *refused.get(item, ("", ""))) if item in refused
                    else (item, "", "") for item, pid in zip(row.items, pids, strict=True)
                    if pid is None], uncertain, now)

    def _insert_items(
        self, row: BatchRow, left: Sequence[tuple[str, str, str]], uncertain: Mapping[str, str],
        now: float,
    ) -> None:
        """Members a call did not deliver, as per-recipient rows: failed (with kind) or pending."""
        self.db.executemany(
            "INSERT INTO deliveries (edition, post, channel, item, batch, state, error, failure,"
            " attempts, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (edition, channel, item) DO UPDATE SET batch=excluded.batch,"
            " state=excluded.state, error=excluded.error, failure=excluded.failure,"
            " attempts=excluded.attempts, updated_at=excluded.updated_at",
            [(row.edition_id, row.slug, row.channel, item, row.batch,
              "failed" if kind else "pending", mask(why or uncertain.get(item, "")), kind,
              row.attempts, now) for item, why, kind in left],
        )

    def fail_batch(self, written: Sequence[BatchRow], why: str, kind: str) -> None:
        """The whole call failed for certain: its rows are failed, with the reason and kind."""
        self._set_batches(written, "state='failed', error=?, failure=?", (mask(why), kind))

    def doubt_batch(self, written: Sequence[BatchRow], why: str) -> None:
        """The call's answer was lost: its rows stay pending, with the reason."""
        self._set_batches(written, "error=?", (mask(why),), only="AND state='pending'")

    def _set_batches(
        self, written: Sequence[BatchRow], assignment: str, values: Sequence[Value],
        only: str = "",
    ) -> None:
        """One UPDATE per written row, in one transaction."""
        now = time.time()
        self._write(
            f"UPDATE batch_deliveries SET {assignment}, updated_at=? WHERE edition=?"
            f" AND channel=? AND batch=? AND first_id=? {only}",
            [(*values, now, r.edition_id, r.channel, r.batch, r.ids[0]) for r in written],
        )

    def forget(self, edition_id: str, channel: str, items: Iterable[str]) -> None:
        """Drop the deliveries of these items, per-recipient or inside batch rows, at once."""
        gone = set(items)
        with self.db.transaction():
            self.db.executemany("DELETE FROM deliveries WHERE edition=? AND channel=? AND item=?",
                                [(edition_id, channel, item) for item in gone])
            for batch in self.batch_rows(edition_id, channel):
                keep = [i for i, item in enumerate(batch.items) if item not in gone]
                if len(keep) < len(batch.items):
                    self._delete_batch(batch)
                    rest = batch.keeping(keep)
                    if rest is not None:
                        self._insert_batch(rest)

    def _insert_batch(self, row: BatchRow) -> None:
        """Write one batch row (inside the caller's transaction)."""
        self.db.execute(
            f"INSERT INTO batch_deliveries ({BATCH_COLUMNS}) VALUES"
            f" ({marks(len(BATCH_COLUMNS.split(', ')))}) ON CONFLICT"
            " (edition, channel, batch, first_id) DO UPDATE SET last_id=excluded.last_id,"
            " size=excluded.size, ids=excluded.ids, items=excluded.items, state=excluded.state,"
            " provider_id=excluded.provider_id, provider_ids=excluded.provider_ids,"
            " error=excluded.error, failure=excluded.failure, attempts=excluded.attempts,"
            " updated_at=excluded.updated_at",
            (row.edition_id, row.slug, row.channel, row.batch, row.ids[0], row.ids[-1],
             len(row.ids), encode_ids(row.ids), "\n".join(row.items), row.state,
             row.provider_id, "\n".join(row.provider_ids), row.error, row.failure,
             row.attempts, row.updated_at),
        )

    def _delete_batch(self, row: BatchRow) -> None:
        """Remove one batch row (inside the caller's transaction)."""
        self.db.execute(
            "DELETE FROM batch_deliveries WHERE edition=? AND channel=? AND batch=?"
            " AND first_id=?", (row.edition_id, row.channel, row.batch, row.ids[0]),
        )

    # -- actions and corrections -----------------------------------------------------------

    def mark_action(
        self, edition_id: str, slug: str, channel: str, item: str, kind: str, *,
        target: str = "", state: str = "pending", error: str = "",
    ) -> None:
        """Record (or move on) one action; pending before the provider call, done after."""
        self._write(
            f"INSERT INTO actions ({ACTION_COLUMNS}, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (edition, channel, item, kind, target) DO UPDATE SET"
            " state=excluded.state, error=excluded.error, updated_at=excluded.updated_at",
            [(edition_id, slug, channel, item, kind, target, state, error, time.time())],
        )

    def actions(
        self, kind: str, *, slug: str | None = None, edition_id: str | None = None
    ) -> list[Action]:
        """Actions of one kind for a post or an edition, oldest first."""
        sql, args = f"SELECT {ACTION_COLUMNS} FROM actions WHERE kind=?", [kind]
        if slug is not None:
            sql, args = sql + " AND post=?", [*args, slug]
        if edition_id is not None:
            sql, args = sql + " AND edition=?", [*args, edition_id]
        rows = self.db.execute(sql + " ORDER BY updated_at", args)
        return [Action(*(text(r[c]) for c in ACTION_COLUMNS.split(", "))) for r in rows]

    def drop_actions(self, edition_id: str, kind: str, items: Iterable[str]) -> None:
        """Forget actions that no longer hold (e.g. a skipped channel that has now been sent)."""
        self._write("DELETE FROM actions WHERE edition=? AND kind=? AND item=?",
                    [(edition_id, kind, item) for item in items])

    def carry_over(self, slug: str, source: str, target: str) -> None:
        """Make `target` the post's current edition: it inherits what `source` delivered.

        Used by `--update`: the corrected article was never sent, but everything the first
        edition delivered (and retracted, and left out) stands for it.
        """
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO deliveries (edition, post, channel, item, batch, state, provider_id,"
                " url, extra, error, attempts, updated_at) SELECT ?, post, channel, item, batch,"
                " state, provider_id, url, extra, error, attempts, updated_at FROM deliveries"
                " WHERE edition=? AND post=? ON CONFLICT (edition, channel, item) DO NOTHING",
                (target, source, slug),
            )
            self.db.execute(
                f"INSERT INTO batch_deliveries ({BATCH_COLUMNS}) SELECT ?,"
                f" {BATCH_COLUMNS.removeprefix('edition, ')} FROM batch_deliveries"
                " WHERE edition=? AND post=? ON CONFLICT (edition, channel, batch, first_id)"
                " DO NOTHING", (target, source, slug),
            )
            self.db.execute(
                f"INSERT INTO actions ({ACTION_COLUMNS}, updated_at) SELECT ?, post, channel,"
                " item, kind, target, state, error, updated_at FROM actions WHERE edition=?"
                " AND post=? AND kind IN ('skip', 'retract')"
                " ON CONFLICT (edition, channel, item, kind, target) DO NOTHING",
                (target, source, slug),
            )

    # -- the send lock ---------------------------------------------------------------------

    @contextmanager
    def lock(self, slug: str, *, wait: float = 0.0, source: str = "") -> Iterator[None]:
        """Hold the post's send lock; another live sender makes this wait, then refuse."""
        fix = f"{BUSY_FIX}; or pass --join to help send it" if self.shared else BUSY_FIX
        deadline = time.monotonic() + wait
        while not self._try_lock(slug):
            if time.monotonic() >= deadline:
                raise LedgerConflict("another publish run is sending this post right now",
                                     where=source or slug, fix=fix)
            time.sleep(0.2)
        try:
            yield
        finally:
            if not self.db.closed:
                self.db.execute("DELETE FROM locks WHERE post=? AND owner=?", (slug, self.owner))

    def heartbeat(self, slug: str) -> None:
        """Tell other senders this run is alive (by the database's clock, where it has one)."""
        self.db.execute(f"UPDATE locks SET heartbeat={self.db.dialect.clock}"
                        " WHERE post=? AND owner=?", (slug, self.owner))

    def _try_lock(self, slug: str) -> bool:
        """Take the lock if it is free or its holder is gone (one process at a time)."""
        dialect = self.db.dialect
        with self.db.transaction():
            self.db.lock(f"lock:{slug}")
            held = self.db.execute(
                f"SELECT host, pid, {dialect.age.format(column='heartbeat')} AS age FROM locks"
                " WHERE post=?", (slug,),
            ).fetchone()
            if held is not None and not self._stale(held, STALE_LOCK_SECONDS):
                return False
            self.db.execute(
                f"INSERT INTO locks (post, owner, host, pid, heartbeat) VALUES (?, ?, ?, ?,"
                f" {dialect.clock}) ON CONFLICT (post) DO UPDATE SET owner=excluded.owner,"
                " host=excluded.host, pid=excluded.pid, heartbeat=excluded.heartbeat",
                (slug, self.owner, self.host, self.pid),
            )
        return True

    def _stale(self, held: Record, limit: float) -> bool:
        """A holder whose process died on this host, or whose heartbeat stopped elsewhere."""
        if held["host"] == self.host:
            return not _pid_alive(whole(held["pid"]))
        return held["age"] is None or number(held["age"]) > limit

    # -- batches shared by several senders -------------------------------------------------

    def plan_batches(
        self, edition_id: str, channel: str, size: int, active_ids: Callable[[int], Iterable[int]],
        *, reopen: bool,
    ) -> int:
        """Cut subscribers not yet planned into contiguous id ranges of `size`; the count added.

        `reopen` (the lock holder) puts finished and abandoned batches back, so each run passes
        over every recipient as a single sender does: sent rows are skipped, failed ones retried.
        Ranges are committed PLAN_STEP at a time: other senders claim the first while the rest of
        a long list is cut, and a plan cut short is continued from its last range by the next.
        """
        added, last = 0, -1
        ids: Iterator[int] = iter(())
        while True:  # a transaction per PLAN_STEP batches: joiners start on the first ones
            with self.db.transaction():
                self.db.lock(f"plan:{edition_id}:{channel}")
                if reopen and last < 0:
                    self._reopen(edition_id, channel, include_done=True)
                top = self.db.execute(
                    "SELECT COALESCE(MAX(number), -1) n, COALESCE(MAX(last_id), 0) l FROM batches"
                    " WHERE edition=? AND channel=?", (edition_id, channel),
                ).fetchone()
                count, planned_to = (whole(top["n"]), whole(top["l"])) if top else (-1, 0)
                if planned_to != last:  # the first step, or another planner went on meanwhile
                    last, ids = planned_to, iter(active_ids(planned_to))
                ranges = [(edition_id, channel, number, first, end)
                          for number, first, end in _cut(ids, size, count + 1, last)]
                if ranges:
                    last = ranges[-1][-1]
                self.db.executemany(
                    "INSERT INTO batches (edition, channel, number, first_id, last_id)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", ranges,
                )
            added += len(ranges)
            if len(ranges) < PLAN_STEP:
                return added

    def planned(self, edition_id: str, channel: str) -> bool:
        """Whether a lead sender has cut this send into batches yet."""
        found = self.db.execute(
            "SELECT 1 AS one FROM batches WHERE edition=? AND channel=? LIMIT 1",
            (edition_id, channel),
        ).fetchone()
        return found is not None

    def claim_batch(self, edition_id: str, channel: str) -> Claim | None:
        """The next open (or abandoned) batch, now ours; None when nothing is left to take."""
        claim = self._claim(edition_id, channel)
        if claim is None:
            with self.db.transaction():
                reopened = self._reopen(edition_id, channel, include_done=False)
            if reopened:
                claim = self._claim(edition_id, channel)
        return claim

    def touch_batch(self, claim: Claim) -> None:
        """Keep a long claim from looking abandoned."""
        self._set_batch(claim, f"heartbeat={self.db.dialect.clock}")

    def finish_batch(self, claim: Claim) -> None:
        """Every recipient of the batch went through the ledger."""
        self._set_batch(claim, f"state='done', heartbeat={self.db.dialect.clock}")

    def release_batch(self, claim: Claim) -> None:
        """Give a batch back unfinished (a delivery error), for the next sender or run."""
        self._set_batch(claim, "state='open', owner='', heartbeat=NULL")

    def _claim(self, edition_id: str, channel: str) -> Claim | None:
        """One claim: skip batches other senders hold locked right now, never wait on them."""
        dialect = self.db.dialect
        with self.db.transaction():
            taken = self.db.execute(
                f"UPDATE batches SET state='claimed', owner=?, host=?, pid=?,"
                f" heartbeat={dialect.clock} WHERE edition=? AND channel=? AND number = ("
                "  SELECT number FROM batches WHERE edition=? AND channel=? AND (state='open'"
                f"   OR (state='claimed' AND {dialect.age.format(column='heartbeat')} > ?))"
                f"  ORDER BY number LIMIT 1{dialect.skip_locked})"
                " RETURNING number, first_id, last_id",
                (self.owner, self.host, self.pid, edition_id, channel, edition_id, channel,
                 self.stale_claim_seconds),
            ).fetchall()  # read to the end before COMMIT: SQLite refuses to commit mid-statement
        if not taken:
            return None
        found = taken[0]
        return Claim(edition_id, channel, whole(found["number"]), whole(found["first_id"]),
                     whole(found["last_id"]))

    def _reopen(self, edition_id: str, channel: str, *, include_done: bool) -> int:
        """Put back batches whose owner is gone (and, for a new run, finished ones)."""
        held = self.db.execute(
            f"SELECT number, host, pid, {self.db.dialect.age.format(column='heartbeat')} AS age"
            " FROM batches WHERE edition=? AND channel=? AND state='claimed'",
            (edition_id, channel),
        ).fetchall()
        numbers = [whole(r["number"]) for r in held if self._stale(r, self.stale_claim_seconds)]
        done = " OR state='done'" if include_done else ""
        if not numbers and not done:
            return 0
        reopened = self.db.execute(
            "UPDATE batches SET state='open', owner='', heartbeat=NULL WHERE edition=?"
            f" AND channel=? AND (number IN ({marks(len(numbers)) or 'NULL'}){done})",
            (edition_id, channel, *numbers),
        )
        return reopened.rowcount

    def _set_batch(self, claim: Claim, assignment: str) -> None:
        """Update our own claim (a claim taken over by another sender is no longer ours)."""
        self.db.execute(
            f"UPDATE batches SET {assignment} WHERE edition=? AND channel=? AND number=?"
            " AND owner=?", (claim.edition_id, claim.channel, claim.number, self.owner),
        )


def _cut(ids: Iterator[int], size: int, number: int, last: int) -> list[tuple[int, int, int]]:
    """Up to PLAN_STEP numbered ranges (number, first id, last id) of `size` ids after `last`."""
    ranges: list[tuple[int, int, int]] = []
    while len(ranges) < PLAN_STEP and (chunk := list(islice(ids, size))):
        ranges.append((number + len(ranges), last + 1, chunk[-1]))
        last = chunk[-1]
    return ranges


def _pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def row_from(r: Record) -> Row:
    """A database row as a Row."""
    return Row(
        edition_id=text(r["edition"]), slug=text(r["post"]), channel=text(r["channel"]),
        item=text(r["item"]), batch=text(r["batch"]), state=text(r["state"]),
        provider_id=text(r["provider_id"]), url=text(r["url"]),
        extra=json.loads(text(r["extra"]) or "{}"), error=text(r["error"]),
        attempts=whole(r["attempts"]), updated_at=number(r["updated_at"]),
        failure=text(r["failure"]),
    )


def encode_ids(ids: Sequence[int]) -> str:
    """Ascending ids as the first and then each difference: "5,1,1,3" for 5, 6, 7, 10."""
    return ",".join(map(str, (ids[0], *map(operator.sub, ids[1:], ids[:-1]))))


def decode_ids(encoded: str) -> tuple[int, ...]:
    """The ids `encode_ids` wrote."""
    return tuple(accumulate(map(int, encoded.split(","))))


def batch_from(r: Record) -> BatchRow:
    """A database row as a BatchRow."""
    pids = text(r["provider_ids"])
    return BatchRow(
        edition_id=text(r["edition"]), slug=text(r["post"]), channel=text(r["channel"]),
        batch=text(r["batch"]), ids=decode_ids(text(r["ids"])),
        items=tuple(text(r["items"]).split("\n")), state=text(r["state"]),
        provider_id=text(r["provider_id"]), provider_ids=tuple(pids.split("\n")) if pids else (),
        error=text(r["error"]), failure=text(r["failure"]), attempts=whole(r["attempts"]),
        updated_at=number(r["updated_at"]),
    )
