"""Characters no output can carry: C0 controls, U+FFFE/U+FFFF and lone surrogates.

XML 1.0 (and so MJML and every email client) forbids C0 controls other than tab and line feed,
the noncharacters U+FFFE and U+FFFF, and surrogates (https://www.w3.org/TR/xml/#charsets).
Vertical tab and form feed come with text pasted from word processors (a line or page break),
so they become spaces; the others are dropped. A lone surrogate is no character at all.
"""

from __future__ import annotations

import re

# Word processors' manual line break (VT) and page break (FF): whitespace to a reader.
BREAKS = {"\x0b": " ", "\x0c": " "}
UNCARRIABLE_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
SURROGATE_RE = re.compile("[\ud800-\udfff]")


def strip_controls(text: str) -> tuple[str, int]:
    """`text` without the characters no output can carry, and how many were removed."""
    if not UNCARRIABLE_RE.search(text):
        return text, 0
    count = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal count
        count += 1
        return BREAKS.get(match.group(), "")

    return UNCARRIABLE_RE.sub(replace, text), count


def lone_surrogate(text: str) -> str | None:
    """The first lone surrogate in `text` as U+XXXX, or None (UTF-8 cannot encode one)."""
    found = SURROGATE_RE.search(text)
    return f"U+{ord(found.group()):04X} at character {found.start() + 1}" if found else None
