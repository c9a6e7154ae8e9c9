"""What the newsletter platforms (Buttondown, listmonk, Ghost, Mailchimp) share.

A platform owns the list: publisher hands over one campaign per edition and the platform mails
its subscribers. Exactly once rests on `deliver`: look for this edition's campaign (tagged or
named with the edition key) before creating one, and start it only if it has not gone out, so a
run killed between "create" and "send" resumes with the same campaign. Each module maps
`Draft` to its API and the platform's answers to `Campaign`; placeholders become the platform's
own merge tags, since the platform, not publisher, knows each reader and their unsubscribe link.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from publisher.channels import ChannelContext, Receipt
from publisher.channels.esp import sender
from publisher.config.settings import Site
from publisher.edition.newsletter import placeholders
from publisher.errors import ConfigError, PermanentDeliveryError
from publisher.model import Newsletter

if TYPE_CHECKING:
    from publisher.channels import CampaignChannel

KEY_CHARS = 12  # how much of the edition key names a campaign: unique enough, short to read
BODY = re.compile(r"<body[^>]*>(.*)</body>", re.DOTALL | re.IGNORECASE)
Tags = Callable[[str, str], str]  # (placeholder, default) → the platform's merge tag
Escape = Callable[[str, bool], str]  # (literal text, is_html) → text the platform shows as is


@dataclass(frozen=True)
class Draft:
    """One edition's campaign as every platform needs it, before its own shape."""

    key: str  # stable for the edition: the tag or name part that finds the campaign again
    subject: str
    preheader: str
    html: str  # placeholders already turned into the platform's merge tags
    text: str
    from_name: str
    from_email: str
    reply_to: str
    title: str  # the article's title, for platforms that show one (Ghost posts, listmonk names)
    send_at: datetime | None = None  # `--at` on a platform that holds the send (Buttondown)

    @property
    def tag(self) -> str:
        """The marker a platform stores on the campaign: `publisher-<key>`."""
        return f"publisher-{self.key[:KEY_CHARS]}"


@dataclass(frozen=True)
class Campaign:
    """A platform's campaign as publisher tracks it."""

    id: str
    state: str  # the platform's own word: draft, save, sent, running, published …
    sent: bool  # it went out or is going out: never start it again
    url: str = ""


def deliver(api: CampaignChannel, draft: Draft) -> Receipt:
    """Find or create this edition's campaign and send it unless it already went out."""
    campaign = api.find(draft) or api.create(draft)
    if not campaign.sent:
        campaign = api.start(campaign, draft)
    return receipt(campaign)


def proof(api: CampaignChannel, draft: Draft, addresses: Sequence[str]) -> Receipt:
    """Test-send this edition's campaign (created as a draft if needed) to the addresses."""
    campaign = api.find(draft) or api.create(draft)
    if campaign.sent:
        raise PermanentDeliveryError(
            f"campaign {campaign.id} already went to the list; a proof would show the sent copy",
            where=api.name, fix="check the sent campaign in the platform instead")
    api.test_send(campaign, draft, addresses)
    return receipt(campaign)


def receipt(campaign: Campaign) -> Receipt:
    """The ledger's record of a campaign: its id, URL and state."""
    return Receipt(campaign.id, url=campaign.url, extra={"state": campaign.state})


def draft_for(newsletter: Newsletter, key: str, site: Site, title: str, tags: Tags,
              escape: Escape) -> Draft:
    """The campaign for one edition: the platform's merge tags in place of placeholders."""
    name, address = sender(site)
    return Draft(
        key=key, subject=merge(newsletter.subject, tags, escape, html=False),
        preheader=newsletter.preheader,
        html=merge(newsletter.html, tags, escape, html=True),
        text=merge(newsletter.text, tags, escape, html=False),
        from_name=name or site.name, from_email=address,
        reply_to=site.reply_to or address, title=title or newsletter.subject,
    )


def merge(text: str, tags: Tags, escape: Escape, *, html: bool) -> str:
    """Placeholders become merge tags; the text around them is escaped for the platform.

    Every platform runs its template language over what it is given, so article text holding
    `{{ … }}` or `*|…|*` would be executed or filled in; escaped, it is shown as written.
    """
    literals, slots = placeholders.split(text)
    out = [escape(literals[0], html)]
    for (key, default), literal in zip(slots, literals[1:], strict=True):
        out += [tags(key, default), escape(literal, html)]
    return "".join(out)


def body_of(page: str) -> str:
    """The inside of <body> (Ghost wraps a post in its own email template)."""
    found = BODY.search(page)
    return found.group(1).strip() if found else page


def required(context: ChannelContext, key: str, example: str) -> str:
    """A text setting the platform cannot work without."""
    value = context.settings.text(key)
    if not value.strip():
        raise ConfigError(f"{key} is not set", where=context.settings.where,
                          fix=f"set {key} = {example}")
    return value


def secret(context: ChannelContext, default_env: str, purpose: str) -> str:
    """A platform's key from the environment/.env/keyring (the variable name is configurable)."""
    return context.secret(context.settings.text("api_key_env", default_env), purpose=purpose)


def quoted(default: str) -> str:
    """A default text safe inside a double-quoted template string."""
    return default.replace("\\", "\\\\").replace('"', '\\"')
