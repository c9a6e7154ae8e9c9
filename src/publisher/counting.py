"""Post length exactly as each network counts it; the composer and `publish measure` share it.

Heavy libraries (twitter-text's regexes, `regex`) load on first use so the CLI starts fast.
"""

from __future__ import annotations

import sys
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from publisher.errors import InputError

if TYPE_CHECKING:
    import regex as regex_module

LIMITS: dict[str, int] = {
    "x": 280,
    "bluesky": 300,
    "mastodon": 500,
    "threads": 500,
    "linkedin": 3000,
}
UNITS: dict[str, str] = {
    "x": "weighted characters",
    "bluesky": "graphemes",
    "mastodon": "characters",
    "threads": "characters",
    "linkedin": "UTF-16 units",
}
# app.bsky.feed.post: text maxGraphemes 300, maxLength 3000 (bytes).
# https://github.com/bluesky-social/atproto/blob/main/lexicons/app/bsky/feed/post.json
BLUESKY_MAX_BYTES = 3000
BLUESKY_TAG_MAX_GRAPHEMES = 64
DEFAULT_URL_LENGTH = 23


@dataclass(frozen=True)
class Measurement:
    """How long a text is on one network and whether it fits that network's limit."""

    network: str
    length: int
    limit: int
    fits: bool
    unit: str
    detail: str = ""  # why it does not fit when the length alone does not say (Bluesky bytes)


@dataclass(frozen=True)
class UrlSpan:
    """A URL as twitter-text detects it: [start, end) in code points of the text."""

    start: int
    end: int
    url: str


def measure(
    network: str, text: str, *, limit: int | None = None, url_length: int = DEFAULT_URL_LENGTH
) -> Measurement:
    """Measure `text` as `network` counts it, against its limit (or an explicit one)."""
    if network not in LIMITS:
        raise InputError(
            f"unknown network {network!r}",
            where="network",
            fix=f"use one of: {', '.join(LIMITS)}",
        )
    cap = LIMITS[network] if limit is None else limit
    detail = ""
    if network == "x":
        parsed = _parse_tweet(text)
        length = int(parsed.weightedLength)
        if text and not parsed.valid and length <= cap:
            detail = "contains characters X rejects (U+FFFE, U+FEFF, U+FFFF, U+202A–U+202E)"
    elif network == "bluesky":
        length = bluesky_length(text)
        size = bluesky_bytes(text)
        if size > BLUESKY_MAX_BYTES:
            detail = f"{size} UTF-8 bytes > {BLUESKY_MAX_BYTES}"
    elif network == "mastodon":
        length = mastodon_length(text, url_length=url_length)
    elif network == "threads":
        length = threads_length(text)
    else:
        length = linkedin_length(text)
    return Measurement(
        network=network,
        length=length,
        limit=cap,
        fits=length <= cap and not detail,
        unit=UNITS[network],
        detail=detail,
    )


def x_length(text: str) -> int:
    """twitter-text v3 weighted length: NFC, CJK 2, URLs 23, emoji sequences 2."""
    # https://github.com/twitter/twitter-text/blob/master/config/v3.json
    return int(_parse_tweet(text).weightedLength)


def bluesky_length(text: str) -> int:
    """Extended grapheme clusters, as the Bluesky app and PDS count them."""
    return grapheme_count(text)


def bluesky_bytes(text: str) -> int:
    """UTF-8 size: Bluesky's second limit, and the unit of facet offsets."""
    return len(text.encode("utf-8"))


def mastodon_length(text: str, *, url_length: int = DEFAULT_URL_LENGTH) -> int:
    """Graphemes with each http(s) URL as `url_length` and `@user@domain` as `@user`."""
    # Mastodon's StatusLengthValidator#countable_text rewrites URLs (protocol required) to a
    # 23-char placeholder and remote mentions to the local part, then counts grapheme clusters.
    # https://github.com/mastodon/mastodon/blob/main/app/validators/status_length_validator.rb
    pieces: list[str] = []
    last = 0
    for span in find_urls(text):
        if not span.url.lower().startswith(("http://", "https://")):
            continue
        pieces.append(_collapse_mentions(text[last : span.start]))
        pieces.append("x" * url_length)
        last = span.end
    pieces.append(_collapse_mentions(text[last:]))
    return grapheme_count("".join(pieces))


