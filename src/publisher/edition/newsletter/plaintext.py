"""Markdown to a plain-text email part that reads well on its own (not stripped HTML).

Headings are underlined or marked with '#', links become ``text [n]`` with a numbered reference
list at the end, lists keep their bullets and numbers, quotes keep their '>'.
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import nh3
from markdown_it.token import Token

from publisher.source.markdown import joined_parts, parse_inline_tokens, parse_tokens
from publisher.source.sanitize import absolute_url


def display_width(text: str) -> int:
    """Columns a monospace terminal gives the text: CJK wide characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def heading(text: str, level: int) -> str:
    """A heading marked so it stands out: underlined for levels 1–2, '#'-prefixed below."""
    if level <= 2:
        return f"{text}\n{('=' if level == 1 else '-') * max(display_width(text), 3)}"
    return f"{'#' * level} {text}"


def strip_tags(fragment: str) -> str:
    """Raw HTML in an article as its text only; scripts and styles vanish with their content."""
    return html.unescape(nh3.clean(fragment, tags=set())).strip()


class Node:
    """One node of a token stream's tree, the fields of markdown-it's `SyntaxTreeNode` this
    renderer reads, built in one pass without its per-node properties and parent links."""

    __slots__ = ("attrs", "children", "content", "tag", "type")

    def __init__(self, type: str, tag: str, attrs: Mapping[str, str | int | float],
                 content: str, children: list[Node]) -> None:
        self.type = type
        self.tag = tag
        self.attrs = attrs
        self.content = content
        self.children = children


def tree(tokens: Sequence[Token]) -> list[Node]:
    """The root's children, as `SyntaxTreeNode(tokens).children` nests them: an opening and
    closing token pair is one node (type without "_open"), an inline or image token's children
    are its nodes' children."""
    root: list[Node] = []
    stack = [root]
    for token in tokens:
        if token.nesting == 1:
            node = Node(token.type.removesuffix("_open"), token.tag, token.attrs, token.content,
                        [])
            stack[-1].append(node)
            stack.append(node.children)
        elif token.nesting == -1:
            stack.pop()
        else:
            children = tree(token.children) if token.children else []
            stack[-1].append(Node(token.type, token.tag, token.attrs, token.content, children))
    return root


@dataclass
class LinkRefs:
    """Numbered links for one text part; the same URL keeps the same number."""

    urls: list[str] = field(default_factory=list)

    def number(self, url: str) -> int:
        """The reference number of a URL, adding it on first sight."""
        if url not in self.urls:
            self.urls.append(url)
        return self.urls.index(url) + 1

    def listing(self, title: str) -> str:
        """The reference list that closes the text part."""
        if not self.urls:
            return ""
        lines = [f"[{n}] {url}" for n, url in enumerate(self.urls, start=1)]
        return heading(title, 2) + "\n" + "\n".join(lines)


@dataclass
class TextRenderer:
    """Renders Markdown blocks to plain text, numbering links into shared refs."""

    refs: LinkRefs
    base_url: str
    image_label: str = "Image"

    def blocks(self, markdown_text: str) -> str:
        """Block Markdown as plain-text paragraphs separated by blank lines."""
        nodes = tree(parse_tokens(markdown_text))
        return "\n\n".join(p for p in (self._block(n) for n in nodes) if p).strip()

    def joined_blocks(self, block_texts: Sequence[str]) -> str:
        """`blocks` of the texts joined by blank lines, read from each text's own tokens when
        the joined text parses to them in turn (this renderer reads no maps)."""
        parts = joined_parts(block_texts)
        if parts is None:
            return self.blocks("\n\n".join(block_texts))
        nodes = [node for tokens in parts for node in tree(tokens)]
        return "\n\n".join(p for p in (self._block(n) for n in nodes) if p).strip()

    def inline(self, markdown_text: str) -> str:
        """Inline Markdown (a heading or question) as plain text."""
        tokens = parse_inline_tokens(markdown_text)
        return "".join(self._inline(node) for node in tree(tokens)).strip()

    def _block(self, node: Node, indent: str = "") -> str:
        """One block node; nested lists indent their items."""
        kind = node.type
        if kind == "paragraph":
            return self._inlines(node)
        if kind == "heading":
            return heading(self._inlines(node), int(node.tag[1]))
        if kind in {"bullet_list", "ordered_list"}:
            return self._list(node, indent)
        if kind == "blockquote":
            inner = "\n\n".join(self._block(child) for child in node.children)
            return "\n".join(f"> {line}".rstrip() for line in inner.splitlines())
        if kind in {"fence", "code_block"}:
            return "\n".join(f"    {line}".rstrip() for line in node.content.rstrip().splitlines())
        if kind == "table":
            return self._table(node)
        if kind == "hr":
            return "* * *"
        if kind == "html_block":
            return strip_tags(node.content)
        return "\n\n".join(self._block(child, indent) for child in node.children)

    def _list(self, node: Node, indent: str) -> str:
        """Bullets or numbers, with continuation lines aligned under the item text."""
        start = int(str(node.attrs.get("start", 1)))
        lines: list[str] = []
        for number, item in enumerate(node.children, start=start):
            marker = f"{number}. " if node.type == "ordered_list" else "- "
            pad = indent + " " * len(marker)
            body = "\n".join(self._block(child, pad) for child in item.children)
            first, *rest = body.splitlines() or [""]
            lines.append(f"{indent}{marker}{first}")
            lines += [line if line.startswith(pad) else f"{pad}{line}" for line in rest]
        return "\n".join(lines)

    def _table(self, node: Node) -> str:
        """Rows as 'cell | cell', the header row underlined."""
        rows: list[str] = []
        for section in node.children:
            for row in section.children:
                rows.append(" | ".join(self._inlines(cell) for cell in row.children))
            if section.type == "thead":
                rows.append("-" * max(display_width(rows[-1]), 3))
        return "\n".join(rows)

    def _inlines(self, node: Node) -> str:
        """The inline children of a block as text, links numbered."""
        return "".join(self._inline(child) for child in node.children).strip()

    def _inline(self, node: Node) -> str:
        """One inline node."""
        kind = node.type
        if kind == "inline":
            return "".join(self._inline(child) for child in node.children)
        if kind == "text":
            return node.content
        if kind in {"softbreak", "hardbreak"}:
            return "\n"
        if kind == "code_inline":
            return f"`{node.content}`"
        if kind == "html_inline":
            return ""
        if kind == "link":
            text = "".join(self._inline(child) for child in node.children)
            url = absolute_url(str(node.attrs.get("href", "")), self.base_url)
            return f"{text}{_gap(text)}[{self.refs.number(url)}]" if url else text
        if kind == "image":
            url = absolute_url(str(node.attrs.get("src", "")), self.base_url)
            label = f"[{self.image_label}: {node.content}]" if node.content else ""
            label = label or f"[{self.image_label}]"
            return f"{label}{_gap(label)}[{self.refs.number(url)}]" if url else label
        return "".join(self._inline(child) for child in node.children)


def _gap(text: str) -> str:
    """A space before a link number after Latin text; none after CJK, which uses no spaces."""
    return "" if text and display_width(text[-1]) == 2 else " "
