"""Sentence splitting for Japanese and English text, aware of brackets, URLs and abbreviations.

Summaries, social posts and FAQ short answers all cut text at sentence ends; a 。 inside
「…」 or a dot in "e.g." or "3.5" must never end a sentence.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Always end a sentence (outside brackets).
HARD_ENDS = frozenset("。！？!?．")
OPENERS = {
    "「": "」", "『": "』", "（": "）", "(": ")", "【": "】", "〈": "〉", "《": "》", "[": "]",
}
# Closing punctuation that belongs to the sentence just ended: 」 after 。 , quotes after ".".
TRAILERS = frozenset("」』）)】〉》]\"'”’")
ABBREVIATIONS = frozenset(
    {
        "e.g", "i.e", "etc", "vs", "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "no",
        "fig", "inc", "ltd", "co", "corp", "jan", "feb", "mar", "apr", "jun", "jul", "aug",
        "sep", "sept", "oct", "nov", "dec", "u.s", "u.k", "u.n", "a.m", "p.m", "approx",
        "dept", "est", "gen", "gov", "sen", "rep", "mt", "cf", "al", "vol", "pp",
    }
)
# Abbreviations that often close a sentence: they end one when a capital follows.
CLOSING_ABBREVIATIONS = frozenset({"etc", "a.m", "p.m"})
# The characters _scan acts on (brackets, sentence ends); any other one it only steps over.
CLOSERS = frozenset(OPENERS.values())
SCAN_STOPS = frozenset(OPENERS) | CLOSERS | HARD_ENDS | {".", "…"}
STOP_RE = re.compile("[" + re.escape("".join(sorted(SCAN_STOPS))) + "]")
# Brackets the one-pass pairing leaves open are closed one rescan each, up to this many; past
# it (only hostile text nests so), brackets on that line are read as plain text.
MAX_RESCANS = 8
# A URL (or IRI) runs to whitespace or CJK punctuation; its '?' and '.' never end a sentence.
NON_SPACE_RE = re.compile(r"\S")
URL_RE = re.compile(r"(?:https?://|www\.)[^\s<>\"「」『』（）【】。、！？]+", re.IGNORECASE)


def split_sentences(text: str) -> list[str]:
    """Sentences of `text` in order, stripped, never empty; newlines also end a sentence."""
    return list(_split_text(text))


@lru_cache(maxsize=64)
def _split_text(text: str) -> tuple[str, ...]:
    """split_sentences, memoized: every network's composer splits the same lead."""
    sentences: list[str] = []
    for line in text.splitlines():
        sentences.extend(_split_line(line))
    return tuple(sentences)



def clear_caches() -> None:
    """Forget memoized results (benchmarks measure a cold edition with it)."""
    _split_text.cache_clear()


def _split_line(line: str) -> list[str]:
    """Split one line of prose at sentence ends outside brackets and URLs, in linear time."""
    protected = _url_spans(line)
    stops = _stops(line, protected)
    strays = _unpaired_openers(line, stops)
    for _ in range(MAX_RESCANS):
        cuts, unclosed = _scan(line, stops, strays)
        if unclosed is None:
            return _pieces(line, cuts)
        strays.add(unclosed)  # a bracket never closed on this line is a stray, not a quotation
    return _pieces(line, _scan(line, stops, set(stops))[0])  # hostile nesting: brackets are text


def _stops(line: str, protected: dict[int, int]) -> list[int]:
    """Positions of the characters _scan acts on, outside URLs, in order (a parenthesis glued
    to a word, as in "f(x)", is no opener: it is left out)."""
    stops = [m.start() for m in STOP_RE.finditer(line)
             if not _is_ascii_paren_in_word(line, m.start())]
    if not protected:
        return stops
    kept: list[int] = []
    urls = iter(sorted(protected.items()))
    url = next(urls, None)
    for i in stops:
        while url is not None and url[1] <= i:
            url = next(urls, None)
        if url is None or i < url[0]:
            kept.append(i)
    return kept


