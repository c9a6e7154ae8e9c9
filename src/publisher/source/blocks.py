"""Turn markdown-it tokens into Blocks and Sections, and name each section's role by its heading.

The body is parsed once by the shared parser; each top-level token span becomes one Block whose
`markdown` is the exact source slice (from `token.map`), so every output can render it its own way.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache, partial
from html.parser import HTMLParser
from urllib.parse import urljoin

from markdown_it.token import Token

from publisher.model import Block, BlockKind, Section, SectionRole
from publisher.source.markdown import lend_inline_tokens, lend_tokens, parse_tokens
from publisher.source.sanitize import DROPPED_WITH_CONTENT
from publisher.text.casefold import ascii_folded
from publisher.text.cjk import drop_between

# Heading words, compared after NFKC and casefolding, that give a section its role.
ROLE_WORDS: dict[SectionRole, frozenset[str]] = {
    "faq": frozenset({
        "faq", "faqs", "q&a", "q & a", "qa", "q and a", "よくある質問", "よくあるご質問",
        "よくある質問と回答", "質問と回答", "質問", "frequently asked questions",
        "questions and answers", "questions & answers", "common questions", "reader questions",
        "your questions answered", "読者からの質問", "q&aコーナー",
    }),
    "summary": frozenset({
        "まとめ", "summary", "tl;dr", "tldr", "tl dr", "key takeaways", "takeaways",
        "in short", "in summary", "要約", "ポイント", "要点", "おさらい", "recap",
        "at a glance", "the short version", "today's takeaways", "今回のまとめ",
        "この記事のまとめ", "本記事のまとめ", "記事のまとめ", "結論", "概要", "要するに",
    }),
    "closing": frozenset({
        "おわりに", "終わりに", "さいごに", "最後に", "結びに", "むすびに", "あとがき",
        "conclusion", "conclusions", "closing thoughts", "final thoughts", "wrapping up",
        "wrap-up", "wrap up", "in closing", "afterword", "closing", "parting thoughts",
    }),
}
# Headings are matched by meaning too: a short heading (at most MEANING_WORDS English words or
# MEANING_CHARS Japanese characters) naming one of these ideas anywhere takes the role, so
# "Your questions, answered", "読者の質問", "質問コーナー", "The bottom line" or "What it means
# for riders" need no entry above. Longer headings are body text that merely mentions them.
MEANING_WORDS = 8
MEANING_CHARS = 20
FAQ_CUES = re.compile(
    r"\b(?:faqs?|q ?& ?a|q and a|questions|answered)\b|質問|疑問|一問一答"
)
SUMMARY_CUES = re.compile(
    r"\b(?:summary|summing up|to sum up|in sum|bottom line|in short|in brief|tl;? ?dr"
    r"|(?:key )?takeaways?|key points|key facts|what (?:it|this|that) means|need to know"
    r"|at a glance|recap|the gist|in a nutshell|highlights|short version)\b"
    r"|^(?:まとめ|要約|結論|要点)|(?:まとめ|の要点|のポイント|つのポイント|の結論|の要約)$"
)
# English words that may also start a longer heading: "FAQ about fares", "Summary of the day".
PREFIX_WORDS = frozenset({
    "faq", "faqs", "frequently asked questions", "questions and answers", "summary",
    "key takeaways", "conclusion",
})
# What a part starts with when it opens with one of its role's prefix words.
ROLE_PREFIXES: dict[SectionRole, tuple[str, ...]] = {
    role: tuple(sorted(w + " " for w in words & PREFIX_WORDS)) for role, words in ROLE_WORDS.items()
}
# "まとめ|…", "Summary: …", "よくある質問(FAQ)": the role word is one of these parts.
HEADING_PARTS = re.compile(r"[|｜:：/／・—–\-(){}\[\]「」『』【】〈〉]+")
# Links markdown-it refuses (https://github.com/markdown-it/markdown-it#security) stay as literal
# text such as "[click](javascript:alert(1))"; we keep the label and drop the target everywhere.
# markdown-it decodes character references in a destination before refusing it, so the scheme
# may also be spelled with them: "jav&#x61;script&colon;" is "javascript:".


def _spelled(char: str) -> str:
    """A pattern for `char` as written or as a decimal, hex or (for ':') named reference."""
    codes = {ord(char.lower()), ord(char.upper())}
    forms = [re.escape(char), *(f"&#0*{code};" for code in codes),
             *(f"&#x0*{code:x};" for code in codes)]
    if char == ":":
        forms.append("&colon;")
    return "(?:" + "|".join(forms) + ")"


UNSAFE_SCHEMES = ("javascript", "vbscript", "livescript", "data", "file")
UNSAFE_SCHEME = "(?:" + "|".join(
    "".join(_spelled(c) for c in scheme) for scheme in UNSAFE_SCHEMES
) + r")\s*" + _spelled(":")


def _may_name_unsafe_scheme(markdown_text: str) -> bool:
    """Whether UNSAFE_SCHEME could match: with no "&" (no character reference), only when a
    scheme's letters appear as re's IGNORECASE reads them (ascii_folded) beside a ":"."""
    if "&" in markdown_text:
        return True
    if ":" not in markdown_text:
        return False
    folded = ascii_folded(markdown_text)
    return any(scheme in folded for scheme in UNSAFE_SCHEMES)


@cache
def _unsafe_scheme_re() -> re.Pattern[str]:
    """UNSAFE_SCHEME alone (~3 ms to compile: each letter in five spellings), on first need."""
    return re.compile(UNSAFE_SCHEME, re.IGNORECASE)


@cache
def _unsafe_link_res() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """Link, autolink and definition patterns (~15 ms to compile): only a text naming a refused
    scheme needs them, so they are compiled on that first use."""
    link = re.compile(
        r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(\s*<?\s*" + UNSAFE_SCHEME
        + r"(?:[^()\s]|\([^()]*\))*(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)",
        re.IGNORECASE,
    )
    autolink = re.compile(r"<\s*" + UNSAFE_SCHEME + r"[^>]*>", re.IGNORECASE)
    definition = re.compile(
        r"^[ ]{0,3}\[[^\]]+\]:\s*<?\s*" + UNSAFE_SCHEME + r".*$", re.IGNORECASE | re.MULTILINE
    )
    return link, autolink, definition


# Raw HTML an FAQ item may keep as Markdown: attribute-less formatting tags only.
KEPT_TAGS = re.compile(r"</?(?:b|i|em|strong|sup|sub|kbd|code|mark|u|s|br)\s*/?>", re.IGNORECASE)
ANY_TAG = re.compile(r"<!--[\s\S]*?(?:-->|$)|</?[A-Za-z][^<>]*>")
CODE_SPAN = re.compile(r"(`+)[\s\S]*?\1")
DROPPED_ELEMENT = re.compile(
    r"<(" + "|".join(sorted(DROPPED_WITH_CONTENT)) + r")\b[^>]*>[\s\S]*?(?:</\1\s*>|$)",
    re.IGNORECASE,
)
LIST_MARKER = re.compile(r"^(?P<indent>[ \t]*)(?:[-+*]|\d{1,9}[.)])(?P<gap>[ \t]*)")
CONTAINER_KINDS: dict[str, BlockKind] = {
    "paragraph_open": "paragraph",
    "bullet_list_open": "bullet_list",
    "ordered_list_open": "ordered_list",
    "blockquote_open": "blockquote",
    "table_open": "table",
    "heading_open": "heading",
}
# Tokens whose content is raw source lines, each with its line end.
RAW_CONTENT_TOKENS = frozenset({"fence", "code_block", "html_block"})
LEAF_KINDS: dict[str, BlockKind] = {
    "fence": "code", "code_block": "code", "html_block": "html", "hr": "hr",
}


@dataclass(frozen=True)
class ParsedBlock:
    """A Block plus, for headings, the level and inline Markdown the section splitter needs."""

    block: Block
    heading_level: int = 0
    heading: str = ""


@dataclass
class _OpenSection:
    """A section being filled while walking the blocks."""

    heading: str
    level: int
    role: SectionRole
    line: int
    blocks: list[Block] = field(default_factory=list)

    def freeze(self) -> Section:
        """The immutable Section."""
        return Section(self.heading, self.level, tuple(self.blocks), self.role, self.line)


def parse_blocks(text: str) -> list[ParsedBlock]:
    """Top-level blocks of `text` with 1-based line numbers of `text` itself."""
    lines = text.split("\n")
    tokens = parse_tokens(text)
    # A link reference definition ("[label]: url") resolves across the whole body, so with one
    # present a block parsed alone could read differently; without, its tokens are the body's.
    lendable = "]:" not in text
    out: list[ParsedBlock] = []
    ends = span_ends(tokens)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        end = ends[i]
        parsed = _block_from_span(tokens, i, end, lines, ends) if token.level == 0 else None
        if parsed is not None:
            out.append(parsed)
            if lendable:
                _lend_block_tokens(parsed.block.markdown, tokens[i : end + 1], lines)
                if parsed.block.items:
                    _lend_item_tokens(parsed.block.items, tokens, i, ends)
        i = end + 1
    if lendable:
        # Inline parsing reads only an inline token's content: a heading, question or list
        # item's text parsed inline by itself gives these same children.
        for token in tokens:
            if token.type == "inline":
                lend_inline_tokens(token.content, token.children or [])
    return out


def _lend_block_tokens(markdown: str, span: Sequence[Token], lines: Sequence[str]) -> None:
    """Let the outputs reuse the body's tokens for a block instead of parsing its text again.

    Only when the block's Markdown is its source lines unchanged (no unsafe link defused, no
    trailing spaces cut), it cannot open front matter, and it holds no code or raw HTML block
    (whose content keeps the line end that parsing the block alone would not have); maps are
    made relative to the block.
    """
    first, last = span[0].map or (0, 0)
    if markdown.startswith("---") or "\n".join(lines[first:last]).rstrip("\n") != markdown:
        return
    if any(token.type in RAW_CONTENT_TOKENS for token in span):
        return
    height = markdown.count("\n") + 1
    lend_tokens(markdown, lambda: [_moved(token, first, height) for token in span])


def _lend_item_tokens(
    items: Sequence[str], tokens: Sequence[Token], start: int, ends: Sequence[int]
) -> None:
    """Lend each one-line list item that is one paragraph (a key point) the paragraph it parses
    to alone: no block starts within one line that did not start it in the item, so only the
    levels, the map and the tight list's hiding differ, and the inline children are the same."""
    texts = iter(items)
    i = start + 1
    while i < ends[start]:
        item_end = ends[i]
        if tokens[i].type == "list_item_open" and tokens[i].map is not None:
            text = next(texts)
            span = tokens[i + 1 : item_end]
            if (len(span) == 3 and span[0].type == "paragraph_open" and span[1].content == text
                    and "\n" not in text and not text.startswith("---")):
                lend_tokens(text, partial(_lone_paragraph, span[1]))
        i = item_end + 1


