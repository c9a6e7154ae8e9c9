"""One item of a feed, as the choosing and the ledger see it; pure and light (no parser loaded)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class FeedItem:
    """One item of a feed, every field plain text except the HTML body."""

    guid: str  # RSS guid / Atom id; the link, or a hash of the title, when the feed gives none
    link: str
    title: str
    when: datetime | None  # published (else updated), with the feed's own zone
    position: int  # 0 for the first item in the document
    author: str = ""
    summary: str = ""
    content_html: str = ""
    tags: tuple[str, ...] = ()
    image: str = ""


def oldest_first(items: Sequence[FeedItem]) -> list[FeedItem]:
    """Items by date, oldest first; undated ones by place (feeds list the newest first)."""
    def key(item: FeedItem) -> tuple[float, int]:
        stamp = item.when.timestamp() if item.when else float("-inf")
        return (stamp, -item.position)
    return sorted(items, key=key)
