"""The single HTML sanitizer every output passes through (nh3, the Rust ammonia crate)."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache, partial
from typing import Any, cast
from urllib.parse import urljoin

import nh3

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "del", "details", "em", "figcaption",
    "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark",
    "ol", "p", "pre", "q", "s", "small", "span", "strong", "sub", "summary", "sup", "table",
    "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "ol": {"start"},
    "td": {"colspan", "rowspan", "align", "style"},  # style: text-align only, see below
    "th": {"colspan", "rowspan", "align", "scope", "style"},
    "abbr": {"title"},
}
# Only these schemes survive; javascript:, data:, vbscript: and the rest are dropped.
URL_SCHEMES = {"http", "https", "mailto"}
# markdown-it writes a table column's alignment as style="text-align:…" on th/td; that one
# declaration survives (as a keyword), every other style is dropped.
ALIGNMENTS = frozenset({"left", "right", "center", "justify"})
TEXT_ALIGN = re.compile(r"\s*text-align\s*:\s*([a-zA-Z]+)\s*;?\s*")
# Whole elements whose content must vanish too, not just their tags.
DROPPED_WITH_CONTENT = {"script", "style", "iframe", "object", "embed", "template", "noscript",
                        "form", "textarea", "select", "button", "svg", "math"}


def clean_html(html: str, *, base_url: str = "") -> str:
    """Keep content tags and safe links only; resolve relative links against base_url."""
    if base_url:
        return _clean(html, ("rewrite_with_base", base_url))
    return _clean(html, "deny")


def _clean(html: str, relative: Any) -> str:
    """nh3 with the project's allowlists."""
    return _cleaner(relative)(html)


@lru_cache(maxsize=64)
def _cleaner(relative: Any) -> Callable[[str], str]:
    """One reusable nh3 Cleaner per URL policy: nh3.clean would rebuild it (the allowlists)
    on every call, ~4/5 of the time of cleaning a block."""
    if not hasattr(nh3, "Cleaner"):  # an nh3 before Cleaner: the one-shot function
        return partial(nh3.clean, **_options(relative))
    cleaner = nh3.Cleaner(**_options(relative))
    return cast(Callable[[str], str], cleaner.clean)


def clear_caches() -> None:
    """Forget the built Cleaners (benchmarks measure a cold edition with it)."""
    _cleaner.cache_clear()


def _options(relative: Any) -> dict[str, Any]:
    """The allowlists and policies every clean uses."""
    return dict(
        tags=ALLOWED_TAGS,
        clean_content_tags=DROPPED_WITH_CONTENT,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
        url_relative=relative,
        attribute_filter=_alignment_only,
    )


def _alignment_only(tag: str, attribute: str, value: str) -> str | None:
    """Keep a cell's alignment as a bare keyword; drop any other style or align value."""
    if attribute == "style":
        match = TEXT_ALIGN.fullmatch(value)
        word = match.group(1).lower() if match else ""
        return f"text-align:{word}" if word in ALIGNMENTS else None
    if attribute == "align":
        word = value.strip().lower()
        return word if word in ALIGNMENTS else None
    return value


def absolute_url(url: str, base_url: str) -> str:
    """An absolute http(s) link, or '' for schemes we never emit."""
    joined = urljoin(base_url, url) if base_url else url
    scheme = joined.split(":", 1)[0].lower() if ":" in joined else ""
    return joined if scheme in {"http", "https", "mailto"} else ""
