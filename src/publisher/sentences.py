"""Sentence splitting for Japanese and English text, aware of brackets, URLs and abbreviations.

Summaries, social posts and FAQ short answers all cut text at sentence ends; a 。 inside
「…」 or a dot in "e.g." or "3.5" must never end a sentence.
"""

from __future__ import annotations

import re

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
SCAN_STOPS = frozenset(OPENERS) | frozenset(OPENERS.values()) | HARD_ENDS | {".", "…"}
# A URL (or IRI) runs to whitespace or CJK punctuation; its '?' and '.' never end a sentence.
URL_RE = re.compile(r"(?:https?://|www\.)[^\s<>\"「」『』（）【】。、！？]+", re.IGNORECASE)


def split_sentences(text: str) -> list[str]:
    """Sentences of `text` in order, stripped, never empty; newlines also end a sentence."""
    sentences: list[str] = []
    for line in text.splitlines():
        sentences.extend(_split_line(line))
    return sentences


def _split_line(line: str) -> list[str]:
    """Split one line of prose at sentence ends outside brackets and URLs."""
    protected = _url_spans(line)
    strays: set[int] = set()
    while True:
        cuts, unclosed = _scan(line, protected, strays)
        if unclosed is None:
            return _pieces(line, cuts)
        strays.add(unclosed)  # a bracket never closed on this line is a stray, not a quotation


def _scan(line: str, protected: dict[int, int], strays: set[int]) -> tuple[list[int], int | None]:
    """Cut positions outside brackets, and the first opener left unclosed (if any)."""
    cuts: list[int] = []
    stack: list[tuple[str, int]] = []
    i = 0
    while i < len(line):
        if i in protected:
            i = protected[i]
            continue
        ch = line[i]
        if ch not in SCAN_STOPS:
            i += 1
            continue
        if ch in OPENERS and i not in strays and not _is_ascii_paren_in_word(line, i):
            stack.append((OPENERS[ch], i))
        elif stack and ch == stack[-1][0]:
            stack.pop()
        elif not stack and _ends_sentence(line, i):
            i = _absorb_trailers(line, i + 1)
            cuts.append(i)
            continue
        i += 1
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
    rest = line[i:].lstrip()
    return bool(rest) and (rest[0].isupper() or ord(rest[0]) > 0x2E7F)


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
