"""Front-matter tags as hashtags each network links: `critical minerals` → `#CriticalMinerals`."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from publisher.networks import get_network
from publisher.networks.counting import grapheme_count


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
    rules = get_network(network).hashtags
    if rules.max_graphemes is not None and grapheme_count(name) > rules.max_graphemes:
        return None
    if rules.max_chars is not None and len(name) > rules.max_chars:
        return None
    return name


def hashtags(tags: Iterable[str], network: str, *, limit: int) -> list[str]:
    """Distinct '#Tag' strings for `network`, in front-matter order, at most `limit` of them."""
    linked = get_network(network).hashtags.linked_per_post
    cap = limit if linked is None else min(limit, linked)
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