def _unpaired_openers(line: str, stops: list[int]) -> set[int]:
    """Openers no closer of their own kind pairs with: strays, found in one pass."""
    open_by_kind: dict[str, list[int]] = {}
    strays: set[int] = set()
    for i in stops:
        ch = line[i]
        if ch in OPENERS:
            open_by_kind.setdefault(OPENERS[ch], []).append(i)
        elif ch in CLOSERS and open_by_kind.get(ch):
            open_by_kind[ch].pop()
    for left in open_by_kind.values():
        strays.update(left)
    return strays


def _scan(line: str, stops: list[int], strays: set[int]) -> tuple[list[int], int | None]:
    """Cut positions outside brackets, and the innermost opener left unclosed (if any)."""
    cuts: list[int] = []
    stack: list[tuple[str, int]] = []
    resume = 0  # after a cut, the trailers it absorbed are already part of the sentence
    for i in stops:
        if i < resume:
            continue
        ch = line[i]
        if ch in OPENERS and i not in strays:
            stack.append((OPENERS[ch], i))
        elif stack and ch == stack[-1][0]:
            stack.pop()
        elif not stack and _ends_sentence(line, i):
            resume = _absorb_trailers(line, i + 1)
            cuts.append(resume)
    return cuts, (stack[-1][1] if stack else None)


def _pieces(line: str, cuts: list[int]) -> list[str]:
    """The non-empty stripped slices of `line` between cut positions."""
    out: list[str] = []
    start = 0
    for cut in [*cuts, len(line)]:
        piece = line[start:cut].strip()
        if piece:
            out.append(piece)
        start = cut
    return out


def _url_spans(line: str) -> dict[int, int]:
    """Start → end of every URL, so dots and '?' inside them never split."""
    spans: dict[int, int] = {}
    for match in URL_RE.finditer(line):
        end = match.end()
        # A URL's trailing punctuation belongs to the prose around it.
        while end > match.start() and line[end - 1] in ".,;:!?。、)":
            end -= 1
        spans[match.start()] = end
    return spans


def _ends_sentence(line: str, i: int) -> bool:
    """Whether the character at `i` ends a sentence."""
    ch = line[i]
    if ch in HARD_ENDS:
        # Keep runs like "?!" or "！？" together: only the last one ends the sentence.
        return i + 1 >= len(line) or line[i + 1] not in HARD_ENDS
    if ch == "." or ch == "…":
        return _period_ends_sentence(line, i)
    return False


def _period_ends_sentence(line: str, i: int) -> bool:
    """A full stop ends a sentence before space or end, but not after an abbreviation."""
    after = _absorb_trailers(line, i + 1)
    if after < len(line) and not line[after].isspace():
        return False  # decimals, domains, "U.S." mid-token
    if line[i] == "…" or line[i - 1 : i] == ".":
        # An ellipsis ("…" or "...") ends a sentence only when a new one visibly starts.
        return after >= len(line) or _next_word_starts_sentence(line, after)
    word = _word_before(line, i).lower()
    if word in CLOSING_ABBREVIATIONS:
        return after >= len(line) or _next_word_starts_sentence(line, after)
    if word in ABBREVIATIONS:
        return False
    return not (len(word) == 1 and word.isalpha())  # an initial: "J. Smith"


def _next_word_starts_sentence(line: str, i: int) -> bool:
    """After an ellipsis, a capital or CJK letter starts a new sentence."""
    start = NON_SPACE_RE.search(line, i)
    if start is None:
        return False
    first = line[start.start()]
    return first.isupper() or ord(first) > 0x2E7F


def _word_before(line: str, i: int) -> str:
    """The token before position `i`, keeping inner dots so "U.S" and "e.g" are recognised."""
    start = i
    while start > 0 and (line[start - 1].isalnum() or line[start - 1] == "."):
        start -= 1
    return line[start:i].lstrip(".")


def _absorb_trailers(line: str, i: int) -> int:
    """Move past closing quotes/brackets that belong to the sentence just ended."""
    while i < len(line) and line[i] in TRAILERS:
        i += 1
    return i


def _is_ascii_paren_in_word(line: str, i: int) -> bool:
    """A '(' glued to a word like "f(x)" or a list marker "a)" is not a quotation."""
    return line[i] in "([" and i > 0 and line[i - 1].isalnum() and line[i - 1].isascii()
