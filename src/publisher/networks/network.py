"""What a network is to the composer and the counters: its composing facts, declared as data.

Each network module (`x.py`, `bluesky.py`, …) declares one `Network`, the way apprise's
services declare `service_name`, `body_maxlen` and `attachment_support` as class attributes
(https://github.com/caronc/apprise/blob/master/apprise/plugins/base.py); the code that
composes, counts and checks reads these facts and never asks for a network by name.
What a channel can do once a post is composed (edit, delete, upload) is the channel's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Counting(Enum):
    """The rule a network counts a post's length by (`counting.py` implements each)."""

    TWITTER_TEXT = "twitter-text v3 weighted length"
    GRAPHEMES = "extended grapheme clusters"
    MASTODON = "graphemes, URLs as a fixed length, remote mentions as their local part"
    THREADS = "graphemes, each emoji as its UTF-8 byte length"
    UTF16 = "UTF-16 code units"


class Card(Enum):
    """What the composer puts under a post for the channel: nothing, a link card, the hero image."""

    NONE = "none"
    LINK_CARD = "link card"  # an embed the post carries (Bluesky draws no card itself)
    HERO_IMAGE = "hero image"  # the article's image to attach to the first post


@dataclass(frozen=True)
class HashtagRules:
    """Which '#Tag' a network links: a longer one, or one past the count, stays plain text."""

    max_graphemes: int | None = None
    max_chars: int | None = None
    linked_per_post: int | None = None  # None: every tag in the post is linked


@dataclass(frozen=True)
class Account:
    """How the preview names the posting account, from one `[channels.<network>]` key.

    In `shown`, {slug} is the site name squeezed to [a-z0-9], {value} the setting (else
    `default`, itself filled from {slug}) and {host} the value's host name, for a URL setting.
    """

    shown: str = "@{slug}"
    setting: str = ""  # the channel key that names the account (a handle, the instance URL)
    default: str = ""


@dataclass(frozen=True)
class Network:
    """One social network's composing facts: limit, unit, links, tags, threads, images."""

    name: str  # as config, front matter, the edition JSON and --only/--skip spell it
    label: str  # as people spell it (the preview)
    limit: int
    unit: str  # what `length` counts, as `publish measure` and the preview say it
    counting: Counting
    docs: str  # where the limit and the counting rule are documented
    url_length: int | None = None  # every link counts as this many; None: as written
    links_need_scheme: bool = False  # only http(s):// URLs are links (a bare domain is text)
    max_links: int | None = None  # a post with more links is refused
    max_bytes: int | None = None  # a second limit, in UTF-8 bytes
    facets: bool = False  # links and tags are sent as byte ranges beside the text
    mentions: bool = True  # the network links @user in the text itself
    hashtags: HashtagRules = HashtagRules()
    thread: bool = False  # a story may become a numbered thread of replies
    long_form: bool = False  # room for title, summary and key points, not one hook sentence
    card: Card = Card.NONE
    max_images: int = 0  # images one post may carry on the network
    shown_link_chars: int | None = None  # a link is shown without scheme, cut to this many
    instance_limits: bool = False  # each server sets its own limit and link length
    # `[channels.<network>] attach_image` when unset: a hero-image network attaches the image
    # to the first post (True) or leaves the link to the card it draws itself (False)
    attach_image: bool = False
    account: Account = Account()  # how the preview shows who posts