def _lone_paragraph(inline: Token) -> list[Token]:
    """The tokens of an inline token's content parsed alone as a one-line paragraph."""
    return [
        Token("paragraph_open", "p", 1, map=[0, 1], block=True),
        Token("inline", "", 0, map=[0, 1], level=1, children=inline.children,
              content=inline.content, block=True),
        Token("paragraph_close", "p", -1, block=True),
    ]


def _moved(token: Token, first: int, height: int) -> Token:
    """The token with its map counted from line `first` (closing tokens have none: shared)."""
    if token.map is None:
        return token
    start, end = token.map
    moved_map = [start - first, min(end - first, height)]
    return Token(
        token.type, token.tag, token.nesting, token.attrs, moved_map, token.level,
        token.children, token.content, token.markup, token.info, token.meta,
        token.block, token.hidden,
    )


def split_sections(
    blocks: Sequence[ParsedBlock],
) -> tuple[tuple[Block, ...], tuple[Section, ...]]:
    """Lead (blocks before the first heading) and sections; sub-headings stay in role sections."""
    lead: list[Block] = []
    sections: list[_OpenSection] = []
    for parsed in blocks:
        current = sections[-1] if sections else None
        if parsed.heading_level and not (
            current and current.role != "body" and parsed.heading_level > current.level
        ):
            role = heading_role(parsed.block.text)
            sections.append(
                _OpenSection(parsed.heading, parsed.heading_level, role, parsed.block.line)
            )
        elif current is not None:
            current.blocks.append(parsed.block)
        else:
            lead.append(parsed.block)
    return tuple(lead), tuple(s.freeze() for s in sections)


