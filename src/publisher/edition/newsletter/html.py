"""Article Markdown to email-safe HTML: sanitized, inline-styled, split into MJML-sized parts.

Mail clients drop <style> blocks unpredictably (Gmail keeps them, many webmail views do not), so
every tag the article can produce gets its look from an inline ``style`` attribute; the dark-mode
overrides in the template use ``!important`` to win over these.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from itertools import accumulate
from typing import Literal

from markdown_it.token import Token
from markupsafe import Markup

from publisher.edition.newsletter.strings import base_lang
from publisher.model import Block
from publisher.source.condense import budoux_parser
from publisher.source.markdown import parse_tokens, render_html, render_inline_html
from publisher.source.sanitize import ALIGNMENTS, absolute_url
from publisher.text.cjk import drop_between, has_any

# Light and dark palettes; every text/background pair keeps WCAG AA contrast (≥ 4.5:1),
# which tests/test_newsletter.py checks.
PALETTE: Mapping[str, str] = {
    "page": "#f2f3f5",
    "card": "#ffffff",
    "text": "#1f2328",
    "muted": "#545d68",
    "link": "#0a58ca",
    "rule": "#d8dce1",
    "code_bg": "#f2f3f5",
    "button": "#0a58ca",
    "button_text": "#ffffff",
    "dark_page": "#0f1115",
    "dark_card": "#1b1e24",
    "dark_text": "#e6e8eb",
    "dark_muted": "#a9b1bb",
    "dark_link": "#8ab4f8",
    "dark_rule": "#3a404a",
    "dark_code_bg": "#262a31",
    "dark_button": "#8ab4f8",
    "dark_button_text": "#0f1115",
}
FONTS: Mapping[str, str] = {
    "ja": "'Hiragino Sans', 'Hiragino Kaku Gothic ProN', 'Yu Gothic', Meiryo, sans-serif",
    "en": "-apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif",
}
# Headlines in these languages wrap between BudouX phrases (keep_phrases).
PHRASE_LANGS = frozenset({"ja", "zh"})
KEEP_ALL = "word-break:keep-all;overflow-wrap:anywhere;"
# Kana and CJK ideographs: a headline with one of them is broken between phrases.
PHRASE_RANGES = ((0x3040, 0x30FF), (0x3400, 0x9FFF), (0xF900, 0xFAFF))
HEADING_HTML = re.compile(r"(<h[1-6]\b[^>]*>)([\s\S]*?)(</h[1-6]>)")
# A tag, a character reference, or one character: the units a headline's text is made of.
HTML_UNIT = re.compile(r"<[^<>]*>|&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);|[\s\S]")
MONO = "SFMono-Regular, Menlo, Consolas, 'Liberation Mono', monospace"
P = PALETTE
TAG_STYLES: Mapping[str, str] = {
    "p": "margin:0 0 16px;",
    "h1": "margin:28px 0 12px;font-size:24px;line-height:1.35;font-weight:700;",
    "h2": "margin:28px 0 12px;font-size:21px;line-height:1.4;font-weight:700;",
    "h3": "margin:24px 0 10px;font-size:18px;line-height:1.4;font-weight:700;",
    "h4": "margin:20px 0 8px;font-size:16px;line-height:1.4;font-weight:700;",
    "h5": "margin:16px 0 8px;font-size:15px;line-height:1.4;font-weight:700;",
    "h6": "margin:16px 0 8px;font-size:15px;line-height:1.4;font-weight:700;",
    "a": f"color:{P['link']};text-decoration:underline;word-break:break-word;",
    "ul": "margin:0 0 16px;padding:0 0 0 24px;",
    "ol": "margin:0 0 16px;padding:0 0 0 24px;",
    "li": "margin:0 0 6px;",
    "blockquote": f"margin:0 0 16px;padding:2px 0 2px 16px;border-left:4px solid {P['rule']};"
    f"color:{P['muted']};",
    "pre": f"margin:0 0 16px;padding:12px;background:{P['code_bg']};border-radius:4px;"
    f"white-space:pre-wrap;word-break:break-all;font-family:{MONO};font-size:13px;",
    "code": f"font-family:{MONO};font-size:0.92em;background:{P['code_bg']};"
    "padding:1px 4px;border-radius:3px;",
    "img": "display:block;max-width:100%;height:auto;border:0;margin:0 0 16px;",
    "table": "border-collapse:collapse;width:100%;margin:0 0 16px;",
    "th": f"text-align:left;padding:6px 8px;border-bottom:2px solid {P['rule']};"
    "font-weight:700;vertical-align:bottom;word-break:break-word;",
    "td": f"padding:6px 8px;border-bottom:1px solid {P['rule']};vertical-align:top;"
    "word-break:break-word;",
    "hr": f"border:0;border-top:1px solid {P['rule']};margin:24px 0;",
    "figure": "margin:0 0 16px;",
    "figcaption": f"color:{P['muted']};font-size:13px;margin:6px 0 0;",
    "details": "margin:0 0 16px;",
}
VOID_TAGS = frozenset({"br", "hr", "img"})
LIST_TAGS = frozenset({"ul", "ol"})
CELL_TAGS = frozenset({"td", "th"})
NESTED_LIST_STYLE = "margin:6px 0 0;padding:0 0 0 22px;"
TABLE_WRAPPER = re.compile(r"^\s*<table[^>]*>(?P<inner>.*)</table>\s*$", re.DOTALL)

# A source line break between two CJK characters would render as a stray space in most clients.
CJK_RANGES = ((0x3000, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF),
              (0xFF01, 0xFF60))

PartKind = Literal["text", "image", "table", "divider"]


@dataclass(frozen=True)
class Part:
    """One MJML component's worth of content: a text run, an image, a table or a divider."""

    kind: PartKind
    html: str = ""  # sanitized, styled HTML (marked safe when the template gets it)
    src: str = ""
    alt: str = ""
    href: str = ""


