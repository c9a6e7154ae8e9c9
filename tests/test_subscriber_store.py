"""The one subscriber store on both databases: migrations, canonical matching, suppression.

Every case runs on SQLite and on PostgreSQL (tests/pg.py starts a throwaway server, or skips,
or fails under CI).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import run_publish
from tests.pg import pg_server, pg_url

from publisher.errors import InputError
from publisher.stores.subscribers import (
    SCHEMA_VERSION,
    SQLITE_BASE,
    SubscriberStore,
    Suppression,
    canonical_email,
    schema_version,
)
from publisher.stores.subscribers_pg import PG_BASE, open_store

__all__ = ["pg_server", "pg_url"]  # fixtures, imported so pytest finds them

Target = str
OLD_ROWS = [  # what the pre-migration code let in: one reader, seen as two or three
    ("Ünïcode@exämple.com", "Ü", "subscribed", 10.0),
    ("ünïcode@xn--exmple-cua.com", "", "unsubscribed", 20.0),  # lower() missed punycode
    ("plain@example.com", "Plain", "bounced", 40.0),
]
SQLITE_ONLY = ("ÜNÏCODE@exämple.com", "", "subscribed", 15.0)  # NOCASE folds ASCII only


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    """A `subscribers` setting naming an empty store of each kind."""
    if request.param == "postgresql":
        pytest.importorskip("psycopg")
        return str(request.getfixturevalue("pg_url"))
    return str(tmp_path / "subs.sqlite3")


@pytest.fixture
def store(target: Target) -> Iterator[SubscriberStore]:
    opened = open_store(target)
    yield opened
    opened.close()


def old_store(target: Target) -> None:
    """A store exactly as the code before numbered migrations created and filled it."""
    if target.startswith("postgresql"):
        import psycopg

        with psycopg.connect(target, autocommit=True) as db:
            db.execute(PG_BASE)
            for email, name, status, at in OLD_ROWS:
                db.execute("INSERT INTO subscribers (email, name, status, created_at, updated_at)"
                           " VALUES (%s, %s, %s, %s, %s)", (email, name, status, at, at))
        return
    db = sqlite3.connect(target)
    db.executescript(SQLITE_BASE)
    db.executemany("INSERT INTO subscribers (email, name, status, created_at, updated_at)"
                   " VALUES (?, ?, ?, ?, ?)", [(*row, row[-1]) for row in [*OLD_ROWS, SQLITE_ONLY]])
    db.commit()
    db.close()


def test_an_old_store_is_migrated_once_and_variants_merge_suppressed(target: Target) -> None:
    old_store(target)
    store = open_store(target)
    assert schema_version(store.backend) == SCHEMA_VERSION
    merged = store.get("ÜNÏCODE@EXÄMPLE.COM")
    assert merged is not None
    assert (merged.email, merged.name, merged.status) == ("Ünïcode@exämple.com", "Ü",
                                                          "unsubscribed")
    assert merged.status_at == 20.0 and merged.uid
    assert store.counts() == {"subscribed": 0, "unsubscribed": 1, "bounced": 1, "complained": 0}
    assert store.get("plain@example.com").status_at == 40.0  # type: ignore[union-attr]
    uids = {s.uid for s in store.iter_all()}
    store.close()
    again = open_store(target)  # the second open applies nothing
    assert {s.uid for s in again.iter_all()} == uids
    rows = again.backend.execute("SELECT component, version FROM schema_versions").fetchall()
    assert [tuple(r) for r in rows] == [("subscribers", SCHEMA_VERSION)]
    again.close()


def test_addresses_match_by_one_canonical_form(store: SubscriberStore, tmp_path: Path) -> None:
    assert canonical_email("ÜNÏCODE@Exämple.COM") == canonical_email("ünïcode@xn--exmple-cua.com")
    assert canonical_email("ünïcode@exämple.com") == "ünïcode@xn--exmple-cua.com"
    assert canonical_email("first.last+tag@example.com") != canonical_email("firstlast@example.com")
    store.add("ünïcode@exämple.com")
    store.remove("ÜNÏCODE@xn--exmple-cua.com")  # an opt-out recorded in punycode
    csv_file = tmp_path / "again.csv"
    csv_file.write_text("email\nÜNÏCODE@exämple.com\n", encoding="utf-8")
    report = store.import_csv(csv_file)
    assert (report.added, report.kept_suppressed) == (0, 1)
    assert store.count_active() == 0 and len(list(store.iter_all())) == 1


def test_suppress_is_idempotent_only_strengthens_and_reports_changes(
    store: SubscriberStore,
) -> None:
    for address in ("a@example.com", "b@example.com", "c@example.com"):
        store.add(address, address[0].upper())
    first = store.suppress([
        Suppression("A@example.com", "bounced", "550 5.1.1 User unknown", at=1000.0),
        Suppression("b@example.com", "complained", "spam report"),
        Suppression("new@example.com", "unsubscribed", "global unsubscribe"),
        Suppression("a@example.com", "unsubscribed", "asm"),  # weaker than bounced: no change
    ])
    assert first.tally() == {"bounced": 1, "complained": 1, "unsubscribed": 1, "unchanged": 1}
    assert [(c.email, c.before, c.after) for c in first.changed] == [
        ("a@example.com", "subscribed", "bounced"), ("b@example.com", "subscribed", "complained"),
        ("new@example.com", None, "unsubscribed"),
    ]
    bounced = store.get("a@example.com")
    assert bounced is not None
    assert (bounced.status, bounced.reason, bounced.status_at, bounced.name) == (
        "bounced", "550 5.1.1 User unknown", 1000.0, "A")
    second = store.suppress([Suppression("a@example.com", "bounced", "again", at=2000.0),
                             Suppression("b@example.com", "bounced", "later bounce")])
    assert second.tally() == {"bounced": 0, "complained": 0, "unsubscribed": 0, "unchanged": 2}
    assert store.get("a@example.com").reason == "550 5.1.1 User unknown"  # type: ignore[union-attr]
    assert [s.email for s in store.iter_active()] == ["c@example.com"]


def test_add_never_resubscribes_without_being_told(store: SubscriberStore) -> None:
    store.add("r@example.com")
    store.suppress([Suppression("r@example.com", "bounced", "550 5.1.1")])
    with pytest.raises(InputError, match=r"r@example.com is bounced \(550 5.1.1, since"):
        store.add("R@example.com")
    back = store.add("r@example.com", resubscribe=True, reason="asked by phone")
    assert (back.status, back.reason) == ("subscribed", "asked by phone")




def test_cli_add_resubscribe_and_list_json(tmp_path: Path, target: Target) -> None:
    config = tmp_path / "publisher.toml"
    config.write_text(f"subscribers = {json.dumps(target)}\n", encoding="utf-8")

    def cli(*args: str) -> tuple[int, str, str]:
        done = run_publish("subscribers", *args, "--config", str(config), cwd=tmp_path)
        return done.returncode, done.stdout, done.stderr

    assert cli("add", "Reader@Example.com", "--name", "Reader")[0] == 0
    assert cli("remove", "reader@example.com")[0] == 0
    code, _, err = cli("add", "READER@example.com")
    assert code == 2 and "is unsubscribed (removed with `subscribers remove`, since" in err
    code, out, _ = cli("list", "--json")
    [row] = json.loads(out)
    assert row["status"] == "unsubscribed" and row["status_at"].endswith("Z")
    assert row["reason"] == "removed with `subscribers remove`"
    code, _, err = cli("add", "reader@example.com", "--resubscribe")
    assert code == 0 and "resubscribed Reader@example.com (was unsubscribed" in err
    code, out, _ = cli("list")
    assert out.split("\t")[:3] == ["Reader@example.com", "subscribed",
                                   "resubscribed with `subscribers add --resubscribe`"]
    assert cli("list", "--status", "paused")[0] == 2
