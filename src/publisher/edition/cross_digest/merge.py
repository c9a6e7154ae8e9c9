"""One FAQ digest across several posts, with near-duplicate questions merged.

Pure core of `publish digest posts/ --since DATE | --last N`: `select_posts` picks the files,
the caller parses them, and `build_cross_digest` groups the questions by article. A question
that reads the same as an earlier one after normalization (width, punctuation and case
ignored) is merged into the first occurrence, which records where else it was asked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from html import escape
from pathlib import Path
from typing import Any

from publisher.config.settings import FaqSettings
from publisher.errors import InputError
from publisher.model import Article, FaqDigest, FaqItem
from publisher.source.condense import short_answer
from publisher.source.faq import (
    faq_jsonld,
    inert_html,
    markdown_text,
    normalize_question,
    question_text,
)
from publisher.source.markdown import render_inline_html
from publisher.source.sanitize import clean_html

DateLike = date | datetime | str | None


@dataclass(frozen=True)
class DigestEntry:
    """One question of the digest, with the posts that asked it again."""

    item: FaqItem
    short_answer: str
    also_in: tuple[str, ...] = ()  # titles of later posts with the same question


@dataclass(frozen=True)
class DigestGroup:
    """The questions first asked by one article."""

    title: str
    url: str
    slug: str
    date: str
    entries: tuple[DigestEntry, ...]


@dataclass(frozen=True)
class CrossDigest:
    """The FAQ digest of several posts: grouped for the newsletter, merged for JSON-LD."""

    groups: tuple[DigestGroup, ...]
    items: tuple[FaqItem, ...]
    short_answers: tuple[str, ...]
    jsonld: dict[str, Any] = field(default_factory=dict)
    markdown: str = ""
    html: str = ""
    lang: str = "en"
    posts: int = 0  # articles that brought at least one question (repeats included)
    without_faq: tuple[str, ...] = ()  # sources of the given articles that have no FAQ
    tags: tuple[str, ...] = ()  # the articles' tags, most used first

    def as_faq_digest(self) -> FaqDigest:
        """The same digest in the single-article shape editions carry."""
        return FaqDigest(self.items, self.short_answers, self.jsonld, self.markdown, self.html)


def build_cross_digest(articles: Sequence[Article], settings: FaqSettings) -> CrossDigest:
    """Group the articles' FAQs in the given order, merging repeated questions into the first."""
    lang = common_lang(articles)
    groups = _merged_groups(articles, settings)
    entries = [entry for group in groups for entry in group.entries]
    items = tuple(e.item for e in entries)
    return CrossDigest(
        groups=groups,
        items=items,
        short_answers=tuple(e.short_answer for e in entries),
        jsonld=faq_jsonld(items) if items else {},
        markdown=_markdown(groups, lang),
        html=_html(groups, lang),
        lang=lang,
        posts=sum(1 for a in articles if a.faq),
        without_faq=tuple(a.source for a in articles if not a.faq),
        tags=_tags_by_use(articles),
    )


def by_language(articles: Sequence[Article]) -> dict[str, list[Article]]:
    """The articles per primary language (`ja`, `en`…), each list in the given order."""
    groups: dict[str, list[Article]] = {}
    for article in articles:
        groups.setdefault(primary_lang(article), []).append(article)
    return groups


def primary_lang(article: Article) -> str:
    """`ja` for `ja-JP`: the part of the language tag a digest is split by."""
    return (article.lang or "en").split("-")[0].split("_")[0].lower()


def select_posts(
    paths_with_dates: Iterable[tuple[Path, DateLike]],
    since: date | None = None,
    last: int | None = None,
) -> list[Path]:
    """Posts dated on or after `since`, then the `last` N newest; oldest first.

    Undated posts sort before dated ones and are left out whenever `since` is given.
    """
    if last is not None and last < 1:
        raise InputError(f"--last {last} selects nothing", fix="give a number of posts >= 1")
    dated = [(as_date(d, where=str(p)), p) for p, d in paths_with_dates]
    if since is not None:
        dated = [(d, p) for d, p in dated if d is not None and d >= since]
    dated.sort(key=lambda pair: (pair[0] is not None, pair[0] or date.min, str(pair[1])))
    if last is not None:
        dated = dated[-last:]
    return [p for _, p in dated]


