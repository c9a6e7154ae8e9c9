"""A WordPress post's rendered HTML as the Markdown a post file would hold; pure.

The HTML is parsed with Beautiful Soup (the stdlib `html.parser` tree builder: no C extension,
lenient with the tag soup themes and plugins emit, and a tree we can select chrome from with CSS
selectors via soupsieve). The cleaned tree becomes Markdown blocks, so a WordPress post goes down
the same Markdown → Article path as a post file and both give the same Article (sanitized the
same way: raw HTML never survives, text is escaped so it stays text).

Left out: scripts, forms, embeds and the chrome of themes and plugins (Jetpack share, like,
subscribe and related-posts blocks, author boxes, YARPP/CRP related posts). FAQ blocks (Yoast
`schema-faq-section`, Rank Math `rank-math-list-item`, `<details>`) become the list style the
Markdown path reads under an FAQ heading (`- question`, `-`, answer), or front matter `faq:`
items when no FAQ heading precedes them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urljoin

from bs4 import BeautifulSoup
from bs4.element import Comment, Doctype, NavigableString, ProcessingInstruction, Tag

from publisher.source.blocks import heading_role

# Jetpack: https://jetpack.com/support/sharing/, /related-posts/, /subscriptions/ (class names
# as its blocks and legacy widgets render them); author boxes of the common plugins.
CHROME = ", ".join((
    "script", "style", "noscript", "template", "iframe", "object", "embed", "form", "button",
    "input", "select", "textarea", "svg", "canvas", "nav", "aside",
    ".sharedaddy", ".sd-sharing-enabled", ".sd-block", ".sd-like", "#jp-post-flair",
    ".jetpack-likes-widget-wrapper", ".jp-relatedposts", "#jp-relatedposts",
    ".wp-block-jetpack-related-posts", ".wp-block-jetpack-subscriptions",
    ".jetpack_subscription_widget", ".wp-block-jetpack-sharing-buttons", ".wp-block-jetpack-like",
    ".jetpack-subscribe", ".author-box", ".saboxplugin-wrap", ".abh_box", ".wp-block-post-author",
    ".yarpp-related", ".yarpp", ".crp_related", ".related-posts", ".post-author-box",
))
HEADINGS = {f"h{n}": n for n in range(1, 7)}
BLOCK_TAGS = frozenset({
    *HEADINGS, "p", "ul", "ol", "blockquote", "figure", "table", "pre", "hr", "details", "div",
    "section", "article", "header", "footer", "main", "dl", "figcaption", "center",
})
MARKS = {"strong": "**", "b": "**", "em": "*", "i": "*", "del": "~~", "s": "~~"}
# Only what Markdown would read as markup is escaped, so headings and text stay as written:
# `|` only in table cells, `#`, `>` and list markers only at a line start (LINE_START).
ESCAPED = re.compile(
    r"([\\`*\[\]]|(?<!\w)_|_(?!\w)|<(?=[A-Za-z/!?])|&(?=#?\w+;)|~(?=~))")
# A line start that would open a list, a heading, a quote or underline a heading.
LINE_START = re.compile(
    r"^(\s*(?:\d+(?=[.)](?:\s|$)))?)([-+](?=\s|$|-+\s*$)|[.)](?=\s|$)|#(?=#*(?:\s|$))|>|=(?==*\s*$))",
    re.MULTILINE)
SPACES = re.compile(r"[ \t\r\n\f]+")


@dataclass(frozen=True)
class FaqPair:
    """One question and its answer, both as Markdown."""

    question: str
    answer: str


@dataclass
class Converted:
    """The body's Markdown blocks and the FAQ pairs that sat under no FAQ heading."""

    blocks: list[str] = field(default_factory=list)
    faq: list[FaqPair] = field(default_factory=list)
    in_faq: bool = False  # the last heading was an FAQ heading


