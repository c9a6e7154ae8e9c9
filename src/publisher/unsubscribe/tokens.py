"""Opaque unsubscribe tokens: a random subscriber id plus an HMAC-SHA256 tag, URL-safe.

A token is ``<uid>~<tag>``: the subscriber's random id (`Subscriber.uid`, 96 bits) and the
HMAC-SHA256 over a purpose prefix and that id, cut to 128 bits, both base64url without padding.
It carries no address, not even encoded, so neither a URL nor an access log leaks who reads.
Anyone holding the link can unsubscribe that one reader (RFC 8058 §4 expects exactly that), and
nobody can forge another.

Links signed before subscriber ids existed (``base64url(address) "." base64url(tag)``) keep
working: `verify_token` accepts them and names the address. Both forms are decoded strictly: a
part whose unused trailing bits are not zero (so that several strings decode to the same bytes)
is refused, as is anything outside the base64url alphabet.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING
from urllib.parse import quote

from publisher.config.secrets import get_secret
from publisher.errors import InputError
from publisher.model import Recipient, Recipients

if TYPE_CHECKING:
    from publisher.config.settings import Site
    from publisher.stores.addresses import Subscriber
    from publisher.stores.subscribers import Readers

SECRET_NAME = "PUBLISHER_UNSUBSCRIBE_SECRET"
PURPOSE = b"publisher-unsubscribe-v1\0"  # the address form, still verified
PURPOSE_ID = b"publisher-unsubscribe-v2\0"
TAG_BYTES = 16
_TAG_CHARS = -(-TAG_BYTES * 4 // 3)  # base64 characters of the tag, without padding
_PAD = bytes(-TAG_BYTES % 3)  # zero bytes that pad a tag to whole groups of three
_PADDED_CHARS = (TAG_BYTES + len(_PAD)) * 4 // 3
ID_SEPARATOR = "~"  # unreserved in URLs (RFC 3986 §2.3), never in an address-form token


@dataclass(frozen=True)
class TokenSubject:
    """Whom a verified token names: a subscriber id, or (older links) an address."""

    uid: str = ""
    email: str = ""


def unsubscribe_secret() -> str:
    """The signing secret, from the environment, .env or the keyring."""
    return get_secret(SECRET_NAME, purpose="signing unsubscribe links")


def make_token(uid: str, secret: str) -> str:
    """The token for one subscriber id."""
    return Signer(secret).token(uid)


class Signer:
    """Signs many subscriber ids with one secret: the keyed HMAC state is built once, copied.

    Tokens are exactly those of `make_token` (HMAC-SHA256 from `hmac`, keyed once per send with
    the purpose already fed, so an id costs one state copy, update and digest). Then one base64
    call for all tags and no URL quoting (a token is only base64url and `~`, unreserved
    characters `quote` keeps).
    """

    def __init__(self, secret: str) -> None:
        self.keyed = hmac.new(secret.encode("utf-8"), PURPOSE_ID, hashlib.sha256)

    def token(self, uid: str) -> str:
        """The token for one subscriber id (refused unless the id is base64url)."""
        return self.tokens((uid,))[0]

    def tokens(self, uids: Sequence[str], *, prefix: str = "") -> list[str]:
        """The tokens of many ids at once (each after `prefix`, e.g. a link's head): one regex
        check and one base64 call for all of them.

        Ids of whole base64url quads (every id `new_uid` makes) are checked together; a list
        holding any other id is checked id by id, so each refusal is the one `_unb64` makes.
        """
        if not uids:
            return []
        lines = "\n".join(uids)
        if lines.count("\n") != len(uids) - 1 or not _ALL_QUADS.fullmatch(lines):
            for uid in uids:
                if not uid:
                    raise ValueError("a subscriber without an id cannot get an unsubscribe link")
                if not (len(uid) % 4 == 0 and _CANONICAL_QUADS.fullmatch(uid)):
                    _unb64(uid)  # ids are base64url (subscribers.new_uid); an address never is
        keyed = self.keyed.copy
        tags = []
        for raw in lines.encode("ascii").split(b"\n"):  # checked above: no id holds a newline
            state = keyed()
            state.update(raw)
            tags.append(state.digest()[:TAG_BYTES])
        # Each tag padded by two zero bytes to 18 (whole base64 groups): its first _TAG_CHARS
        # characters are then exactly its own unpadded base64, so one call encodes them all.
        encoded = base64.urlsafe_b64encode(_PAD.join(tags) + _PAD).decode("ascii")
        return [f"{prefix}{uid}{ID_SEPARATOR}{encoded[at:at + _TAG_CHARS]}"
                for uid, at in zip(uids, range(0, len(encoded), _PADDED_CHARS), strict=True)]


def make_address_token(email: str, secret: str) -> str:
    """A token in the older address form (only to test that such links keep working)."""
    address = email.strip().encode("utf-8")
    return f"{_b64(address)}.{_b64(_tag(address, secret))}"


def verify_token(token: str, secret: str) -> TokenSubject:
    """Whom a token names, or InputError when it is malformed or forged."""
    text = token.strip()
    if ID_SEPARATOR in text:
        return _verify_id_token(text, secret)
    head, _, tag = text.partition(".")
    try:
        address = _unb64(head)
        given = _unb64(tag)
        email = address.decode("utf-8")
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise _malformed() from exc
    if not email or not hmac.compare_digest(given, _tag(address, secret)):
        raise _forged()
    return TokenSubject(email=email)


def _verify_id_token(token: str, secret: str) -> TokenSubject:
    """Check an id-form token."""
    uid, _, tag = token.partition(ID_SEPARATOR)
    try:
        _unb64(uid)
        given = _unb64(tag)
    except (ValueError, binascii.Error) as exc:
        raise _malformed() from exc
    if not hmac.compare_digest(given, _id_tag(uid, secret)):
        raise _forged()
    return TokenSubject(uid=uid)


def _malformed() -> InputError:
    """The error for a token that does not parse."""
    return InputError("malformed unsubscribe token", where="unsubscribe",
                      fix="use the full link from the email")


def _forged() -> InputError:
    """The error for a token whose tag does not verify."""
    return InputError("unsubscribe token does not verify", where="unsubscribe",
                      fix="use the full link from the email")


def unsubscribe_url(base: str, uid: str, secret: str) -> str:
    """The one-click link for a subscriber: base plus ?t=<token> (or &t= when base has a query)."""
    joiner = "&" if "?" in base else "?"
    return f"{base}{joiner}t={quote(make_token(uid, secret), safe='')}"


def unsubscribe_base(site: Site) -> str:
    """Where one-click links point: the configured URL, else <site url>/unsubscribe."""
    return site.unsubscribe_url or f"{site.url.rstrip('/')}/unsubscribe"


def unsubscribe_mailto(site: Site, uid: str, secret: str) -> str:
    """A mailto: fallback for List-Unsubscribe carrying the token in the subject, if configured."""
    target = site.unsubscribe_mailto.removeprefix("mailto:")
    if not target:
        return ""
    return f"mailto:{target}?subject={quote('unsubscribe ' + make_token(uid, secret))}"


def recipient_for(subscriber: Subscriber, site: Site, secret: str) -> Recipient:
    """A subscriber as a send sees them, with personal unsubscribe links."""
    return next(recipients_for(iter((subscriber,)), site, secret))


def recipients_for(
    subscribers: Iterable[Subscriber], site: Site, secret: str, *, chunk: int = 1000
) -> Iterator[Recipient]:
    """Subscribers as a send sees them, streamed a chunk at a time (see `recipients_of`)."""
    from publisher.stores.subscribers import Readers

    stream = iter(subscribers)
    pages = (Readers(tuple(s.id for s in part), tuple(s.email for s in part),
                     tuple(s.name for s in part), tuple(s.uid for s in part))
             for part in iter(lambda: list(islice(stream, chunk)), []))
    return recipients_of(pages, site, secret)


def recipients_of(pages: Iterable[Readers], site: Site, secret: str) -> Iterator[Recipient]:
    """Pages of readers as a send sees them, one recipient at a time (see `recipient_pages`)."""
    for page in recipient_pages(pages, site, secret):
        yield from page


def recipient_pages(pages: Iterable[Readers], site: Site, secret: str) -> Iterator[Recipients]:
    """Pages of readers as a send sees them, streamed as columns; the links' fixed parts are
    built once, and each link is its head and token made in one step."""
    signer = Signer(secret)
    base = unsubscribe_base(site)
    url_head = f"{base}{'&' if '?' in base else '?'}t="
    target = site.unsubscribe_mailto.removeprefix("mailto:")
    mail_head = f"mailto:{target}?subject={quote('unsubscribe ')}" if target else ""
    for page in pages:
        if not mail_head:
            urls = signer.tokens(page.uids, prefix=url_head)
            yield Recipients(page.emails, page.names, tuple(urls), ("",) * len(urls), page.ids)
            continue
        tokens = signer.tokens(page.uids)
        yield Recipients(page.emails, page.names, tuple([url_head + t for t in tokens]),
                         tuple([mail_head + t for t in tokens]), page.ids)


def _id_tag(uid: str, secret: str) -> bytes:
    """The truncated HMAC over the purpose and the subscriber id."""
    message = PURPOSE_ID + uid.encode("ascii")
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()[:TAG_BYTES]


def _tag(address: bytes, secret: str) -> bytes:
    """The truncated HMAC over the purpose and the lower-cased address (the older form)."""
    message = PURPOSE + address.decode("utf-8").lower().encode("utf-8")
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()[:TAG_BYTES]


def _b64(data: bytes) -> str:
    """URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    """Inverse of _b64, strictly: one spelling per value (canonical trailing bits), no padding."""
    if not text or len(text) % 4 == 1 or any(c not in _ALPHABET for c in text):
        raise ValueError("not base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:  # RFC 4648 §3.5: non-zero pad bits make another string, same bytes
        raise ValueError("not canonical base64url")
    return data


# Whole groups of four base64url characters: no padding bits, so always the canonical spelling.
_CANONICAL_QUADS = re.compile(r"(?:[A-Za-z0-9_-]{4})+")
# Such ids, one a line: every id of a page checked by one match.
_ALL_QUADS = re.compile(r"(?:[A-Za-z0-9_-]{4})+(?:\n(?:[A-Za-z0-9_-]{4})+)*")
_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
