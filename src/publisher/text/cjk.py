"""Tests on CJK characters by code point ranges, instead of regex classes.

A class that spans the CJK blocks, such as `(?<=[CJK])\n(?=[CJK])`, costs re ~2-4 ms to compile
on every run, because the compiler visits each code point of the class; a split or a scan of a
short text does the same work for nothing at start-up.
"""

from __future__ import annotations

from itertools import pairwise

Ranges = tuple[tuple[int, int], ...]


def drop_between(text: str, sep: str, ranges: Ranges) -> str:
    """`text` without each `sep` whose neighbours in `text` are both in `ranges`."""
    pieces = text.split(sep)
    kept = [pieces[0]]
    for before, after in pairwise(pieces):
        joined = before and after and _within(before[-1], ranges) and _within(after[0], ranges)
        kept.append(after if joined else sep + after)
    return "".join(kept)


def has_any(text: str, ranges: Ranges) -> bool:
    """Whether some character of `text` (a headline: short) lies in `ranges`."""
    return not text.isascii() and any(_within(char, ranges) for char in text)


def _within(char: str, ranges: Ranges) -> bool:
    """Whether the code point of `char` lies in one of `ranges` (inclusive)."""
    code = ord(char)
    return any(low <= code <= high for low, high in ranges)
