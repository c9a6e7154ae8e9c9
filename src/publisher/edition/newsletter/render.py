"""The newsletter: Article + FAQ digest → Jinja2 → MJML → HTML, plus its plain-text twin.

`load_templates` is the only I/O (the template, and Jinja's compiled copy of it in the user's
cache folder); `render_newsletter` is pure. The result carries placeholder
markers for the recipient's name and unsubscribe URL; `personalize` fills them per subscriber
without recompiling anything.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import jinja2
import mjml
from jinja2.bccache import Bucket
from markupsafe import Markup, escape

import publisher
from publisher.config.settings import Config
from publisher.edition.lede import summary_points, summary_sentences
from publisher.edition.newsletter import placeholders
from publisher.edition.newsletter.html import (
    FONTS,
    PALETTE,
    block_parts,
    email_html,
    email_inline_html,
    keep_phrases,
)
from publisher.edition.newsletter.placeholders import PLACEHOLDERS, marker
from publisher.edition.newsletter.plaintext import LinkRefs, TextRenderer, heading
from publisher.edition.newsletter.strings import base_lang, chrome_strings, display_date, fill
from publisher.errors import ConfigError
from publisher.model import (
    Article,
    Block,
    FaqDigest,
    Newsletter,
    Recipient,
    Section,
    SectionRole,
)
from publisher.source.condense import fit_sentences
from publisher.source.markdown import join_blocks
from publisher.source.sanitize import absolute_url

__all__ = [
    "PLACEHOLDERS", "Templates", "load_templates", "personalize", "render_newsletter",
    "templates_dir",
]

TEMPLATE_NAME = "newsletter.mjml.j2"
CACHE_ENV = "PUBLISHER_CACHE_DIR"
PREHEADER_CHARS = {"ja": 90, "en": 140}
CJK_LANGS = frozenset({"ja", "zh", "ko"})
RTL_LANGS = frozenset({"ar", "fa", "he", "ur"})
UNDEFINED = re.compile(r"'(?:[^']*object)?'?\s*has no attribute '([^']+)'|'([^']+)' is undefined")


@dataclass(frozen=True)
class Templates:
    """A loaded newsletter template and where it came from, for error messages."""

    directory: Path
    template: jinja2.Template

    @property
    def path(self) -> Path:
        """The template file, as error messages name it."""
        return self.directory / TEMPLATE_NAME


def templates_dir() -> Path:
    """The built-in templates: packaged in the wheel, else the repo's templates/ (editable)."""
    packaged = Path(publisher.__file__).parent / "templates"
    if (packaged / TEMPLATE_NAME).is_file():
        return packaged
    return Path(publisher.__file__).resolve().parents[2] / "templates"


def load_templates(directory: Path | None) -> Templates:
    """Read the template folder (a user override, else the built-in) into a strict environment."""
    folder = directory or templates_dir()
    if not (folder / TEMPLATE_NAME).is_file():
        raise ConfigError(
            f"no {TEMPLATE_NAME} in the templates folder",
            where=str(folder),
            fix=f"copy {templates_dir() / TEMPLATE_NAME} there, or drop the templates setting",
        )
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
        keep_trailing_newline=True,
        bytecode_cache=_bytecode_cache(),
    )
    try:
        template = env.get_template(TEMPLATE_NAME)
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(
            f"template syntax error: {exc.message}",
            where=f"{folder / TEMPLATE_NAME}:{exc.lineno}",
            fix="fix the Jinja2 syntax at that line",
        ) from exc
    return Templates(directory=folder, template=template)


