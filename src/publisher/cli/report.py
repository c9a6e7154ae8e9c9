"""What a run and `publish status` tell the editor: exact counts, reasons grouped, addresses masked.

A run prints one stderr line per channel with failures and one per channel with uncertain
deliveries. Reasons are grouped after removing the addresses servers echo in their replies, and
at most a few addresses are shown, masked to their first character (`a@…`): stderr ends up in
CI logs, and personal data does not belong there. `publish status` masks the addresses on its
`sent` lines the same way; `publish status --json` carries the full rows, for scripts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from publisher.delivery.send import BOUNCED, GIVEN_UP, LOST, REFUSED, RETRY, UNCERTAIN, Outcome
from publisher.stores.ledger import PERMANENT, ChannelTally, Ledger, Row
from publisher.text.counts import counted

ADDRESS = re.compile(r"<?[\w.+'=-]+@[\w-]+(?:\.[\w-]+)+>?")
SHOWN = 3  # addresses named per reason
FAILED_FATES = (BOUNCED, REFUSED, RETRY, GIVEN_UP)


def masked_item(item: str) -> str:
    """An address as `a@…`; a post's ledger key (`x#1`) as it is."""
    local, at, _ = item.partition("@")
    return f"{local[:1]}@…" if at else item


def general_reason(reason: str) -> str:
    """A provider's reason without the addresses it may echo, so equal reasons group."""
    text = ADDRESS.sub("…", reason)
    return " ".join(text.split()) or "no reason given"


def failure_lines(outcomes: Iterable[Outcome], *, max_attempts: int) -> list[str]:
    """One line per channel that failed to deliver something, with its reasons grouped."""
    lines = []
    for outcome in outcomes:
        groups = _grouped(outcome.problems, FAILED_FATES)
        if not groups:
            continue
        count = sum(len(items) for _, _, items in groups)
        verb = "refused" if all(f in (BOUNCED, REFUSED) for f, _, _ in groups) else "not delivered"
        parts = [f"{why} ({_shown(items)}) — {_tail(fate, max_attempts)}"
                 for fate, why, items in groups]
        lines.append(f"{outcome.channel}: {_count(outcome, count)} {verb} — " + "; ".join(parts))
    return lines


def uncertain_lines(outcomes: Iterable[Outcome], *, post: str) -> list[str]:
    """One line per channel whose deliveries may or may not have landed."""
    lines = []
    for outcome in outcomes:
        groups = _grouped(outcome.problems, (LOST, UNCERTAIN))
        if not groups:
            continue
        count = sum(len(items) for _, _, items in groups)
        parts = []
        for fate, why, items in groups:
            when = "in this run" if fate == LOST else "in an earlier run"
            if fate == UNCERTAIN and why == "no reason given":
                why, when = "an earlier run stopped mid-send", ""
            parts.append(f"{why}{' ' + when if when else ''} ({_shown(items)})")
        lines.append(
            f"{outcome.channel}: {_count(outcome, count)} uncertain — " + "; ".join(parts)
            + f" — maybe delivered, so not resent: check `publish status {post}`, then resend"
            f" with `publish {post} --retry-pending`")
    return lines


def _grouped(
    problems: Mapping[tuple[str, str], list[str]], fates: tuple[str, ...]
) -> list[tuple[str, str, list[str]]]:
    """(fate, general reason, items), merged across reasons that differ only in addresses."""
    merged: dict[tuple[str, str], list[str]] = {}
    for (fate, why), items in problems.items():
        if fate in fates:
            merged.setdefault((fate, general_reason(why)), []).extend(items)
    return [(fate, why, items) for (fate, why), items in merged.items()]


def _shown(items: list[str]) -> str:
    """A few masked items and how many more."""
    shown = ", ".join(masked_item(i) for i in items[:SHOWN])
    return shown + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "")


def _count(outcome: Outcome, count: int) -> str:
    """'3 recipients' for the newsletter, '1 post' for a network."""
    unit = "recipient" if outcome.output == "newsletter" else "post"
    return counted(count, unit)


def _tail(fate: str, max_attempts: int) -> str:
    """What happens next to items of this fate."""
    return {
        BOUNCED: "marked bounced, never sent to again",
        REFUSED: "refused for good, not retried (fix the cause, then pass --retry-failed)",
        RETRY: f"retried on the next run (up to {max_attempts} attempts)",
        GIVEN_UP: f"given up after {max_attempts} attempts (--retry-failed tries again)",
    }[fate]


# -- publish status -------------------------------------------------------------------------


def status_report(
    ledger: Ledger, edition_id: str, slug: str, *, max_attempts: int,
    failed_only: bool = False,
) -> dict[str, Any]:
    """`publish status --json`: the documented contract (README, "What a run tells you")."""
    failed = [failed_entry(r, max_attempts) for r in ledger.rows(edition_id, state="failed")]
    pending = ledger.rows(edition_id, state="pending")
    uncertain = [{"channel": r.channel, "item": r.item, "batch": r.batch,
                  "reason": r.error or "the run stopped mid-send", "attempts": r.attempts,
                  "last_attempt": timestamp(r.updated_at)} for r in pending]
    report: dict[str, Any] = {"edition": edition_id, "failed": failed, "uncertain": uncertain}
    if failed_only:
        return report
    sent = ledger.rows(edition_id, state="sent")
    retracted = {(a.channel, a.item, a.target): a.state
                 for a in ledger.actions("retract", slug=slug)}
    gone = [r for r in sent if (r.channel, r.item, r.provider_id) in retracted]
    report.update({
        "channels": [_tally(t, gone) for t in ledger.tally(edition_id)],
        "pending": [{"channel": r.channel, "item": r.item, "batch": r.batch} for r in pending],
        "sent": [{"channel": r.channel, "item": r.item, "provider_id": r.provider_id,
                  "url": r.url, "state": str(r.extra.get("state", ""))}  # a platform's word
                 for r in sent if r not in gone],
        "skipped": [a.item for a in ledger.actions("skip", edition_id=edition_id)],
        "retracted": [{"channel": r.channel, "item": r.item, "provider_id": r.provider_id,
                       "url": r.url,
                       "state": "retracted" if retracted[(r.channel, r.item, r.provider_id)]
                       == "done" else "retracting"} for r in gone],
        "proofs": [{"channel": a.channel, "state": "sent" if a.state == "done" else a.state}
                   for a in ledger.actions("proof", edition_id=edition_id)],
    })
    return report


def _tally(tally: ChannelTally, gone: list[Row]) -> dict[str, Any]:
    """One channel's counts; a retracted post is no longer counted as sent."""
    retracted = sum(1 for r in gone if r.channel == tally.channel)
    return {**tally.__dict__, "sent": tally.sent - retracted, "retracted": retracted}


def failed_entry(row: Row, max_attempts: int) -> dict[str, Any]:
    """One failed delivery: why, which kind, how often tried, when, and what happens next."""
    kind = row.failure or "transient"
    if kind == PERMANENT:
        next_step = "refused"
    else:
        next_step = "retry" if row.retryable(max_attempts) else "given-up"
    return {"channel": row.channel, "item": row.item, "reason": row.error, "kind": kind,
            "attempts": row.attempts, "last_attempt": timestamp(row.updated_at),
            "next": next_step}


def timestamp(epoch: float) -> str:
    """UTC ISO 8601 to the second, e.g. 2026-12-01T21:05:09Z."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
