"""The settings values, pure: embedded defaults that publisher.toml overrides (config/load.py).

Secrets never live here (config/secrets.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from publisher.errors import ConfigError
from publisher.networks import NAMES as NETWORKS

CONFIG_NAME = "publisher.toml"


@dataclass(frozen=True)
class Site:
    """Who sends: shown in the newsletter header and footer and in mail headers."""

    name: str = "Publisher Demo"
    url: str = "https://example.com"
    logo: str = ""
    address: str = "1 Example Street, Springfield 00000"
    sender: str = "Publisher Demo <news@example.com>"
    reply_to: str = ""
    list_id: str = ""
    unsubscribe_url: str = ""  # base of one-click links; defaults to <url>/unsubscribe
    unsubscribe_mailto: str = ""
    lang: str = ""  # the newsletter's language, for the unsubscribe page ("" = the browser's)


@dataclass(frozen=True)
class NewsletterSettings:
    """How the email is rendered and which transport carries it."""

    transport: str = "outbox"
    templates: str = ""
    utm: Mapping[str, str] = field(
        default_factory=lambda: {"utm_source": "newsletter", "utm_medium": "email"}
    )
    strings: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    sample_recipient: str = "reader@example.com"


@dataclass(frozen=True)
class SocialSettings:
    """Which networks get posts and how they are composed."""

    networks: tuple[str, ...] = NETWORKS
    utm: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    mastodon_limit: int = 500
    mastodon_url_length: int = 23
    thread: bool = False
    hashtags: int = 3

    # A network whose servers each set their own limits (`Network.instance_limits`) has the
    # keys `<network>_limit` and `<network>_url_length` here; preflight may read the server's.

    def instance_limits(self, network: str) -> tuple[int, int]:
        """(limit, URL length) of a network whose servers set their own: its two keys."""
        return int(getattr(self, f"{network}_limit")), int(getattr(self, f"{network}_url_length"))

    def with_server_limits(self, network: str, told: Mapping[str, int]) -> SocialSettings:
        """These settings with what the network's server told preflight (`limit`, `url_length`)."""
        limit, url_length = self.instance_limits(network)
        changes: dict[str, Any] = {f"{network}_limit": told.get("limit", limit),
                                   f"{network}_url_length": told.get("url_length", url_length)}
        return replace(self, **changes)


@dataclass(frozen=True)
class FaqSettings:
    """How the FAQ digest is condensed."""

    max_items: int = 10
    short_answer_chars: int = 140
    social_posts: bool = False
    digest_url: str = ""  # where `publish digest` posts link; {date}, {lang}, {slug} filled in


@dataclass(frozen=True)
class ImageSettings:
    """Limits on the images a post names: the post and its servers are untrusted input."""

    root: str = ""  # assets root: site-root paths (/images/a.jpg) and shared files live here
    max_bytes: int = 20_000_000  # read or downloaded, before any shrinking
    max_pixels: int = 40_000_000  # width × height, checked before decoding
    timeout: float = 20.0  # seconds for a whole download, redirects included
    allow_private: tuple[str, ...] = ()  # networks that may be fetched although not public


@dataclass(frozen=True)
class WordPressSettings:
    """[wordpress]: reading posts from a WordPress site (`publish https://site/…/post/`)."""

    user: str = ""  # the account whose Application Password is WORDPRESS_APP_PASSWORD
    sites: Mapping[str, str] = field(default_factory=dict)  # host or name → base URL
    timeout: float = 20.0  # seconds per request to the site


@dataclass(frozen=True)
class FeedSettings:
    """[feed]: reading RSS and Atom feeds (`publish feed URL`); the feed's server is untrusted."""

    timeout: float = 20.0  # seconds for the whole download, redirects included
    max_bytes: int = 10_000_000  # a feed larger than this is refused while it streams
    allow_private: tuple[str, ...] = ()  # networks that may be fetched although not public


@dataclass(frozen=True)
class Config:
    """All settings; `Config()` is the embedded default that needs no file."""

    site: Site = field(default_factory=Site)
    newsletter: NewsletterSettings = field(default_factory=NewsletterSettings)
    social: SocialSettings = field(default_factory=SocialSettings)
    faq: FaqSettings = field(default_factory=FaqSettings)
    images: ImageSettings = field(default_factory=ImageSettings)
    wordpress: WordPressSettings = field(default_factory=WordPressSettings)
    feed: FeedSettings = field(default_factory=FeedSettings)
    outbox: str = "outbox"
    ledger: str = ".publisher/ledger.sqlite3"
    subscribers: str = ".publisher/subscribers.sqlite3"
    max_attempts: int = 3  # runs that try a transient failure before it is given up
    channels: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    source: str = ""  # the file it came from, for messages


def demo_fields(config: Config) -> list[str]:
    """The [site] fields that still hold the embedded demo identity (no real send with them)."""
    demo = Site()
    site = config.site
    found = [key for key, mine, theirs in (
        ("from", site.sender, demo.sender), ("address", site.address, demo.address),
        ("url", site.url, demo.url)) if mine == theirs]
    unsubscribe = site.unsubscribe_url or f"{site.url.rstrip('/')}/unsubscribe"
    if unsubscribe == f"{demo.url}/unsubscribe":
        found.append("unsubscribe_url")
    return found


def refuse_demo_identity(config: Config) -> None:
    """A real newsletter must not go out as the demo sender, address or site."""
    missing = demo_fields(config)
    if config.newsletter.transport == "outbox" or not missing:
        return
    raise ConfigError(
        f"[site] still holds the demo {', '.join(missing)}; a real send through"
        f" {config.newsletter.transport} needs your own",
        where=config.source or CONFIG_NAME,
        fix="set " + ", ".join(f"{key} = …" for key in missing) + " under [site]",
    )
