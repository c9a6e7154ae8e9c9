"""Which backend a `ledger`/`subscribers` setting names: a SQLite file path, or PostgreSQL.

A setting is a PostgreSQL one when `setting.is_database_url` says so (a postgresql:// URL, a libpq
key/value string or `secret:NAME`); anything else is a file path. The classes say what they can
do (`shared`: senders on several machines at once) without opening anything.
"""

from __future__ import annotations

from pathlib import Path

from publisher.stores.ledger import Ledger
from publisher.stores.setting import is_database_url
from publisher.stores.sqlite import SqliteLedger, SqliteSubscriberStore
from publisher.stores.subscribers import SubscriberStore


def ledger_class(target: str | Path) -> type[Ledger]:
    """The ledger backend a setting names."""
    if not is_database_url(target):
        return SqliteLedger
    from publisher.stores.postgres import PostgresLedger

    return PostgresLedger


def store_class(target: str | Path) -> type[SubscriberStore]:
    """The subscriber store backend a setting names."""
    if not is_database_url(target):
        return SqliteSubscriberStore
    from publisher.stores.postgres import PostgresSubscriberStore

    return PostgresSubscriberStore


def open_ledger(target: str | Path) -> Ledger:
    """The ledger a setting names, its schema brought up to date."""
    if is_database_url(target):
        from publisher.stores.pgurl import check_setting
        from publisher.stores.postgres import PostgresLedger

        check_setting(str(target), key="ledger")
        return PostgresLedger(str(target))
    return SqliteLedger(Path(target))


def open_store(target: str | Path) -> SubscriberStore:
    """The subscriber store a setting names, its schema brought up to date."""
    if is_database_url(target):
        from publisher.stores.pgurl import check_setting
        from publisher.stores.postgres import PostgresSubscriberStore

        check_setting(str(target), key="subscribers")
        return PostgresSubscriberStore(str(target))
    return SqliteSubscriberStore(Path(target))
