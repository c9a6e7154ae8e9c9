"""An RSS 2.0 or Atom feed's items, and each item as an Article; pure.

feedparser reads the document (well kept since 2002, every RSS and Atom dialect, dates in the
forms feeds really use); it is given the bytes, never a URL, so it never fetches anything itself.
An item's HTML is, in order of preference, `content:encoded` or Atom `<content>` (feedparser's
`content`), then `<description>` or `<summary>`. That HTML becomes the Markdown of a post file
exactly as a WordPress post's does (`source.wordpress.html`, then `parse_article`): the same
chrome removal, FAQ forms, escaping and sanitizing, with links resolved against the item's
link, so a feed item gives the Article its Markdown twin would. feedparser's own sanitizer and
relative-link rewriting are therefore off: doing both twice took two thirds of the reading time
(bench/feed.py).

Docs: https://feedparser.readthedocs.io/en/latest/reference.html (entries[i].id, .link,
.content, .summary, .published, .updated, .tags, .enclosures, version),
https://feedparser.readthedocs.io/en/latest/bozo.html (bozo_exception),
https://www.rssboard.org/rss-specification (guid, pubDate),
https://web.resource.org/rss/1.0/modules/content/ (content:encoded),
https://www.rfc-editor.org/rfc/rfc4287 (Atom id, published, updated, content).
"""

from __future__ import annotations

import calendar
import email.utils
import hashlib
import re
import xml.sax
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import feedparser

from publisher.errors import InputError
from publisher.model import Article
from publisher.source.feed.item import FeedItem
from publisher.source.frontmatter import slugify
from publisher.source.wordpress.article import WpPost, article_from_post
from publisher.source.wordpress.html import html_text

HTML_START = re.compile(rb"\s*(<!--.*?-->\s*)*<(!doctype\s+html|html)[\s>]", re.I | re.S)
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif")


@dataclass(frozen=True)
class Feed:
    """A feed document: its title, its items, and what was odd about it."""

    title: str
    items: tuple[FeedItem, ...]
    warnings: tuple[str, ...] = ()


def parse_feed(body: bytes, *, url: str, content_type: str = "") -> Feed:
    """The feed in BODY (fetched from URL); InputError when it is no RSS or Atom feed."""
    headers = {"content-location": url, "content-type": content_type or "application/xml"}
    parsed: Any = feedparser.parse(body, response_headers=headers, sanitize_html=False,
                                   resolve_relative_uris=False)
    problem = parsed.get("bozo_exception")
    if not parsed.get("version"):
        said = ""
        if HTML_START.match(body[:512]):
            said = ": the answer is an HTML page"
        elif isinstance(problem, xml.sax.SAXParseException):
            said = f": the answer is not XML ({problem.getMessage()})"
        raise InputError(f"not an RSS or Atom feed{said}", where=url,
                         fix="give the feed's address (often /feed/, /rss.xml or /atom.xml)")
    warnings = []
    if isinstance(problem, xml.sax.SAXParseException):
        warnings.append(f"{url}: the feed is not well-formed XML ({problem.getMessage()});"
                        " read leniently")
    items = tuple(_item(entry, index, url) for index, entry in enumerate(parsed.entries))
    missing = [item.title for item in items if not item.title and not item.content_html]
    if missing:
        raise InputError(f"an item has neither a title nor any content ({len(missing)} of"
                         f" {len(items)})", where=url, fix="fix the feed's generator")
    return Feed(html_text(str(parsed.feed.get("title") or "")), items, tuple(warnings))


def _item(entry: Mapping[str, Any], position: int, feed_url: str) -> FeedItem:
    """One feedparser entry as a FeedItem."""
    title = str(entry.get("title") or "")
    if (entry.get("title_detail") or {}).get("type") == "text/html":
        title = html_text(title)
    link = str(entry.get("link") or "")
    content = _content(entry)
    summary = str(entry.get("summary") or "")
    guid = str(entry.get("id") or link or "")
    if not guid:  # an item with neither: its title and date are all that identify it
        seed = f"{title}\n{entry.get('published') or entry.get('updated') or ''}"
        guid = "sha256:" + hashlib.sha256(seed.encode("utf-8")).hexdigest()[:32]
    return FeedItem(
        guid=guid, link=link or feed_url, title=" ".join(title.split()), when=_when(entry),
        position=position, author=str(entry.get("author") or ""),
        summary=html_text(summary) if content else "", content_html=content or summary,
        tags=tuple(dict.fromkeys(str(t.get("term") or "").strip()
                                 for t in entry.get("tags") or () if t.get("term"))),
        image=_image(entry),
    )


def _content(entry: Mapping[str, Any]) -> str:
    """content:encoded or Atom content: the first HTML one, else the first of any type."""
    parts: Sequence[Mapping[str, Any]] = entry.get("content") or ()
    html = [p for p in parts if "html" in str(p.get("type") or "")]
    chosen = (html or list(parts) or [{}])[0]
    value = str(chosen.get("value") or "")
    if value and "html" not in str(chosen.get("type") or ""):
        return "".join(f"<p>{_escape(line)}</p>" for line in value.split("\n\n") if line.strip())
    return value


def _escape(text: str) -> str:
    """Plain text as HTML text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _when(entry: Mapping[str, Any]) -> datetime | None:
    """The item's date with its own zone (so its day is the site's day), else feedparser's UTC."""
    for key in ("published", "updated"):
        raw = str(entry.get(key) or "").strip()
        if not raw:
            continue
        try:
            found = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            try:
                found = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            except ValueError:
                found = None
        if found is not None:
            return found if found.tzinfo else found.replace(tzinfo=UTC)
        parsed = entry.get(f"{key}_parsed")
        if parsed:
            return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    return None


def _image(entry: Mapping[str, Any]) -> str:
    """An image enclosure or media:content/media:thumbnail, if the item has one."""
    for enclosure in entry.get("enclosures") or ():
        if str(enclosure.get("type") or "") in IMAGE_TYPES and enclosure.get("href"):
            return str(enclosure["href"])
    for key in ("media_content", "media_thumbnail"):
        for media in entry.get(key) or ():
            if media.get("url") and str(media.get("medium") or "image") == "image":
                return str(media["url"])
    return ""


def item_slug(item: FeedItem) -> str:
    """The slug of an item: its link's last path segment, else its title."""
    segments = [unquote(s) for s in urlsplit(item.link).path.split("/") if s]
    name = segments[-1].rsplit(".", 1)[0] if segments else ""
    return slugify(name or item.title or item.guid)


def unique_slug(slug: str, guid: str) -> str:
    """A slug another item already holds, made this item's own with a hash of its guid."""
    return f"{slug[:71]}-{hashlib.sha256(guid.encode('utf-8')).hexdigest()[:8]}"


def item_article(item: FeedItem, *, slug: str, feed_url: str) -> Article:
    """The Article of one item: its HTML read as a WordPress post's is."""
    if not item.content_html.strip():
        raise InputError(f"the feed item {item.title!r} has no content", where=feed_url,
                         fix="publish the item's full text (content:encoded) or a description")
    post = WpPost(
        link=item.link, slug=slug, title=item.title or slug,
        date=item.when.date().isoformat() if item.when else "", author=item.author,
        excerpt=item.summary, content_html=item.content_html, terms=item.tags, image=item.image,
    )
    return article_from_post(post)
