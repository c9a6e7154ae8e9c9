"""Subscriber addresses and statuses: one canonical form per reader, and what each status means.

Addresses are matched by one canonical form (`canonical_email`): the domain in its IDNA ASCII
form, lower-cased, and the local part NFC-normalized and Unicode case-folded. RFC 5321 §2.4 lets a
server treat local parts case-sensitively, but the providers we send through (SendGrid, Postmark,
Resend) and the mailbox providers do not: their suppression lists match case-insensitively, so
two case variants are one reader. Dots and `+tags` are left alone: only Gmail ignores them, and
folding them would merge different people at every other provider.
"""

from __future__ import annotations

import base64
import secrets
import time
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

from publisher.errors import InputError

if TYPE_CHECKING:
    from email_validator.syntax import LocalPartValidationResult as LocalPartInfo

STATUSES = ("subscribed", "unsubscribed", "bounced", "complained")
SUPPRESSED = frozenset(STATUSES[1:])
# A suppression never weakens an address: a complaint outranks a bounce, a bounce an opt-out.
# Sync applies several provider lists in turn; this order keeps a second sync a no-op.
RANK = {"subscribed": 0, "unsubscribed": 1, "bounced": 2, "complained": 3}


@dataclass(frozen=True)
class Subscriber:
    """One address on the list, with why and since when it has its status."""

    email: str
    name: str = ""
    status: str = "subscribed"
    id: int = 0
    reason: str = ""
    status_at: float = 0.0
    uid: str = ""  # random, per subscriber: what unsubscribe tokens carry instead of the address



def canonical_email(address: str) -> str:
    """The match key: case-folded NFC local part @ lower-case IDNA (ASCII) domain."""
    from email_validator import EmailNotValidError, validate_email

    text = address.strip()
    try:
        found = validate_email(text, check_deliverability=False)
    except EmailNotValidError:
        local, _, domain = text.rpartition("@")
        return _key(local, _ascii_domain(domain))
    return _key(found.local_part, found.ascii_domain)


def validated_email(address: str) -> tuple[str, str]:
    """The normalized address and its match key, or InputError saying what is wrong."""
    from email_validator import EmailNotValidError, validate_email

    try:
        found = validate_email(address.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InputError(f"invalid address {address!r}: {exc}", where="subscribers",
                         fix="correct the address") from exc
    return str(found.normalized), _key(found.local_part, found.ascii_domain)


class AddressChecker:
    """`validated_email` for many addresses, each distinct domain checked once (imports repeat).

    The steps are email-validator's own `validate_email` (v2, `check_deliverability=False`), in
    its order and with its messages; only the domain's result is reused. Display names, quoted
    local parts and bracketed domains go through `validate_email` itself.
    `tests/test_import.py` compares the two on generated valid and invalid addresses.
    """

    def __init__(self, max_domains: int = 50_000) -> None:
        from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES, DOT_ATOM_TEXT

        self._domains: dict[str, tuple[str, str] | Exception] = {}
        self._plain: dict[str, tuple[str, str, int]] = {}  # see `_plain_domain`
        self._max = max_domains  # a file of mostly distinct domains must not grow it unbounded
        self._dot_atom = DOT_ATOM_TEXT.match
        self._folded = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)

    def __call__(self, address: str) -> tuple[str, str]:
        """The normalized address and its match key, or InputError exactly as `validated_email`.

        The common case (ASCII, a dot-atom local part, a domain that already passed here, well
        under the length limit) is answered without email-validator: the same steps give
        exactly `local@domain` and `local.lower()@ascii_domain.lower()` for it.
        """
        text = address.strip()
        if text.isascii():
            local, _, domain_part = text.partition("@")
            plain = self._plain.get(domain_part)
            if plain is not None and len(local) <= plain[2] and self._dot_atom(local):
                folded = local.lower()
                if folded in self._folded:  # RFC 2142 names: email-validator lower-cases them
                    local = folded
                return local + plain[0], folded + plain[1]
        from email_validator import EmailNotValidError

        try:
            return self._check(text)
        except EmailNotValidError as exc:
            raise InputError(f"invalid address {address!r}: {exc}", where="subscribers",
                             fix="correct the address") from exc

    def _check(self, text: str) -> tuple[str, str]:
        """validate_email's steps with the domain step cached."""
        import email_validator as ev
        from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES
        from email_validator.syntax import split_email, validate_email_length

        if text.isascii() and "@" in text and '"' not in text and "<" not in text:
            # split_email's own result for such text: no NFC change, quote or display name
            display, quoted = None, False
            original_local, _, domain_part = text.partition("@")
            local = original_local
        else:
            display, original_local, local, quoted, domain_part = split_email(text)
        if display is not None or quoted or domain_part.startswith("["):
            found = ev.validate_email(text, check_deliverability=False)
            return str(found.normalized), _key(found.local_part, found.ascii_domain)
        info = _local_part(local)
        normalized = unicodedata.normalize("NFC", local)
        if normalized != local:
            try:
                info = _local_part(normalized)
            except ev.EmailSyntaxError as exc:
                raise ev.EmailSyntaxError("After Unicode normalization: " + str(exc)) from exc
        local_part, ascii_local = info["local_part"], info["ascii_local_part"]
        if ascii_local is not None and ascii_local.lower() in CASE_INSENSITIVE_MAILBOX_NAMES:
            ascii_local, local_part = ascii_local.lower(), local_part.lower()
        if not domain_part:
            raise ev.EmailSyntaxError("There must be something after the @-sign.")
        domain, ascii_domain = self._domain(domain_part)
        found = ev.ValidatedEmail()
        found.original = original_local + "@" + domain_part
        found.local_part, found.ascii_local_part = local_part, ascii_local
        found.smtputf8, found.domain, found.ascii_domain = info["smtputf8"], domain, ascii_domain
        found.normalized = local_part + "@" + domain
        both = ascii_local and ascii_domain
        found.ascii_email = f"{ascii_local}@{ascii_domain}" if both else None
        validate_email_length(found)
        return found.normalized, _key(local_part, ascii_domain)

    def _domain(self, domain_part: str) -> tuple[str, str]:
        """The domain's (domain, ascii_domain), or its syntax error, computed once per domain."""
        import email_validator as ev
        from email_validator.syntax import validate_email_domain_name

        cached = self._domains.get(domain_part)
        if cached is None:
            if len(self._domains) >= self._max:
                self._domains.clear()
                self._plain.clear()
            try:
                info = validate_email_domain_name(domain_part,
                                                  test_environment=ev.TEST_ENVIRONMENT,
                                                  globally_deliverable=ev.GLOBALLY_DELIVERABLE)
                cached = (info["domain"], info["ascii_domain"])
            except ev.EmailSyntaxError as exc:
                cached = exc
            self._domains[domain_part] = cached
            self._plain_domain(domain_part, cached)
        if isinstance(cached, Exception):
            raise type(cached)(*cached.args)
        return cached

    def _plain_domain(self, domain_part: str, cached: tuple[str, str] | Exception) -> None:
        """Remember a valid ASCII domain for `__call__`'s shortcut: `@domain`, `@ascii_domain`
        lower-cased, and the longest local part for which no form of the address is over
        email-validator's 254 octets (`validate_email_length` checks the three forms)."""
        from email_validator.rfc_constants import EMAIL_MAX_LENGTH

        if isinstance(cached, Exception) or not domain_part.isascii():
            return
        domain, ascii_domain = cached
        longest = max(len(domain_part), len(domain.encode("utf-8")), len(ascii_domain))
        self._plain[domain_part] = ("@" + domain, "@" + ascii_domain.lower(),
                                    EMAIL_MAX_LENGTH - 1 - longest)