def heading_role(heading_text: str) -> SectionRole:
    """faq, summary or closing when the heading (or a part of it) names one, else body."""
    folded = unicodedata.normalize("NFKC", heading_text).casefold().strip()
    parts = [folded, *(p.strip() for p in HEADING_PARTS.split(folded))]
    for part in parts:
        part = part.strip(" ?!.。！？")
        for role, words in ROLE_WORDS.items():
            if part in words or part.startswith(ROLE_PREFIXES[role]):
                return role
    for part in parts:
        role = _role_by_meaning(part.strip(" ?!.。！？,、"))
        if role != "body":
            return role
    return "body"


def _role_by_meaning(part: str) -> SectionRole:
    """faq or summary when a short heading part names the idea in other words."""
    words = re.findall(r"[a-z0-9&;']+", part)
    cjk = sum(1 for ch in part if _is_cjk(ch))
    if not part or len(words) > MEANING_WORDS or cjk > MEANING_CHARS:
        return "body"
    if FAQ_CUES.search(part):
        return "faq"
    if SUMMARY_CUES.search(part):
        return "summary"
    return "body"


def inline_plain_text(children: Sequence[Token] | None, *, links: str | None = None) -> str:
    """Visible text of an inline token's children: no markup, line breaks kept as newlines.

    With `links` (a base URL, "" for none) a link keeps its target after its label, as
    "label (https://…)", so plain text such as a social post still leads where it did.
    """
    out: list[str] = []
    opened: list[tuple[str, int]] = []
    for child in children or ():
        if child.type == "text":
            out.append(defuse_unsafe_links(child.content))
        elif child.type == "code_inline":
            out.append(child.content)
        elif child.type == "hardbreak":
            out.append("\n")
        elif child.type == "softbreak":
            out.append(SOFT_BREAK)
        elif child.type == "image":
            out.append(inline_plain_text(child.children) or child.content)
        elif links is not None and child.type == "link_open":
            opened.append((urljoin(links, str(child.attrGet("href") or "")), len(out)))
        elif links is not None and child.type == "link_close" and opened:
            href, start = opened.pop()
            label = "".join(out[start:]).strip()
            if href and label not in (href, href.removeprefix("mailto:")):
                out.append(_link_target(label, href))
    return _join_soft_breaks("".join(out))


