"""How text is laid out within one post: whole pieces while they fit, cut at a phrase with `…`,
then the hashtags and the link. Every check of length is a `Fits` the composer hands in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from publisher.networks import NETWORKS
from publisher.networks.counting import find_urls
from publisher.networks.facets import link_spans
from publisher.text.sentences import URL_RE

ELLIPSIS = "…"
# Trailing characters that must not sit just before an ellipsis.
DANGLING = " \t\n、，,;；:：・-–—/／。．.!?！？"
CLAUSE_MARKS = ("、", ",", "，", ";", "；", ":", "：", "—")
CLAUSE_KEEP = 0.75  # cut at a clause only when it keeps three quarters of what would fit
WEAK_ENDINGS = frozenset(
    (
        "a", "an", "the", "of", "to", "in", "on", "at", "for", "with", "by", "from", "and", "or",
        "but", "as", "that", "which", "who", "is", "are", "was", "were", "be", "its", "their",
        "his", "her", "our", "your", "this", "these", "those",
    )
)
# No post of any network is longer than this many characters: a candidate longer than it is
# not measured (it could fit only as dozens of kilobyte-long URLs, each counted as 23).
MAX_MEASURED_CHARS = 4 * max(network.limit for network in NETWORKS.values())
BRACKETS = {"「": "」", "『": "』", "（": "）", "(": ")", "【": "】", "“": "”", '"': '"'}
Fits = Callable[[str], bool]
# Full-width sentence ends (and the quotes closing them) are never followed by a space.
CJK_STOPS = frozenset("。！？」』）")


@dataclass(frozen=True)
class Piece:
    """A sentence or list line of a post body, with what separates it from the text before."""

    text: str
    before: str = ""  # "" joins as prose; "\n" or "\n\n" start a new line or paragraph

    def joined_to(self, previous: str) -> str:
        """This piece appended to `previous` text, as a reader expects the two joined."""
        if self.before:
            return self.before + self.text
        if previous and is_cjk(previous[-1]) and self.text and is_cjk(self.text[0]):
            return self.text
        if previous and previous[-1] in CJK_STOPS:
            return self.text  # no space after 。, whatever follows (JIS X 4051)
        return " " + self.text


def with_tail(fits: Fits, body: str | Callable[[Fits], str], link: str, tags: list[str]) -> str:
    """Body, then as many hashtags as fit, then the link on its own line."""
    if callable(body):
        body = body(tailed(fits, link, []))
    chosen: list[str] = []
    for tag in tags:
        if re.search(rf"(?<!\w){re.escape(tag)}(?!\w)", body, re.IGNORECASE):
            continue
        if fits(laid_out(body, link, [*chosen, tag])):
            chosen.append(tag)
    return laid_out(body, link, chosen)


def laid_out(body: str, link: str, tags: Sequence[str]) -> str:
    """Body, a blank line, the hashtags line and the link line."""
    tail = "\n".join(part for part in (" ".join(tags), link) if part)
    if body and tail:
        return f"{body}\n\n{tail}"
    return body or tail


def tailed(fits: Fits, link: str, tags: list[str]) -> Fits:
    """A fits() for a body that will get this link and these tags after it."""
    return lambda body: fits(laid_out(body, link, tags))


def suffixed(fits: Fits, suffix: str) -> Fits:
    """A fits() that reserves room for a suffix such as the thread numbering."""
    return lambda text: fits(text + suffix)


def prefixed(fits: Fits, prefix: str) -> Fits:
    """A fits() for text that will follow `prefix` in the same post."""
    return lambda text: fits(prefix + text)


def fill(pieces: list[Piece], fits: Fits, lang: str) -> str:
    """Whole pieces in order while they fit; a lone first one too long is cut at a phrase."""
    if not pieces:
        return ""
    first = pieces[0].text
    body = first if fits(first) else shorten(first, fits, lang) or ""
    if body != first:
        return body
    for piece in pieces[1:]:
        candidate = body + piece.joined_to(body)
        if not fits(candidate):
            break
        body = candidate
    return body


def join_sentences(sentences: Sequence[str]) -> str:
    """Sentences as prose: no space after Japanese punctuation, one after Latin text."""
    out = ""
    for sentence in sentences:
        out = out + Piece(sentence).joined_to(out) if out else sentence
    return out


def shorten(text: str, fits: Fits, lang: str) -> str | None:
    """`text` whole if it fits, else cut at the last phrase boundary that fits, plus `…`."""
    text = text.strip()
    if not text:
        return None
    if fits(text):
        return text
    phrases = _phrases(text[:MAX_MEASURED_CHARS], lang)  # the last, partial one is never kept
    low, high, best = 1, len(phrases) - 1, 0
    while low <= high:
        middle = (low + high) // 2
        candidate = cut("".join(phrases[:middle]))
        if candidate and fits(candidate):
            best, low = middle, middle + 1
        else:
            high = middle - 1
    if not best:
        return None
    return cut("".join(phrases[: _clause_end(phrases, best)]))


def _clause_end(phrases: list[str], count: int) -> int:
    """Prefer ending at a clause (after 、 or ,) when that keeps most of the text."""
    kept = len("".join(phrases[:count]))
    for end in range(count, 0, -1):
        prefix = "".join(phrases[:end])
        if len(prefix) < kept * CLAUSE_KEEP:
            break
        if prefix.rstrip().endswith(CLAUSE_MARKS):
            return end
    while count > 1 and phrases[count - 1].strip().lower() in WEAK_ENDINGS:
        count -= 1  # never end on "a", "the", "of": the reader expects the next word
    return count


def cut(prefix: str) -> str:
    """A prefix ended cleanly: no dangling punctuation or URL, `…`, and brackets closed."""
    prefix = prefix.rstrip(DANGLING)
    start = _last_word_start(prefix)
    while start < len(prefix) and _ends_in_url(prefix[start:]):
        prefix = prefix[:start].rstrip(DANGLING)
        start = _last_word_start(prefix)
    prefix = prefix.rstrip("".join(BRACKETS) + DANGLING)
    if not prefix:
        return ""
    return prefix + ELLIPSIS + _closers(prefix)


def _last_word_start(text: str) -> int:
    """Where the run of non-space characters ending `text` starts (len(text) if none).

    A backward walk costs the word's length; `\\S+$` would retry from every position.
    """
    start = len(text)
    while start and not text[start - 1].isspace():
        start -= 1
    return start


def _ends_in_url(word: str) -> bool:
    """Whether a link, or text X or Bluesky would linkify (`e.g.city`), runs to the word's end."""
    return (
        bool(URL_RE.search(word))
        or any(u.end == len(word) for u in find_urls(word))
        or any(s.end == len(word) for s in link_spans(word))
    )