def html_to_markdown(html: str, *, base: str = "") -> tuple[str, tuple[FaqPair, ...]]:
    """The post body as Markdown, and FAQ pairs to put in front matter (none under a heading).

    Relative links and image sources (`/wp-content/uploads/…`) are resolved against `base`, the
    post's permalink, as a browser showing the post would.
    """
    soup = BeautifulSoup(html, "html.parser")
    for node in soup.select(CHROME):
        node.decompose()
    if base:
        for tag, name in [*((t, "href") for t in soup.select("a[href]")),
                          *((t, "src") for t in soup.select("img[src]"))]:
            tag[name] = urljoin(base, str(tag[name]).strip())
    out = Converted()
    _blocks(soup.children, out)
    return "\n\n".join(b for b in out.blocks if b.strip()) + "\n", tuple(out.faq)


def html_text(html: str) -> str:
    """Plain text of a rendered title or excerpt (entities decoded, whitespace collapsed)."""
    text = BeautifulSoup(html, "html.parser").get_text(" ")
    return SPACES.sub(" ", text).strip()


def _blocks(nodes: Iterable[object], out: Converted) -> None:
    """Append the Markdown of a run of sibling nodes; inline runs become one paragraph."""
    run: list[object] = []
    for node in list(nodes):
        if isinstance(node, Tag) and (node.name in BLOCK_TAGS or _faq_kind(node)):
            _paragraph(run, out)
            run = []
            _block(node, out)
        else:
            run.append(node)
    _paragraph(run, out)


def _paragraph(nodes: list[object], out: Converted) -> None:
    """A run of inline nodes as one paragraph, if it holds any text."""
    text = _inline_run(nodes)
    if text:
        out.blocks.append(_guard_lines(text))


def _block(tag: Tag, out: Converted) -> None:
    """One block element as Markdown."""
    kind = _faq_kind(tag)
    if kind:
        _faq_block(tag, kind, out)
    elif tag.name in HEADINGS:
        text = _inline_run(tag.children).replace("\n", " ")
        if text:
            out.blocks.append("#" * HEADINGS[tag.name] + " " + text)
            out.in_faq = heading_role(_plain(tag)) == "faq"
    elif tag.name == "p" or tag.name == "figcaption":
        _paragraph(list(tag.children), out)
    elif tag.name in ("ul", "ol"):
        out.blocks.append(_list(tag))
    elif tag.name == "blockquote":
        inner = Converted()
        _blocks(tag.children, inner)
        quoted = "\n\n".join(inner.blocks)
        if quoted.strip():
            out.blocks.append("\n".join(f"> {line}".rstrip() for line in quoted.split("\n")))
    elif tag.name == "table":
        out.blocks.append(_table(tag))
    elif tag.name == "pre":
        code = tag.get_text()
        fence = "~~~~" if "```" in code else "```"
        out.blocks.append(f"{fence}\n{code.rstrip()}\n{fence}")
    elif tag.name == "hr":
        out.blocks.append("* * *")
    else:  # div, section, figure and other wrappers: their children
        _blocks(tag.children, out)


def _faq_kind(tag: Tag) -> str:
    """Which FAQ block this element is: "yoast", "rankmath", "details", or ""."""
    classes = tag.get_attribute_list("class")
    if tag.name == "details":
        return "details"
    if "schema-faq-section" in classes:
        return "yoast"
    if "rank-math-list-item" in classes:
        return "rankmath"
    return ""


def _faq_block(tag: Tag, kind: str, out: Converted) -> None:
    """One FAQ pair, in the list style under an FAQ heading, else kept for front matter."""
    selectors = {
        "yoast": (".schema-faq-question", ".schema-faq-answer"),
        "rankmath": (".rank-math-question", ".rank-math-answer"),
        "details": ("summary", ""),
    }[kind]
    question_tag = tag.select_one(selectors[0])
    if question_tag is None:
        _blocks(tag.children, out)
        return
    question = _inline_run(question_tag.children).replace("\n", " ")
    question_tag.extract()
    answer_tag = tag.select_one(selectors[1]) if selectors[1] else tag
    inner = Converted()
    _blocks((answer_tag or tag).children, inner)
    answer = "\n\n".join(inner.blocks)
    if not question or not answer:
        return
    if out.in_faq:
        out.blocks.append(f"- {question}\n-\n\n{answer}")
    else:
        out.faq.append(FaqPair(question, answer))


