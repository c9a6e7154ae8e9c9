"""When to send: `--at` parsed, and where each channel's part of a scheduled edition waits.

Pure: `now` is always passed in (only the CLI and `publish due` read the clock). A channel that
declares a `Window` hands the send to its provider with the time attached when the time falls
inside the window; every other part of the edition is queued in the ledger until `publish due`
sends it. Providers' windows (each channel module cites its docs):

- SendGrid `send_at`: at most 72 hours ahead.
- Resend `scheduled_at`: at most 30 days ahead.
- Mastodon `scheduled_at`: at least 5 minutes ahead; a thread of several posts is queued, since
  a scheduled reply cannot name a status that does not exist yet.

A time outside a provider's window is not refused: that channel's part is queued locally like
a channel that cannot schedule, and the run says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from publisher.errors import InputError

PROVIDER = "provider"  # the provider holds the send and releases it at the time
QUEUED = "queued"  # the ledger holds it; `publish due` sends it once the time has come
AT_EXAMPLE = "2026-12-02T08:00+09:00"
# Room for the run itself: a send that starts just inside a window must still be inside it
# when the provider receives the last batch.
MARGIN = timedelta(minutes=2)


@dataclass(frozen=True)
class Window:
    """How far ahead a provider accepts a scheduled send (`latest` None: no upper bound)."""

    earliest: timedelta = timedelta(0)
    latest: timedelta | None = None
    single_posts_only: bool = False  # a thread cannot be scheduled (replies need a live parent)


@dataclass(frozen=True)
class Placement:
    """Where one output of a scheduled edition waits, and why it waits there."""

    mode: str  # PROVIDER or QUEUED
    reason: str = ""  # why it is queued although the channel can schedule


def parse_at(text: str, *, now: datetime, where: str = "--at") -> datetime:
    """An ISO 8601 time with a zone, in the future; anything else is one InputError line."""
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise InputError(f"{text!r} is not a date and time", where=where,
                         fix=f"write it in ISO 8601 with a zone, e.g. {AT_EXAMPLE}") from exc
    if at.tzinfo is None or at.utcoffset() is None:
        raise InputError(f"{text!r} has no time zone", where=where,
                         fix=f"add the zone: Z for UTC or an offset, e.g. {AT_EXAMPLE}")
    if at <= now:
        raise InputError(f"{text!r} is in the past (it is now {iso(now)})", where=where,
                         fix="give a time in the future, or publish now without --at")
    return at


def place(window: Window | None, at: datetime, *, now: datetime, posts: int = 1,
          provider: str = "") -> Placement:
    """Whether the provider can hold this send, or the ledger queues it (and why)."""
    if window is None:
        return Placement(QUEUED)
    ahead = at - now
    if window.single_posts_only and posts > 1:
        return Placement(QUEUED, f"{provider} cannot schedule a thread ({posts} posts)")
    if ahead < window.earliest + MARGIN:
        return Placement(QUEUED, f"{provider} schedules only more than "
                                 f"{_span(window.earliest + MARGIN)} ahead")
    if window.latest is not None and ahead > window.latest - MARGIN:
        return Placement(QUEUED, f"{provider} schedules at most {_span(window.latest)} ahead")
    return Placement(PROVIDER)


def is_due(at: datetime, *, now: datetime) -> bool:
    """Whether a queued send's time has come."""
    return at <= now


def iso(moment: datetime) -> str:
    """A time as the ledger, `publish status` and the JSON show it: ISO 8601, to the second."""
    return moment.isoformat(timespec="seconds")


def from_iso(text: str) -> datetime:
    """A time the ledger recorded with `iso`."""
    return datetime.fromisoformat(text)


def _span(delta: timedelta) -> str:
    """A window bound in words: '72 hours', '30 days', '7 minutes'."""
    seconds = int(delta.total_seconds())
    if seconds % 86400 == 0 and seconds > 3 * 86400:
        return f"{seconds // 86400} days"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} hours"
    return f"{seconds // 60} minutes"
