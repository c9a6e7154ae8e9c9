"""The frozen values that flow through the pipeline: Article → Edition → delivery plan.

Everything here is plain data built by pure functions; no I/O happens on these types.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, overload

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


@dataclass(frozen=True)
class Recipients(Sequence[Recipient]):
    """Recipients as parallel columns, a `Recipient` made only for whoever iterates them.

    A send reads its readers a page at a time; a page of columns costs a few tuples where a
    `Recipient` per reader costs an object each, and a batch-call channel reads the columns.
    """

    emails: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()  # unsubscribe links
    mailtos: tuple[str, ...] = ()  # mailto: unsubscribe links ("" for none)
    ids: tuple[int, ...] = ()

    @classmethod
    def of(cls, recipients: Iterable[Recipient]) -> Recipients:
        """The columns of some `Recipient`s."""
        listed = list(recipients)
        return cls(tuple(r.email for r in listed), tuple(r.name for r in listed),
                   tuple(r.unsubscribe_url for r in listed),
                   tuple(r.unsubscribe_mailto for r in listed), tuple(r.id for r in listed))

    def __len__(self) -> int:
        """How many recipients."""
        return len(self.emails)

    def __iter__(self) -> Iterator[Recipient]:
        """Each recipient, made as it is reached."""
        return map(Recipient, self.emails, self.names, self.urls, self.mailtos, self.ids)

    @overload
    def __getitem__(self, index: int) -> Recipient: ...
    @overload
    def __getitem__(self, index: slice) -> Recipients: ...
    def __getitem__(self, index: int | slice) -> Recipient | Recipients:
        """One recipient, or a slice of the columns."""
        if isinstance(index, slice):
            return Recipients(self.emails[index], self.names[index], self.urls[index],
                              self.mailtos[index], self.ids[index])
        return Recipient(self.emails[index], self.names[index], self.urls[index],
                         self.mailtos[index], self.ids[index])

    def __add__(self, other: Recipients) -> Recipients:
        """Both pages' columns, this one's first."""
        return Recipients(self.emails + other.emails, self.names + other.names,
                          self.urls + other.urls, self.mailtos + other.mailtos,
                          self.ids + other.ids)

    def picked(self, indexes: Sequence[int]) -> Recipients:
        """The recipients at these positions, in that order."""
        emails, names, urls, mailtos = (tuple(column[i] for i in indexes) for column in (
            self.emails, self.names, self.urls, self.mailtos))
        return Recipients(emails, names, urls, mailtos, tuple(self.ids[i] for i in indexes))


def emails_of(recipients: Sequence[Recipient]) -> Sequence[str]:
    """The addresses of some recipients (a page's own column when they are one)."""
    if isinstance(recipients, Recipients):
        return recipients.emails
    return [r.email for r in recipients]
