"""Per-recipient placeholders in a rendered newsletter, and their cheap substitution.

A marker is ``U+E000 key [U+E002 default] U+E001``: private-use code points that mean nothing in
an article. Rendering writes markers only after removing every such code point from the compiled
output, so article text can never forge one. Personalizing a message is then a join over a
pre-split list of literal pieces, with no parsing or template work per subscriber.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from functools import lru_cache

START, END, SEP = "\ue000", "\ue001", "\ue002"
NAME = "name"
UNSUBSCRIBE_URL = "unsubscribe_url"
# The names an ESP module maps to its own substitution syntax (see provider_template).
PLACEHOLDERS: tuple[str, ...] = (NAME, UNSUBSCRIBE_URL)
MARKER_CHARS = re.compile(f"[{START}{END}{SEP}]")
MARKER = re.compile(f"{START}([a-z_]+)(?:{SEP}([^{START}{END}{SEP}]*))?{END}")

Segments = tuple[tuple[str, ...], tuple[tuple[str, str], ...]]


def marker(key: str, default: str = "") -> str:
    """The marker for a placeholder; its default shows when the recipient has no value."""
    if key not in PLACEHOLDERS:
        raise ValueError(f"unknown placeholder {key!r}")
    return f"{START}{key}{SEP}{MARKER_CHARS.sub('', default)}{END}" if default else (
        f"{START}{key}{END}"
    )


def neutralize(text: str) -> str:
    """Remove every marker code point, so nothing from an article can act as a placeholder."""
    if START not in text and END not in text and SEP not in text:
        return text  # three substring searches: far cheaper than the class scan on a page
    return MARKER_CHARS.sub("", text)


@lru_cache(maxsize=16)
def split(text: str) -> Segments:
    """Literal pieces and the (key, default) between them; cached, so done once per newsletter."""
    literals: list[str] = []
    slots: list[tuple[str, str]] = []
    last = 0
    for match in MARKER.finditer(text):
        literals.append(text[last:match.start()])
        slots.append((match.group(1), match.group(2) or ""))
        last = match.end()
    literals.append(text[last:])
    return tuple(literals), tuple(slots)


def fill(segments: Segments, values: Mapping[str, str]) -> str:
    """Join the pieces with each slot's value, or its default when the value is empty."""
    literals, slots = segments
    out = [literals[0]]
    for (key, default), literal in zip(slots, literals[1:], strict=True):
        out.append(values.get(key) or default)
        out.append(literal)
    return "".join(out)


def html_values(name: str, unsubscribe_url: str) -> dict[str, str]:
    """Values escaped for HTML text and attributes."""
    values = text_values(name, unsubscribe_url)
    return {key: html.escape(value) for key, value in values.items()}


def text_values(name: str, unsubscribe_url: str) -> dict[str, str]:
    """Values for the plain-text part: one line each, so no value can break a line or a header."""
    return {
        NAME: neutralize(" ".join(name.split())),
        UNSUBSCRIBE_URL: neutralize("".join(unsubscribe_url.split())),
    }


def provider_template(text: str, syntax: Callable[[str, str], str]) -> str:
    """The text with each marker replaced by an ESP's own substitution tag, e.g. '%recipient.name%'.

    ``syntax(key, default)`` returns the provider's tag for the placeholder.
    """
    return MARKER.sub(lambda m: syntax(m.group(1), m.group(2) or ""), text)
