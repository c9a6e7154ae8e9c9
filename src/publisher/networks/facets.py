"""Bluesky rich-text facets found exactly where the Bluesky app finds them.

A port of `detectFacets` in @atproto/api 0.21.0 (packages/api/src/rich-text/detection.ts and
util.ts of bluesky-social/atproto, the code every Bluesky client runs before it posts):
https://github.com/bluesky-social/atproto/blob/main/packages/api/src/rich-text/detection.ts
https://github.com/bluesky-social/atproto/blob/main/packages/api/src/rich-text/util.ts

- links: any `http://` or `https://` URL, whatever its TLD, up to the next space; a bare domain
  (`example.com/path`) only when its last label is a known TLD; a URL begins at the start of a
  line, after a space or after `(`; one trailing `.,;:!?` is dropped, then one `)` when the URL
  has no `(`;
- tags: `#` or full-width `＃` at the start or after a space, up to a space or an invisible
  separator (U+00AD, U+2060, U+200A–U+200D, U+20E2), trailing punctuation dropped, at least one
  character that is neither a digit nor punctuation, at most 64 graphemes, not a keycap (`#️⃣`);
- cashtags: `$` and 1–5 ASCII letters or digits starting with a letter (`$AAPL`), at the start,
  after a space or `(`, followed by a space, the end or `.,;:!?)"'’`; they are tag facets whose
  tag is `$` and the ticker in capitals.

The JavaScript regexes are rebuilt here with JavaScript's own `\\s` (Python's differs), ASCII
`\\d` and case-sensitive ASCII classes, so no Python-only match creeps in. Offsets are UTF-8
bytes, facets are ordered by their start as `RichText` sorts them. Mentions are not detected:
they need the handle resolved to a DID, which composing (pure, offline) cannot do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Literal

from publisher.model import Facet
from publisher.networks.bluesky import TAG_MAX_GRAPHEMES

if TYPE_CHECKING:
    import regex as regex_module

# ECMAScript WhiteSpace and LineTerminator: what `\s` matches in JavaScript (ECMA-262 §22.2.2.9).
JS_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
# util.ts: "zero-width spaces (likely incomplete)" that end a tag like a space does.
TAG_BREAKERS = "\u00ad\u2060\u200a\u200b\u200c\u200d\u20e2"
# URL_REGEX (flags gim). `[a-z]` under JavaScript's non-Unicode `i` flag matches ASCII letters
# only; Python's IGNORECASE would add ſ and K (Kelvin), so the cases are spelled out instead.
URL_RE = re.compile(
    rf"(^|[{JS_SPACE}(])"
    rf"((?P<schemed>[Hh][Tt][Tt][Pp][Ss]?://[^{JS_SPACE}]+)"
    rf"|(?P<domain>[A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z0-9]+)+)[^{JS_SPACE}]*)",
    re.MULTILINE,
)
URL_END_PUNCTUATION = ".,;:!?"
# CASHTAG_REGEX (flags gu): `$` in the lookahead is the end of the input.
CASHTAG_RE = re.compile(
    rf"(^|[{JS_SPACE}(])\$([A-Za-z][A-Za-z0-9]{{0,4}})(?=[{JS_SPACE}]|\Z|[.,;:!?)\"'\u2019])"
)

FacetKind = Literal["link", "tag"]


@dataclass(frozen=True)
class Span:
    """A facet before byte conversion: [start, end) in code points, its kind and value."""

    start: int
    end: int
    kind: FacetKind
    value: str


def detect_facets(text: str) -> tuple[Facet, ...]:
    """Link, tag and cashtag facets over UTF-8 byte offsets, byteStart inclusive, byteEnd not."""
    spans = sorted([*link_spans(text), *tag_spans(text), *cashtag_spans(text)],
                   key=lambda s: s.start)
    if not spans:
        return ()
    offsets = _byte_offsets(text, {i for s in spans for i in (s.start, s.end)})
    return tuple(Facet(offsets[s.start], offsets[s.end], s.kind, s.value) for s in spans)


def link_spans(text: str) -> list[Span]:
    """Where Bluesky links: schemed URLs of any TLD, bare domains with a known TLD."""
    if "." not in text and "://" not in text:
        return []  # a bare domain has a dot, a schemed URL its "://"
    spans: list[Span] = []
    for match in URL_RE.finditer(text):
        uri = match.group(2)
        if not uri.startswith("http"):  # case-sensitive in detection.ts: HTTPS://… is not linked
            domain = match.group("domain")
            if not domain or not is_valid_domain(domain):
                continue
            uri = "https://" + uri
        start = match.start(2)
        end = match.end(2)
        if uri[-1] in URL_END_PUNCTUATION:
            uri, end = uri[:-1], end - 1
        if uri.endswith(")") and "(" not in uri:
            uri, end = uri[:-1], end - 1
        spans.append(Span(start, end, "link", uri))
    return spans


def tag_spans(text: str) -> list[Span]:
    """`#tag` and `＃タグ` as Bluesky tags them, trailing punctuation off, 64 graphemes at most."""
    if "#" not in text and "＃" not in text:
        return []
    spans: list[Span] = []
    for match in _tag_re().finditer(text):
        tag = match.group(2)
        if not tag:
            continue
        # detection.ts trims the tag first; TAG_REGEX admits no space into it, so only the
        # trailing punctuation goes.
        tag = _trailing_punctuation_re().sub("", tag)
        if not tag or _grapheme_count(tag) > TAG_MAX_GRAPHEMES:
            continue
        start = match.start() + len(match.group(1))
        spans.append(Span(start, start + 1 + len(tag), "tag", tag))
    return spans


def cashtag_spans(text: str) -> list[Span]:
    """`$AAPL` as Bluesky tags it: a tag facet `$AAPL`, the ticker in capitals."""
    if "$" not in text:
        return []
    spans: list[Span] = []
    for match in CASHTAG_RE.finditer(text):
        ticker = match.group(2).upper()
        start = match.start() + len(match.group(1))
        spans.append(Span(start, start + 1 + len(ticker), "tag", "$" + ticker))
    return spans


def is_valid_domain(domain: str) -> bool:
    """Whether the last label is a TLD in IANA's list, compared as detection.ts does (exact)."""
    _, dot, tld = domain.rpartition(".")
    return bool(dot) and tld in known_tlds()


