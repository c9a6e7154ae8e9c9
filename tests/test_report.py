"""The run's stderr lines: reasons grouped without the addresses servers echo, addresses masked."""

from __future__ import annotations

from publisher.cli.report import failure_lines, general_reason, masked_item, uncertain_lines
from publisher.delivery.send import BOUNCED, GIVEN_UP, LOST, RETRY, UNCERTAIN, Outcome


def test_addresses_are_masked_and_removed_from_reasons() -> None:
    assert masked_item("alice@example.org") == "a@…" and masked_item("x#2") == "x#2"
    assert general_reason("550 5.1.1 <bob@mail.example.org>: Recipient address rejected"
                          ) == "550 5.1.1 …: Recipient address rejected"
    assert general_reason("Found inactive addresses: c.d+news@ex-ample.co.jp. Inactive"
                          ) == "Found inactive addresses: …. Inactive"
    assert general_reason("") == "no reason given"


def test_one_line_per_channel_groups_equal_reasons_and_names_a_few() -> None:
    news = Outcome("newsletter", "smtp", "")
    for name in ("ann", "ben", "cat", "dan"):
        news.note(BOUNCED, f"550 5.1.1 <{name}@ex.org> unknown (at RCPT TO)", [f"{name}@ex.org"])
    news.note(RETRY, "451 4.3.0 later (at RCPT TO)", ["eve@ex.org"])
    news.note(LOST, "the reply was lost", ["fay@ex.org"])
    x = Outcome("x", "x", "")
    x.note(GIVEN_UP, "x: HTTP 503", ["x#1"])
    [mail, social] = failure_lines([news, x], max_attempts=3)
    assert mail == (
        "smtp: 5 recipients not delivered — 550 5.1.1 … unknown (at RCPT TO) (a@…, b@…, c@…"
        " and 1 more) — marked bounced, never sent to again; 451 4.3.0 later (at RCPT TO)"
        " (e@…) — retried on the next run (up to 3 attempts)")
    assert social == ("x: 1 post not delivered — x: HTTP 503 (x#1) — given up after 3 attempts"
                      " (--retry-failed tries again)")
    assert "ann" not in mail and "@ex.org" not in mail
    [maybe] = uncertain_lines([news, x], post="posts/a.md")
    assert maybe.startswith("smtp: 1 recipient uncertain — the reply was lost in this run (f@…)")
    assert maybe.endswith("`publish posts/a.md --retry-pending`")


def test_an_earlier_stop_without_a_reason_says_so() -> None:
    x = Outcome("x", "x", "")
    x.note(UNCERTAIN, "", ["x#3"])
    [line] = uncertain_lines([x], post="p.md")
    assert line.startswith("x: 1 post uncertain — an earlier run stopped mid-send (x#3)")
    assert failure_lines([x], max_attempts=3) == []
