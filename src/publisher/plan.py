"""Edition → delivery plan: which output goes through which channel, decided without I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from publisher.config.settings import Config
from publisher.errors import InputError
from publisher.model import Edition
from publisher.networks import NAMES as NETWORK_NAMES

OUTBOX = "outbox"
GMAIL_CLIP_BYTES = 102 * 1024  # Gmail clips HTML bodies past about 102 KB
# What --only/--skip and `publish retract --network` name: the newsletter, each network (with
# its `<network>-faq` posts) and `faq`, the FAQ digest files.
CHANNEL_NAMES = ("newsletter", *NETWORK_NAMES, "faq")
FAQ_DIGEST = "faq"
CAMPAIGN = "campaign"  # the one ledger item of a newsletter handed to a platform


@dataclass(frozen=True)
class Step:
    """One output on one channel; items are ledger keys (empty for a subscriber list)."""

    output: str
    channel: str
    kind: Literal["email", "social", "campaign"]  # campaign: a platform mails its own list
    items: tuple[str, ...]
    measure: str


@dataclass(frozen=True)
class Plan:
    """Everything one run will try to deliver, in order: email first, then each network."""

    edition_id: str
    slug: str
    steps: tuple[Step, ...]

    def channels(self) -> tuple[str, ...]:
        """Every distinct channel the plan uses, in order."""
        return tuple(dict.fromkeys(step.channel for step in self.steps))


def channel_name(output: str) -> str:
    """The --only/--skip name of a plan output: `x-faq` posts belong to `x`."""
    return output.split("-", 1)[0]


def parse_names(value: str, *, option: str) -> frozenset[str]:
    """`newsletter,x` → {"newsletter", "x"}; an unknown name is an InputError naming the list."""
    names = frozenset(n.strip().lower() for n in value.split(",") if n.strip())
    unknown = sorted(names - set(CHANNEL_NAMES))
    if unknown or not names:
        raise InputError(
            f"unknown channel {', '.join(unknown) or value!r}", where=option,
            fix=f"use a comma-separated list of {', '.join(CHANNEL_NAMES)}")
    return names


def select_channels(only: str | None, skip: str | None) -> frozenset[str]:
    """The channel names a run delivers, from --only and --skip (every name when neither)."""
    chosen = parse_names(only, option="--only") if only else frozenset(CHANNEL_NAMES)
    if skip:
        chosen -= parse_names(skip, option="--skip")
    return chosen


def social_item(network: str, position: int) -> str:
    """The ledger key of one post of a thread."""
    return f"{network}#{position}"


def email_route(config: Config) -> str:
    """The channel that carries the newsletter."""
    return config.newsletter.transport or OUTBOX


def is_platform(route: str) -> bool:
    """Whether the newsletter goes to a platform that owns the list (Buttondown, Ghost …)."""
    if route == OUTBOX:  # the outbox: the channel modules need not load
        return False
    from publisher.channels.registry import PLATFORM

    return route in PLATFORM


def sends_to_own_list(config: Config) -> bool:
    """Whether publisher mails its own subscriber list (an SMTP or email-API transport)."""
    route = email_route(config)
    return route != OUTBOX and not is_platform(route)


def social_route(network: str, config: Config) -> str:
    """A network goes live only when it has a [channels.<network>] table; else to the outbox."""
    if network not in config.channels:  # no table: the channel modules need not load
        return OUTBOX
    from publisher.channels.registry import social_for

    return social_for(network) or OUTBOX


def build_plan(edition: Edition, config: Config) -> Plan:
    """Decide every delivery of this edition."""
    news = edition.newsletter
    html_size = news.html_bytes or len(news.html.encode())
    route = email_route(config)
    platform = is_platform(route)
    steps = [
        Step(
            output="newsletter",
            channel=route,
            kind="campaign" if platform else "email",
            items=(CAMPAIGN,) if platform else (),
            measure=f"{html_size / 1024:.1f} KB / {GMAIL_CLIP_BYTES // 1024} KB",
        )
    ]
    for network, posts in edition.social.items():
        if not posts:
            continue
        longest = max(posts, key=lambda p: p.length / p.limit)
        steps.append(
            Step(
                output=network,
                channel=social_route(network, config),
                kind="social",
                items=tuple(social_item(network, p.position) for p in posts),
                measure=f"{longest.length}/{longest.limit}"
                + (f" ×{len(posts)}" if len(posts) > 1 else ""),
            )
        )
    article = edition.article
    return Plan(edition_id=article.content_hash, slug=article.slug, steps=tuple(steps))