def _link_target(label: str, href: str) -> str:
    """What follows a link's label in plain text: " (URL)", or " URL " between CJK words,
    where parentheses and a glued word would end up inside the URL a network detects."""
    if not label:
        return href
    return f" {href} " if _is_cjk(label[-1]) else f" ({href})"


SOFT_BREAK = "\x00"
# Where a wrapped line joins the next without a space: CJK punctuation, kana, ideographs, forms.
CJK_RANGES = ((0x3000, 0x30FF), (0x3400, 0x9FFF), (0xFF00, 0xFFEF))


def _join_soft_breaks(text: str) -> str:
    """A wrapped line is one line (CommonMark §6.12): nothing between CJK, else a space."""
    if SOFT_BREAK not in text:
        return text
    return drop_between(text, SOFT_BREAK, CJK_RANGES).replace(SOFT_BREAK, " ")


def markdown_plain_text(markdown_text: str, *, links: str | None = None) -> list[str]:
    """Visible text of each paragraph, list item and heading of a Markdown snippet, in order.

    `links` as in `inline_plain_text`: None drops link targets, a base URL keeps them.
    """
    texts: list[str] = []
    for token in parse_tokens(markdown_text):
        if token.type == "inline":
            text = inline_plain_text(token.children, links=links).strip()
        elif token.type == "html_block":
            text = html_text(token.content).strip()
        elif token.type in {"fence", "code_block"}:
            text = token.content.strip()
        else:
            continue
        if text:
            texts.append(text)
    return texts