@cache
def known_tlds() -> frozenset[str]:
    """IANA's root-zone TLDs, lower case, from the `tlds` package (atproto reads the same list
    from the npm package of that name); only ASCII names can ever match a bare domain."""
    import tlds

    return frozenset(t.lower() for t in tlds.tld_set if t.isascii())


def _byte_offsets(text: str, indices: set[int]) -> dict[int, int]:
    """UTF-8 byte offset of each code-point index, in one pass over the text."""
    if text.isascii():
        return {i: i for i in indices}
    offsets: dict[int, int] = {}
    size = 0
    wanted = sorted(indices)
    position = 0
    for i, ch in enumerate(text):
        while position < len(wanted) and wanted[position] == i:
            offsets[i] = size
            position += 1
        size += len(ch.encode("utf-8"))
    for index in wanted[position:]:
        offsets[index] = size
    return offsets


@cache
def _tag_re() -> regex_module.Pattern[str]:
    """TAG_REGEX (flags gu) with JavaScript's `\\s`, ASCII `\\d` and Unicode `\\p{P}`."""
    import regex

    not_breaker = f"[^{JS_SPACE}{TAG_BREAKERS}]"
    return regex.compile(
        rf"(^|[{JS_SPACE}])[#＃]((?!\ufe0f){not_breaker}*"
        rf"[^0-9{JS_SPACE}\p{{P}}{TAG_BREAKERS}]+{not_breaker}*)?"
    )


@cache
def _trailing_punctuation_re() -> regex_module.Pattern[str]:
    """TRAILING_PUNCTUATION_REGEX: `\\p{P}+$`, where `$` is the end of the tag."""
    import regex

    return regex.compile(r"\p{P}+\Z")


def _grapheme_count(text: str) -> int:
    """Extended grapheme clusters, as atproto's graphemeLen counts them."""
    from publisher.networks.counting import grapheme_count

    return grapheme_count(text)
