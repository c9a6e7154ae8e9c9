"""The ledger on PostgreSQL: the same rows and rules as the SQLite one, shareable by many senders.

`deliveries` and `locks` mean exactly what they mean in `publisher.stores.ledger`. On top, `batches`
splits one email send into numbered ranges of subscriber ids, so senders on several machines can
share it: each claims the next open batch with `SELECT … FOR UPDATE SKIP LOCKED`
(https://www.postgresql.org/docs/current/sql-select.html#SQL-FOR-UPDATE-SHARE), so no two take
the same one and none waits on another. A claim whose owner stopped heartbeating (or whose process
is gone, on the same host) may be taken again; its recipients still go through pending/sent rows,
so what a dead sender may have sent stays uncertain exactly as after a crash.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import islice
from typing import Any

from psycopg.rows import dict_row

from publisher.config.secrets import mask
from publisher.stores.ledger import (
    ACTIONS_SCHEMA,
    BUSY_FIX,
    STALE_LOCK_SECONDS,
    TRANSIENT,
    ActionLog,
    ChannelTally,
    Claim,
    Row,
    _pid_alive,
    refuse_changed_article,
    row_from,
    wait_for_lock,
)
from publisher.stores.pgurl import connect

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
    updated_at DOUBLE PRECISION NOT NULL,
    failure TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (edition, channel, item)
);
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS failure TEXT NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS deliveries_by_post ON deliveries (post, edition);
CREATE TABLE IF NOT EXISTS locks (
    post TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    heartbeat TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS batches (
    edition TEXT NOT NULL,
    channel TEXT NOT NULL,
    number INTEGER NOT NULL,
    first_id BIGINT NOT NULL,
    last_id BIGINT NOT NULL,
    state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'claimed', 'done')),
    owner TEXT NOT NULL DEFAULT '',
    host TEXT NOT NULL DEFAULT '',
    pid INTEGER NOT NULL DEFAULT 0,
    heartbeat TIMESTAMPTZ,
    PRIMARY KEY (edition, channel, number)
);
"""
SCHEMA_LOCK = 7_361_902_114  # any constant: serializes CREATE TABLE IF NOT EXISTS across senders
STALE_CLAIM_SECONDS = STALE_LOCK_SECONDS
COLUMNS = ("edition, post, channel, item, batch, state, provider_id, url, extra, error, attempts,"
           " updated_at, failure")


