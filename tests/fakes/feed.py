"""A blog's feed server: RSS 2.0 (with content:encoded) and Atom 1.0, with ETag and Last-Modified.

Contract: RSS 2.0 (https://www.rssboard.org/rss-specification: `<guid>`, `<pubDate>` in RFC 822
form), the content module (https://web.resource.org/rss/1.0/modules/content/: the full HTML in
`<content:encoded>`), Atom (https://www.rfc-editor.org/rfc/rfc4287: `<id>`, `<published>`,
`<updated>`, `<content type="html">`). Conditional GET as RFC 9110 §13.1 has it
(https://www.rfc-editor.org/rfc/rfc9110#name-conditional-requests): a strong ETag and a
Last-Modified on every 200; If-None-Match that matches, or (without If-None-Match) an
If-Modified-Since not older than the feed, answers 304 with no body. `/feed.xml` is RSS,
`/atom.xml` Atom; `/page.html` is the blog's HTML home page, `/status.txt` plain text, and any
other path the theme's HTML 404 page. The items are generated here (Japanese and English
news-shaped text); tests add, edit and re-order them between runs.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from html import escape

from .server import FakeHTTPServer, Reply, Request

HTML_404 = b"<!doctype html><html><body><h1>404 Not Found</h1></body></html>"
HOME = (b"<!doctype html><html><head><title>Harbor Ward Weekly</title></head>"
        b"<body><h1>Harbor Ward Weekly</h1><p>Latest stories.</p></body></html>")
START = datetime(2026, 10, 5, 7, 30, tzinfo=UTC)

# Generated text: a ward's small news, in two languages (no real site's or seed's sentences).
JA_TOPICS = (
    ("図書館の夜間開館", "区立図書館", "平日の夜九時まで"),
    ("公園の遊具更新", "みなと公園", "来月から順に"),
    ("自転車置き場の増設", "駅前広場", "春までに二百台分"),
    ("防災倉庫の点検", "各町会", "毎月第一土曜に"),
    ("市場の朝市", "中央市場", "毎週日曜の朝"),
)
EN_TOPICS = (
    ("Night hours at the ward library", "the ward library", "until nine on weekdays"),
    ("New play equipment in Harbor Park", "Harbor Park", "one area at a time next month"),
    ("More bicycle parking at the station", "the station square", "two hundred racks by spring"),
    ("Monthly checks of the emergency stores", "each neighborhood association",
     "on the first Saturday"),
    ("A Sunday morning market", "the central market", "every Sunday from seven"),
)


@dataclass(frozen=True)
class Item:
    """One generated item."""

    guid: str
    slug: str
    title: str
    html: str
    summary: str
    published: datetime
    updated: datetime
    lang: str
    tags: tuple[str, ...]


def make_items(count: int, *, base: str = "https://weekly.example") -> list[Item]:
    """COUNT items, alternating Japanese and English, a day apart, the oldest first."""
    items = []
    for index in range(count):
        lang = "ja" if index % 2 == 0 else "en"
        topics = JA_TOPICS if lang == "ja" else EN_TOPICS
        title, place, when = topics[(index // 2) % len(topics)]
        title = f"{title}（第{index + 1}報）" if lang == "ja" else f"{title} (update {index + 1})"
        day = START + timedelta(days=index)
        html, summary = (_ja_body if lang == "ja" else _en_body)(place, when, index)
        items.append(Item(
            guid=f"{base}/?p={1000 + index}", slug=f"story-{index + 1}", title=title, html=html,
            summary=summary, published=day, updated=day, lang=lang,
            tags=("区政", "暮らし") if lang == "ja" else ("ward", "community")))
    return items


def _ja_body(place: str, when: str, index: int) -> tuple[str, str]:
    """A Japanese item: lead, a section, an FAQ in the list style, and share-button chrome."""
    summary = f"{place}が新しい取り組みを始めます。開始は{when}です。"
    html = (
        f"<p>{place}は、区民の声を受けて新しい取り組みを始めると発表しました。"
        f"開始は{when}を予定しています。</p>"
        f"<h2>決まったこと</h2><p>担当課によると、費用は今年度の予算でまかないます。"
        f"詳しい日程は区の広報紙第{index + 3}号で知らせます。</p>"
        "<h2>よくある質問</h2><ul><li>申し込みは必要ですか？<ul><li>いいえ、どなたでも利用できます。"
        "</li></ul></li><li>問い合わせ先は？<ul><li>区役所の地域振興課です。</li></ul></li></ul>"
        '<div class="sharedaddy sd-sharing-enabled"><h3>共有:</h3><ul><li>X</li></ul></div>'
    )
    return html, summary


def _en_body(place: str, when: str, index: int) -> tuple[str, str]:
    """An English item: lead, a section with a link, and an FAQ under headings."""
    summary = f"Changes are coming to {place}, starting {when}."
    html = (
        f"<p>The ward announced changes at {place} after a round of resident meetings."
        f" They start {when}, and the ward will report on them in issue {index + 3}.</p>"
        "<h2>What was decided</h2><p>The cost comes out of this year's budget, and "
        '<a href="/notices/">the notices page</a> lists the dates.</p>'
        "<h2>FAQ</h2><h3>Do I need to sign up?</h3><p>No, anyone can take part.</p>"
        "<h3>Who do I ask?</h3><p>The community affairs office at the ward hall.</p>"
    )
    return html, summary


@dataclass
class FakeFeed:
    """A blog whose feed the tests change between runs."""

    items: list[Item] = field(default_factory=lambda: make_items(5))
    title: str = "Harbor Ward Weekly"
    base: str = "https://weekly.example"
    order: list[str] | None = None  # guids in the order the feed lists them (default: newest first)
    http: FakeHTTPServer = field(init=False)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self._statuses: list[int] = []
        self.http = FakeHTTPServer(self.handle).start()

    @property
    def url(self) -> str:
        """The server's base URL."""
        return self.http.url

    def close(self) -> None:
        """Stop the server."""
        self.http.stop()

    def answers(self, status: int) -> int:
        """How many requests for a feed were answered with this status."""
        with self.lock:
            return self._statuses.count(status)

    def edit(self, index: int, **changes: object) -> None:
        """Change an item (its text, title…) and move its `updated` time on."""
        with self.lock:
            item = self.items[index]
            self.items[index] = replace(item, **changes,  # type: ignore[arg-type]
                                        updated=item.updated + timedelta(hours=6))

    def handle(self, request: Request) -> Reply:
        """Serve one GET."""
        with self.lock:
            reply = self.route(request)
            self._statuses.append(reply.status)
            return reply

    def route(self, request: Request) -> Reply:
        """The feed, the home page, plain text or a 404."""
        if request.method != "GET":
            return Reply(405, b"", {"Allow": "GET"})
        if request.path == "/page.html":
            return Reply(200, HOME, {"Content-Type": "text/html; charset=UTF-8"})
        if request.path == "/status.txt":
            return Reply(200, b"feed moved, try again later\n", {"Content-Type": "text/plain"})
        if request.path == "/feed.xml":
            return self.conditional(request, self.rss(), "application/rss+xml; charset=UTF-8")
        if request.path == "/atom.xml":
            return self.conditional(request, self.atom(), "application/atom+xml; charset=UTF-8")
        return Reply(404, HTML_404, {"Content-Type": "text/html; charset=UTF-8"})

    def conditional(self, request: Request, body: bytes, content_type: str) -> Reply:
        """200 with validators, or 304 when the client's validators still hold."""
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        changed = max((i.updated for i in self.items), default=START)
        last_modified = format_datetime(changed, usegmt=True)
        validators = {"ETag": etag, "Last-Modified": last_modified}
        match = request.headers.get("if-none-match")
        since = request.headers.get("if-modified-since")
        if match is not None:
            if etag in [tag.strip() for tag in match.split(",")] or match.strip() == "*":
                return Reply(304, None, validators)
        elif since and _not_older(changed, since):
            return Reply(304, None, validators)
        return Reply(200, body, {"Content-Type": content_type, **validators})

    def listed(self) -> list[Item]:
        """The items in the feed's order: `order` when set, else the newest first."""
        if self.order is not None:
            by_guid = {i.guid: i for i in self.items}
            return [by_guid[g] for g in self.order if g in by_guid]
        return sorted(self.items, key=lambda i: i.published, reverse=True)

    def rss(self) -> bytes:
        """RSS 2.0, the newest item first (as blogs list them)."""
        entries = "".join(
            f"<item><title>{escape(i.title)}</title>"
            f"<link>{self.base}/2026/{i.slug}/</link>"
            f'<guid isPermaLink="false">{escape(i.guid)}</guid>'
            f"<pubDate>{format_datetime(i.published)}</pubDate>"
            f"<dc:creator>{'編集部' if i.lang == 'ja' else 'Ward Desk'}</dc:creator>"
            + "".join(f"<category>{escape(t)}</category>" for t in i.tags)
            + f"<description>{escape(i.summary)}</description>"
            f"<content:encoded><![CDATA[{i.html}]]></content:encoded></item>"
            for i in self.listed())
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"'
            ' xmlns:content="http://purl.org/rss/1.0/modules/content/"'
            ' xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
            f"<title>{escape(self.title)}</title><link>{self.base}/</link>"
            f"<description>News of the ward</description>{entries}</channel></rss>\n"
        ).encode()

    def atom(self) -> bytes:
        """Atom 1.0, the newest item first."""
        changed = max((i.updated for i in self.items), default=START)
        entries = "".join(
            f"<entry><title>{escape(i.title)}</title>"
            f'<link rel="alternate" href="{self.base}/2026/{i.slug}/"/>'
            f"<id>{escape(i.guid)}</id><published>{i.published.isoformat()}</published>"
            f"<updated>{i.updated.isoformat()}</updated>"
            f"<author><name>{'編集部' if i.lang == 'ja' else 'Ward Desk'}</name></author>"
            + "".join(f'<category term="{escape(t)}"/>' for t in i.tags)
            + f"<summary>{escape(i.summary)}</summary>"
            f'<content type="html">{escape(i.html)}</content></entry>'
            for i in self.listed())
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<feed xmlns="http://www.w3.org/2005/Atom">'
            f"<title>{escape(self.title)}</title><id>{self.base}/</id>"
            f'<link rel="alternate" href="{self.base}/"/><updated>{changed.isoformat()}</updated>'
            f"{entries}</feed>\n"
        ).encode()


def _not_older(changed: datetime, since: str) -> bool:
    """Whether the feed has not changed after the If-Modified-Since date (bad dates: changed)."""
    try:
        return changed <= parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False
