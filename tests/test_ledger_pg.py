"""The PostgreSQL ledger keeps the SQLite ledger's promises, and its batches are claimed once each.

The behavioural cases run against both backends; the batch, URL and subscriber-store cases need
a real PostgreSQL server (tests/helpers/pg.py starts one, or skips, or fails under CI).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

if os.environ.get("CI", "").lower() != "true":  # under CI a missing driver must fail, not skip
    pytest.importorskip("psycopg")
from publisher.errors import ConfigError, LedgerConflict
from publisher.stores.backends import open_ledger, open_store
from publisher.stores.ledger import PLAN_STEP, Claim, Ledger
from publisher.stores.pgurl import masked_url
from publisher.stores.postgres import PostgresLedger, PostgresSubscriberStore
from publisher.stores.sqlite import SqliteLedger
from tests.helpers.pg import PgServer, pg_server, pg_url, without_password

__all__ = ["pg_server", "pg_url"]  # fixtures, imported so pytest finds them

Opener = Callable[[], Ledger]


@pytest.fixture(params=["sqlite", "postgresql"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens the same ledger again and again (another process would do the same)."""
    target = str(tmp_path / "ledger.sqlite3")
    if request.param == "postgresql":
        target = request.getfixturevalue("pg_url")
    opened: list[Ledger] = []

    def open_one() -> Ledger:
        opened.append(open_ledger(target))
        return opened[-1]

    yield open_one
    for ledger in opened:
        ledger.close()


@pytest.fixture
def ledger(opener: Opener) -> Ledger:
    return opener()


# --- the same behaviour on both backends ---------------------------------------------------


def test_open_ledger_picks_the_backend_from_the_setting(
    opener: Opener, request: pytest.FixtureRequest
) -> None:
    ledger = opener()
    expected = PostgresLedger if request.node.callspec.params["opener"] == "postgresql" else \
        SqliteLedger
    assert type(ledger) is expected and ledger.shared is (expected is PostgresLedger)


def test_rows_go_pending_then_sent_with_the_provider_id(ledger: Ledger) -> None:
    ledger.mark_pending("ed1", "post", "smtp", ["a@example.com", "b@example.com"], batch="k1")
    assert ledger.get("ed1", "smtp", "a@example.com").state == "pending"  # type: ignore[union-attr]
    ledger.mark_sent("ed1", "smtp", {"a@example.com": ("id-1", "", {"n": "ü"})})
    ledger.mark_failed("ed1", "smtp", {"b@example.com": "550 no such user"})
    a, b = ledger.get("ed1", "smtp", "a@example.com"), ledger.get("ed1", "smtp", "b@example.com")
    assert a is not None and (a.state, a.provider_id, a.batch, a.extra) == (
        "sent", "id-1", "k1", {"n": "ü"})
    assert b is not None and (b.state, b.error) == ("failed", "550 no such user")
    [tally] = ledger.tally("ed1")
    assert (tally.sent, tally.pending, tally.failed) == (1, 0, 1)


def test_actions_move_on_and_an_update_carries_the_edition_over(
    ledger: Ledger,
) -> None:
    ledger.mark_pending("e1", "post", "x", ["x#1"], batch="k1")
    ledger.mark_sent("e1", "x", {"x#1": ("111", "https://x.com/i/web/status/111", {"of": 1})})
    ledger.mark_action("e1", "post", "", "linkedin", "skip", state="done")
    ledger.mark_action("e1", "post", "x", "x#1", "retract", target="111")
    ledger.mark_action("e1", "post", "x", "x#1", "retract", target="111", state="done")
    (retracted,) = ledger.actions("retract", slug="post")
    assert (retracted.item, retracted.target, retracted.state) == ("x#1", "111", "done")
    ledger.carry_over("post", "e1", "e2")
    first, carried = ledger.get("e1", "x", "x#1"), ledger.get("e2", "x", "x#1")
    assert first is not None and carried == replace(first, edition_id="e2")
    assert [a.item for a in ledger.actions("skip", edition_id="e2")] == ["linkedin"]
    assert len(ledger.actions("retract", edition_id="e2")) == 1
    ledger.drop_actions("e2", "skip", ["linkedin"])
    assert ledger.actions("skip", edition_id="e2") == []
    assert len(ledger.actions("skip", edition_id="e1")) == 1


