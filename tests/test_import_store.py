"""The import's bulk path on both databases: duplicates found by the database across chunks and
transactions (named by their first line, however far apart), opt-outs in the file and in the
store, and re-imports, against a plain in-memory reading of the same file."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from publisher.errors import InputError
from publisher.stores.addresses import validated_email
from publisher.stores.backends import open_store
from publisher.stores.sqlite import SqliteSubscriberStore
from publisher.stores.subscribers import SubscriberStore
from tests.helpers.pg import pg_server, pg_url

__all__ = ["pg_server", "pg_url"]  # fixtures, imported so pytest finds them
IMPORT_CHUNK = 5000  # the tests' chunk: several chunks and transactions at a test's cost


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SubscriberStore]:
    """An empty store of each kind."""
    if request.param == "postgresql":
        pytest.importorskip("psycopg")
        target = str(request.getfixturevalue("pg_url"))
    else:
        target = str(tmp_path / "subs.sqlite3")
    opened = open_store(target)
    yield opened
    opened.close()


def expected_problems(lines: list[str]) -> list[tuple[int, str]]:
    """What the import must report for a file of `email` rows (line 1 is the header), worked
    out the simplest way: every address's first line kept in a dict."""
    seen: dict[str, int] = {}
    found: list[tuple[int, str]] = []
    for number, address in enumerate(lines[1:], start=2):
        try:
            _, key = validated_email(address)
        except InputError as exc:
            found.append((number, str(exc.__cause__)))
            continue
        first = seen.setdefault(key, number)
        if first != number:
            found.append((number, f"duplicate of line {first}: not imported"))
    return found


def test_duplicates_across_chunks_are_named_by_their_first_line(
    store: SubscriberStore, tmp_path: Path
) -> None:
    store.import_chunk = IMPORT_CHUNK
    rng = random.Random(18)
    lines = ["email"]
    for i in range(3 * IMPORT_CHUNK):
        roll = rng.random()
        if i > 10 and roll < 0.08:  # a repeat of any earlier line, in another case
            earlier = rng.choice(lines[1:])
            lines.append(earlier.upper() if rng.random() < 0.5 else earlier)
        elif roll < 0.1:
            lines.append(f"bad{i}@@example.com")
        else:
            lines.append(f"r{i}@例え.jp" if i % 7 == 0 else f"Reader.{i}@Example.org")
    # an address of the first chunk repeated twice within the last chunk
    lines[5] = "Five@Example.org"
    lines[-100] = lines[-90] = "FIVE@example.org"
    path = tmp_path / "list.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = store.import_csv(path)
    want = expected_problems(lines)
    assert [(p.line, p.reason) for p in report.problems] == want
    duplicates = [w for w in want if w[1].startswith("duplicate")]
    assert len(duplicates) > 100
    end = len(lines)
    assert {(end - 99, "duplicate of line 6: not imported"),
            (end - 89, "duplicate of line 6: not imported")} <= set(duplicates)
    assert report.added == len(lines) - 1 - len(want)
    firsts = {}
    for address in lines[1:]:
        try:
            email, key = validated_email(address)
        except InputError:
            continue
        firsts.setdefault(key, email)
    stored = list(store.iter_all())
    assert [s.email for s in stored] == list(firsts.values())  # in the file's order
    uids = {s.uid for s in stored}
    assert len(uids) == len(stored) and all(re.fullmatch(r"[\w-]{16}", u) for u in uids)
    again = store.import_csv(path)  # re-import: nothing new, the same lines named
    assert (again.added, again.updated, again.unchanged) == (0, 0, report.added)
    assert [(p.line, p.reason) for p in again.problems] == want


