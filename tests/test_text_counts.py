"""Counts read the same in the summary table, status, retract and digest lines."""

import pytest

from publisher.text.counts import counted


@pytest.mark.parametrize(("count", "noun", "expected"), [
    (0, "post", "0 posts"),
    (1, "question", "1 question"),
    (2, "attempt", "2 attempts"),
    (100_000, "recipient", "100,000 recipients"),
    (1, "scheduled send", "1 scheduled send"),
])
def test_counted(count: int, noun: str, expected: str) -> None:
    assert counted(count, noun) == expected
