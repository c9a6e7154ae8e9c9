"""Scheduled editions in the ledger: one row per (edition, output), written before any send.

`publish POST --at T` records where each output waits: `provider` (the provider holds it; the
deliveries rows are the scheduled sends, with their ids) or `queued` (the ledger holds it until
`publish due`). The row moves to `sent` when `due` delivered it, or `cancelled` by
`publish unschedule`. A rerun finds the row and schedules nothing twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass, fields
from typing import TYPE_CHECKING

from publisher.stores.database import Value, text

if TYPE_CHECKING:
    from publisher.stores.ledger import Ledger

SCHEDULED, SENT, CANCELLED = "scheduled", "sent", "cancelled"


@dataclass(frozen=True)
class Scheduled:
    """One output of a scheduled edition: where it waits, until when, and the provider's handle.

    source is the POST as given on the command line, so `publish due` can read it again;
    handle is a provider's id for the whole send (SendGrid's batch_id).
    """

    edition_id: str
    slug: str
    source: str
    output: str
    channel: str
    at: str  # ISO 8601 with its offset
    mode: str  # schedule.PROVIDER or schedule.QUEUED
    state: str = SCHEDULED
    handle: str = ""
    reason: str = ""
    nonce: str = ""  # fresh per schedule: part of its idempotency keys


# The table keeps its first column names: `edition` holds Scheduled.edition_id, `post` the slug.
COLUMNS = ", ".join({"edition_id": "edition", "slug": "post"}.get(f.name, f.name)
                    for f in fields(Scheduled))


class ScheduleLog:
    """The `schedules` table of one ledger, over the ledger's database."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger, self.db = ledger, ledger.db

    def _write(self, sql: str, rows: Iterable[Sequence[Value]]) -> None:
        """One statement per row, in one transaction."""
        with self.db.transaction():
            self.db.executemany(sql, rows)

    def add(self, entries: Iterable[Scheduled]) -> None:
        """Record scheduled outputs; a live row keeps its first values, a cancelled one renews."""
        self._write(
            f"INSERT INTO schedules ({COLUMNS}, updated_at) VALUES"
            " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (edition, output) DO UPDATE SET"
            " source=excluded.source, channel=excluded.channel, at=excluded.at,"
            " mode=excluded.mode, state=excluded.state, handle=excluded.handle,"
            " reason=excluded.reason, nonce=excluded.nonce, updated_at=excluded.updated_at"
            " WHERE schedules.state = 'cancelled'",
            [(*astuple(e), time.time()) for e in entries],
        )

    def rows(self, *, slug: str | None = None, state: str | None = None) -> list[Scheduled]:
        """Scheduled outputs, of one post or in one state, soonest first."""
        sql, args = f"SELECT {COLUMNS} FROM schedules WHERE 1=1", list[str]()
        if slug is not None:
            sql, args = sql + " AND post=?", [*args, slug]
        if state is not None:
            sql, args = sql + " AND state=?", [*args, state]
        found = self.db.execute(sql + " ORDER BY at, post, output", args)
        return [Scheduled(*(text(r[c]) for c in COLUMNS.split(", "))) for r in found]

    def set_state(self, edition_id: str, outputs: Iterable[str], state: str) -> None:
        """Move outputs of an edition on: sent by `due`, or cancelled by `unschedule`."""
        self._write(
            "UPDATE schedules SET state=?, updated_at=? WHERE edition=? AND output=?",
            [(state, time.time(), edition_id, output) for output in outputs])

    def forget_deliveries(self, edition_id: str, channel: str, items: Iterable[str]) -> None:
        """Drop the rows of sends a provider cancelled: they never went, a later run may send."""
        self.ledger.forget(edition_id, channel, items)
