"""One configured Markdown parser for the whole pipeline, so every output reads the same syntax."""

from __future__ import annotations

from functools import cache

from markdown_it import MarkdownIt
from mdit_py_plugins.front_matter import front_matter_plugin

from publisher.sanitize import clean_html


@cache
def markdown_parser() -> MarkdownIt:
    """CommonMark plus GFM tables and strikethrough; raw HTML is parsed, then sanitized."""
    md = MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.use(front_matter_plugin)
    return md


def render_html(markdown_text: str, *, base_url: str = "") -> str:
    """Markdown to sanitized HTML: raw HTML in an article is content, never code."""
    return clean_html(markdown_parser().render(markdown_text), base_url=base_url)


def render_inline_html(markdown_text: str, *, base_url: str = "") -> str:
    """Inline Markdown (a question, a list item) to sanitized HTML without a wrapping <p>."""
    return clean_html(markdown_parser().renderInline(markdown_text), base_url=base_url)
