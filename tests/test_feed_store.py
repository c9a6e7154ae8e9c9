"""The ledger's feed tables: the same rows on SQLite and PostgreSQL, kept across opens."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

if os.environ.get("CI", "").lower() != "true":  # under CI a missing driver must fail, not skip
    pytest.importorskip("psycopg")
from publisher.stores.backends import open_ledger
from publisher.stores.feeds import (
    PASSED,
    PENDING,
    PUBLISHED,
    FeedItemRow,
    Validators,
    open_feed_log,
)
from tests.helpers.pg import pg_server, pg_url

__all__ = ["pg_server", "pg_url"]  # fixtures, imported so pytest finds them
FEED = "https://blog.example/feed/"


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return str(tmp_path / "ledger.sqlite3")


def test_items_and_validators_survive_a_reopen_beside_the_delivery_ledger(target: str) -> None:
    open_ledger(target).close()  # the delivery tables first, as a real ledger has them
    log = open_feed_log(target)
    assert log.known(FEED) is None and log.items(FEED) == {}
    log.mark(FEED, FeedItemRow("g1", "story-1", "e1", PENDING))
    log.mark(FEED, FeedItemRow("g2", "story-2", "", PASSED))
    log.mark(FEED, FeedItemRow("g1", "story-1", "e1", PUBLISHED))
    log.remember(FEED, Validators('"abc"', "Fri, 09 Oct 2026 07:30:00 GMT"))
    log.close()
    again = open_feed_log(target)
    try:
        assert again.items(FEED) == {"g1": FeedItemRow("g1", "story-1", "e1", PUBLISHED),
                                     "g2": FeedItemRow("g2", "story-2", "", PASSED)}
        known = again.known(FEED)
        assert known is not None and known.headers() == {
            "If-None-Match": '"abc"', "If-Modified-Since": "Fri, 09 Oct 2026 07:30:00 GMT"}
        assert again.post_taken("story-1", "https://other.example/feed", "g1")
        assert not again.post_taken("story-1", FEED, "g1")
        again.remember(FEED, Validators())
        assert again.known(FEED) == Validators()
    finally:
        again.close()