def as_date(value: DateLike, *, where: str = "") -> date | None:
    """The calendar date of a front-matter date value."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return datetime.fromisoformat(value.strip()).date()
    except ValueError as exc:
        raise InputError(
            f"date {value!r} is not an ISO 8601 date", where=where,
            fix="write it as  date: 2025-04-01",
        ) from exc


def _merged_groups(articles: Sequence[Article], settings: FaqSettings) -> tuple[DigestGroup, ...]:
    """Per-article entries, each question kept only where it first appears."""
    first_seen: dict[str, tuple[int, int]] = {}  # key → (group index, entry index)
    grouped: list[tuple[Article, list[DigestEntry]]] = []
    for article in articles:
        entries: list[DigestEntry] = []
        grouped.append((article, entries))
        for item in article.faq:
            key = normalize_question(question_text(item.question))
            if key in first_seen:
                g, e = first_seen[key]
                earlier = grouped[g][1][e]
                if article.title not in earlier.also_in:
                    grouped[g][1][e] = DigestEntry(
                        earlier.item, earlier.short_answer, (*earlier.also_in, article.title)
                    )
                continue
            first_seen[key] = (len(grouped) - 1, len(entries))
            short = short_answer(
                item.answer, settings.short_answer_chars, lang=article.lang, base_url=article.url
            )
            entries.append(DigestEntry(item, short))
    return tuple(
        DigestGroup(a.title, a.url, a.slug, a.date, tuple(entries))
        for a, entries in grouped
        if entries
    )


def common_lang(articles: Sequence[Article]) -> str:
    """The language all articles share, else English for the digest's own labels."""
    langs = {primary_lang(a) for a in articles}
    return langs.pop() if len(langs) == 1 else "en"


def _tags_by_use(articles: Sequence[Article]) -> tuple[str, ...]:
    """Every tag of the articles, the most used first, ties in order of first use."""
    counts: dict[str, int] = {}
    spelling: dict[str, str] = {}
    for article in articles:
        for tag in article.tags:
            key = tag.casefold()
            spelling.setdefault(key, tag)
            counts[key] = counts.get(key, 0) + 1
    order = sorted(counts, key=lambda k: -counts[k])  # sorted() is stable: first use breaks ties
    return tuple(spelling[k] for k in order)


def _labels(lang: str) -> dict[str, str]:
    """Digest chrome in the digest's language."""
    if lang == "ja":
        return {"title": "よくある質問ダイジェスト", "also": "関連記事", "more": "記事を読む"}
    return {"title": "FAQ digest", "also": "Also asked in", "more": "Read the article"}


def _markdown(groups: Sequence[DigestGroup], lang: str) -> str:
    """Digest Markdown: a heading per article (linked), then each question and full answer."""
    labels = _labels(lang)
    parts = [f"# {labels['title']}"]
    for group in groups:
        title = markdown_text(group.title)
        parts.append(f"## [{title}]({group.url})" if group.url else f"## {title}")
        for entry in group.entries:
            parts.append(f"### {inert_html(' '.join(entry.item.question.split()))}")
            parts.append(inert_html(entry.item.answer.strip()))
            if entry.also_in:
                also = ", ".join(markdown_text(other) for other in entry.also_in)
                parts.append(f"*{labels['also']}: {also}*")
    return "\n\n".join(parts) + "\n"


def _html(groups: Sequence[DigestGroup], lang: str) -> str:
    """Newsletter HTML: per article, questions with short answers and a link to read more."""
    labels = _labels(lang)
    parts = [f"<h2>{escape(labels['title'])}</h2>"]
    for group in groups:
        title = escape(group.title)
        if group.url:
            title = f'<a href="{escape(group.url)}">{title}</a>'
        parts.append(f"<h3>{title}</h3>")
        for entry in group.entries:
            question = render_inline_html(" ".join(entry.item.question.split()))
            parts.append(f"<p><strong>{question}</strong></p>")
            parts.append(f"<p>{escape(entry.short_answer)}</p>")
        if group.url:
            parts.append(f'<p><a href="{escape(group.url)}">{escape(labels["more"])}</a></p>')
    return clean_html("\n".join(parts)) + "\n"
