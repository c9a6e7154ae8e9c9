"""Which feed items were published: two tables in the ledger's database, beside `deliveries`.

`feed_items` keys each item by its feed and its guid (RSS `<guid>`, Atom `<id>`), never by its
place in the feed or its text, so a feed that re-orders or edits an item does not re-post it.
An item is `pending` once a run starts on it (its ledger post name is fixed then), `published`
when every output was delivered, `passed` when a first run's `--latest`/`--since` left it out.
`feed_sources` keeps each feed's HTTP validators (ETag, Last-Modified) for the next run's
conditional GET; a feed without a row there was never read, so its first run must be limited.

The tables live in the ledger (`ledger = …`, SQLite file or postgresql:// URL) so that one
backup, one CI cache or one database holds everything that makes publishing exactly once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from publisher.source.feed.choose import PASSED, PENDING, PUBLISHED
from publisher.source.feed.fetch import Validators
from publisher.stores.database import text

if TYPE_CHECKING:  # the ledger loads when a feed is read for publishing, not for Validators
    from publisher.stores.ledger import Ledger

__all__ = ["PASSED", "PENDING", "PUBLISHED", "FeedItemRow", "FeedLog", "Validators",
           "open_feed_log"]


@dataclass(frozen=True)
class FeedItemRow:
    """What the ledger remembers of one item: its post name, last edition and state."""

    guid: str
    slug: str
    edition_id: str
    state: str


class FeedLog:
    """The feed tables of one ledger (made by its migration step 5)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger, self.db = ledger, ledger.db

    def close(self) -> None:
        """Close the ledger."""
        self.ledger.close()

    def _write(self, sql: str, row: tuple[str | float, ...]) -> None:
        """One statement in its own transaction."""
        with self.db.transaction():
            self.db.execute(sql, row)

    def known(self, feed: str) -> Validators | None:
        """The feed's validators, or None when no run ever finished reading it."""
        row = self.db.execute("SELECT etag, last_modified FROM feed_sources WHERE feed=?",
                              (feed,)).fetchone()
        return Validators(text(row["etag"]), text(row["last_modified"])) if row else None

    def remember(self, feed: str, validators: Validators) -> None:
        """Record a complete read (validators empty when the next read must be a full one)."""
        self._write(
            "INSERT INTO feed_sources (feed, etag, last_modified, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (feed) DO UPDATE SET etag=excluded.etag,"
            " last_modified=excluded.last_modified, updated_at=excluded.updated_at",
            (feed, validators.etag, validators.last_modified, time.time()))

    def items(self, feed: str) -> dict[str, FeedItemRow]:
        """Every item of the feed the ledger knows, by guid."""
        rows = self.db.execute(
            "SELECT guid, post, edition, state FROM feed_items WHERE feed=?", (feed,))
        found = (FeedItemRow(text(r["guid"]), text(r["post"]), text(r["edition"]),
                             text(r["state"])) for r in rows)
        return {row.guid: row for row in found}

    def history(self) -> list[tuple[str, FeedItemRow, float]]:
        """Every known item of every feed with the time its state was recorded, oldest first."""
        rows = self.db.execute("SELECT feed, guid, post, edition, state, updated_at"
                               " FROM feed_items ORDER BY feed, updated_at, guid", ())
        return [(text(r["feed"]), FeedItemRow(text(r["guid"]), text(r["post"]),
                                              text(r["edition"]), text(r["state"])),
                 float(r["updated_at"] or 0)) for r in rows]

    def post_taken(self, slug: str, feed: str, guid: str) -> bool:
        """Whether another item (of any feed) already publishes under this ledger post name."""
        rows = self.db.execute("SELECT feed, guid FROM feed_items WHERE post=?", (slug,))
        return any((r["feed"], r["guid"]) != (feed, guid) for r in rows)

    def mark(self, feed: str, item: FeedItemRow) -> None:
        """Record an item's post name, edition and state."""
        self._write(
            "INSERT INTO feed_items (feed, guid, post, edition, state, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (feed, guid) DO UPDATE SET"
            " post=excluded.post, edition=excluded.edition, state=excluded.state,"
            " updated_at=excluded.updated_at",
            (feed, item.guid, item.slug, item.edition_id, item.state, time.time()))


def open_feed_log(target: str | Path) -> FeedLog:
    """The feed tables of the ledger a setting names: a SQLite file, or a postgresql:// URL."""
    from publisher.stores.backends import open_ledger

    return FeedLog(open_ledger(target))
