"""Find every question/answer pair in a post, whatever convention the editor wrote it in.

Inside a section whose heading names an FAQ (see `blocks.heading_role`) these all work, mixed:
sub-headings as questions; `Q:`/`A:` lines (also `Q.`, `**Q:**`, `Ｑ．`, `Q：`, `Question:`);
`<details><summary>…</summary>…</details>`; the inline style (`**Will hours change?** No. …`, a
bold question and its answer in one paragraph); the WordPress list style (`- question`, a lone `-`,
then the answer paragraph); a paragraph ending in ? or ？ followed by its answer; numbered
questions (`1. …?`). Front matter `faq:` items come first. A post without an FAQ section whose
every section is headed by a reader's question (see `is_question_heading`) is read as one FAQ.
`build_faq_digest` turns the pairs into every published form.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from html import escape
from typing import Any, Literal

from publisher.config.settings import FaqSettings
from publisher.errors import InputError
from publisher.model import Article, Block, FaqDigest, FaqItem, Section
from publisher.source.blocks import join_lines, markdown_plain_text, strip_raw_html
from publisher.source.condense import short_answer
from publisher.source.markdown import render_html, render_inline_html
from publisher.source.sanitize import clean_html
from publisher.text.sentences import split_sentences

_OPEN = r"^\s*(?P<open>\*\*|__)?\s*"
_NUMBER = r"\s*[0-9０-９]{0,3}"
_SEP = r"\s*(?P<mid>\*\*|__)?\s*[:：.．)）](?![A-Za-z0-9])\s*(?P<close>\*\*|__)?\s*"
QUESTION_MARK = re.compile(_OPEN + r"(?:Q|Ｑ|Question|質問)" + _NUMBER + _SEP)
ANSWER_MARK = re.compile(_OPEN + r"(?:A|Ａ|Answer|回答|答え)" + _NUMBER + _SEP)
DETAILS_OPEN = re.compile(r"<details\b[^>]*>", re.IGNORECASE)
SUMMARY_OPEN = re.compile(r"\s*<summary\b[^>]*>", re.IGNORECASE)
# Leftovers of a scraped image caption, such as the seed's "-3-1024x585.webp)".
IMAGE_DEBRIS = re.compile(r"^[-\w.]*\d+x\d+\.(?:webp|jpe?g|png|gif|avif)\)?$", re.IGNORECASE)
QUESTION_ENDS = ("?", "？")
# "**Will weekday hours change?** No. …": a bold question opening a paragraph, its answer after.
INLINE_QUESTION = re.compile(
    r"^\s*(?P<wrap>\*\*|__)(?P<q>(?:(?!(?P=wrap))[^\n]){1,300}?[?？][」』）)\"'”’]*)\s*(?P=wrap)"
    r"(?P<rest>[\s\S]*)$"
)
# Characters that can make Markdown differ from its plain text; without them no parse is needed.
MARKDOWN_SYNTAX = re.compile(r"[\\`*_\[\]<>&!#~|]")
MAX_QUESTION_CHARS = 300
# A heading asks the reader's question when, in Japanese, it ends in a polite question form
# ("何時から開いていますか？"); headline forms such as "どう変わる？", "〜とは？", "〜のか？" or the
# guiding "〜でしょうか？" are the article's own rhetoric. In English it opens with a question
# word or an auxiliary and is not one of the stock rhetorical headlines below.
JA_QUESTION_END = re.compile(r"(?:です|ます|ません|でした|ました)か$")
EN_QUESTION_START = re.compile(
    r"^(?:what|when|where|who|whom|whose|which|why|how|can|could|do|does|did|is|are|was"
    r"|were|will|would|should|shall|may|might|must|has|have|had|am)\b"
)
EN_RHETORICAL = re.compile(
    r"^(?:so what|what now|why now|who cares|what(?:'s| is| comes) next|what changed"
    r"|what happened(?: next)?|what went wrong|what(?:'s| is) new|what(?:'s| is) at stake"
    r"|what(?:'s| is) the (?:catch|big deal|point)|how did (?:we|it|they) get here"
    r"|why (?:does |do |did |should )?(?:it|this|that|these|any of this|we|you) (?:matters?|care)"
    r"|why it matters|what (?:does|do|did) (?:it|this|that|these|all this) mean(?: for \w+)?"
    r"|what (?:can|should) (?:we|you) (?:do|expect|learn)|is (?:this|it) the end(?: of .+)?)$"
)
KANA = re.compile(r"[\u3040-\u30ff]")

ChunkKind = Literal["q", "a", "text"]


@dataclass(frozen=True)
class Chunk:
    """A piece of an FAQ section: a question, a marked answer, or unmarked text."""

    kind: ChunkKind
    markdown: str
    line: int


@dataclass(frozen=True)
class Extracted:
    """What the FAQ sections held: the pairs, the warnings, and the sections as they now read."""

    items: tuple[FaqItem, ...]
    warnings: tuple[str, ...]
    sections: tuple[Section, ...]


def extract_faq(
    sections: Sequence[Section], *, explicit: Sequence[FaqItem] = (), source: str = ""
) -> Extracted:
    """All pairs (front matter first, then each FAQ section in order) and warnings for gaps.

    An FAQ-like section with no readable pair warns and becomes body text again, so the
    email still shows what the editor wrote under it.
    """
    items: list[FaqItem] = list(explicit)
    warnings: list[str] = []
    kept: list[Section] = []
    if not explicit and (asked := _question_sections(sections)) is not None:
        kept_sections, found = asked
        return Extracted(_dedupe(found, source, warnings), tuple(warnings), kept_sections)
    for section in sections:
        if section.role != "faq":
            kept.append(section)
            continue
        found, section_warnings = _section_pairs(section, source)
        warnings.extend(section_warnings)
        if not found:
            warnings.append(
                f"{source}:{section.line}: section {section.heading!r} looks like an FAQ but no"
                " question/answer pair could be read — write each question as a sub-heading,"
                " as 'Q:'/'A:' lines, as '**Question?** answer', or as '- question', '-',"
                " answer paragraph (until then it is sent as ordinary text)"
            )
            section = replace(section, role="body")
        kept.append(section)
        items.extend(found)
    return Extracted(_dedupe(items, source, warnings), tuple(warnings), tuple(kept))


def is_question_heading(heading_text: str) -> bool:
    """Whether a heading's plain text asks a reader's question in Japanese or English."""
    text = join_lines(heading_text.split("\n")).strip().rstrip("」』）)\"'”’ ")
    if not text.endswith(QUESTION_ENDS) or len(text) > MAX_QUESTION_CHARS:
        return False
    asked = unicodedata.normalize("NFKC", text).rstrip("?").rstrip()
    if KANA.search(asked):
        return JA_QUESTION_END.search(asked) is not None
    folded = " ".join(asked.casefold().replace("’", "'").split())
    return EN_QUESTION_START.match(folded) is not None and EN_RHETORICAL.match(folded) is None


def _question_sections(
    sections: Sequence[Section],
) -> tuple[tuple[Section, ...], list[FaqItem]] | None:
    """A post without FAQ section whose every body section is a reader's question and answer.

    Such a post is one FAQ: each question section becomes an unheaded FAQ section (the email
    shows it as its FAQ block) and a pair. When any body heading is a statement or a rhetorical
    question, the headings are the article's structure and nothing changes.
    """
    body = [s for s in sections if s.role == "body"]
    if not body or any(s.role == "faq" for s in sections):
        return None
    if not all(s.blocks and is_question_heading(question_text(s.heading)) for s in body):
        return None
    items = [
        FaqItem(
            strip_raw_html(_clean_question(s.heading)),
            strip_raw_html("\n\n".join(b.markdown for b in s.blocks)),
            s.line,
        )
        for s in body
    ]
    if not all(item.question and item.answer for item in items):
        return None
    out = tuple(replace(s, heading="", role="faq") if s.role == "body" else s for s in sections)
    return out, items


def faq_from_front_matter(raw: Any, *, where: str) -> tuple[FaqItem, ...]:
    """Front matter `faq:` as items; each entry needs q/question and a/answer text."""
    if raw is None:
        return ()
    fix = 'write  faq: [{q: "Question?", a: "Answer."}]'
    if not isinstance(raw, list):
        raise InputError("faq must be a list of questions and answers", where=where, fix=fix)
    line = int(where.rsplit(":", 1)[1]) if where.rsplit(":", 1)[-1].isdigit() else 0
    items: list[FaqItem] = []
    for index, entry in enumerate(raw, start=1):
        if not isinstance(entry, dict):
            raise InputError(f"faq item {index} must be a mapping", where=where, fix=fix)
        question = _entry_text(entry, ("q", "question"), index, where, fix)
        answer = _entry_text(entry, ("a", "answer"), index, where, fix)
        items.append(FaqItem(strip_raw_html(question), strip_raw_html(answer), line))
    return tuple(items)


def normalize_question(text: str) -> str:
    """Comparison key: width-folded, case-folded, without punctuation, symbols or spaces."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if unicodedata.category(ch)[0] not in "PSZC")


