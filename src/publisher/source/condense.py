"""Condense an answer to its first sentence or two within a length, never cutting mid-word.

Lengths are counted in grapheme clusters, as a reader sees characters. Whole sentences are
kept when they fit; only a first sentence longer than the limit is cut, at a phrase boundary
(BudouX phrases for CJK text, spaces elsewhere), and then ends with "…". A sentence that
qualifies the answer (ただし, なお, However, Unless, Only if, …) is never dropped; links stay as
"label (URL)".
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

import budoux
import regex

from publisher.source.blocks import join_lines, markdown_plain_text
from publisher.text.graphemes import grapheme_count
from publisher.text.sentences import split_sentences

ELLIPSIS = "…"
# Openings of a sentence that narrows or conditions the answer: dropping it changes the meaning.
QUALIFIER = regex.compile(
    r"(?:ただし|但し|なお|尚、|※|もっとも|例外|ですが|しかし|ただ、|一部の|場合によって"
    r"|(?i:however|unless|only if|only when|except|but\b|note that|although|though\b"
    r"|that said|provided|as long as|if not|not if|keep in mind|be aware))"
)
MAX_SENTENCES = 2
GRAPHEME = regex.compile(r"\X")
CJK = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]")
# Punctuation that should not sit right before the ellipsis.
DANGLING = " 、，,;:；：・-—(（「『"


def grapheme_length(text: str) -> int:
    """Characters as a reader counts them (an emoji with modifiers is one)."""
    return grapheme_count(text)


def short_answer(
    answer_markdown: str, limit: int, *, lang: str = "en", base_url: str = ""
) -> str:
    """Plain text of the answer's first sentence or two within `limit` graphemes, links kept.

    A sentence that qualifies the answer (`qualifies`) is never dropped: it stays with the
    first sentence, and when the two do not fit together the answer is not shortened at all.
    """
    sentences = answer_sentences(answer_markdown, base_url=base_url)
    if not sentences:
        return ""
    must = [0, *(i for i in range(1, len(sentences)) if qualifies(sentences[i]))]
    kept = _join_all(sentences[i] for i in must)
    if grapheme_length(kept) > limit:
        if len(must) == 1:
            return _cut_at_phrase(kept, limit, lang)
        return _join_all(sentences)  # shortening would drop what changes the meaning
    chosen, optional, required = list(must), MAX_SENTENCES - 1, set(must)
    for i in range(1, len(sentences)):
        if i in required:
            continue
        if not optional:
            break
        trial = sorted([*chosen, i])
        if grapheme_length(_join_all(sentences[j] for j in trial)) > limit:
            break
        chosen, optional = trial, optional - 1
    return _join_all(sentences[i] for i in chosen)


def answer_sentences(answer_markdown: str, *, base_url: str = "") -> list[str]:
    """The answer's sentences as plain text, each link as "label (URL)"."""
    paragraphs = markdown_plain_text(answer_markdown, links=base_url)
    return split_sentences(" ".join(join_lines(p.split("\n")) for p in paragraphs))


def qualifies(sentence: str) -> bool:
    """A sentence that limits what came before (ただし, なお, However, Unless, Only if)."""
    return QUALIFIER.match(sentence.strip()) is not None


def _join_all(sentences: Iterable[str]) -> str:
    """Sentences joined as prose."""
    out = ""
    for sentence in sentences:
        out = _join_sentences(out, sentence) if out else sentence
    return out


def fit_sentences(sentences: list[str], limit: int, *, lang: str = "en") -> str:
    """Whole sentences joined as prose while they fit in `limit` graphemes; a first one longer
    than that is cut at a phrase boundary with `…`."""
    if not sentences:
        return ""
    kept = sentences[0]
    if grapheme_length(kept) > limit:
        return _cut_at_phrase(kept, limit, lang)
    for sentence in sentences[1:]:
        joined = _join_sentences(kept, sentence)
        if grapheme_length(joined) > limit:
            break
        kept = joined
    return kept


def _join_sentences(first: str, second: str) -> str:
    """Two sentences as prose: no space after CJK punctuation, one space otherwise."""
    return first + second if CJK.search(first[-2:] + second[:1]) else f"{first} {second}"


def _cut_at_phrase(sentence: str, limit: int, lang: str) -> str:
    """The longest run of whole phrases that fits with an ellipsis."""
    phrases = _phrases(sentence, lang)
    kept = ""
    for phrase in phrases:
        if grapheme_length(kept + phrase) + len(ELLIPSIS) > limit:
            break
        kept += phrase
    kept = kept.rstrip(DANGLING)
    if not kept:
        # A single word longer than the limit: cut at a grapheme boundary instead.
        graphemes = GRAPHEME.findall(sentence)
        kept = "".join(graphemes[: max(limit - len(ELLIPSIS), 0)])
    return kept + ELLIPSIS


def _phrases(sentence: str, lang: str) -> list[str]:
    """Phrases that may end a cut: BudouX chunks for CJK, space-separated words otherwise."""
    if CJK.search(sentence):
        return [
            piece
            for word in regex.split(r"(?<=\s)", sentence)
            for piece in budoux_parser(lang).parse(word)
        ]
    return regex.split(r"(?<=\s)", sentence)


@cache
def budoux_parser(lang: str) -> budoux.Parser:
    """BudouX's model for the article's language (Japanese for CJK text by default)."""
    if lang.startswith("zh"):
        traditional = lang.lower() in {"zh-hant", "zh-tw", "zh-hk"}
        return (
            budoux.load_default_traditional_chinese_parser()
            if traditional
            else budoux.load_default_simplified_chinese_parser()
        )
    return budoux.load_default_japanese_parser()
