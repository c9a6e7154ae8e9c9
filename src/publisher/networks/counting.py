"""Post length exactly as each network counts it; the composer and `publish measure` share it.

Patterns compile on first use (URLs, emoji, `regex`'s graphemes), and `urls.py` with its TLD
lists loads only for a text with a "." or an emoji, so the CLI starts fast; URLs and emoji are
found with twitter-text's own patterns, built there without importing twitter-text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import TYPE_CHECKING

from publisher.errors import InputError
from publisher.networks import get_network
from publisher.networks.network import Counting, Network
from publisher.text import graphemes as clusters
from publisher.text.controls import lone_surrogate

if TYPE_CHECKING:
    import regex as regex_module

DEFAULT_URL_LENGTH = 23
# Mastodon's Extractor::MAX_DOMAIN_LENGTH: a remote mention with a longer domain is plain text.
MASTODON_MAX_DOMAIN_LENGTH = 253
# twitter-text v3 weights: code points in these ranges count 1, all others 2, a URL 23, an emoji
# sequence 2; weights are scaled by 100 (https://github.com/twitter/twitter-text/blob/master/config/v3.json).
X_LIGHT_RANGES = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))
X_SCALE = 100
X_LIGHT_RE = re.compile("[" + "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in X_LIGHT_RANGES) + "]")
X_URL_WEIGHT = DEFAULT_URL_LENGTH * X_SCALE
X_EMOJI_WEIGHT = 2 * X_SCALE  # config v3 "emojiParsingEnabled": an emoji sequence weighs 200
# twitter_text/regexp/invalid_chars.py: a post holding one of these is invalid on X.
X_INVALID_RE = re.compile("[\ufffe\ufeff\uffff]")
X_MAX_WEIGHTED_LENGTH = 280
# Text made only of these code points can hold no emoji twitter-text's emoji table matches
# (tests/test_counting_fast_path.py checks every code point and every sequence of that table):
# ASCII, Latin-1 except © ®, Latin extended, Greek, Cyrillic, general punctuation except ‼ ⁉,
# CJK punctuation except 〰 〽, kana, CJK ideographs and full-width forms. Any other character
# falls back to twitter-text's own parse_tweet.
EMOJI_FREE_RE = re.compile(
    "[\x00-\x7f\xa0-\xa8\xaa-\xad\xaf-\u052f\u2000-\u203b\u203d-\u2048\u204a-\u206f"
    "\u3000-\u302f\u3031-\u303c\u303e-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff01-\uff9f]*"
)
LINE_ENDING_RE = re.compile(r"\r\n|\r|\n")


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
    surrogate = lone_surrogate(text)
    if surrogate:  # e.g. argv bytes that were not UTF-8, which Python keeps as surrogates
        raise InputError(
            f"the text holds a lone surrogate ({surrogate}), which no network accepts",
            where="text", fix="pass the text as UTF-8",
        )
    return _measure(network, text, limit, url_length)


@lru_cache(maxsize=1024)
def _measure(name: str, text: str, limit: int | None, url_length: int) -> Measurement:
    """measure, memoized: the composer tries the same candidate text more than once."""
    network = get_network(name)
    cap = network.limit if limit is None else limit
    length, rejected = _length(network, text, url_length)
    detail = ""
    if text and rejected and length <= cap:
        detail = "contains characters X rejects (U+FFFE, U+FEFF, U+FFFF, U+202A–U+202E)"
    if network.max_bytes is not None and bluesky_bytes(text) > network.max_bytes:
        detail = f"{bluesky_bytes(text)} UTF-8 bytes > {network.max_bytes}"
    if not detail and network.max_links is not None:
        links = len(find_urls(text)) if "." in text else 0
        if links > network.max_links:
            detail = f"{links} links > {network.max_links}"
    return Measurement(
        network=name,
        length=length,
        limit=cap,
        fits=length <= cap and not detail,
        unit=network.unit,
        detail=detail,
    )


def _length(network: Network, text: str, url_length: int) -> tuple[int, bool]:
    """The length of `text` by the network's counting rule, and whether the rule rejects it."""
    rule = network.counting
    if rule is Counting.TWITTER_TEXT:
        length, valid = _x_weighted(text)
        return length, not valid
    if rule is Counting.GRAPHEMES:
        return grapheme_count(text), False
    if rule is Counting.MASTODON:
        return mastodon_length(text, url_length=url_length), False
    if rule is Counting.THREADS:
        return threads_length(text), False
    return linkedin_length(text), False