def html_text(html: str) -> str:
    """Visible text of raw HTML, without tags and without script/style contents."""
    collector = _TextCollector()
    collector.feed(html)
    collector.close()
    return "".join(collector.parts)


def defuse_unsafe_links(markdown_text: str) -> str:
    """Replace refused javascript:/data:/vbscript:/file: links by their label, so no output
    ever carries the target, not even as literal text."""
    if not _may_name_unsafe_scheme(markdown_text) or not _unsafe_scheme_re().search(markdown_text):
        return markdown_text
    link, autolink, definition = _unsafe_link_res()
    text = link.sub(r"\1", markdown_text)
    text = autolink.sub("", text)
    return definition.sub("", text)


def strip_raw_html(markdown_text: str) -> str:
    """Markdown whose raw HTML is reduced to plain formatting tags (scripts, iframes and their
    contents, attributes and comments removed); code spans and code blocks are left alone."""
    if "<" not in markdown_text:
        return markdown_text
    lines = markdown_text.split("\n")
    for token in parse_tokens(markdown_text):
        has_html = token.type == "html_block" or (
            token.type == "inline" and any(c.type == "html_inline" for c in token.children or ())
        )
        if has_html and token.map:
            first, last = token.map
            cleaned = _strip_tags("\n".join(lines[first:last])).split("\n")
            cleaned += [""] * (last - first - len(cleaned))
            lines[first:last] = cleaned
    return "\n".join(lines).strip()


def _strip_tags(text: str) -> str:
    """Remove tags outside code spans, keeping KEPT_TAGS and the text between tags."""
    out: list[str] = []
    position = 0
    for span in CODE_SPAN.finditer(text):
        out.append(_strip_tags_plain(text[position : span.start()]))
        out.append(span.group(0))
        position = span.end()
    out.append(_strip_tags_plain(text[position:]))
    return "".join(out)


def _strip_tags_plain(text: str) -> str:
    """Tag removal for text known to hold no code spans."""
    text = DROPPED_ELEMENT.sub("", text)
    return ANY_TAG.sub(lambda m: m.group(0) if KEPT_TAGS.fullmatch(m.group(0)) else "", text)


def join_lines(lines: Sequence[str]) -> str:
    """Join wrapped lines: nothing between two CJK characters, a space elsewhere."""
    out = ""
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if out and not (_is_cjk(out[-1]) and _is_cjk(line[0])):
            out += " "
        out += line
    return out


def _is_cjk(ch: str) -> bool:
    """Whether a character belongs to CJK text, where lines join without a space."""
    return ord(ch) >= 0x2E80 and unicodedata.east_asian_width(ch) in {"W", "F"}


class _TextCollector(HTMLParser):
    """Collects text nodes outside script and style."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Start skipping inside script/style."""
        if tag in {"script", "style"}:
            self._skipping += 1

    def handle_endtag(self, tag: str) -> None:
        """Stop skipping after script/style."""
        if tag in {"script", "style"} and self._skipping:
            self._skipping -= 1

    def handle_data(self, data: str) -> None:
        """Keep visible text."""
        if not self._skipping:
            self.parts.append(data)


def span_ends(tokens: Sequence[Token]) -> list[int]:
    """For each token the index of the token closing it (itself for leaf and closing tokens;
    the last token for one never closed), in one pass: markdown-it closes in order."""
    ends = list(range(len(tokens)))
    opened: list[int] = []
    for index, token in enumerate(tokens):
        if token.nesting == 1:
            opened.append(index)
        elif token.nesting == -1 and opened:
            ends[opened.pop()] = index
    for index in opened:
        ends[index] = len(tokens) - 1
    return ends