def _list(tag: Tag) -> str:
    """A list, nested lists indented under their item."""
    ordered = tag.name == "ol"
    start = int(str(tag.get("start", "1"))) if str(tag.get("start", "1")).isdigit() else 1
    lines: list[str] = []
    for number, item in enumerate(tag.find_all("li", recursive=False), start=start):
        marker = f"{number}." if ordered else "-"
        pad = " " * (len(marker) + 1)
        inline = [c for c in item.children if not (isinstance(c, Tag) and c.name in ("ul", "ol"))]
        text = _inline_run(inline).replace("\n", " ")
        lines.append(f"{marker} {_guard_lines(text)}".rstrip())
        for child in item.find_all(("ul", "ol"), recursive=False):
            lines.extend(pad + line for line in _list(child).split("\n"))
    return "\n".join(lines)


def _table(tag: Tag) -> str:
    """A GFM table; the first row is the header."""
    rows = [
        [_inline_run(cell.children).replace("\n", " ").replace("|", "\\|")
         for cell in row.find_all(("th", "td"))]
        for row in tag.find_all("tr")
    ]
    rows = [row for row in rows if row]
    if not rows:
        return ""
    width = max(len(row) for row in rows)
    rows = [row + [""] * (width - len(row)) for row in rows]
    head, *body = rows
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * width]
    lines.extend("| " + " | ".join(row) + " |" for row in body)
    return "\n".join(lines)


def _inline_run(nodes: Iterable[object]) -> str:
    """Inline nodes as Markdown text, spaces collapsed, lines trimmed."""
    text = "".join(_inline(node) for node in nodes)
    lines = [SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return "\n".join(line for line in lines if line)


def _inline(node: object) -> str:
    """One inline node as Markdown; <br> is a line break (wpautop makes one of each newline)."""
    if isinstance(node, Comment | Doctype | ProcessingInstruction):
        return ""
    if isinstance(node, NavigableString):
        return ESCAPED.sub(r"\\\1", SPACES.sub(" ", str(node)))
    if not isinstance(node, Tag):
        return ""
    if node.name == "br":
        return "\n"
    if node.name == "img":
        return _image(node)
    inner = "".join(_inline(child) for child in node.children)
    if node.name == "a":
        href = str(node.get("href") or "").strip()
        label = inner.strip()
        if not href or not label:
            return inner
        return f"[{label}]({_destination(href)})"
    if node.name == "code":
        code = node.get_text()
        ticks = "``" if "`" in code else "`"
        return f"{ticks}{code}{ticks}" if code.strip() else ""
    mark = MARKS.get(node.name or "")
    if mark and inner.strip():
        return f"{mark}{inner.strip()}{mark}"
    return inner


def _image(tag: Tag) -> str:
    """An <img> as a Markdown image (alt text kept, escaped)."""
    src = str(tag.get("src") or "").strip()
    if not src:
        return ""
    alt = ESCAPED.sub(r"\\\1", SPACES.sub(" ", str(tag.get("alt") or "")).strip())
    return f"![{alt}]({_destination(src)})"


def _destination(url: str) -> str:
    """A link destination Markdown reads back whole (angle brackets around spaces or parens)."""
    if any(ch in url for ch in " ()<>"):
        return "<" + url.replace("<", "%3C").replace(">", "%3E") + ">"
    return url


def _guard_lines(text: str) -> str:
    """Escape a line start Markdown would read as a list, quote or heading underline."""
    return LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), text)


def _plain(tag: Tag) -> str:
    """An element's text, whitespace collapsed."""
    return SPACES.sub(" ", tag.get_text(" ")).strip()