class _StyleInliner(HTMLParser):
    """Re-serializes sanitized HTML, giving each tag its inline style."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.list_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Copy the (already allow-listed) attributes and add our style."""
        align = _cell_alignment(attrs) if tag in CELL_TAGS else ""
        parts = [tag]
        parts += [f'{name}="{html.escape(value or "", quote=True)}"' for name, value in attrs
                  if name not in ("style", "align")]
        if tag in LIST_TAGS:
            self.list_depth += 1
        nested = tag in LIST_TAGS and self.list_depth > 1
        style = NESTED_LIST_STYLE if nested else TAG_STYLES.get(tag)
        if align:  # the attribute for Outlook's Word engine, the style for everyone else
            parts.append(f'align="{align}"')
            style = f"{style or ''}text-align:{align};"
        if style:
            parts.append(f'style="{style}"')
        self.out.append(f"<{' '.join(parts)}>")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Void tags written as <br/> are still void tags."""
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        """Closing tags pass through; void tags never get one."""
        if tag in LIST_TAGS:
            self.list_depth -= 1
        if tag not in VOID_TAGS:
            self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        """Text is re-escaped, so '<' in an article stays text; CJK line breaks are joined."""
        joined = drop_between(data, "\n", CJK_RANGES) if "\n" in data else data
        self.out.append(html.escape(joined, quote=False))


def _cell_alignment(attrs: list[tuple[str, str | None]]) -> str:
    """A table cell's column alignment, from markdown-it's style="text-align:…" or align=."""
    found = dict(attrs)
    style = (found.get("style") or "").strip().rstrip(";")
    word = style.partition(":")[2].strip().lower() if style.startswith("text-align") else ""
    word = word or (found.get("align") or "").strip().lower()
    return word if word in ALIGNMENTS else ""


def inline_styles(sanitized_html: str) -> str:
    """Sanitized HTML with an inline style on every tag that needs one."""
    inliner = _StyleInliner()
    if not _replay(sanitized_html, inliner):
        inliner = _StyleInliner()
        inliner.feed(sanitized_html)
        inliner.close()
    return "".join(inliner.out).strip()


# nh3 serializes tags as <name attr="value"> and escapes every "<" in text, so its output
# splits into these two pieces; HTMLParser reads them the same way, only slower.
SIMPLE_TAG = re.compile(
    r'<(/?)([A-Za-z][A-Za-z0-9]*)((?:\s+[A-Za-z_:][-A-Za-z0-9_:.]*="[^"]*")*)\s*(/?)>'
)
SIMPLE_ATTRIBUTE = re.compile(r'\s+([A-Za-z_:][-A-Za-z0-9_:.]*)="([^"]*)"')


def _replay(sanitized_html: str, inliner: _StyleInliner) -> bool:
    """Feed the inliner as HTMLParser would; False (the inliner then half fed, to be dropped)
    for markup beyond nh3's."""
    position = 0
    for match in SIMPLE_TAG.finditer(sanitized_html):
        if match.start() > position and not _replay_text(sanitized_html[position : match.start()],
                                                          inliner):
            return False
        closing, tag, attributes, self_closing = match.groups()
        tag = tag.lower()
        if closing:
            if attributes or self_closing:
                return False
            inliner.handle_endtag(tag)
        else:
            attrs: list[tuple[str, str | None]] = [
                (name.lower(), html.unescape(value) if value else value)
                for name, value in SIMPLE_ATTRIBUTE.findall(attributes)
            ] if attributes else []
            if self_closing:
                inliner.handle_startendtag(tag, attrs)
            else:
                inliner.handle_starttag(tag, attrs)
        position = match.end()
    return position >= len(sanitized_html) or _replay_text(sanitized_html[position:], inliner)