def _block_from_span(
    tokens: Sequence[Token], start: int, end: int, lines: Sequence[str], ends: Sequence[int]
) -> ParsedBlock | None:
    """One Block for the token span [start, end], or None for tokens that are not blocks."""
    token = tokens[start]
    kind = CONTAINER_KINDS.get(token.type) or LEAF_KINDS.get(token.type)
    if kind is None or token.map is None:
        return None
    first, last = token.map
    markdown = _source_slice(lines, first, last)
    if kind != "code":
        markdown = defuse_unsafe_links(markdown)
    line = first + 1
    if kind == "heading":
        inline = tokens[start + 1]
        text = inline_plain_text(inline.children).strip()
        block = Block("heading", markdown, text, line)
        return ParsedBlock(
            block, int(token.tag[1:]), defuse_unsafe_links(inline.content.strip())
        )
    if kind in {"bullet_list", "ordered_list"}:
        return ParsedBlock(_list_block(tokens, start, ends, lines, kind))
    if kind == "code":
        return ParsedBlock(Block(kind, markdown, token.content.rstrip("\n"), line))
    if kind == "html":
        return ParsedBlock(Block(kind, markdown, html_text(token.content).strip(), line))
    return ParsedBlock(Block(kind, markdown, _span_text(tokens, start, end), line))


def _list_block(
    tokens: Sequence[Token], start: int, ends: Sequence[int], lines: Sequence[str],
    kind: BlockKind,
) -> Block:
    """A list Block whose items are each item's Markdown without its marker."""
    first, last = tokens[start].map or (0, 0)
    items: list[str] = []
    texts: list[str] = []
    number = int(tokens[start].attrGet("start") or 1) if kind == "ordered_list" else 0
    i = start + 1
    while i < ends[start]:
        item_end = ends[i]
        item_map = tokens[i].map
        if tokens[i].type == "list_item_open" and item_map is not None:
            items.append(defuse_unsafe_links(_item_markdown(lines, item_map[0], item_map[1])))
            marker = f"{number + len(texts)}." if kind == "ordered_list" else "-"
            texts.append(f"{marker} {_span_text(tokens, i, item_end)}".rstrip())
        i = item_end + 1
    markdown = defuse_unsafe_links(_source_slice(lines, first, last))
    return Block(kind, markdown, "\n".join(texts), first + 1, tuple(items))


def _span_text(tokens: Sequence[Token], start: int, end: int) -> str:
    """Plain text of every inline and code token in a span, one per line."""
    parts: list[str] = []
    for token in tokens[start : end + 1]:
        if token.type == "inline":
            parts.append(inline_plain_text(token.children).strip())
        elif token.type in {"fence", "code_block"}:
            parts.append(token.content.rstrip("\n"))
        elif token.type == "html_block":
            parts.append(html_text(token.content).strip())
    return "\n".join(p for p in parts if p)


def _source_slice(lines: Sequence[str], first: int, last: int) -> str:
    """Source lines [first, last) with trailing blank lines removed."""
    return "\n".join(lines[first:last]).rstrip()


def _item_markdown(lines: Sequence[str], first: int, last: int) -> str:
    """A list item's source with the marker removed and continuation lines dedented."""
    item_lines = list(lines[first:last])
    if not item_lines:
        return ""
    match = LIST_MARKER.match(item_lines[0])
    if match is None:
        return _source_slice(item_lines, 0, len(item_lines))
    gap = len(match.group("gap"))
    width = match.end() - gap + (gap if 1 <= gap <= 4 else 1)
    head = item_lines[0][match.end() :]
    rest = [_dedent(line, width) for line in item_lines[1:]]
    return "\n".join([head, *rest]).strip()


def _dedent(line: str, width: int) -> str:
    """Remove up to `width` leading spaces (lazy continuation lines have fewer)."""
    stripped = len(line) - len(line.lstrip(" "))
    return line[min(stripped, width) :]