class PgLedger(ActionLog):
    """The delivery record in a PostgreSQL database (`ledger = "postgresql://…"`)."""

    def __init__(self, setting: str, *, stale_claim_seconds: float = STALE_CLAIM_SECONDS) -> None:
        self.db = connect(setting, key="ledger")
        self.db.row_factory = dict_row
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.owner = f"{self.host}:{self.pid}:{time.time_ns()}"
        self.stale_claim_seconds = stale_claim_seconds
        with self.db.transaction():
            self.db.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            self.db.execute(SCHEMA)
            self.db.execute(ACTIONS_SCHEMA)

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def _write(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement per row in one transaction."""
        with self.db.transaction(), self.db.cursor() as cursor:
            cursor.executemany(sql.replace("?", "%s"), rows)

    def _read(self, sql: str, args: Sequence[Any]) -> list[Mapping[str, Any]]:
        """Rows of a query as mappings."""
        return list(self.db.execute(sql.replace("?", "%s"), args))

    # -- editions --------------------------------------------------------------------------

    def other_editions(self, post: str, edition: str) -> list[str]:
        """Editions of this post, other than this one, that already delivered something."""
        rows = self.db.execute(
            "SELECT DISTINCT edition FROM deliveries WHERE post=%s AND edition<>%s"
            " AND state='sent'", (post, edition),
        )
        return [r["edition"] for r in rows]

    def check_edition(self, post: str, edition: str, *, resend: bool, source: str) -> None:
        """Refuse to send a changed article unless the editor asked for a new edition."""
        refuse_changed_article(self, post, edition, resend=resend, source=source)

    # -- rows ------------------------------------------------------------------------------

    def get(self, edition: str, channel: str, item: str) -> Row | None:
        """The row for one delivery, if any."""
        found = self.db.execute(
            f"SELECT {COLUMNS} FROM deliveries WHERE edition=%s AND channel=%s AND item=%s",
            (edition, channel, item),
        ).fetchone()
        return row_from(found) if found else None

    def states(self, edition: str, channel: str, items: Sequence[str]) -> dict[str, Row]:
        """Rows for many items at once (one query with an array parameter)."""
        rows = self.db.execute(
            f"SELECT {COLUMNS} FROM deliveries WHERE edition=%s AND channel=%s"
            " AND item = ANY(%s)", (edition, channel, list(items)),
        )
        return {r["item"]: row_from(r) for r in rows}

    def rows(self, edition: str, channel: str | None = None, state: str | None = None) -> list[Row]:
        """All rows of an edition, optionally of one channel or state, in a stable order."""
        sql, args = f"SELECT {COLUMNS} FROM deliveries WHERE edition=%s", [edition]
        if channel:
            sql, args = sql + " AND channel=%s", [*args, channel]
        if state:
            sql, args = sql + " AND state=%s", [*args, state]
        order = " ORDER BY channel COLLATE \"C\", item COLLATE \"C\""  # SQLite's byte order
        return [row_from(r) for r in self.db.execute(sql + order, args)]

    def mark_pending(
        self, edition: str, post: str, channel: str, items: Iterable[str], batch: str = ""
    ) -> None:
        """Record intent before the provider call, in one transaction."""
        now = time.time()
        with self.db.transaction(), self.db.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO deliveries (edition, post, channel, item, batch, state, attempts,"
                " updated_at) VALUES (%s, %s, %s, %s, %s, 'pending', 1, %s)"
                " ON CONFLICT (edition, channel, item) DO UPDATE SET state='pending',"
                " batch=excluded.batch, attempts=deliveries.attempts+1, error='', failure='',"
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
        with self.db.transaction(), self.db.cursor() as cursor:
            cursor.executemany(
                "UPDATE deliveries SET state='sent', provider_id=%s, url=%s, extra=%s, error='',"
                " updated_at=%s WHERE edition=%s AND channel=%s AND item=%s",
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
        with self.db.transaction(), self.db.cursor() as cursor:
            cursor.executemany(
                "UPDATE deliveries SET state='failed', error=%s, failure=%s, updated_at=%s"
                " WHERE edition=%s AND channel=%s AND item=%s",
                [(mask(why), kind, now, edition, channel, item) for item, why in reasons.items()],
            )

    def mark_uncertain(self, edition: str, channel: str, reasons: Mapping[str, str]) -> None:
        """Say why pending rows are uncertain (the answer was lost); they stay pending."""
        now = time.time()
        with self.db.transaction(), self.db.cursor() as cursor:
            cursor.executemany(
                "UPDATE deliveries SET error=%s, updated_at=%s"
                " WHERE edition=%s AND channel=%s AND item=%s AND state='pending'",
                [(mask(why), now, edition, channel, item) for item, why in reasons.items()],
            )

    def tally(self, edition: str) -> list[ChannelTally]:
        """Per-channel counts for `publish status`."""
        rows = self.db.execute(
            "SELECT channel, COUNT(*) FILTER (WHERE state='sent') s,"
            " COUNT(*) FILTER (WHERE state='pending') p, COUNT(*) FILTER (WHERE state='failed') f"
            " FROM deliveries WHERE edition=%s GROUP BY channel ORDER BY channel COLLATE \"C\"",
            (edition,),
        )
        return [ChannelTally(r["channel"], r["s"], r["p"], r["f"]) for r in rows]

    def editions(self, post: str) -> list[str]:
        """Every edition of a post that has rows, newest activity first."""
        rows = self.db.execute(
            "SELECT edition, MAX(updated_at) t FROM deliveries WHERE post=%s"
            " GROUP BY edition ORDER BY t DESC",
            (post,),
        )
        return [r["edition"] for r in rows]

    # -- the send lock ---------------------------------------------------------------------

    @contextmanager
    def lock(self, post: str, *, wait: float = 0.0, source: str = "") -> Iterator[None]:
        """Hold the post's send lock; another live sender makes this wait, then refuse."""
        wait_for_lock(lambda: self._try_lock(post), wait=wait, where=source or post,
                      fix=f"{BUSY_FIX}; or pass --join to help send it")
        try:
            yield
        finally:
            if not self.db.closed:
                self.db.execute("DELETE FROM locks WHERE post=%s AND owner=%s", (post, self.owner))

    def heartbeat(self, post: str) -> None:
        """Tell other senders this run is alive (the database's clock, shared by every host)."""
        self.db.execute(
            "UPDATE locks SET heartbeat=now() WHERE post=%s AND owner=%s", (post, self.owner)
        )

    def _try_lock(self, post: str) -> bool:
        """Take the lock if it is free or its holder is gone (serialized per post)."""
        with self.db.transaction():
            self.db.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                            (f"lock:{post}",))
            held = self.db.execute(
                "SELECT host, pid, EXTRACT(EPOCH FROM now() - heartbeat) AS age FROM locks"
                " WHERE post=%s", (post,),
            ).fetchone()
            if held is not None and not self._stale(held, STALE_LOCK_SECONDS):
                return False
            self.db.execute(
                "INSERT INTO locks (post, owner, host, pid, heartbeat) VALUES (%s, %s, %s, %s,"
                " now()) ON CONFLICT (post) DO UPDATE SET owner=excluded.owner,"
                " host=excluded.host, pid=excluded.pid, heartbeat=excluded.heartbeat",
                (post, self.owner, self.host, self.pid),
            )
        return True

    def _stale(self, held: Mapping[str, Any], limit: float) -> bool:
        """A holder whose process died on this host, or whose heartbeat stopped elsewhere."""
        if held["host"] == self.host:
            return not _pid_alive(held["pid"])
        return held["age"] is None or float(held["age"]) > limit

    # -- batches shared by several senders -------------------------------------------------

    def plan_batches(
        self, edition: str, channel: str, size: int, active_ids: Callable[[int], Iterable[int]],
        *, reopen: bool,
    ) -> int:
        """Cut subscribers not yet planned into contiguous id ranges of `size`; the count added.

        `reopen` (the lock holder) puts finished and abandoned batches back, so each run passes
        over every recipient as a single sender does: sent rows are skipped, failed ones retried.
        """
        with self.db.transaction(), self.db.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                           (f"plan:{edition}:{channel}",))
            if reopen:
                self._reopen(edition, channel, include_done=True)
            top = cursor.execute(
                "SELECT COALESCE(MAX(number), -1) n, COALESCE(MAX(last_id), 0) l FROM batches"
                " WHERE edition=%s AND channel=%s", (edition, channel),
            ).fetchone()
            number, last = int(top["n"]), int(top["l"])
            ranges = []
            ids = iter(active_ids(last))
            while chunk := list(islice(ids, size)):
                number += 1
                ranges.append((edition, channel, number, last + 1, chunk[-1]))
                last = chunk[-1]
            cursor.executemany(
                "INSERT INTO batches (edition, channel, number, first_id, last_id)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING", ranges,
            )
        return len(ranges)

    def planned(self, edition: str, channel: str) -> bool:
        """Whether a lead sender has cut this send into batches yet."""
        found = self.db.execute(
            "SELECT 1 FROM batches WHERE edition=%s AND channel=%s LIMIT 1", (edition, channel)
        ).fetchone()
        return found is not None

    def claim_batch(self, edition: str, channel: str) -> Claim | None:
        """The next open (or abandoned) batch, now ours; None when nothing is left to take."""
        claim = self._claim(edition, channel)
        if claim is None and self._reopen(edition, channel, include_done=False):
            claim = self._claim(edition, channel)
        return claim

    def touch_batch(self, claim: Claim) -> None:
        """Keep a long claim from looking abandoned."""
        self._set_batch(claim, "heartbeat=now()")

    def finish_batch(self, claim: Claim) -> None:
        """Every recipient of the batch went through the ledger."""
        self._set_batch(claim, "state='done', heartbeat=now()")

    def release_batch(self, claim: Claim) -> None:
        """Give a batch back unfinished (a delivery error), for the next sender or run."""
        self._set_batch(claim, "state='open', owner='', heartbeat=NULL")

    def _claim(self, edition: str, channel: str) -> Claim | None:
        """One claim: skip batches other senders hold locked right now, never wait on them."""
        found = self.db.execute(
            "UPDATE batches SET state='claimed', owner=%s, host=%s, pid=%s, heartbeat=now()"
            " WHERE edition=%s AND channel=%s AND number = ("
            "  SELECT number FROM batches WHERE edition=%s AND channel=%s AND (state='open'"
            "   OR (state='claimed' AND heartbeat < now() - make_interval(secs => %s)))"
            "  ORDER BY number LIMIT 1 FOR UPDATE SKIP LOCKED)"
            " RETURNING number, first_id, last_id",
            (self.owner, self.host, self.pid, edition, channel, edition, channel,
             self.stale_claim_seconds),
        ).fetchone()
        if found is None:
            return None
        return Claim(edition, channel, found["number"], found["first_id"], found["last_id"])

    def _reopen(self, edition: str, channel: str, *, include_done: bool) -> int:
        """Put back batches whose owner is gone (and, for a new run, finished ones)."""
        held = self.db.execute(
            "SELECT number, host, pid, EXTRACT(EPOCH FROM now() - heartbeat) AS age"
            " FROM batches WHERE edition=%s AND channel=%s AND state='claimed'",
            (edition, channel),
        ).fetchall()
        numbers = [r["number"] for r in held if self._stale(r, self.stale_claim_seconds)]
        done = " OR state='done'" if include_done else ""
        reopened = self.db.execute(
            "UPDATE batches SET state='open', owner='', heartbeat=NULL WHERE edition=%s"
            f" AND channel=%s AND (number = ANY(%s){done})", (edition, channel, numbers),
        )
        return int(reopened.rowcount)

    def _set_batch(self, claim: Claim, assignment: str) -> None:
        """Update our own claim (a claim taken over by another sender is no longer ours)."""
        self.db.execute(
            f"UPDATE batches SET {assignment} WHERE edition=%s AND channel=%s AND number=%s"
            " AND owner=%s", (claim.edition, claim.channel, claim.number, self.owner),
        )