def x_length(text: str) -> int:
    """twitter-text v3 weighted length: NFC, CJK 2, URLs 23, emoji sequences 2."""
    # https://github.com/twitter/twitter-text/blob/master/config/v3.json
    return _x_weighted(text)[0]


def bluesky_length(text: str) -> int:
    """Extended grapheme clusters, as the Bluesky app and PDS count them."""
    return grapheme_count(text)


def bluesky_bytes(text: str) -> int:
    """UTF-8 size: Bluesky's second limit, and the unit of facet offsets."""
    return len(text.encode("utf-8"))


def mastodon_length(text: str, *, url_length: int = DEFAULT_URL_LENGTH) -> int:
    """Graphemes with each http(s) URL as `url_length` and a valid `@user@domain` as `@user`."""
    # StatusLengthValidator#countable_text: URLs (protocol required) and mentions are found,
    # overlaps removed (the earlier entity wins), URLs become a 23-char placeholder and
    # mentions their local part, then grapheme clusters are counted. A mention that is not one
    # (see mastodon_mentions) keeps its full length.
    # https://github.com/mastodon/mastodon/blob/main/app/validators/status_length_validator.rb
    entities = [
        (span.start, span.end, "x" * url_length)
        for span in find_urls(text)
        if span.url.lower().startswith(("http://", "https://"))
    ]
    if "@" in text or "＠" in text:
        entities.extend(mastodon_mentions(text))
    pieces: list[str] = []
    last = 0
    for start, end, replacement in sorted(entities, key=lambda e: e[0]):
        if start < last:
            continue  # twitter-text's remove_overlapping_entities
        pieces.append(text[last:start])
        pieces.append(replacement)
        last = end
    pieces.append(text[last:])
    return grapheme_count("".join(pieces))


def mastodon_mentions(text: str) -> list[tuple[int, int, str]]:
    """Mentions as Mastodon's Extractor finds them: [start, end) and the `@user` they count as.

    app/lib/extractor.rb#extract_mentions_or_lists_with_indices skips a match followed by an
    at sign, a Latin accent or "://" (twitter-text's end_mention_match) and a remote mention
    whose domain is longer than MAX_DOMAIN_LENGTH (253): those are plain text, counted in full.
    https://github.com/mastodon/mastodon/blob/main/app/lib/extractor.rb
    """
    found: list[tuple[int, int, str]] = []
    for match in _mention_re().finditer(text):
        if _end_mention_re().match(text, match.end()):
            continue
        user, _, domain = match.group(1).partition("@")
        if len(domain) > MASTODON_MAX_DOMAIN_LENGTH:
            continue
        found.append((match.start(), match.end(), "@" + user))
    return found


def threads_length(text: str) -> int:
    """Characters, with each emoji counted as its UTF-8 byte length."""
    # "Text posts are limited to 500 characters. Emojis are counted as the number of UTF-8 bytes."
    # https://developers.facebook.com/documentation/threads/posts
    if clusters.single_clusters(text):  # no emoji, each character a cluster
        return len(text)
    total = 0
    for cluster in graphemes(text):
        total += len(cluster.encode("utf-8")) if _is_emoji(cluster) else 1
    return total


def linkedin_length(text: str) -> int:
    """UTF-16 code units: LinkedIn's 3000-character commentary limit counts them (emoji = 2)."""
    return len(text.encode("utf-16-le")) // 2


