"""Which items of a feed a run publishes, from what the ledger remembers of each guid; pure.

An item the ledger has never seen, or one a run started (`pending`), is published; one already
`published` is not, whatever its place or text, unless `--resend` (then only if its text
changed). `--latest N`, `--since DATE` and `--all` limit a run; a limited run also reconsiders
items an earlier limit left out (`passed`), and records the unseen items it leaves out as
passed, so a later plain run does not publish the archive the first run held back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from publisher.source.feed.item import FeedItem, oldest_first

PENDING, PUBLISHED, PASSED = "pending", "published", "passed"


@dataclass(frozen=True)
class Limits:
    """--latest N, --since DATE, --all."""

    latest: int | None = None
    since: datetime | None = None
    everything: bool = False

    @property
    def given(self) -> bool:
        """Whether the run was limited (or told to take all): what a first run must be."""
        return self.everything or self.latest is not None or self.since is not None


@dataclass(frozen=True)
class Choice:
    """The items to publish, oldest first, and the unseen items this run leaves out."""

    publish: tuple[FeedItem, ...]
    passed: tuple[FeedItem, ...]


def choose(
    items: Sequence[FeedItem], states: Mapping[str, str], limits: Limits, *, resend: bool
) -> Choice:
    """What this run publishes and what it records as passed (see the module docstring)."""
    ordered = oldest_first(_first_of_each_guid(items))
    started = [i for i in ordered if states.get(i.guid) == PENDING]
    unseen = [i for i in ordered if i.guid not in states]
    others = [i for i in ordered
              if (limits.given and states.get(i.guid) == PASSED)
              or (resend and states.get(i.guid) == PUBLISHED)]
    candidates = [i for i in ordered if i in unseen or i in others]
    kept = _within(candidates, limits)
    chosen = {i.guid for i in (*started, *kept)}
    return Choice(publish=tuple(i for i in ordered if i.guid in chosen),
                  passed=tuple(i for i in unseen if i.guid not in chosen))


def _within(items: list[FeedItem], limits: Limits) -> list[FeedItem]:
    """The items (oldest first) that --since and --latest keep."""
    if limits.since is not None:
        since = limits.since
        items = [i for i in items if i.when is not None and i.when >= since]
    if limits.latest is not None:
        items = items[-limits.latest:] if limits.latest > 0 else []
    return items


def _first_of_each_guid(items: Sequence[FeedItem]) -> list[FeedItem]:
    """One item per guid: a feed that lists an item twice publishes it once (the first)."""
    seen: dict[str, FeedItem] = {}
    for item in items:
        seen.setdefault(item.guid, item)
    return list(seen.values())