def question_text(question_markdown: str) -> str:
    """A question as plain text (for JSON-LD names and social posts)."""
    if not MARKDOWN_SYNTAX.search(question_markdown):
        return join_lines(question_markdown.split("\n"))
    return join_lines(markdown_plain_text(question_markdown)) or question_markdown.strip()


def build_faq_digest(article: Article, settings: FaqSettings) -> FaqDigest:
    """This article's own FAQ digest: items, short answers, FAQPage JSON-LD, faq.md, HTML.

    An article without FAQ gets an empty digest: no items, `jsonld == {}` (an FAQPage without
    questions is invalid for search engines, so none is emitted), and empty markdown and html.
    """
    items = article.faq
    if not items:
        return FaqDigest(items=(), short_answers=(), jsonld={}, markdown="", html="")
    limit = settings.short_answer_chars
    shorts = tuple(
        short_answer(i.answer, limit, lang=article.lang, base_url=article.url) for i in items
    )
    return FaqDigest(
        items=items,
        short_answers=shorts,
        jsonld=faq_jsonld(items, base_url=article.url),
        markdown=_digest_markdown(article),
        html=_digest_html(article),
    )


def faq_jsonld(items: Sequence[FaqItem], *, base_url: str = "") -> dict[str, Any]:
    """schema.org FAQPage with full answers (https://schema.org/FAQPage)."""
    # Answer.text may hold basic HTML such as links and lists:
    # https://developers.google.com/search/docs/appearance/structured-data/faqpage
    return {
        "@context": "https://schema.org",
        "@type": "FAQPage",
        "mainEntity": [
            {
                "@type": "Question",
                "name": question_text(item.question),
                "acceptedAnswer": {
                    "@type": "Answer",
                    "text": render_html(item.answer, base_url=base_url).strip(),
                },
            }
            for item in items
        ],
    }


