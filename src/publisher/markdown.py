"""One configured Markdown parser for the whole pipeline, so every output reads the same syntax.

Each output (blocks, e-mail HTML, plain text, FAQ, social) reads the same block texts, so the
parses and renders are memoized here: one edition parses each distinct text once.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache, lru_cache

from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.front_matter import front_matter_plugin

from publisher.sanitize import clean_html

# Enough for every block, question and answer of a long post; bounded so a hostile or
# long-running process (serve, digest over many files) cannot grow it without limit.
CACHE_SIZE = 1024


@cache
def markdown_parser() -> MarkdownIt:
    """CommonMark plus GFM tables and strikethrough; raw HTML is parsed, then sanitized."""
    md = MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.use(front_matter_plugin)
    return md


@lru_cache(maxsize=CACHE_SIZE)
def parse_tokens(markdown_text: str) -> Sequence[Token]:
    """Block tokens of `markdown_text`, shared between callers: read them, never mutate them."""
    return tuple(markdown_parser().parse(markdown_text))


@lru_cache(maxsize=CACHE_SIZE)
def parse_inline_tokens(markdown_text: str) -> Sequence[Token]:
    """Inline tokens of `markdown_text` (one `inline` token), shared: read, never mutate."""
    return tuple(markdown_parser().parseInline(markdown_text))


@lru_cache(maxsize=CACHE_SIZE)
def render_html(markdown_text: str, *, base_url: str = "") -> str:
    """Markdown to sanitized HTML: raw HTML in an article is content, never code."""
    md = markdown_parser()
    # The renderer only sets an image's "alt" from its own children: same value on every render.
    html = md.renderer.render(list(parse_tokens(markdown_text)), md.options, {})
    return clean_html(html, base_url=base_url)


@lru_cache(maxsize=CACHE_SIZE)
def render_inline_html(markdown_text: str, *, base_url: str = "") -> str:
    """Inline Markdown (a question, a list item) to sanitized HTML without a wrapping <p>."""
    return clean_html(markdown_parser().renderInline(markdown_text), base_url=base_url)


def clear_caches() -> None:
    """Forget every memoized parse and render (benchmarks measure a cold edition with it)."""
    for memoized in (parse_tokens, parse_inline_tokens, render_html, render_inline_html):
        memoized.cache_clear()
