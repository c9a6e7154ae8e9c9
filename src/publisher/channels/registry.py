"""The channel registry: every channel publisher can build, by name, checked by mypy.

A loader imports its module only when the channel is used (a run that sends through SendGrid
never imports tweepy), and its return type makes mypy check the class against `EmailChannel`,
`SocialChannel` or `CampaignChannel`. `build_email`/`build_social`/`build_campaign` are the one
way the core constructs a channel.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Final

from publisher.channels import (
    CampaignChannel,
    ChannelContext,
    ChannelSettings,
    EmailChannel,
    Facts,
    SocialChannel,
)
from publisher.errors import ConfigError

if TYPE_CHECKING:
    from publisher.config.settings import Config


def _smtp() -> type[EmailChannel]:
    from publisher.channels.smtp import SmtpChannel

    return SmtpChannel


def _sendgrid() -> type[EmailChannel]:
    from publisher.channels.sendgrid import SendGridChannel

    return SendGridChannel


def _postmark() -> type[EmailChannel]:
    from publisher.channels.postmark import PostmarkChannel

    return PostmarkChannel


def _resend() -> type[EmailChannel]:
    from publisher.channels.resend import ResendChannel

    return ResendChannel


def _x() -> type[SocialChannel]:
    from publisher.channels.x import XChannel

    return XChannel


def _bluesky() -> type[SocialChannel]:
    from publisher.channels.bluesky import BlueskyChannel

    return BlueskyChannel


def _mastodon() -> type[SocialChannel]:
    from publisher.channels.mastodon import MastodonChannel

    return MastodonChannel


def _buttondown() -> type[CampaignChannel]:
    from publisher.channels.buttondown import ButtondownChannel

    return ButtondownChannel


def _listmonk() -> type[CampaignChannel]:
    from publisher.channels.listmonk import ListmonkChannel

    return ListmonkChannel


def _ghost() -> type[CampaignChannel]:
    from publisher.channels.ghost import GhostChannel

    return GhostChannel


def _mailchimp() -> type[CampaignChannel]:
    from publisher.channels.mailchimp import MailchimpChannel

    return MailchimpChannel


def _threads() -> type[SocialChannel]:
    from publisher.channels.threads import ThreadsChannel

    return ThreadsChannel


def _linkedin() -> type[SocialChannel]:
    from publisher.channels.linkedin import LinkedInChannel

    return LinkedInChannel


# name → loader; the name is the [channels.<name>] table (and, for email, the transport)
EMAIL: Final[Mapping[str, Callable[[], type[EmailChannel]]]] = {
    "smtp": _smtp,
    "sendgrid": _sendgrid,
    "postmark": _postmark,
    "resend": _resend,
}
SOCIAL: Final[Mapping[str, Callable[[], type[SocialChannel]]]] = {
    "x": _x,
    "bluesky": _bluesky,
    "mastodon": _mastodon,
    "threads": _threads,
    "linkedin": _linkedin,
}
# Newsletter platforms that own the list: the transport hands them one campaign per edition.
PLATFORM: Final[Mapping[str, Callable[[], type[CampaignChannel]]]] = {
    "buttondown": _buttondown,
    "listmonk": _listmonk,
    "ghost": _ghost,
    "mailchimp": _mailchimp,
}
OUTBOX: Final = "outbox"  # the built-in folder channel: no table, no secrets (outbox.py)
EVERY: Final[Mapping[str, Callable[[], type[EmailChannel | SocialChannel | CampaignChannel]]]] = {
    **EMAIL, **PLATFORM, **SOCIAL}


def names() -> tuple[str, ...]:
    """Every registered channel, email first, in registry order."""
    return tuple(EVERY)


def transports() -> tuple[str, ...]:
    """What `[newsletter] transport` may name: the outbox, an email channel or a platform."""
    return (OUTBOX, *EMAIL, *PLATFORM)


def facts(name: str) -> Facts:
    """A registered channel's declared facts (its module is imported)."""
    if name == OUTBOX:
        from publisher.channels.outbox import Outbox

        return Outbox.facts
    if name in EVERY:
        return EVERY[name]().facts
    raise _unknown(name, "")


def social_for(network: str) -> str | None:
    """The channel that posts for a network: its own name, when one is registered."""
    return network if network in SOCIAL else None


def context(name: str, config: Config) -> ChannelContext:
    """The one construction argument: the channel's table, the site, secrets and HTTP."""
    table = ChannelSettings(name, dict(config.channels.get(name, {})), config.source)
    return ChannelContext(table, config.site)


def build_email(name: str, config: Config) -> EmailChannel:
    """The email channel `name`, built from its [channels.<name>] table (not preflighted)."""
    if name not in EMAIL:
        raise _unknown(name, config.source)
    return EMAIL[name]().from_config(context(name, config))


def build_social(name: str, config: Config) -> SocialChannel:
    """The social channel `name`, built from its [channels.<name>] table (not preflighted)."""
    if name not in SOCIAL:
        raise _unknown(name, config.source)
    return SOCIAL[name]().from_config(context(name, config))


def build_campaign(name: str, config: Config) -> CampaignChannel:
    """The newsletter platform `name`, built from its [channels.<name>] table (not preflighted)."""
    if name not in PLATFORM:
        raise _unknown(name, config.source)
    return PLATFORM[name]().from_config(context(name, config))


def check_table(name: str, config: Config) -> None:
    """Build channel `name` as a real run would, with a stand-in for each secret, and drop it:
    a dry run then refuses the table's typos and wrong values (exit 3) without a secret, a
    connection or a request."""
    if name not in EVERY:
        raise _unknown(name, config.source)
    kind = EVERY[name]()

    def stand_in(name: str, *, purpose: str) -> str:
        """The channel's declared stand-in for any secret: never sent, as a dry run sends none."""
        return kind.facts.stand_in

    kind.from_config(replace(context(name, config), secret=stand_in)).close()


def _unknown(name: str, source: str) -> ConfigError:
    """One line naming the known channels."""
    return ConfigError(f"unknown channel {name!r}", where=source or "publisher.toml",
                       fix=f"use {OUTBOX}, {', '.join(names())}")