def threads_length(text: str) -> int:
    """Characters, with each emoji counted as its UTF-8 byte length."""
    # "Text posts are limited to 500 characters. Emojis are counted as the number of UTF-8 bytes."
    # https://developers.facebook.com/documentation/threads/posts
    total = 0
    for cluster in graphemes(text):
        total += len(cluster.encode("utf-8")) if _is_emoji(cluster) else 1
    return total


def linkedin_length(text: str) -> int:
    """UTF-16 code units: LinkedIn's 3000-character commentary limit counts them (emoji = 2)."""
    return len(text.encode("utf-16-le")) // 2


def find_urls(text: str) -> list[UrlSpan]:
    """URLs where twitter-text finds them, including bare domains like example.com/a."""
    entities: list[dict[str, Any]] = _twitter_text().extract_urls_with_indices(text)
    return [UrlSpan(e["indices"][0], e["indices"][1], e["url"]) for e in entities]


def graphemes(text: str) -> list[str]:
    """The extended grapheme clusters of `text` (UAX #29)."""
    return list(_grapheme_re().findall(text))


def grapheme_count(text: str) -> int:
    """How many extended grapheme clusters `text` has."""
    return len(_grapheme_re().findall(text))


def _collapse_mentions(text: str) -> str:
    """`@user@domain` → `@user`, as Mastodon counts remote mentions."""
    return _mention_re().sub(r"@\1", text)


def _is_emoji(cluster: str) -> bool:
    """Whether a grapheme cluster shows as an emoji picture."""
    return _emoji_re().search(cluster) is not None


def _parse_tweet(text: str) -> Any:
    """twitter-text's parse_tweet on NFC text (it normalizes too; we do it to be explicit)."""
    return _twitter_text().parse_tweet(unicodedata.normalize("NFC", text))


@cache
def _twitter_text() -> Any:
    """The twitter-text port, imported on first use (its regexes take ~0.1 s to build)."""
    if "pkg_resources" in sys.modules:
        import twitter_text
    else:  # its emoji table is read with pkg_resources, which alone costs ~90 ms to import
        sys.modules["pkg_resources"] = _ResourceReader()  # type: ignore[assignment]
        try:
            import twitter_text
        finally:
            del sys.modules["pkg_resources"]
    return twitter_text


class _ResourceReader:
    """The one pkg_resources call twitter_text makes (regexp/emoji.py), without setuptools."""

    @staticmethod
    def resource_string(module: str, name: str) -> bytes:
        """A data file beside a module's source, as pkg_resources.resource_string reads it."""
        return (Path(str(sys.modules[module].__file__)).parent / name).read_bytes()


@cache
def _grapheme_re() -> regex_module.Pattern[str]:
    """`\\X`: one extended grapheme cluster."""
    import regex

    return regex.compile(r"\X")


@cache
def _mention_re() -> regex_module.Pattern[str]:
    """A mention as Mastodon's Account::MENTION_RE matches it (app/models/account.rb)."""
    import regex

    return regex.compile(
        r"(?<![=/\w])@([a-z0-9_]+(?:[a-z0-9_.-]+[a-z0-9_]+)?)(?:@\w+(?:[.-]+\w+)*)?",
        regex.IGNORECASE,
    )


@cache
def _emoji_re() -> regex_module.Pattern[str]:
    """A pictographic code point or a keycap / regional-indicator sequence."""
    import regex

    return regex.compile(r"\p{Extended_Pictographic}|\p{Regional_Indicator}|\u20e3")