def test_a_second_pending_mark_counts_the_attempt(ledger: Ledger) -> None:
    ledger.mark_pending("ed", "post", "x", ["x#1"], batch="k1")
    ledger.mark_failed("ed", "x", {"x#1": "boom"})
    ledger.mark_pending("ed", "post", "x", ["x#1"], batch="k2")
    row = ledger.get("ed", "x", "x#1")
    assert row is not None and (row.state, row.attempts, row.batch, row.error) == (
        "pending", 2, "k2", "")


def test_states_reads_many_items_across_chunks(ledger: Ledger) -> None:
    emails = [f"r{i}@example.com" for i in range(1200)]
    ledger.mark_pending("ed", "post", "sendgrid", emails, batch="b")
    found = ledger.states("ed", "sendgrid", [*emails, "absent@example.com"])
    assert len(found) == 1200 and "absent@example.com" not in found
    assert ledger.states("ed", "sendgrid", []) == {}


def test_rows_filter_and_order_alike(ledger: Ledger) -> None:
    ledger.mark_pending("ed", "post", "smtp", ["b@x", "a@x", "B@x"])
    ledger.mark_pending("ed", "post", "bluesky", ["bluesky#1"])
    ledger.mark_sent("ed", "smtp", {"a@x": ("1", "", {})})
    assert [(r.channel, r.item) for r in ledger.rows("ed")] == [
        ("bluesky", "bluesky#1"), ("smtp", "B@x"), ("smtp", "a@x"), ("smtp", "b@x")]
    assert [r.item for r in ledger.rows("ed", "smtp", "pending")] == ["B@x", "b@x"]
    assert [t.channel for t in ledger.tally("ed")] == ["bluesky", "smtp"]


def test_editions_newest_activity_first(ledger: Ledger) -> None:
    ledger.mark_pending("old", "post", "outbox", ["faq"])
    time.sleep(0.01)  # distinct timestamps, not a timing assertion
    ledger.mark_pending("new", "post", "outbox", ["faq"])
    assert ledger.editions("post") == ["new", "old"]
    assert ledger.editions("another") == []


def test_a_changed_article_needs_resend(ledger: Ledger) -> None:
    ledger.mark_pending("old", "post", "outbox", ["x#1"])
    ledger.mark_sent("old", "outbox", {"x#1": ("p", "", {})})
    with pytest.raises(LedgerConflict, match="changed") as caught:
        ledger.check_edition("post", "new", resend=False, source="posts/a.md")
    assert "--resend" in caught.value.one_line()
    ledger.check_edition("post", "new", resend=True, source="posts/a.md")
    ledger.check_edition("post", "old", resend=False, source="posts/a.md")
    assert ledger.other_editions("post", "new") == ["old"]


def test_the_send_lock_admits_one_holder(opener: Opener) -> None:
    first, other = opener(), opener()
    with (
        first.lock("post"),
        pytest.raises(LedgerConflict, match="another publish run"),
        other.lock("post", wait=0.3),
    ):
        pass
    with other.lock("post"):
        first.heartbeat("post")  # not the holder: changes nothing, raises nothing
    with first.lock("post"), other.lock("another post"):
        pass