# JSON-LD is pasted into <script type="application/ld+json">, where "</script>" or "<!--" in
# the text would end or bend the element: <, > and & are written as JSON escapes, which every
# JSON parser reads back as the same characters (the HTML spec's advice for script data,
# https://html.spec.whatwg.org/multipage/scripting.html#restrictions-for-contents-of-script-elements).
SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                             "\u2028": "\\u2028", "\u2029": "\\u2029"})


def jsonld_text(jsonld: Mapping[str, Any]) -> str:
    """The JSON-LD file's text: indented UTF-8 JSON, safe inside a script element."""
    return json.dumps(dict(jsonld), ensure_ascii=False, indent=2).translate(SCRIPT_SAFE) + "\n"


# faq.md and digest.md are rendered by other tools' Markdown, which pass raw HTML through.
MARKDOWN_MARKS_RE = re.compile(r"([\\`*_\[\]|~])")
# What opens an HTML tag, comment or declaration; code spans and fenced blocks are left alone.
TAG_OPEN_RE = re.compile(r"<(?=[A-Za-z/!?])")
CODE_RE = re.compile(r"^(```|~~~).*?^\1[^\n]*$|(`+).+?(?<!`)\2(?!`)", re.DOTALL | re.MULTILINE)


def markdown_text(text: str) -> str:
    """Plain text (a title) as Markdown that shows exactly that text: no tag, link or emphasis."""
    return MARKDOWN_MARKS_RE.sub(r"\\\1", escape(text, quote=False))


