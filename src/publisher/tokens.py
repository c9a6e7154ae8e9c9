"""Signed unsubscribe tokens: the address plus an HMAC-SHA256 tag, URL-safe, constant-time check.

A token is ``base64url(address) "." base64url(tag)`` where the tag is HMAC-SHA256 over a
purpose prefix and the lower-cased address, cut to 128 bits. Anyone holding the link can
unsubscribe that one address (RFC 8058 §4 expects exactly that), and nobody can forge another.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import TYPE_CHECKING
from urllib.parse import quote

from publisher.errors import InputError
from publisher.model import Recipient
from publisher.secrets import get_secret

if TYPE_CHECKING:
    from publisher.config import Site
    from publisher.subscribers import Subscriber

SECRET_NAME = "PUBLISHER_UNSUBSCRIBE_SECRET"
PURPOSE = b"publisher-unsubscribe-v1\0"
TAG_BYTES = 16


def unsubscribe_secret() -> str:
    """The signing secret, from the environment, .env or the keyring."""
    return get_secret(SECRET_NAME, purpose="signing unsubscribe links")


def make_token(email: str, secret: str) -> str:
    """The token for one address."""
    address = email.strip().encode("utf-8")
    return f"{_b64(address)}.{_b64(_tag(address, secret))}"


def verify_token(token: str, secret: str) -> str:
    """The address a token stands for, or InputError when it is malformed or forged."""
    head, _, tag = token.strip().partition(".")
    try:
        address = _unb64(head)
        given = _unb64(tag)
        email = address.decode("utf-8")
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InputError("malformed unsubscribe token", where="unsubscribe",
                         fix="use the full link from the email") from exc
    if not email or not hmac.compare_digest(given, _tag(address, secret)):
        raise InputError("unsubscribe token does not verify", where="unsubscribe",
                         fix="use the full link from the email")
    return email


def unsubscribe_url(base: str, email: str, secret: str) -> str:
    """The one-click link for an address: base plus ?t=<token> (or &t= when base has a query)."""
    joiner = "&" if "?" in base else "?"
    return f"{base}{joiner}t={quote(make_token(email, secret), safe='')}"


def unsubscribe_base(site: Site) -> str:
    """Where one-click links point: the configured URL, else <site url>/unsubscribe."""
    return site.unsubscribe_url or f"{site.url.rstrip('/')}/unsubscribe"


def unsubscribe_mailto(site: Site, email: str, secret: str) -> str:
    """A mailto: fallback for List-Unsubscribe carrying the token in the subject, if configured."""
    target = site.unsubscribe_mailto.removeprefix("mailto:")
    if not target:
        return ""
    return f"mailto:{target}?subject={quote('unsubscribe ' + make_token(email, secret))}"


def recipient_for(subscriber: Subscriber, site: Site, secret: str) -> Recipient:
    """A subscriber as a send sees them, with personal unsubscribe links."""
    return Recipient(
        email=subscriber.email,
        name=subscriber.name,
        unsubscribe_url=unsubscribe_url(unsubscribe_base(site), subscriber.email, secret),
        unsubscribe_mailto=unsubscribe_mailto(site, subscriber.email, secret),
    )


def _tag(address: bytes, secret: str) -> bytes:
    """The truncated HMAC over the purpose and the case-folded address."""
    message = PURPOSE + address.decode("utf-8").lower().encode("utf-8")
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()[:TAG_BYTES]


def _b64(data: bytes) -> str:
    """URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    """Inverse of _b64; strict about the alphabet."""
    if not text or any(c not in _ALPHABET for c in text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
