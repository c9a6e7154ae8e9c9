"""Read a post and parse it into an Article: the one place article files are opened.

`read_post` does the I/O and `parse_article` is pure: YAML front matter (PyYAML safe_load)
plus a markdown-it body split into lead, sections and FAQ. Any problem becomes an InputError
that names the file, the line when there is one, and the fix.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import unicodedata
from pathlib import Path

from publisher.errors import InputError
from publisher.model import Article
from publisher.source import faq
from publisher.source.blocks import ParsedBlock, parse_blocks, split_sections
from publisher.source.frontmatter import FrontMatter, read_front_matter, slugify
from publisher.source.lang import detect_lang
from publisher.source.writeback import without_syndication
from publisher.text.controls import lone_surrogate, strip_controls

MAX_POST_BYTES = 2_000_000
# markdown-it slows to ~25 µs a character on block floods (200,000 headings take a minute) and
# turns quadratic on unclosed `[` runs, so the body gets caps far above any real article (the
# seed is 3,000 characters): parsing stays under a few seconds whatever the text.
MAX_BODY_CHARS = 200_000
MAX_BRACKETS = 10_000
FENCE = "---"
# A POST argument that names a WordPress post (a path argument keeps one slash of `https://`).
URL_REF = re.compile(r"^(https?):/+(.*)$", re.IGNORECASE)
FENCE_ENDS = ("---", "...")


def is_wordpress_ref(text: str) -> bool:
    """Whether a POST argument names a WordPress post (URL or wp:SITE:ID), not a Markdown file."""
    return text.startswith("wp:") or bool(URL_REF.match(text))


def read_post(path: Path) -> str:
    """The post's text, BOM stripped and newlines normalised; the only file access.

    Only a regular file is read, opened without blocking (a FIFO would wait for a writer) and
    read to at most MAX_POST_BYTES + 1 bytes (st_size is 0 for /dev/zero and for /proc files).
    """
    where = str(path)
    if not path.exists():
        raise InputError("file not found", where=where, fix="check the path and the file name")
    if path.is_dir():
        raise InputError(
            "is a directory, not a post", where=where, fix="give the path of one .md file"
        )
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise InputError(
            f"cannot read the file ({exc.strerror})", where=where, fix="check its permissions"
        ) from exc
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InputError("not a regular file (a FIFO, device or socket); not read",
                             where=where, fix="give the path of one .md file")
        try:
            data = file.read(MAX_POST_BYTES + 1)
        except OSError as exc:
            raise InputError(
                f"cannot read the file ({exc.strerror})", where=where, fix="check the disk"
            ) from exc
    return decode_post(data, where=where)


def decode_post(data: bytes, *, where: str) -> str:
    """UTF-8 text of a post's bytes, with a byte offset when it is not UTF-8."""
    if len(data) > MAX_POST_BYTES:
        raise InputError(
            f"file is too large (over {MAX_POST_BYTES} bytes, the limit)",
            where=where, fix="split the post or remove embedded data",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not UTF-8 text (invalid byte 0x{data[exc.start]:02x} at byte offset {exc.start})",
            where=where, fix="save the file as UTF-8 (for example: iconv -t UTF-8)",
        ) from exc
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise InputError("the file is empty", where=where, fix="write front matter and a body")
    return text


def parse_article(text: str, *, source: str) -> Article:
    """A post's text as an Article; pure, and only InputError ever escapes."""
    if len(text) > MAX_POST_BYTES:
        raise InputError(
            "post is too large", where=source, fix=f"keep it under {MAX_POST_BYTES} characters"
        )
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    surrogate = lone_surrogate(text)
    if surrogate:
        raise InputError(
            f"the post holds a lone surrogate ({surrogate}), which is no character",
            where=source, fix="save the post as UTF-8 text",
        )
    text, removed = strip_controls(text)
    front_yaml, body_start = _split_front_matter(text, source)
    meta = read_front_matter(front_yaml, source=source)
    lines = text.split("\n")
    body_markdown = "\n".join(lines[body_start:])
    if not body_markdown.strip():
        raise InputError(
            "the article has no body", where=f"{source}:{body_start + 1}",
            fix="write the article text below the front matter",
        )
    _check_body_size(body_markdown, f"{source}:{body_start + 1}")
    # Blank out the front matter instead of cutting it, so token lines are file lines.
    blanked = "\n" * body_start + body_markdown
    parsed = _drop_title_heading(parse_blocks(blanked), meta.title)
    lead, sections = split_sections(parsed)
    extracted = faq.extract_faq(sections, explicit=meta.faq, source=source)
    return Article(
        source=source,
        title=meta.title,
        body_markdown=body_markdown,
        lead=lead,
        sections=extracted.sections,
        lang=meta.lang or detect_lang(body_markdown),
        slug=meta.slug or slugify(Path(source).stem),
        author=meta.author,
        date=meta.date,
        url=meta.url,
        image=meta.image,
        image_alt=meta.image_alt,
        tags=meta.tags,
        summary=meta.summary,
        social=meta.social,
        thread=meta.thread,
        faq=extracted.items,
        warnings=(*_control_warning(removed, source), *meta.warnings, *extracted.warnings),
        content_hash=content_hash(text),
    )


def _control_warning(removed: int, source: str) -> tuple[str, ...]:
    """Say what was dropped: control characters no newsletter or post can carry."""
    if not removed:
        return ()
    return (f"{source}: {removed} control character(s) removed (vertical tab and form feed"
            " became spaces; other C0 controls, U+FFFE and U+FFFF were dropped)",)


def _check_body_size(body: str, where: str) -> None:
    """Refuse a body too long or too bracket-heavy to parse quickly, before markdown-it sees it."""
    if len(body) > MAX_BODY_CHARS:
        raise InputError(
            f"the article body is too long ({len(body)} characters, limit {MAX_BODY_CHARS})",
            where=where, fix="split it into several posts",
        )
    brackets = body.count("[")
    if brackets > MAX_BRACKETS:
        raise InputError(
            f"the article body has {brackets} '[' characters (limit {MAX_BRACKETS})",
            where=where, fix="remove the run of brackets (no article needs that many links)",
        )


def content_hash(text: str) -> str:
    """The edition key: the post's text, ignoring the `syndication:` links --write-back adds."""
    canonical = without_syndication(text)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def _split_front_matter(text: str, source: str) -> tuple[str, int]:
    """The YAML between the opening and closing fences, and the index of the first body line."""
    lines = text.split("\n")
    if lines[0].rstrip() != FENCE:
        return "", 0
    for index in range(1, len(lines)):
        if lines[index].rstrip() in FENCE_ENDS:
            return "\n".join(lines[1:index]), index + 1
    raise InputError(
        "front matter opened on line 1 is never closed", where=f"{source}:1",
        fix="end the front matter with a line containing only ---",
    )


def _drop_title_heading(blocks: list[ParsedBlock], title: str) -> list[ParsedBlock]:
    """Drop a leading level-1 heading that repeats the title, so the lead is what follows it."""
    if blocks and blocks[0].heading_level == 1 and _same_text(blocks[0].block.text, title):
        return blocks[1:]
    return blocks


def _same_text(a: str, b: str) -> bool:
    """Equal after width folding, case folding and whitespace collapsing."""
    def fold(s: str) -> str:
        return " ".join(unicodedata.normalize("NFKC", s).casefold().split())
    return fold(a) == fold(b)


__all__ = ["FrontMatter", "decode_post", "is_wordpress_ref", "parse_article", "read_post",
           "slugify"]