def test_a_file_row_already_stored_is_merged_once_and_its_repeat_named(
    store: SubscriberStore, tmp_path: Path
) -> None:
    store.import_chunk = IMPORT_CHUNK
    store.add("old@example.com", "Old")
    store.add("gone@example.com")
    store.remove("gone@example.com")
    rows = ["email,name,status", "new@example.com,New,", "OLD@example.com,Renamed,",
            "gone@example.com,Back,", "quit@example.com,Quit,unsubscribed"]
    rows += [f"filler{i}@example.com,F," for i in range(IMPORT_CHUNK)]
    rows += ["old@example.com,Third,", "Gone@Example.com,,", "quit@example.com,,subscribed"]
    path = tmp_path / "list.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    uids = {s.email: s.uid for s in store.iter_all()}
    report = store.import_csv(path)
    last = len(rows)
    assert [(p.line, p.reason) for p in report.problems] == [
        (last - 2, "duplicate of line 3: not imported"),
        (last - 1, "duplicate of line 4: not imported"),
        (last, "duplicate of line 5: not imported")]
    assert (report.added, report.updated, report.unchanged, report.kept_suppressed) == (
        2 + IMPORT_CHUNK, 2, 0, 1)
    old, gone, quit_ = (store.get(a) for a in ("old@example.com", "gone@example.com",
                                                "quit@example.com"))
    assert old is not None and (old.name, old.status, old.uid) == (
        "Renamed", "subscribed", uids["old@example.com"])
    assert gone is not None and (gone.name, gone.status) == ("Back", "unsubscribed")
    assert gone.reason == "removed with `subscribers remove`"  # the opt-out is kept as it was
    assert quit_ is not None and (quit_.status, quit_.reason) == ("unsubscribed", "imported")
    assert store.count_active() == 2 + IMPORT_CHUNK  # new, old and the fillers
    again = store.import_csv(path, resubscribe=True)
    assert again.resubscribed == ["gone@example.com"] and again.added == 0
    assert store.get("gone@example.com").status == "subscribed"  # type: ignore[union-attr]
    assert store.get("quit@example.com").status == "unsubscribed"  # type: ignore[union-attr]


def test_a_duplicate_900000_lines_apart_still_names_the_first_line(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8") as out:
        out.write("email\nfirst@example.com\n")
        out.writelines(f"r{i:06d}@example.com\n" for i in range(900_000))
        out.write("FIRST@example.com\n")
    report = SqliteSubscriberStore(tmp_path / "subs.sqlite3").import_csv(path)
    assert report.added == 900_001
    assert [(p.line, p.reason) for p in report.problems] == [
        (900_003, "duplicate of line 2: not imported")]


def test_duplicates_across_transactions_an_opt_out_and_an_interrupted_import(
    store: SubscriberStore, tmp_path: Path
) -> None:
    store.import_chunk, store.chunks_per_transaction = 100, 3  # a transaction per 300 rows
    store.add("quit@example.com")
    store.remove("quit@example.com")
    rng = random.Random(7)
    lines = ["email"] + [f"u{i}@example.com" for i in range(1500)]
    for at in rng.sample(range(400, 1501), 150):  # repeats of rows one or more commits back
        lines[at] = lines[rng.randrange(1, at - 300)].upper()
    lines[1200] = "Quit@Example.com"  # opted out before: stays so
    lines[1300] = lines[1200]
    path = tmp_path / "list.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    broken = tmp_path / "broken.csv"  # a field over csv's limit at line 1002: the reader stops
    broken.write_text("\n".join([*lines[:1001], "x" * 200_000, *lines[1001:]]) + "\n",
                      encoding="utf-8")
    with pytest.raises(InputError, match="unreadable CSV at line 1002"):
        store.import_csv(broken)
    committed = len(list(store.iter_all()))  # three whole transactions (lines 2-901), and quit@
    assert committed == len({validated_email(a)[1] for a in lines[1:901]}) + 1
    report = store.import_csv(path)  # run again: finishes it
    want = expected_problems(lines)
    assert [(p.line, p.reason) for p in report.problems] == want
    assert dict(want)[1301] == "duplicate of line 1201: not imported"
    assert report.kept_suppressed == 1 and store.count_active() == len(list(store.iter_all())) - 1
    assert report.unchanged == committed  # kept opted-out rows count as unchanged too
    assert report.added + report.unchanged == len(lines) - 1 - len(want)
    assert store.get("quit@example.com").status == "unsubscribed"  # type: ignore[union-attr]


def test_a_shuffled_file_keeps_its_order_across_chunks_and_transactions(
    store: SubscriberStore, tmp_path: Path
) -> None:
    store.import_chunk, store.chunks_per_transaction = 100, 3  # a transaction per 300 rows
    store.add("early@example.com")
    addresses = [f"reader{i:04d}@example.org" for i in range(1000)]
    random.Random(18).shuffle(addresses)
    path = tmp_path / "list.csv"
    path.write_text("\n".join(["email", *addresses]) + "\n", encoding="utf-8")
    assert store.import_csv(path).added == 1000
    listed = list(store.iter_all())
    assert [s.email for s in listed] == ["early@example.com", *addresses]  # list = file order
    ids = [s.id for s in listed]
    assert ids == sorted(set(ids))  # ids ascend in file order
    assert store.add("late@example.com").id > ids[-1]