def cache_dir() -> Path | None:
    """Where publisher keeps what it can rebuild: $PUBLISHER_CACHE_DIR, else the XDG cache home."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "publisher"
    try:
        return Path.home() / ".cache" / "publisher"
    except RuntimeError:  # no home directory: run without a cache
        return None


class _BytecodeCache(jinja2.FileSystemBytecodeCache):
    """Jinja's own cache of compiled templates (a compile costs ~15 ms a run); a copy that
    cannot be read or written is skipped, never fatal: the template is compiled instead.
    https://jinja.palletsprojects.com/en/3.1.x/api/#bytecode-cache"""

    def load_bytecode(self, bucket: Bucket) -> None:
        """A truncated or unreadable copy counts as none."""
        try:
            super().load_bytecode(bucket)
        except (OSError, EOFError, ValueError, pickle.UnpicklingError):
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        """A full disk or a read-only cache leaves the run as it was."""
        try:
            super().dump_bytecode(bucket)
        except OSError:
            return


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """The cache in a folder only this user can write: its files are unpickled when read."""
    root = cache_dir()
    if root is None:
        return None
    folder = root / "templates"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        stat = folder.stat()
    except OSError:
        return None
    if stat.st_uid != os.getuid() or stat.st_mode & 0o022:
        return None
    return _BytecodeCache(str(folder))


def render_newsletter(
    article: Article, digest: FaqDigest, config: Config, templates: Templates
) -> Newsletter:
    """Render the email once; per-recipient values stay as placeholder markers."""
    lang = article.lang or "en"
    strings = chrome_strings(lang, config)
    nonce = _nonce(article, digest, config)
    # Subject and preheader travel outside the body too: no marker may be forged in them.
    subject = placeholders.neutralize(_one_line(strings["subject_prefix"] + article.title))
    preheader = placeholders.neutralize(preheader_text(article))
    context = _context(article, digest, config, strings, nonce, subject, preheader)
    mjml_source = _render_template(templates, context)
    # fonts={}: mjml links Google Fonts whenever a family it knows (Roboto) is named, so every
    # reader's mail client would fetch from Google; the system font stack needs no web font.
    # https://documentation.mjml.io/#mj-font
    compiled = mjml.mjml2html(mjml_source, disable_comments=False, fonts={})
    page = _place_markers(compiled, nonce, strings, escape=True)
    text = _place_markers(plain_text(article, digest, config, strings, nonce), nonce, strings,
                          escape=False)
    return Newsletter(
        subject=subject, preheader=preheader, html=page, text=text,
        html_bytes=len(page.encode("utf-8")),
    )


def personalize(newsletter: Newsletter, recipient: Recipient) -> tuple[str, str]:
    """(html, text) for one subscriber: a join over pre-split pieces, no rendering."""
    url = recipient.unsubscribe_url
    page = placeholders.fill(
        placeholders.split(newsletter.html), placeholders.html_values(recipient.name, url)
    )
    text = placeholders.fill(
        placeholders.split(newsletter.text), placeholders.text_values(recipient.name, url)
    )
    return page, text


def preheader_text(article: Article) -> str:
    """The inbox preview line: whole sentences of the summary (see `lede`), never list markers.

    Sentences are added while they fit; a first sentence longer than the line is cut at a word
    (or, in Japanese, a BudouX phrase) boundary and ends with `…`. No space follows 。.
    """
    limit = PREHEADER_CHARS.get(base_lang(article.lang), PREHEADER_CHARS["en"])
    sentences = [_one_line(s) for s in summary_sentences(article, max_sentences=3)]
    if not sentences:
        points = [_one_line(p) for p in summary_points(article)]
        sentences = [_as_sentence(p, article.lang) for p in points] or [_one_line(article.title)]
    return fit_sentences([s for s in sentences if s], limit, lang=article.lang)


def _as_sentence(point: str, lang: str) -> str:
    """A list point ended like a sentence, so points read as prose in one line."""
    if not point or point[-1] in ".!?。！？":
        return point
    return point + ("。" if base_lang(lang) in CJK_LANGS else ".")


def web_url(article: Article, config: Config) -> str:
    """The article's canonical URL carrying the configured UTM parameters."""
    base = absolute_url(article.url, config.site.url) or config.site.url
    params = dict(config.newsletter.utm)
    if article.slug and "utm_campaign" not in params:
        params["utm_campaign"] = article.slug
    parts = urlsplit(base)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(params)
    return urlunsplit(parts._replace(query=urlencode(query)))


