"""A line break between two CJK characters, dropped by a split instead of a regex.

`(?<=[CJK])\n(?=[CJK])` costs re ~2-4 ms to compile on every run, because it visits each code
point of a class that spans the CJK blocks; this does the same with one `str.split`.
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


def _within(char: str, ranges: Ranges) -> bool:
    """Whether the code point of `char` lies in one of `ranges` (inclusive)."""
    code = ord(char)
    return any(low <= code <= high for low, high in ranges)