# A run of text between spaces and line breaks that has a "." (twitter-text finds no URL
# without one, and none spans a space or line break: its domain and path classes exclude them).
# It starts only where a run starts, so a long run without a "." costs its length once.
DOTTED_RUN_RE = re.compile(r"(?<![^ \n])[^ \n.]*\.[^ \n]*")
# The label after a "." (group 1) when it can be checked against twitter-text's ASCII TLDs;
# a match without group 1 when it may be punycode or non-ASCII (an IDN TLD, or a letter that
# IGNORECASE folds to ASCII, such as U+212A KELVIN SIGN for "k"): those runs are scanned whole.
TLD_CANDIDATE_RE = re.compile(
    r"\.(?:(?![xX][nN]--)([0-9A-Za-z]++)(?![^\x00-\x7f])|(?=[xX][nN]--|[0-9A-Za-z]*+[^\x00-\x7f]))"
)


def find_urls(text: str) -> list[UrlSpan]:
    """URLs where twitter-text finds them, including bare domains like example.com/a."""
    return list(_url_spans(text))


@lru_cache(maxsize=256)
def _url_spans(text: str) -> tuple[UrlSpan, ...]:
    """find_urls, memoized: the composer measures the same text on several networks.

    A URL has a "." and holds no space or line break, and twitter-text's pattern looks one
    character behind and ahead of it, so only the dotted runs between spaces and line breaks
    are scanned, each with its neighbours: the same matches, without scanning long CJK runs.
    """
    from publisher.networks.urls import extract_urls

    spans: list[UrlSpan] = []
    for run in DOTTED_RUN_RE.finditer(text):
        end = _url_run_end(run.group())
        if not end:
            continue
        low, high = max(run.start() - 1, 0), min(run.start() + end + 1, len(text))
        spans.extend(UrlSpan(url.start + low, url.end + low, url.url)
                     for url in extract_urls(text[low:high]))
    return tuple(spans)


def _url_run_end(run: str) -> int:
    """How much of a dotted run can hold URLs: 0 when no "." may start a top-level domain.

    Every twitter-text URL has a domain that ends in ".<TLD>", and its pattern backtracks
    quadratically over a long chain of labels it cannot match ("a.a.a…"). An ASCII TLD is the
    whole alphanumeric run after its "." (its pattern requires no letter or digit after it);
    a non-ASCII or punycode one may be anything, so its run is scanned whole. Without a port,
    path or query (":", "/", "?") a URL ends at a TLD, so the scan stops after the last one.
    """
    tlds = _ascii_tlds()
    end = 0
    for label in TLD_CANDIDATE_RE.finditer(run):
        ascii_label = label.group(1)
        if ascii_label is None:
            return len(run)
        if ascii_label.lower() in tlds:
            end = label.end()
    if end and any(mark in run for mark in ":/?"):
        return len(run)
    return end


def clear_caches() -> None:
    """Forget memoized URL spans and measurements (benchmarks measure a cold edition with it)."""
    _url_spans.cache_clear()
    _measure.cache_clear()


def graphemes(text: str) -> list[str]:
    """The extended grapheme clusters of `text` (UAX #29)."""
    if clusters.single_clusters(text):
        return list(text)
    return list(clusters.grapheme_re().findall(text))


def grapheme_count(text: str) -> int:
    """How many extended grapheme clusters `text` has."""
    return clusters.grapheme_count(text)


def find_mentions(text: str) -> list[tuple[int, int, str]]:
    """`@user` and `@user@domain` spans [start, end) with the account, as Mastodon matches them."""
    return [(m.start(), m.end(), m.group(0)[1:]) for m in _mention_re().finditer(text)]


def _is_emoji(cluster: str) -> bool:
    """Whether a grapheme cluster shows as an emoji picture."""
    return _emoji_re().search(cluster) is not None


