"""What a store needs from a database: statements, transactions, a cross-process lock, a dialect.

The stores (`ledger`, `subscribers`) hold every rule and write their SQL once, with `?`
placeholders; a backend (`sqlite`, `postgres`) supplies only this seam. Statements are run one by
one (`execute`; `tuples` for the rows of a hot read as plain tuples, in the order the SELECT
names the columns) or as one statement per row (`executemany`, the natural unit for a whole batch
written in one transaction); the few things the two dialects spell differently are `Dialect`
fields filled into the SQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol, TypeGuard, TypeVar

T = TypeVar("T")

Value = str | int | float | None  # what a column holds, and what a parameter may be


class Record(Protocol):
    """One result row, read by column name (sqlite3.Row, or psycopg's dict rows)."""

    def __getitem__(self, key: str, /) -> Value: ...


class Cursor(Protocol):
    """The part of a DB-API cursor the stores read."""

    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Record | None: ...
    def fetchall(self) -> Sequence[Record]: ...
    def __iter__(self) -> Iterator[Record]: ...


@dataclass(frozen=True)
class Dialect:
    """The SQL the two databases spell differently, as fragments the stores fill in."""

    name: str
    clock: str  # the current time, as heartbeat columns hold it
    clock_type: str  # the type of heartbeat columns
    age: str  # seconds since the time in {column}
    serial_key: str  # a 64-bit primary key numbered by the database
    byte_order: str  # appended to ORDER BY a text column, to sort by bytes as SQLite does
    skip_locked: str  # appended to a SELECT that claims a row: skip rows others hold


class Database(Protocol):
    """One database connection as the stores use it."""

    dialect: Dialect
    where: str  # the file or (masked) URL, for messages

    def execute(self, sql: str, params: Sequence[Value] = ()) -> Cursor: ...
    def executemany(self, sql: str, rows: Iterable[Sequence[Value]]) -> None: ...
    def tuples(self, sql: str, params: Sequence[Value] = ()) -> list[tuple[Value, ...]]: ...
    def transaction(self) -> AbstractContextManager[None]: ...
    def lock(self, name: str) -> None: ...  # inside a transaction: one process at a time
    def columns(self, table: str) -> set[str]: ...
    def tables(self) -> set[str]: ...
    @property
    def closed(self) -> bool: ...
    def close(self) -> None: ...


def marks(count: int) -> str:
    """`?, ?, ?` for an IN list of `count` values."""
    return ", ".join("?" * count)


def text(value: Value) -> str:
    """A text column ('' for NULL)."""
    return "" if value is None else str(value)


def number(value: Value) -> float:
    """A numeric column (0 for NULL)."""
    return float(value or 0)


def whole(value: Value) -> int:
    """An integer column (0 for NULL)."""
    return int(value or 0)


def all_of(column: tuple[Value, ...], kind: type[T]) -> TypeGuard[tuple[T, ...]]:
    """Whether every value of a column is exactly of `kind`: one check for a page of rows."""
    return set(map(type, column)) <= {kind}
