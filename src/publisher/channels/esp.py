"""What the email-API channels (SendGrid, Postmark, Resend) share: settings, addresses, headers.

Each provider module stays small: it maps an EmailBatch to its own JSON and its answers to a
BatchResult. The List-* headers are the same ones `message.py` writes for SMTP.
"""

from __future__ import annotations

from email.headerregistry import Address
from email.utils import parseaddr

from publisher.channels import ChannelContext, ChannelSettings
from publisher.channels.http import REPLY_CHARS, HttpClient
from publisher.channels.message import ONE_CLICK, list_id_value, list_unsubscribe_value
from publisher.config.secrets import masked_excerpt
from publisher.config.settings import Site
from publisher.edition.newsletter import placeholders
from publisher.errors import ConfigError
from publisher.model import Newsletter, Recipient

KNOWN_SETTINGS = frozenset({
    "base_url", "batch_size", "timeout", "list_id", "api_key_env", "message_stream",
})


def batch_size(settings: ChannelSettings, maximum: int) -> int:
    """The configured batch size, within the provider's limit."""
    size = settings.integer("batch_size", maximum)
    if not 1 <= size <= maximum:
        raise ConfigError(
            f"batch_size must be between 1 and {maximum}",
            where=settings.where,
            fix=f"set batch_size = {maximum} or less",
        )
    return size


def api_key(context: ChannelContext, default_env: str, purpose: str) -> str:
    """The API key from the environment/.env/keyring (the variable name is configurable)."""
    return context.secret(context.settings.text("api_key_env", default_env), purpose=purpose)


def bearer_client(context: ChannelContext, default_env: str, purpose: str,
                  base_url: str) -> HttpClient:
    """A client to `base_url` (or the configured one) sending the API key as a Bearer token."""
    key = api_key(context, default_env, purpose)
    return context.client(context.settings.text("base_url", base_url),
                          headers={"Authorization": f"Bearer {key}"})


def sender(site: Site) -> tuple[str, str]:
    """(display name, address) of the configured From."""
    name, address = parseaddr(site.sender)
    if "@" not in address:
        raise ConfigError(
            f"sender {site.sender!r} is not an email address",
            where="[site]",
            fix='set from = "Name <news@your-domain>"',
        )
    return name, address


def mailbox(name: str, email: str) -> str:
    """"Name <addr>" with quoting where needed; non-ASCII names stay readable for JSON APIs."""
    clean = " ".join(name.split())
    if not clean:
        return email
    local, _, domain = email.rpartition("@")
    return str(Address(display_name=clean, username=local, domain=domain))


def list_headers(recipient: Recipient, site: Site, list_id: str) -> dict[str, str]:
    """List-Id, List-Unsubscribe and RFC 8058's List-Unsubscribe-Post for one recipient."""
    return {
        "List-Id": list_id_value(site, list_id),
        "List-Unsubscribe": list_unsubscribe_value(recipient, site),
        "List-Unsubscribe-Post": ONE_CLICK,
    }


def subject_for(newsletter: Newsletter, recipient: Recipient) -> str:
    """The subject with any placeholder filled as plain text."""
    if placeholders.START not in newsletter.subject:
        return newsletter.subject
    values = placeholders.text_values(" ".join(recipient.name.split()), recipient.unsubscribe_url)
    return placeholders.fill(placeholders.split(newsletter.subject), values)


def error_detail(body: object, *keys: str) -> str:
    """The human part of a provider's JSON error, whichever shape it has."""
    if isinstance(body, dict):
        if isinstance(body.get("errors"), list) and body["errors"]:
            first = body["errors"][0]
            if isinstance(first, dict):
                return masked_excerpt(str(first.get("message", first)), REPLY_CHARS)
        for key in keys:
            if body.get(key):
                return masked_excerpt(str(body[key]), REPLY_CHARS)
    return masked_excerpt(str(body), REPLY_CHARS)
