"""Front-matter tags as hashtags each network links: `critical minerals` → `#CriticalMinerals`."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from publisher.networks.counting import BLUESKY_TAG_MAX_GRAPHEMES, grapheme_count

# Threads links one topic tag per post, at most 50 characters, without '.' or '&'.
# https://developers.facebook.com/documentation/threads/posts (topic tags)
THREADS_TAG_MAX = 50
MAX_TAGS_PER_POST = {"threads": 1}


def hashtag(tag: str, network: str = "x") -> str | None:
    """The tag without '#' as `network` will link it, or None if nothing valid is left."""
    words = _words(unicodedata.normalize("NFKC", tag))
    if not words:
        return None
    if len(words) > 1:
        words = [w[0].upper() + w[1:] if w.islower() else w for w in words]
    name = "".join(words)
    # A hashtag needs a letter: "#2024" is not linked by X, Mastodon or Bluesky.
    if not any(unicodedata.category(ch).startswith("L") for ch in name):
        return None
    if network == "bluesky" and grapheme_count(name) > BLUESKY_TAG_MAX_GRAPHEMES:
        return None
    if network == "threads" and len(name) > THREADS_TAG_MAX:
        return None
    return name


def hashtags(tags: Iterable[str], network: str, *, limit: int) -> list[str]:
    """Distinct '#Tag' strings for `network`, in front-matter order, at most `limit` of them."""
    cap = min(limit, MAX_TAGS_PER_POST.get(network, limit))
    seen: set[str] = set()
    out: list[str] = []
    for tag in tags:
        if len(out) >= cap:  # `[social] hashtags = 0` means none at all
            break
        name = hashtag(tag, network)
        if name is None or name.casefold() in seen:
            continue
        seen.add(name.casefold())
        out.append(f"#{name}")
    return out


def _words(text: str) -> list[str]:
    """Runs of letters, marks, digits and '_': everything else separates words and is dropped."""
    words: list[str] = []
    current: list[str] = []
    for ch in text:
        if ch == "_" or unicodedata.category(ch)[0] in "LMN":
            current.append(ch)
        elif current:
            words.append("".join(current))
            current = []
    if current:
        words.append("".join(current))
    return words