def _closers(prefix: str) -> str:
    """Closing brackets for those the cut left open, innermost first."""
    stack: list[str] = []
    for ch in prefix:
        if ch in BRACKETS and not (ch == '"' and stack and stack[-1] == '"'):
            stack.append(BRACKETS[ch])
        elif stack and ch == stack[-1]:
            stack.pop()
    return "".join(reversed(stack))


def _phrases(text: str, lang: str) -> list[str]:
    """Phrase chunks: BudouX for Japanese, words for the rest; URLs are never split."""
    pieces: list[str] = []
    last = 0
    for match in URL_RE.finditer(text):
        pieces.extend(_split_prose(text[last : match.start()], lang))
        pieces.append(match.group())
        last = match.end()
    pieces.extend(_split_prose(text[last:], lang))
    return [p for p in pieces if p]


def _split_prose(text: str, lang: str) -> list[str]:
    """Chunks of plain prose where a reader accepts a cut."""
    if not text:
        return []
    if lang == "ja" or any(is_cjk(ch) for ch in text):
        chunks: list[str] = []
        for piece in _word_chunks(text):
            chunks.extend(_ja_parser().parse(piece) if any(is_cjk(c) for c in piece) else [piece])
        return chunks
    return _word_chunks(text)


def _word_chunks(text: str) -> list[str]:
    """Words with their trailing spaces, so joining them restores the text."""
    chunks: list[str] = []
    start = 0
    for i in range(1, len(text)):
        if text[i - 1].isspace() and not text[i].isspace():
            chunks.append(text[start:i])
            start = i
    chunks.append(text[start:])
    return chunks


@cache
def _ja_parser() -> Any:
    """BudouX's Japanese phrase model, loaded once (it ships with the package, no download)."""
    import budoux

    return budoux.load_default_japanese_parser()


def is_cjk(ch: str) -> bool:
    """Japanese/Chinese characters and full-width punctuation, where no spaces separate words."""
    return "\u3000" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" or "\uff00" <= ch <= "\uffef"