def inert_html(markdown_text: str) -> str:
    """Markdown with every raw HTML tag shown as text (`&lt;script>`), code left as written."""
    if "<" not in markdown_text:
        return markdown_text  # no tag to show: the code scan would give the text back
    out: list[str] = []
    last = 0
    for code in CODE_RE.finditer(markdown_text):
        out.append(TAG_OPEN_RE.sub("&lt;", markdown_text[last : code.start()]))
        out.append(code.group())
        last = code.end()
    out.append(TAG_OPEN_RE.sub("&lt;", markdown_text[last:]))
    return "".join(out)


def faq_label(lang: str) -> str:
    """The word for FAQ in the article's language."""
    return "よくある質問" if lang.startswith("ja") else "FAQ"


def _digest_markdown(article: Article) -> str:
    """Standalone faq.md: title heading, a link back, then each question and its full answer."""
    label = faq_label(article.lang)
    parts = [f"# {label}: {markdown_text(article.title)}"]
    if article.url:
        link_text = "元の記事" if article.lang.startswith("ja") else "Read the article"
        parts.append(f"[{link_text}]({article.url})")
    for item in article.faq:
        parts.append(f"## {inert_html(_one_line(item.question))}\n\n"
                     f"{inert_html(item.answer.strip())}")
    return "\n\n".join(parts) + "\n"


def _digest_html(article: Article) -> str:
    """The FAQ as a sanitized HTML fragment with full answers."""
    base = article.url
    parts = [f"<h2>{escape(faq_label(article.lang))}: {escape(article.title)}</h2>"]
    for item in article.faq:
        question = render_inline_html(_one_line(item.question), base_url=base)
        parts.append(f"<h3>{question}</h3>\n{render_html(item.answer, base_url=base).strip()}")
    return clean_html("\n".join(parts)) + "\n"


def _one_line(markdown_text: str) -> str:
    """Inline Markdown on one line, for use inside a heading."""
    return join_lines(markdown_text.split("\n"))


def _entry_text(
    entry: dict[Any, Any], keys: tuple[str, str], index: int, where: str, fix: str
) -> str:
    """The text under the first present key of a front matter faq entry."""
    value = next((entry[k] for k in keys if k in entry), None)
    usable = isinstance(value, str | int | float) and not isinstance(value, bool)
    if not usable or not str(value).strip():
        raise InputError(
            f"faq item {index} needs text under {keys[0]!r} or {keys[1]!r}", where=where, fix=fix
        )
    return str(value).strip()


def _section_pairs(section: Section, source: str) -> tuple[list[FaqItem], list[str]]:
    """Pairs of one FAQ section, by running its chunks through a small state machine."""
    items: list[FaqItem] = []
    warnings: list[str] = []
    question: Chunk | None = None
    answer: list[str] = []

    def finish() -> None:
        if question is None:
            return
        full_answer = strip_raw_html("\n\n".join(answer))
        if full_answer:
            items.append(FaqItem(strip_raw_html(question.markdown), full_answer, question.line))
        else:
            warnings.append(
                f"{source}:{question.line}: question {_short(question.markdown)!r} has no answer"
                " — write the answer below it"
            )

    for chunk in _chunks(section.blocks):
        if chunk.kind == "q":
            finish()
            question, answer = chunk, []
        elif question is not None:
            if chunk.markdown:
                answer.append(chunk.markdown)
        elif chunk.kind == "a":
            warnings.append(
                f"{source}:{chunk.line}: answer {_short(chunk.markdown)!r} has no question"
                " — put a question before it"
            )
    finish()
    return items, warnings


def _chunks(blocks: Sequence[Block]) -> Iterator[Chunk]:
    """Chunks of a section's blocks, in order."""
    for block in blocks:
        if block.kind == "heading":
            yield Chunk("q", _clean_question(_heading_inline(block.markdown)), block.line)
        elif block.kind == "paragraph":
            yield from _paragraph_chunks(block)
        elif block.kind in {"bullet_list", "ordered_list"}:
            yield from _list_chunks(block)
        elif block.kind == "html":
            yield from _html_chunks(block)
        else:
            yield Chunk("text", block.markdown, block.line)