def _context(
    article: Article, digest: FaqDigest, config: Config, strings: Mapping[str, str],
    nonce: Mapping[str, str], subject: str, preheader: str,
) -> dict[str, Any]:
    """Everything the template may use; article HTML is sanitized Markup, the rest plain text."""
    base = _base_url(article, config)
    lang = article.lang or "en"
    site = config.site
    faq = [
        {
            "question": email_inline_html(item.question, base_url=base),
            "answer": email_html(item.answer, base_url=base),
        }
        for item in digest.items[: config.faq.max_items]
    ]
    flow = [
        _flow_entry(kind, section, base, lang, strings)
        for kind, section in reading_order(article, bool(faq))
    ]
    chrome = dict(strings)
    chrome["why_received"] = fill(strings, "why_received", site=site.name)
    byline = [fill(strings, "by", author=article.author)] if article.author else []
    byline += [display_date(article.date, article.lang)] if article.date else []
    hero = hero_url(article, config)
    link = web_url(article, config)
    return {
        "lang": article.lang or "en",
        "dir": "rtl" if base_lang(article.lang) in RTL_LANGS else "ltr",
        "subject": subject,
        "preheader": preheader,
        "font": FONTS.get(base_lang(article.lang), FONTS["en"]),
        "colors": PALETTE,
        "strings": chrome,
        "site": {
            "name": site.name,
            "url": site.url,
            "logo": absolute_url(site.logo, site.url) if site.logo else "",
            "logo_alt": fill(strings, "logo_alt", site=site.name),
            "address": site.address,
        },
        "article": {
            "title": article.title,
            "title_html": keep_phrases(escape(article.title), lang),
            "byline": " · ".join(byline),
            "image": hero if hero.startswith(("https://", "http://")) else "",
            "image_alt": article.image_alt or article.title,
            "url": absolute_url(article.url, site.url),
        },
        "greeting": fill(strings, "greeting", name=nonce[placeholders.NAME]),
        "lead": block_parts(article.lead, base_url=base, lang=lang),
        "flow": flow,
        "sections": [f for f in flow if f["role"] == "body"],
        "key_points": _key_points(article, base),
        "faq": faq,
        "closing": [f for f in flow if f["role"] == "closing"],
        "cta_url": link,
        "web_url": link,
        "unsubscribe_url": nonce[placeholders.UNSUBSCRIBE_URL],
    }


def reading_order(article: Article, has_faq: bool) -> list[tuple[SectionRole, Section | None]]:
    """The sections in the editor's order with their roles; the FAQ block sits where the first
    FAQ section was (front-matter questions only: before the closing, else last)."""
    order: list[tuple[SectionRole, Section | None]] = []
    placed = not has_faq
    for section in article.sections:
        if section.role != "faq":
            order.append((section.role, section))
        elif not placed:
            order.append(("faq", section))
            placed = True
    if not placed:
        at = next((i for i, (role, _) in enumerate(order) if role == "closing"), len(order))
        order.insert(at, ("faq", None))
    return order


def _flow_entry(
    role: SectionRole, section: Section | None, base: str, lang: str, strings: Mapping[str, str]
) -> dict[str, Any]:
    """One entry of the email's reading order, headed by the editor's own heading."""
    if section is None or not section.heading:  # front-matter questions, question headings
        heading = keep_phrases(escape(strings["faq"]), lang)
        return {"role": role, "heading": heading, "level": 2, "parts": (), "html": Markup("")}
    heading = keep_phrases(email_inline_html(section.heading, base_url=base), lang)
    parts = () if role == "faq" else block_parts(section.blocks, base_url=base, lang=lang)
    return {
        "role": role, "heading": heading, "level": section.level, "parts": parts,
        "html": _summary_html(section, base) if role == "summary" else Markup(""),
    }


def _summary_html(section: Section, base: str) -> Markup:
    """A summary section as one styled HTML run for its box."""
    return email_html(join_blocks([b.markdown for b in section.blocks]), base_url=base)


def _key_points(article: Article, base: str) -> Markup:
    """The summary section as one styled HTML run for the key-points box; empty if none."""
    summary = article.section("summary")
    return Markup("") if summary is None else _summary_html(summary, base)