def _x_weighted(text: str) -> tuple[int, bool]:
    """(weightedLength, valid) exactly as twitter-text's parse_tweet gives them, in linear time
    (its URL regex backtracks quadratically on long runs), without the emoji scan when no
    emoji can match."""
    normalized = LINE_ENDING_RE.sub("\n", unicodedata.normalize("NFC", text))  # as parse_tweet
    # extract_urls_with_indices returns [] for a text without "." before running its regexes.
    urls = {} if "." not in normalized else {s.start: len(s.url) for s in _url_spans(normalized)}
    emoji = {} if EMOJI_FREE_RE.fullmatch(normalized) else _x_emoji_lengths(normalized)
    # The loop of twitter_text/parse_tweet.py: an entity that starts where the loop stands (a
    # URL before an emoji) weighs X_URL_WEIGHT or X_EMOJI_WEIGHT and moves it on by the
    # entity's length; every other character weighs by its range. The characters between
    # entities are counted in one go; validity is read on each character the loop stands on.
    weighted = 0
    index = 0
    valid = True
    for start in sorted(urls.keys() | emoji.keys()):
        if start < index:
            continue  # the loop never stands on this start
        weighted += _x_run_weight(normalized, index, start)
        size = urls.get(start)
        weighted += X_URL_WEIGHT if size is not None else X_EMOJI_WEIGHT
        size = size if size is not None else emoji[start]
        valid = valid and not X_INVALID_RE.search(normalized, index, start) and not (
            X_INVALID_RE.match(normalized, start + size - 1))
        index = start + size
    weighted += _x_run_weight(normalized, index, len(normalized))
    valid = valid and not X_INVALID_RE.search(normalized, index)
    length = weighted // X_SCALE
    return length, valid and 0 < length <= X_MAX_WEIGHTED_LENGTH


def _x_emoji_lengths(text: str) -> dict[int, int]:
    """Start → length of every emoji twitter-text's emoji regex finds (one linear scan)."""
    from publisher.networks.urls import emoji_pattern

    return {m.start(): len(m.group()) for m in emoji_pattern().finditer(text)}


def _x_run_weight(text: str, start: int, end: int) -> int:
    """Weight of text[start:end]: X_SCALE per light character, twice that for the others."""
    if start >= end:
        return 0
    light = len(X_LIGHT_RE.findall(text, start, end))
    return (light + 2 * (end - start - light)) * X_SCALE




@cache
def _ascii_tlds() -> frozenset[str]:
    """twitter-text's ASCII gTLDs and ccTLDs, lower case."""
    from publisher.networks.tlds import CCTLDS, GTLDS

    return frozenset(n.lower() for n in (*GTLDS, *CCTLDS) if n.isascii() and n.isalnum())


@cache
def _mention_re() -> regex_module.Pattern[str]:
    """Mastodon's Account::MENTION_RE: group 1 is `user` or `user@domain`."""
    # USERNAME_RE = /[a-z0-9_]+([a-z0-9_.-]+[a-z0-9_]+)?/i
    # MENTION_RE  = %r{(?<![=/[:word:]])@((#{USERNAME_RE})(?:@[[:word:].-]+[[:word:]]+)?)}i
    # https://github.com/mastodon/mastodon/blob/main/app/models/account.rb
    import regex

    return regex.compile(
        r"(?<![=/\w])@([a-z0-9_]+(?:[a-z0-9_.-]+[a-z0-9_]+)?(?:@[\w.-]+\w+)?)",
        regex.IGNORECASE,
    )


@cache
def _end_mention_re() -> regex_module.Pattern[str]:
    """twitter-text's end_mention_match: an at sign, a Latin accent or "://" right after."""
    import regex

    from publisher.networks.urls import LATIN_ACCENTS

    return regex.compile(f"[@＠{LATIN_ACCENTS}]|://")


@cache
def _emoji_re() -> regex_module.Pattern[str]:
    """A pictographic code point or a keycap / regional-indicator sequence."""
    import regex

    return regex.compile(r"\p{Extended_Pictographic}|\p{Regional_Indicator}|\u20e3")