def _local_part(local: str) -> LocalPartInfo:
    """email-validator's local-part check with its default options."""
    import email_validator as ev
    from email_validator.syntax import validate_email_local_part

    return validate_email_local_part(local, allow_smtputf8=ev.ALLOW_SMTPUTF8,
                                     allow_empty_local=ev.ALLOW_EMPTY_LOCAL,
                                     quoted_local_part=False, strict=ev.STRICT)


def normalize_email(email: str) -> str:
    """The address in normalized form, or InputError saying what is wrong with it."""
    return validated_email(email)[0]


def loose_address(address: str) -> str:
    """A provider's address as we store it: normalized if valid, else as given (still matched)."""
    try:
        return validated_email(address)[0]
    except InputError:
        return address.strip()


def _key(local: str, ascii_domain: str) -> str:
    """Join the folded parts."""
    return f"{unicodedata.normalize('NFC', local.casefold())}@{ascii_domain.lower()}"


def _ascii_domain(domain: str) -> str:
    """A domain's IDNA form (UTS #46), or the lower-cased text when it is not a valid name."""
    import idna

    try:
        return str(idna.encode(domain, uts46=True).decode("ascii"))
    except idna.IDNAError:
        return domain.lower()


def new_uid() -> str:
    """A fresh random subscriber id for unsubscribe tokens (96 bits, URL-safe)."""
    return secrets.token_urlsafe(12)


def new_uids(count: int) -> list[str]:
    """`count` ids like `new_uid`'s from one read of the OS's random source (12 bytes are
    exactly 16 base64 characters, so each slice is one id's `token_urlsafe(12)`)."""
    encoded = base64.urlsafe_b64encode(secrets.token_bytes(12 * count)).decode("ascii")
    return [encoded[i:i + 16] for i in range(0, 16 * count, 16)]


def check_status(status: str) -> None:
    """InputError for a status the store does not know."""
    if status not in STATUSES:
        raise InputError(f"unknown status {status!r}", where="subscribers",
                         fix=f"use one of: {', '.join(STATUSES)}")


def iso_time(stamp: float) -> str:
    """A status time as ISO 8601 UTC to the second ('' when unknown)."""
    if not stamp:
        return ""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))


def describe_status(subscriber: Subscriber) -> str:
    """`reason, since <time>` for messages and `subscribers list`."""
    reason = subscriber.reason or "reason not recorded"
    when = iso_time(subscriber.status_at)
    return f"{reason}, since {when}" if when else reason