def _render_template(templates: Templates, context: Mapping[str, Any]) -> str:
    """Fill the template; a variable it needs but we do not provide is a ConfigError."""
    try:
        return templates.template.render(context)
    except jinja2.UndefinedError as exc:
        match = UNDEFINED.search(str(exc))
        name = (match.group(1) or match.group(2)) if match else str(exc)
        raise ConfigError(
            f"template uses undefined variable {name!r}",
            where=str(templates.path),
            fix=f"remove it or use one of: {', '.join(sorted(context))}",
        ) from exc


def plain_text(
    article: Article, digest: FaqDigest, config: Config, strings: Mapping[str, str],
    nonce: Mapping[str, str],
) -> str:
    """The text/plain part: readable alone, headings marked, links numbered and listed last."""
    base = _base_url(article, config)
    refs = LinkRefs()
    render = TextRenderer(refs=refs, base_url=base, image_label=strings["image"])
    out = [fill(strings, "greeting", name=nonce[placeholders.NAME]), heading(article.title, 1)]
    byline = [fill(strings, "by", author=article.author)] if article.author else []
    out += [" · ".join(byline + ([display_date(article.date, article.lang)] if article.date
                                  else []))]
    out.append(_blocks_text(render, article.lead))
    items = digest.items[: config.faq.max_items]
    for role, section in reading_order(article, bool(items)):
        title = render.inline(section.heading) if section and section.heading else strings["faq"]
        out.append(heading(title, 2))
        if role == "faq":
            out += [
                f"{strings['question']}. {render.inline(i.question)}\n"
                f"{strings['answer']}. {render.blocks(i.answer)}"
                for i in items
            ]
        elif section is not None:
            out.append(_blocks_text(render, section.blocks))
    out.append(f"{strings['read_on_web']}: {web_url(article, config)}")
    out += [
        "\n".join([
            "-- ",
            fill(strings, "why_received", site=config.site.name),
            f"{config.site.name} · {config.site.address}",
            f"{strings['unsubscribe']}: {nonce[placeholders.UNSUBSCRIBE_URL]}",
        ]),
        refs.listing(strings["links"]),
    ]
    return "\n\n".join(part for part in out if part.strip()) + "\n"


def _blocks_text(render: TextRenderer, blocks: tuple[Block, ...]) -> str:
    """Article blocks as plain text, a blank line between them."""
    return render.joined_blocks([block.markdown for block in blocks])


def _place_markers(
    rendered: str, nonce: Mapping[str, str], strings: Mapping[str, str], *, escape: bool
) -> str:
    """Strip forged marker characters, then turn our nonces into the real placeholder markers."""
    reader = strings["reader"]
    default = placeholders.html_values(reader, "")[placeholders.NAME] if escape else reader
    clean = placeholders.neutralize(rendered)
    clean = clean.replace(nonce[placeholders.NAME], marker(placeholders.NAME, default))
    return clean.replace(nonce[placeholders.UNSUBSCRIBE_URL], marker(placeholders.UNSUBSCRIBE_URL))


def _nonce(article: Article, digest: FaqDigest, config: Config) -> dict[str, str]:
    """Stand-ins no article can contain (they hash the article itself), and deterministic."""
    source = article.content_hash or repr((article, digest))  # the hash already covers the text
    seed = hashlib.sha256(f"{source}|{config!r}".encode()).hexdigest()
    return {key: f"x{seed[:24]}{index}x" for index, key in enumerate(PLACEHOLDERS)}


def hero_url(article: Article, config: Config) -> str:
    """Where the email loads the hero image from: `image` resolved against the article's URL."""
    return absolute_url(article.image, _base_url(article, config)) if article.image else ""


def _base_url(article: Article, config: Config) -> str:
    """Relative links resolve against the article's URL, else the site's."""
    return absolute_url(article.url, config.site.url) or config.site.url


def _one_line(text: str) -> str:
    """Collapse whitespace: subjects and previews are single lines."""
    return " ".join(text.split())
