"""Extended grapheme clusters (UAX #29), counted without the cluster scan for plain text.

Most posts are ASCII, kana and CJK ideographs: characters whose Grapheme_Cluster_Break is
Other (or LF, tab), none of them Extended_Pictographic. Between two such characters every rule of
UAX #29 breaks (GB999: only CR, controls, Hangul jamo, Extend, ZWJ, SpacingMark, Prepend and
regional indicators join or break otherwise), so each is a cluster of its own and the count is the
length. tests/test_counting_fast_path.py checks every character of the set against `regex`.
"""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import regex as regex_module

# Tab, LF, printable ASCII, CJK punctuation without the combining tone marks U+302A–U+302F and
# the pictographs 〰 〽, kana without the combining voiced marks U+3099/U+309A, CJK ideographs,
# full-width forms and half-width katakana without its voiced marks U+FF9E/U+FF9F.
SINGLE_CLUSTER_CHARS = (
    "\t\n\x20-\x7e\u3000-\u3029\u3031-\u303c\u303e\u303f\u3041-\u3096\u309b-\u30ff"
    "\u3400-\u4dbf\u4e00-\u9fff\uff01-\uff9d"
)


def single_clusters(text: str) -> bool:
    """Whether every character of `text` is a grapheme cluster by itself and no emoji."""
    return _single_clusters_re().fullmatch(text) is not None


@cache
def _single_clusters_re() -> re.Pattern[str]:
    """The pattern of SINGLE_CLUSTER_CHARS, compiled on the first count (not at start-up)."""
    return re.compile(f"[{SINGLE_CLUSTER_CHARS}]*")


def grapheme_count(text: str) -> int:
    """How many extended grapheme clusters `text` has."""
    if single_clusters(text):
        return len(text)
    return len(grapheme_re().findall(text))


@cache
def grapheme_re() -> regex_module.Pattern[str]:
    """`\\X`: one extended grapheme cluster (`regex` imports on the first text that needs it)."""
    import regex

    return regex.compile(r"\X")
