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

import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from publisher.errors import ConfigError
from publisher.source.feed.choose import PASSED, PENDING, PUBLISHED
from publisher.stores.pgurl import check_setting, is_database_url

__all__ = ["PASSED", "PENDING", "PUBLISHED", "FeedItemRow", "FeedLog", "Validators",
           "open_feed_log"]
SCHEMA = """
CREATE TABLE IF NOT EXISTS feed_sources (
    feed TEXT PRIMARY KEY,
    etag TEXT NOT NULL DEFAULT '',
    last_modified TEXT NOT NULL DEFAULT '',
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS feed_items (
    feed TEXT NOT NULL,
    guid TEXT NOT NULL,
    post TEXT NOT NULL,
    edition TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL CHECK (state IN ('pending', 'published', 'passed')),
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (feed, guid)
);
CREATE INDEX IF NOT EXISTS feed_items_by_post ON feed_items (post);
"""


@dataclass(frozen=True)
class FeedItemRow:
    """What the ledger remembers of one item: its post name, last edition and state."""

    guid: str
    post: str
    edition: str
    state: str


@dataclass(frozen=True)
class Validators:
    """The HTTP validators of a feed's last complete read."""

    etag: str = ""
    last_modified: str = ""

    def headers(self) -> dict[str, str]:
        """The conditional request headers they make (RFC 9110 §13.1.2, §13.1.3)."""
        found = {"If-None-Match": self.etag, "If-Modified-Since": self.last_modified}
        return {name: value for name, value in found.items() if value}


class _Database(Protocol):
    """The two statements a backend runs; SQL uses `?` placeholders."""

    def write(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...
    def read(self, sql: str, args: Sequence[Any]) -> list[Mapping[str, Any]]: ...
    def close(self) -> None: ...


class FeedLog:
    """The feed tables of one ledger."""

    def __init__(self, database: _Database) -> None:
        self.db = database

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def known(self, feed: str) -> Validators | None:
        """The feed's validators, or None when no run ever finished reading it."""
        rows = self.db.read("SELECT etag, last_modified FROM feed_sources WHERE feed=?", [feed])
        return Validators(rows[0]["etag"], rows[0]["last_modified"]) if rows else None

    def remember(self, feed: str, validators: Validators) -> None:
        """Record a complete read (validators empty when the next read must be a full one)."""
        self.db.write(
            "INSERT INTO feed_sources (feed, etag, last_modified, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (feed) DO UPDATE SET etag=excluded.etag,"
            " last_modified=excluded.last_modified, updated_at=excluded.updated_at",
            [(feed, validators.etag, validators.last_modified, time.time())])

    def items(self, feed: str) -> dict[str, FeedItemRow]:
        """Every item of the feed the ledger knows, by guid."""
        rows = self.db.read(
            "SELECT guid, post, edition, state FROM feed_items WHERE feed=?", [feed])
        return {r["guid"]: FeedItemRow(r["guid"], r["post"], r["edition"], r["state"])
                for r in rows}

    def post_taken(self, post: str, feed: str, guid: str) -> bool:
        """Whether another item (of any feed) already publishes under this ledger post name."""
        rows = self.db.read("SELECT feed, guid FROM feed_items WHERE post=?", [post])
        return any((r["feed"], r["guid"]) != (feed, guid) for r in rows)

    def mark(self, feed: str, item: FeedItemRow) -> None:
        """Record an item's post name, edition and state."""
        self.db.write(
            "INSERT INTO feed_items (feed, guid, post, edition, state, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (feed, guid) DO UPDATE SET"
            " post=excluded.post, edition=excluded.edition, state=excluded.state,"
            " updated_at=excluded.updated_at",
            [(feed, item.guid, item.post, item.edition, item.state, time.time())])


def open_feed_log(target: str | Path) -> FeedLog:
    """The feed tables of the ledger a setting names: a SQLite file, or a postgresql:// URL."""
    if is_database_url(target):
        check_setting(str(target), key="ledger")
        return FeedLog(_Postgres(str(target)))
    return FeedLog(_Sqlite(Path(target)))


class _Sqlite:
    """The tables in the SQLite ledger file."""

    def __init__(self, path: Path) -> None:
        from publisher.stores.sqlite import connect

        self.path = path
        try:
            self.conn = connect(path, SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"cannot open the ledger ({exc})", where=str(path),
                              fix="check the `ledger` path") from exc
        self.conn.row_factory = sqlite3.Row

    def write(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement per row in one transaction."""
        from publisher.errors import SystemFault

        try:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.executemany(sql, rows)
            self.conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise SystemFault(f"cannot write the ledger ({exc})", where=str(self.path),
                              fix="free disk space or make its folder writable") from exc

    def read(self, sql: str, args: Sequence[Any]) -> list[Mapping[str, Any]]:
        """Rows of a query as mappings."""
        return [dict(r) for r in self.conn.execute(sql, args)]

    def close(self) -> None:
        """Close the database."""
        self.conn.close()


class _Postgres:
    """The tables in the PostgreSQL ledger."""

    def __init__(self, setting: str) -> None:
        from psycopg.rows import dict_row

        from publisher.stores.ledger_pg import SCHEMA_LOCK
        from publisher.stores.pgurl import connect

        self.conn = connect(setting, key="ledger")
        self.conn.row_factory = dict_row
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            self.conn.execute(SCHEMA)

    def write(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement per row in one transaction."""
        with self.conn.transaction(), self.conn.cursor() as cursor:
            cursor.executemany(sql.replace("?", "%s"), rows)

    def read(self, sql: str, args: Sequence[Any]) -> list[Mapping[str, Any]]:
        """Rows of a query as mappings."""
        return list(self.conn.execute(sql.replace("?", "%s"), args))

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()