def _paragraph_chunks(block: Block) -> Iterator[Chunk]:
    """A paragraph split at Q/A marker lines; else one question or text chunk."""
    markdown_text, line = block.markdown, block.line
    lines = markdown_text.split("\n")
    if any(QUESTION_MARK.match(x) or ANSWER_MARK.match(x) for x in lines):
        yield from _marked_chunks(lines, line)
    elif IMAGE_DEBRIS.match(markdown_text.strip()):
        return
    elif (inline := _inline_pair(markdown_text)) is not None:
        question, answer = inline
        yield Chunk("q", question, line)
        if answer:
            yield Chunk("a", answer, line + markdown_text[: -len(answer)].count("\n"))
    elif _is_question(markdown_text, plain=block.text):
        yield Chunk("q", _clean_question(markdown_text), line)
    else:
        yield Chunk("text", markdown_text, line)


def _inline_pair(markdown_text: str) -> tuple[str, str] | None:
    """(question, answer) of a paragraph opened by a bold question; None for other paragraphs."""
    match = INLINE_QUESTION.match(markdown_text)
    if match is None:
        return None
    question = join_lines(match.group("q").split("\n")).strip()
    return question, match.group("rest").strip()


def _marked_chunks(lines: Sequence[str], line: int) -> Iterator[Chunk]:
    """Lines grouped by the Q/A marker that starts each group."""
    kind: ChunkKind = "text"
    group: list[str] = []
    start = line
    for offset, text in enumerate(lines):
        marker = QUESTION_MARK.match(text) or ANSWER_MARK.match(text)
        if marker:
            if group:
                yield _marked_chunk(kind, group, start)
            kind = "q" if marker.re is QUESTION_MARK else "a"
            group, start = [text], line + offset
        else:
            group.append(text)
    if group:
        yield _marked_chunk(kind, group, start)


def _marked_chunk(kind: ChunkKind, lines: Sequence[str], line: int) -> Chunk:
    """One chunk with its marker removed and emphasis around the marker balanced."""
    text = "\n".join(lines)
    if kind == "q":
        return Chunk("q", _clean_question(text), line)
    if kind == "a":
        return Chunk("a", _strip_marker(ANSWER_MARK, text), line)
    return Chunk("text", text, line)


def _list_chunks(block: Block) -> Iterator[Chunk]:
    """Questions in list items (WordPress pairs, `1. …?`, `- Q: …`), or the list as answer text."""
    items = block.items
    if not any(_item_is_question(items, i) for i in range(len(items))):
        yield Chunk("text", block.markdown, block.line)
        return
    source_lines = block.markdown.split("\n")
    search_from = 0
    index = 0
    while index < len(items):
        item = items[index]
        line, search_from = _item_line(source_lines, item, search_from, block.line)
        item_lines = item.split("\n")
        if QUESTION_MARK.match(item) or ANSWER_MARK.match(item):
            yield from _marked_chunks(item_lines, line)
        elif _wordpress_question(items, index):
            yield Chunk("q", _clean_question(item), line)
            index += 1  # the lone "-" that follows
        elif _is_question(item_lines[0]):
            yield Chunk("q", _clean_question(item_lines[0]), line)
            rest = "\n".join(item_lines[1:]).strip()
            if rest:
                yield Chunk("a", rest, line + 1)
        elif item:
            marker = f"{index + 1}." if block.kind == "ordered_list" else "-"
            yield Chunk("text", f"{marker} {item}", line)
        index += 1


def _item_is_question(items: Sequence[str], index: int) -> bool:
    """Whether list item `index` starts a question in any list convention."""
    item = items[index]
    return bool(
        QUESTION_MARK.match(item) or ANSWER_MARK.match(item)
        or _wordpress_question(items, index)
        or (item and _is_question(item.split("\n")[0]))
    )


def _wordpress_question(items: Sequence[str], index: int) -> bool:
    """A non-empty item followed by an empty one: the seed's `- question` / `-` pattern."""
    return bool(items[index]) and index + 1 < len(items) and not items[index + 1].strip()


def _item_line(
    source_lines: Sequence[str], item: str, start: int, first_line: int
) -> tuple[int, int]:
    """The file line of a list item, found by its first line within the list's source."""
    head = item.split("\n")[0].strip()
    for offset in range(start, len(source_lines)):
        if head and head in source_lines[offset]:
            return first_line + offset, offset + 1
    return first_line + start, start