def _replay_text(text: str, inliner: _StyleInliner) -> bool:
    """Text between tags, its character references resolved; False when it holds a '<'."""
    if "<" in text:
        return False
    inliner.handle_data(html.unescape(text) if "&" in text else text)
    return True


def email_html(markdown_text: str, *, base_url: str) -> Markup:
    """Block Markdown to sanitized, inline-styled HTML, safe to place in an <mj-text>."""
    return Markup(inline_styles(render_html(markdown_text, base_url=base_url)))


def email_inline_html(markdown_text: str, *, base_url: str) -> Markup:
    """Inline Markdown (a heading, a question) to sanitized, inline-styled HTML."""
    return Markup(inline_styles(render_inline_html(markdown_text, base_url=base_url)))


def keep_phrases(html_text: str, lang: str) -> Markup:
    """A Japanese/Chinese headline that wraps only between BudouX phrases, never inside a word.

    Phrases are joined by <wbr> inside a `word-break: keep-all` span, as BudouX itself does
    (https://github.com/google/budoux#usage); other languages come back unchanged.
    """
    if base_lang(lang) not in PHRASE_LANGS or not has_any(html_text, PHRASE_RANGES):
        return Markup(html_text)
    units = HTML_UNIT.findall(html_text)
    plain = "".join("" if u.startswith("<") else html.unescape(u) for u in units)
    phrases = budoux_parser(lang).parse(plain)
    breaks = set(accumulate(len(p) for p in phrases[:-1]))
    out: list[str] = []
    position = 0
    for unit in units:
        if not unit.startswith("<"):
            if position in breaks:
                out.append("<wbr>")
            position += 1
        out.append(unit)
    return Markup(f'<span style="{KEEP_ALL}">{"".join(out)}</span>')


def block_parts(
    blocks: Iterable[Block], *, base_url: str, lang: str = "en"
) -> tuple[Part, ...]:
    """Blocks as MJML parts: a lone image becomes mj-image, a table mj-table, a rule a divider.

    Headings among the blocks break only between phrases (`keep_phrases`)."""
    parts: list[Part] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            parts.append(Part("text", Markup("\n".join(pending))))
            pending.clear()

    for block in blocks:
        special = _special_part(block, base_url=base_url)
        if special is None:
            rendered = email_html(block.markdown, base_url=base_url)
            if block.kind == "heading":
                rendered = Markup(HEADING_HTML.sub(
                    lambda m: m[1] + keep_phrases(m[2], lang) + m[3], str(rendered)
                ))
            if rendered:
                pending.append(str(rendered))
            continue
        flush()
        if special.kind != "image" or special.src:
            parts.append(special)
    flush()
    return tuple(parts)


def _special_part(block: Block, *, base_url: str) -> Part | None:
    """The dedicated MJML component for a block, or None when it is ordinary text."""
    if block.kind == "hr":
        return Part("divider")
    if block.kind == "table":
        match = TABLE_WRAPPER.match(str(email_html(block.markdown, base_url=base_url)))
        return Part("table", Markup(match.group("inner"))) if match else None
    if block.kind == "paragraph":
        return _lone_image(block.markdown, base_url=base_url)
    return None


def _lone_image(markdown_text: str, *, base_url: str) -> Part | None:
    """A paragraph that is only an image (optionally linked) becomes an mj-image."""
    tokens = parse_tokens(markdown_text)
    inline = [t for t in tokens if t.type == "inline"]
    if len(tokens) != 3 or len(inline) != 1:
        return None
    children = [t for t in inline[0].children or [] if not _blank_text(t)]
    kinds = [t.type for t in children]
    if kinds == ["image"]:
        image, href = children[0], ""
    elif kinds == ["link_open", "image", "link_close"]:
        image = children[1]
        href = absolute_url(str(children[0].attrGet("href") or ""), base_url)
    else:
        return None
    src = absolute_url(str(image.attrGet("src") or ""), base_url)
    src = src if src.startswith(("https://", "http://")) else ""
    return Part("image", src=src, alt=image.content, href=href)


def _blank_text(token: Token) -> bool:
    """Whitespace around an image does not make it text."""
    return token.type in {"text", "softbreak"} and not token.content.strip()
