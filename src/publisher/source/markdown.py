"""One configured Markdown parser for the whole pipeline, so every output reads the same syntax.

Each output (blocks, e-mail HTML, plain text, FAQ, social) reads the same block texts, so the
parses and renders are memoized here: one edition parses each distinct text once. Every token
handed out is a `SharedToken`, read-only by construction: assigning to one, or to its attrs or
meta, raises, so no caller can change what the next one reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import fields
from functools import cache, lru_cache
from types import MappingProxyType
from typing import Any, NoReturn

from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.front_matter import front_matter_plugin

from publisher.source.sanitize import clean_html

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


EMPTY: Mapping[str, Any] = MappingProxyType({})  # the attrs and meta of most shared tokens


class SharedToken(Token):
    """A token of a memoized parse, shared by every caller: it cannot be assigned to."""

    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> NoReturn:
        """Refuse: the next reader of this parse must see it as parsed."""
        raise TypeError(f"shared Markdown tokens are read-only (token.{name}); copy it first")


def _shared(tokens: Iterable[Token]) -> tuple[Token, ...]:
    """The tokens made read-only in place (attrs and meta as read-only mappings, children a
    tuple): they are fresh from a parse or built for lending, and nobody else holds them yet."""
    out = tuple(tokens)
    for token in out:
        if token.__class__ is SharedToken:
            continue
        # Token declares a list and dicts; the read-only forms are read the same way.
        if token.children:
            token.children = _shared(token.children)  # type: ignore[assignment]
        token.attrs = MappingProxyType(token.attrs) if token.attrs else EMPTY  # type: ignore[assignment]
        token.meta = MappingProxyType(token.meta) if token.meta else EMPTY  # type: ignore[assignment]
        token.__class__ = SharedToken
    return out


def _writable(token: Token) -> Token:
    """A plain copy of a token, for markdown-it's image rule, which sets the image's alt."""
    copy = Token(**{f.name: getattr(token, f.name) for f in fields(Token)})
    copy.attrs = dict(token.attrs)
    copy.meta = dict(token.meta)
    copy.children = list(token.children) if token.children is not None else None
    return copy


def _renderable(tokens: Sequence[Token]) -> list[Token]:
    """Tokens for markdown-it's renderer: shared ones, with each image (and the inline token
    holding it) copied, since rendering an image writes its alt text onto it."""
    out = list(tokens)
    for index, token in enumerate(out):
        if token.children and any(child.type == "image" for child in token.children):
            inline = _writable(token)
            inline.children = [_writable(c) if c.type == "image" else c for c in token.children]
            out[index] = inline
    return out


# Tokens of texts cut out of a larger parse (a body's blocks), known equal to parsing the text
# alone; parse_tokens hands them out instead of parsing the text a second time. A loan is made
# into tokens only when its text is first asked for (an edition reads about two thirds of them).
Loan = Callable[[], Sequence[Token]]
_lent_tokens: dict[str, tuple[Token, ...] | Loan] = {}


def parse_tokens(markdown_text: str) -> Sequence[Token]:
    """Block tokens of `markdown_text`, shared between callers: read them, never mutate them."""
    lent = _lent_tokens.get(markdown_text)
    if lent is None:
        return _parse_tokens(markdown_text)
    if isinstance(lent, tuple):
        return lent
    tokens = _lent_tokens[markdown_text] = _shared(lent())
    return tokens


@lru_cache(maxsize=CACHE_SIZE)
def _parse_tokens(markdown_text: str) -> tuple[Token, ...]:
    """The memoized parse behind parse_tokens."""
    return _shared(markdown_parser().parse(markdown_text))


# A block ending in one of these is closed by the blank line that joins it to the next block,
# so the next block starts afresh exactly as when parsed alone (CommonMark §4.8, §5.1, §5.3).
CLOSED_BY_BLANK_LINE = frozenset(
    {"paragraph_close", "heading_close", "hr", "table_close", "blockquote_close"}
)
LIST_CLOSE = frozenset({"bullet_list_close", "ordered_list_close"})
LIST_OPEN = frozenset({"bullet_list_open", "ordered_list_open", "list_item_open"})
# Tokens whose content keeps each source line's end: parsed inside a longer text they differ.
RAW_CONTENT_TOKENS = frozenset({"fence", "code_block", "html_block"})
FRESH_BLOCK_OPEN = frozenset(
    {"paragraph_open", "heading_open", "hr", "table_open", "blockquote_open"}
)


def join_blocks(block_texts: Sequence[str]) -> str:
    """Block Markdown texts joined by a blank line; their tokens are lent when provably the
    joined text's, so the joined text is not parsed again."""
    joined = "\n\n".join(block_texts)
    if joined not in _lent_tokens:
        tokens = _joined_tokens(block_texts) if "]:" not in joined else None
        if tokens is not None:
            lend_tokens(joined, tokens)
    return joined


def joined_parts(block_texts: Sequence[str]) -> list[Sequence[Token]] | None:
    """Each text's own tokens when the texts joined by blank lines parse to them one after the
    other (only the maps then differ: see join_blocks), else None."""
    if any("]:" in text for text in block_texts):
        return None  # a link reference definition resolves across the joined text
    return _joinable(block_texts)