def _hold_lock_then_die(target: str, ready: str) -> None:
    ledger = open_ledger(target)
    with ledger.lock("post"):
        Path(ready).touch()
        time.sleep(60)


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + 30
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.exists(), "the child never took the lock"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_dead_holder_does_not_block_the_next_run(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    target = str(tmp_path / "l.sqlite3")
    if backend == "postgresql":
        target = request.getfixturevalue("pg_url")
    ready = tmp_path / "ready"
    child = multiprocessing.get_context("spawn").Process(
        target=_hold_lock_then_die, args=(target, str(ready))
    )
    child.start()
    _wait_for(ready)
    ledger = open_ledger(target)
    with pytest.raises(LedgerConflict), ledger.lock("post"):
        pass
    child.kill()
    child.join()
    with ledger.lock("post"):  # same host, the holder's pid is gone: taken over
        pass
    ledger.close()


# --- batches several senders share (PostgreSQL only) ---------------------------------------


def _ids(values: list[int]) -> Callable[[int], Iterator[int]]:
    """A stand-in for the store's active_ids: the values above `after`."""
    return lambda after: (v for v in values if v > after)


def test_planning_cuts_contiguous_ranges_and_is_idempotent(pg_url: str) -> None:
    ledger = PostgresLedger(pg_url)
    ids = [2, 3, 5, 8, 13, 21, 34]
    assert ledger.plan_batches("ed", "sendgrid", 3, _ids(ids), reopen=False) == 3
    assert ledger.plan_batches("ed", "sendgrid", 3, _ids(ids), reopen=False) == 0
    ids += [40, 41]  # new subscribers since: only they get new batches
    assert ledger.plan_batches("ed", "sendgrid", 3, _ids(ids), reopen=True) == 1
    claims = []
    while (claim := ledger.claim_batch("ed", "sendgrid")) is not None:
        claims.append(claim)
    assert [(c.number, c.first_id, c.last_id) for c in claims] == [
        (0, 1, 5), (1, 6, 21), (2, 22, 34), (3, 35, 41)]
    assert not ledger.planned("ed", "other") and ledger.planned("ed", "sendgrid")
    ledger.close()


def test_a_long_plan_is_committed_as_it_goes_so_a_joiner_starts_at_once(pg_url: str) -> None:
    """While the lead is still cutting a long list, a joiner already sees and claims batch 0;
    the ranges come out as one transaction would have cut them, contiguous and numbered."""
    lead, joiner = PostgresLedger(pg_url), PostgresLedger(pg_url)
    midway: list[object] = []

    def ids(after: int) -> Iterator[int]:
        for value in range(after + 1, 2 * 3 * PLAN_STEP + 1):  # size 2: three steps' worth
            if value == 2 * 2 * PLAN_STEP + 1:  # the third step, the first two committed
                claim = joiner.claim_batch("ed", "sendgrid")
                midway.extend([joiner.planned("ed", "sendgrid"), claim and claim.number])
            yield value

    assert lead.plan_batches("ed", "sendgrid", 2, ids, reopen=True) == 3 * PLAN_STEP
    assert midway == [True, 0]
    claims = []
    while (claim := lead.claim_batch("ed", "sendgrid")) is not None:
        claims.append((claim.number, claim.first_id, claim.last_id))
    assert claims == [(n, 2 * n + 1, 2 * n + 2) for n in range(1, 3 * PLAN_STEP)]
    lead.close()
    joiner.close()


def test_two_senders_never_claim_the_same_batch(pg_url: str) -> None:
    one, two = PostgresLedger(pg_url), PostgresLedger(pg_url)
    one.plan_batches("ed", "sg", 10, _ids(list(range(1, 101))), reopen=True)
    taken: list[Claim] = []
    while True:
        a, b = one.claim_batch("ed", "sg"), two.claim_batch("ed", "sg")
        taken += [c for c in (a, b) if c is not None]
        if a is None and b is None:
            break
    assert sorted(c.number for c in taken) == list(range(10))
    one.close()
    two.close()


def test_a_claim_held_in_an_open_transaction_is_skipped_not_waited_for(pg_url: str) -> None:
    one, two = PostgresLedger(pg_url), PostgresLedger(pg_url)
    one.plan_batches("ed", "sg", 1, _ids([1, 2]), reopen=True)
    with one.db.transaction():  # one has locked batch 0's row and not yet committed
        one.db.execute("SELECT * FROM batches WHERE number=0 FOR UPDATE")
        claim = two.claim_batch("ed", "sg")
        assert claim is not None and claim.number == 1
    one.close()
    two.close()


def test_finished_batches_stay_done_until_the_next_lead_reopens_them(pg_url: str) -> None:
    ledger = PostgresLedger(pg_url)
    ledger.plan_batches("ed", "sg", 2, _ids([1, 2, 3]), reopen=True)
    first = ledger.claim_batch("ed", "sg")
    assert first is not None
    ledger.finish_batch(first)
    second = ledger.claim_batch("ed", "sg")
    assert second is not None and second.number == 1
    ledger.release_batch(second)  # a delivery error gives it back
    again = ledger.claim_batch("ed", "sg")
    assert again is not None and again.number == 1
    ledger.finish_batch(again)
    assert ledger.claim_batch("ed", "sg") is None
    ledger.plan_batches("ed", "sg", 2, _ids([1, 2, 3]), reopen=True)  # a new run passes again
    assert [ledger.claim_batch("ed", "sg") is not None for _ in range(3)] == [True, True, False]
    ledger.close()


def test_an_abandoned_claim_is_taken_over(pg_url: str) -> None:
    dead, alive = PostgresLedger(pg_url), PostgresLedger(pg_url, stale_claim_seconds=30)
    dead.plan_batches("ed", "sg", 5, _ids(list(range(1, 6))), reopen=True)
    claim = dead.claim_batch("ed", "sg")
    assert claim is not None
    assert alive.claim_batch("ed", "sg") is None  # a live, fresh claim is left alone
    dead.db.execute("UPDATE batches SET heartbeat = now() - interval '1 minute', host = 'gone'")
    taken = alive.claim_batch("ed", "sg")
    assert taken is not None and taken.number == claim.number
    dead.finish_batch(claim)  # the old owner no longer owns it: nothing changes
    state = alive.db.execute("SELECT state, owner FROM batches").fetchone()
    assert (state["state"], state["owner"]) == ("claimed", alive.owner)
    dead.close()
    alive.close()


def test_a_claim_of_a_dead_process_on_this_host_is_taken_over_at_once(pg_url: str) -> None:
    ledger = PostgresLedger(pg_url)
    ledger.plan_batches("ed", "sg", 5, _ids([1]), reopen=True)
    assert ledger.claim_batch("ed", "sg") is not None
    ledger.db.execute("UPDATE batches SET pid = 2147483646")  # no such process
    taken = ledger.claim_batch("ed", "sg")
    assert taken is not None and taken.number == 0
    ledger.close()


def test_statements_are_planned_with_their_values_not_as_generic_prepared_plans(
    pg_url: str,
) -> None:
    """psycopg prepares a statement it has run 5 times, and PostgreSQL may then plan
    `item IN ($1, …, $500)` once for any values: a scan of the whole table per call, which made a
    PostgreSQL send quadratic in its size (20,000 recipients: 8 s of the server's CPU, not 1)."""
    ledger = PostgresLedger(pg_url)
    try:
        items = [f"reader{i}@example.org" for i in range(600)]
        ledger.mark_pending("e1", "post", "sendgrid", items)
        for _ in range(8):
            assert len(ledger.states("e1", "sendgrid", items)) == len(items)
        found = ledger.db.execute("SELECT COUNT(*) AS n FROM pg_prepared_statements").fetchone()
    finally:
        ledger.close()
    assert found is not None and found["n"] == 0


# --- URLs and passwords ----------------------------------------------------------------------


def test_a_password_in_the_config_is_refused_and_masked() -> None:
    with pytest.raises(ConfigError) as caught:
        open_ledger("postgresql://news:hunter2-secret@db.example/news")
    line = caught.value.one_line()
    assert "hunter2-secret" not in line and "***" in line and "PGPASSWORD" in line
    assert masked_url("postgresql://u:pw12345@h/db") == "postgresql://u:***@h/db"


def test_password_from_pgpassword_and_from_a_secret(
    pg_url: str, pg_server: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUBLISHER_NO_KEYRING", "1")
    monkeypatch.setenv("PGPASSWORD", pg_server.password)
    open_ledger(pg_url).close()
    monkeypatch.delenv("PGPASSWORD")
    with pytest.raises(ConfigError, match="cannot connect"):
        open_ledger(pg_url)
    full = pg_url.replace(f"{pg_server.user}@", f"{pg_server.user}:{pg_server.password}@")
    monkeypatch.setenv("PUBLISHER_DATABASE_URL", full)
    open_ledger("secret:PUBLISHER_DATABASE_URL").close()
    assert without_password(full) == pg_url


def test_a_wrong_password_is_a_config_error_that_never_shows_it(
    pg_server: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUBLISHER_NO_KEYRING", "1")
    wrong = pg_server.url("postgres").replace(pg_server.password, "wrong-pass-77")
    monkeypatch.setenv("PUBLISHER_DATABASE_URL", wrong)
    with pytest.raises(ConfigError) as caught:
        open_ledger("secret:PUBLISHER_DATABASE_URL")
    line = caught.value.one_line()
    assert "cannot connect" in line and "wrong-pass-77" not in line
    assert caught.value.__cause__ is None


# --- the subscriber store on PostgreSQL -----------------------------------------------------


def test_the_pg_store_streams_ranges_and_never_resubscribes_an_opt_out(
    pg_url: str, tmp_path: Path
) -> None:
    store = open_store(pg_url)
    assert isinstance(store, PostgresSubscriberStore)
    csv = tmp_path / "list.csv"
    csv.write_text("email,name\n" + "".join(f"r{i}@example.com,R{i}\n" for i in range(25))
                   + "not-an-address,X\n", encoding="utf-8")
    report = store.import_csv(csv)
    assert (report.added, len(report.problems)) == (25, 1)
    store.remove("R3@Example.com")  # case-insensitive
    unchanged = store.import_csv(csv)
    assert (unchanged.added, unchanged.updated, unchanged.unchanged) == (0, 0, 25)
    resubscribe = tmp_path / "again.csv"
    resubscribe.write_text("email,name,status\nr3@example.com,R3,subscribed\n"
                           "r4@example.com,Renamed,\n", encoding="utf-8")
    again = store.import_csv(resubscribe)
    assert (again.kept_suppressed, again.updated) == (1, 1)
    assert store.get("r4@example.com").name == "Renamed"  # type: ignore[union-attr]
    assert store.count_active() == 24 and store.counts()["unsubscribed"] == 1
    active = list(store.iter_active(chunk=7))
    assert len(active) == 24 and "r3@example.com" not in {s.email for s in active}
    ids = [s.id for s in active]
    assert list(store.active_ids(ids[4], chunk=5)) == ids[5:]
    assert [s.id for s in store.iter_between(ids[2], ids[6], chunk=2)] == ids[2:7]
    store.unsubscribe("gone@example.com")
    assert store.get("GONE@example.com").status == "unsubscribed"  # type: ignore[union-attr]
    assert store.add("gone@example.com", "Back", resubscribe=True).status == "subscribed"
    assert store.forget("gone@example.com") and store.get("gone@example.com") is None
    store.close()


def test_one_click_unsubscribe_is_served_from_the_pg_store(pg_url: str) -> None:
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    import requests

    from publisher.config.settings import Site
    from publisher.unsubscribe.app import make_app
    from publisher.unsubscribe.tokens import recipient_for

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            """No access log in test output."""

    secret = "serve-test-secret-abcdefghijklmnop"
    store = PostgresSubscriberStore(pg_url)
    for address in ("hanako@example.jp", "taro@example.jp"):
        store.add(address)
    server = make_server("127.0.0.1", 0, make_app(store, secret),  # type: ignore[arg-type]
                         handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        site = Site(url=f"http://127.0.0.1:{server.server_port}")
        taro = store.get("taro@example.jp")
        assert taro is not None
        link = recipient_for(taro, site, secret).unsubscribe_url
        reply = requests.post(link, data={"List-Unsubscribe": "One-Click"}, timeout=5)
        assert reply.status_code == 200
    finally:
        server.shutdown()
        server.server_close()
    assert [s.email for s in store.iter_active()] == ["hanako@example.jp"]
    store.close()
