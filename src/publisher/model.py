"""The frozen values that flow through the pipeline: Article → Edition → delivery plan.

Everything here is plain data built by pure functions; no I/O happens on these types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

BlockKind = Literal[
    "paragraph", "bullet_list", "ordered_list", "blockquote", "code", "table", "html", "hr",
    "heading",
]
SectionRole = Literal["body", "faq", "summary", "closing"]


@dataclass(frozen=True)
class Block:
    """One top-level Markdown block, kept as source so each output renders it its own way."""

    kind: BlockKind
    markdown: str
    text: str
    line: int = 0
    items: tuple[str, ...] = ()  # list items as Markdown, for lists


@dataclass(frozen=True)
class Section:
    """A heading and the blocks under it, with the role the pipeline gives it."""

    heading: str
    level: int
    blocks: tuple[Block, ...]
    role: SectionRole = "body"
    line: int = 0


@dataclass(frozen=True)
class FaqItem:
    """One question with its answer, both as inline Markdown."""

    question: str
    answer: str
    line: int = 0


@dataclass(frozen=True)
class Article:
    """A parsed post: front matter plus the body split into lead, sections, FAQ and summary."""

    source: str  # path as the editor gave it, for messages
    title: str
    body_markdown: str
    lead: tuple[Block, ...]
    sections: tuple[Section, ...]
    lang: str = "en"
    slug: str = ""
    author: str = ""
    date: str = ""  # ISO 8601 date or datetime as written
    url: str = ""
    image: str = ""
    image_alt: str = ""
    tags: tuple[str, ...] = ()
    summary: str = ""  # front matter summary/description
    social: Mapping[str, str] = field(default_factory=dict)  # per-network text overrides
    thread: bool = False
    faq: tuple[FaqItem, ...] = ()
    warnings: tuple[str, ...] = ()
    content_hash: str = ""  # sha256 of the source bytes; keys the ledger

    def section(self, role: SectionRole) -> Section | None:
        """The first section with this role, if the article has one."""
        return next((s for s in self.sections if s.role == role), None)


@dataclass(frozen=True)
class Newsletter:
    """The rendered email: compiled once, personalised later by cheap substitution."""

    subject: str
    preheader: str
    html: str
    text: str
    html_bytes: int = 0


@dataclass(frozen=True)
class Facet:
    """A Bluesky rich-text facet over UTF-8 byte offsets [byte_start, byte_end)."""

    byte_start: int
    byte_end: int
    kind: Literal["link", "tag", "mention"]
    value: str  # the URI, the tag without '#', or the DID/handle

    def as_json(self) -> dict[str, Any]:
        """The app.bsky.richtext.facet record shape."""
        feature: dict[str, Any]
        if self.kind == "link":
            feature = {"$type": "app.bsky.richtext.facet#link", "uri": self.value}
        elif self.kind == "tag":
            feature = {"$type": "app.bsky.richtext.facet#tag", "tag": self.value}
        else:
            feature = {"$type": "app.bsky.richtext.facet#mention", "did": self.value}
        return {
            "index": {"byteStart": self.byte_start, "byteEnd": self.byte_end},
            "features": [feature],
        }


@dataclass(frozen=True)
class Highlight:
    """A span a network shows as a link, over code points [start, end) of a post's text."""

    start: int
    end: int
    kind: Literal["link", "tag", "mention"]
    value: str  # the URL, the tag without '#', or the account


@dataclass(frozen=True)
class LinkCard:
    """What a network shows under a post: an external embed whose thumbnail is uploaded later."""

    uri: str
    title: str
    description: str
    thumb: str = ""  # image URL, or a path relative to the post's folder; delivery uploads it
    alt: str = ""  # the image's alt text (front matter image_alt)


@dataclass(frozen=True)
class SocialPost:
    """One post as a network will count and show it."""

    network: str
    text: str
    length: int
    limit: int
    lang: str = "en"
    facets: tuple[Facet, ...] = ()
    card: LinkCard | None = None
    position: int = 1  # 1-based place in a thread
    of: int = 1


@dataclass(frozen=True)
class FaqDigest:
    """The FAQ in every form we publish it."""

    items: tuple[FaqItem, ...]
    short_answers: tuple[str, ...]
    jsonld: Mapping[str, Any]
    markdown: str
    html: str


@dataclass(frozen=True)
class Edition:
    """Everything one article becomes, before anything is delivered."""

    article: Article
    newsletter: Newsletter
    social: Mapping[str, tuple[SocialPost, ...]]
    faq: FaqDigest
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Recipient:
    """One subscriber as a send sees them: where to mail and how to let them leave."""

    email: str
    name: str = ""
    unsubscribe_url: str = ""
    unsubscribe_mailto: str = ""
    id: int = 0  # the subscriber's id in the store (0: not from the store, e.g. a proof address)