def _joinable(block_texts: Sequence[str]) -> list[Sequence[Token]] | None:
    """Each text's tokens, or None when one could run into the next (an open list, a code or
    raw HTML block, front matter)."""
    parts: list[Sequence[Token]] = []
    for index, text in enumerate(block_texts):
        tokens = parse_tokens(text)
        if text.startswith("---"):
            return None  # at a text's start it may open front matter, alone or joined
        if not tokens or any(t.type in RAW_CONTENT_TOKENS for t in tokens):
            return None
        if index and not _starts_afresh(parts[-1], tokens, text):
            return None
        parts.append(tokens)
    return parts


def _joined_tokens(block_texts: Sequence[str]) -> list[Token] | None:
    """The tokens of the texts joined by blank lines, from each text's own parse, or None when
    one could run into the next."""
    parts = _joinable(block_texts)
    if parts is None:
        return None
    out: list[Token] = []
    offset = 0
    for index, (text, tokens) in enumerate(zip(block_texts, parts, strict=True)):
        height = text.count("\n") + 1
        # A list that another block follows also spans the blank line between them.
        stretch = index + 1 < len(block_texts) and tokens[-1].type in LIST_CLOSE
        out += [_shifted(token, offset, height if stretch else -1) for token in tokens]
        offset += height + 1
    return out


def _starts_afresh(previous: Sequence[Token], tokens: Sequence[Token], text: str) -> bool:
    """Whether `text`, after a blank line, begins a new top-level block after `previous`."""
    if previous[-1].type in CLOSED_BY_BLANK_LINE:
        return True
    # A list ends at a blank line followed by an unindented line that is no list item.
    return (
        previous[-1].type in LIST_CLOSE
        and tokens[0].type in FRESH_BLOCK_OPEN
        and text[:1] not in {"", " ", "\t"}
    )


def _shifted(token: Token, offset: int, list_end: int) -> Token:
    """The token with its map moved down by `offset` lines (closing tokens have none); a list
    or item ending on line `list_end` takes one more line."""
    if token.map is None:
        return token
    start, end = token.map
    end += token.type in LIST_OPEN and end == list_end
    if not offset and end == token.map[1]:
        return token
    return Token(
        token.type, token.tag, token.nesting, token.attrs, [start + offset, end + offset],
        token.level, token.children, token.content, token.markup, token.info, token.meta,
        token.block, token.hidden,
    )


def lend_tokens(markdown_text: str, tokens: Sequence[Token] | Loan) -> None:
    """Remember `tokens` as the parse of `markdown_text` (the caller proved them equal), or a
    function that makes them, called when the text is first parsed."""
    if len(_lent_tokens) >= CACHE_SIZE:
        _lent_tokens.clear()
    _lent_tokens[markdown_text] = tokens if callable(tokens) else _shared(tokens)


def parse_inline_tokens(markdown_text: str) -> Sequence[Token]:
    """Inline tokens of `markdown_text` (one `inline` token), shared: read, never mutate."""
    lent = _lent_inline_tokens.get(markdown_text)
    if lent is None:
        return _parse_inline_tokens(markdown_text)
    if isinstance(lent, tuple):
        return lent
    # one `inline` token as parseInline makes it (markdown_it/rules_core/block.py)
    inline = Token("inline", "", 0, map=[0, 1], content=markdown_text, children=list(lent))
    tokens = _lent_inline_tokens[markdown_text] = _shared((inline,))
    return tokens


@lru_cache(maxsize=CACHE_SIZE)
def _parse_inline_tokens(markdown_text: str) -> tuple[Token, ...]:
    """The memoized parse behind parse_inline_tokens."""
    return _shared(markdown_parser().parseInline(markdown_text))


# Inline tokens lent the same way: the `inline` token (tuple) or, until first asked for, only
# the children it will hold (list).
_lent_inline_tokens: dict[str, tuple[Token, ...] | list[Token]] = {}


def lend_inline_tokens(markdown_text: str, children: Sequence[Token]) -> None:
    """Remember `children` as the inline parse of `markdown_text` (the caller proved them
    equal); the `inline` token around them is made when the text is first parsed."""
    if len(_lent_inline_tokens) >= CACHE_SIZE:
        _lent_inline_tokens.clear()
    _lent_inline_tokens[markdown_text] = list(children)


@lru_cache(maxsize=CACHE_SIZE)
def render_html(markdown_text: str, *, base_url: str = "") -> str:
    """Markdown to sanitized HTML: raw HTML in an article is content, never code."""
    md = markdown_parser()
    html = md.renderer.render(_renderable(parse_tokens(markdown_text)), md.options, {})
    return clean_html(html, base_url=base_url)


@lru_cache(maxsize=CACHE_SIZE)
def render_inline_html(markdown_text: str, *, base_url: str = "") -> str:
    """Inline Markdown (a question, a list item) to sanitized HTML without a wrapping <p>."""
    md = markdown_parser()
    # md.renderInline(text) is this render of md.parseInline(text), which is memoized here.
    html = md.renderer.render(_renderable(parse_inline_tokens(markdown_text)), md.options, {})
    return clean_html(html, base_url=base_url)


def clear_caches() -> None:
    """Forget every memoized parse and render (benchmarks measure a cold edition with it)."""
    _lent_tokens.clear()
    _lent_inline_tokens.clear()
    for memoized in (_parse_tokens, _parse_inline_tokens, render_html, render_inline_html):
        memoized.cache_clear()