def _html_chunks(block: Block) -> Iterator[Chunk]:
    """`<details><summary>` blocks as pairs; a bare `</details>` is skipped; other HTML is text."""
    html = block.markdown
    opens = list(DETAILS_OPEN.finditer(html))
    pairs: list[tuple[int, tuple[str, str]]] = []
    line, counted = block.line, 0
    for index, opening in enumerate(opens):
        line += html.count("\n", counted, opening.start())
        counted = opening.start()
        end = opens[index + 1].start() if index + 1 < len(opens) else len(html)
        pair = _summary_pair(html[opening.end() : end])
        if pair is not None:
            pairs.append((line, pair))
    if not pairs:
        if re.fullmatch(r"\s*</details>\s*", html, re.IGNORECASE) is None:
            yield Chunk("text", html, block.line)
        return
    for line, (question, answer) in pairs:
        yield Chunk("q", _clean_question(question), line)
        if answer:
            yield Chunk("a", answer, line)


def _summary_pair(piece: str) -> tuple[str, str] | None:
    """Question and answer of the text after one `<details>`: summary, then up to `</details>`."""
    opening = SUMMARY_OPEN.match(piece)
    lowered = piece.lower()
    close = lowered.find("</summary>")
    if opening is None or close < opening.end():
        return None
    end = lowered.find("</details>", close)
    answer = piece[close + len("</summary>") : end if end >= 0 else len(piece)]
    return piece[opening.end() : close], answer.strip()


def _is_question(markdown_text: str, *, plain: str | None = None) -> bool:
    """A short paragraph whose every sentence ends in ? or ？."""
    tail = markdown_text.rstrip().rstrip("」』）)\"'”’*_ ")
    if len(markdown_text) > 4 * MAX_QUESTION_CHARS or not tail.endswith(QUESTION_ENDS):
        return False
    text = join_lines((plain if plain is not None else question_text(markdown_text)).split("\n"))
    if not text or len(text) > MAX_QUESTION_CHARS:
        return False
    sentences = split_sentences(text)
    return bool(sentences) and all(
        s.rstrip("」』）)\"'”’*_ ").endswith(QUESTION_ENDS) for s in sentences
    )


def _clean_question(markdown_text: str) -> str:
    """A question without its Q marker, wrapping emphasis or line breaks."""
    text = _strip_marker(QUESTION_MARK, markdown_text)
    text = join_lines(text.split("\n"))
    for wrap in ("**", "__", "*", "_"):
        inner = text[len(wrap) : -len(wrap)]
        if text.startswith(wrap) and text.endswith(wrap) and inner and wrap not in inner:
            text = inner.strip()
            break
    return text


def _strip_marker(marker: re.Pattern[str], markdown_text: str) -> str:
    """Remove a leading Q/A marker, dropping the emphasis that wrapped the whole line."""
    match = marker.match(markdown_text)
    if match is None:
        return markdown_text.strip()
    rest = markdown_text[match.end() :]
    opened = match.group("open")
    if opened and not (match.group("mid") or match.group("close")) and rest.rstrip().endswith(
        opened
    ):
        rest = rest.rstrip()[: -len(opened)]
    return rest.strip()


def _heading_inline(markdown_text: str) -> str:
    """The inline Markdown of an ATX or setext heading."""
    lines = markdown_text.split("\n")
    if lines[0].lstrip().startswith("#"):
        text = lines[0].strip().lstrip("#")
        return re.sub(r"\s+#+\s*$", "", text).strip()
    return join_lines(lines[:-1])


def _dedupe(items: Sequence[FaqItem], source: str, warnings: list[str]) -> tuple[FaqItem, ...]:
    """Keep the first of questions that read the same after normalization."""
    seen: dict[str, FaqItem] = {}
    for item in items:
        key = normalize_question(question_text(item.question))
        if key in seen:
            warnings.append(
                f"{source}:{item.line}: question {_short(item.question)!r} repeats the one on"
                f" line {seen[key].line} — the first is kept"
            )
        else:
            seen[key] = item
    return tuple(seen.values())


def _short(text: str, width: int = 40) -> str:
    """A one-line excerpt for messages."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
