"""The newsletter as an RFC 5322 message, built once and personalised per recipient cheaply.

`build_email_message` is the slow, obviously-right reference (a fresh `EmailMessage` each time).
`MessageBuilder` produces the same message (same headers, parts and decoded content) by encoding
the shared pieces once: the headers through the stdlib policy, and each body as quoted-printable
segments split at the placeholder markers, joined by soft line breaks, so a recipient costs a
few short encodes and a join. Every piece starts a line and ends with CRLF, so SMTP's
transparency (RFC 5321 §4.5.2) can be applied piece by piece: the shared pieces are dot-stuffed
once, and only a recipient's own few hundred bytes per message (`parts(..., stuffed=True)`).
"""

from __future__ import annotations

import binascii
import hashlib
import re
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from urllib.parse import urlsplit

from publisher.config.settings import Config, Site
from publisher.edition.newsletter import placeholders
from publisher.edition.newsletter.render import personalize
from publisher.errors import InputError
from publisher.model import Newsletter, Recipient

SMTP_POLICY = policy.SMTP  # CRLF line ends, as the bytes go on the wire
CRLF = b"\r\n"
QP_MAX_LINE = 76  # RFC 2045 §6.7 rule 5: encoded lines at most 76 characters
ONE_CLICK = "List-Unsubscribe=One-Click"  # RFC 8058 §3.1


def normalize_lines(text: str) -> str:
    """Line ends as the stdlib writes text parts: '\\n' only, with a final newline."""
    return "\n".join(line.decode("utf-8") for line in text.encode("utf-8").splitlines()) + "\n"


def list_id_value(site: Site, list_id: str) -> str:
    """`List-Id: Name <id>` (RFC 2919); the id defaults to newsletter.<site host>."""
    ident = list_id or site.list_id or f"newsletter.{urlsplit(site.url).hostname or 'localhost'}"
    return f"{site.name} <{ident}>" if site.name else f"<{ident}>"


def list_unsubscribe_value(recipient: Recipient, site: Site) -> str:
    """`List-Unsubscribe: <https://…>, <mailto:…>` (RFC 2369; RFC 8058 needs the https one)."""
    if not recipient.unsubscribe_url:
        raise InputError(
            "recipient has no unsubscribe URL",
            where=recipient.email,
            fix="give every recipient a signed unsubscribe_url before building messages",
        )
    mailto = recipient.unsubscribe_mailto or site.unsubscribe_mailto
    links = [recipient.unsubscribe_url] + ([_mailto(mailto)] if mailto else [])
    return ", ".join(f"<{link}>" for link in links)


def full_message_id(message_id: str, domain: str) -> str:
    """A Message-ID in angle brackets, with our domain when the caller gave only a local part."""
    bare = message_id.strip().strip("<>")
    return f"<{bare if '@' in bare else f'{bare}@{domain}'}>"


def build_email_message(
    newsletter: Newsletter, site: Site, recipient: Recipient, *, lang: str, list_id: str,
    message_id_domain: str, date: datetime, message_id: str,
) -> EmailMessage:
    """The reference build: a fresh EmailMessage, text/plain then text/html, both QP-encoded."""
    page, text = personalize(newsletter, recipient)
    # a non-ASCII address goes out only with SMTPUTF8, whose headers are UTF-8 (RFC 6532)
    msg = EmailMessage(policy=SMTP_POLICY if recipient.email.isascii() else policy.SMTPUTF8)
    shared = _shared_headers(newsletter, site, lang=lang, list_id=list_id)
    for name, value in shared[:-1]:
        msg[name] = value
    msg["To"] = _address(_one_line(recipient.name), recipient.email)
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = full_message_id(message_id, message_id_domain)
    msg["List-Unsubscribe"] = list_unsubscribe_value(recipient, site)
    msg.set_content(text, cte="quoted-printable")
    msg.add_alternative(page, subtype="html", cte="quoted-printable")
    msg.set_boundary(_boundary(newsletter))
    msg[shared[-1][0]] = shared[-1][1]  # set_content drops Content-* headers, so it comes last
    return msg


class MessageBuilder:
    """Builds one newsletter's message for many recipients, sharing all the encoding work."""

    def __init__(
        self, newsletter: Newsletter, site: Site, *, lang: str, list_id: str,
        message_id_domain: str,
    ) -> None:
        self.newsletter = newsletter
        self.site = site
        self.lang = lang
        self.list_id = list_id
        self.domain = message_id_domain
        self.header_block = _encoded_headers(newsletter, site, lang=lang, list_id=list_id)
        boundary = _boundary(newsletter).encode("ascii")
        self.text_body = QpTemplate(normalize_lines(newsletter.text))
        self.html_body = QpTemplate(normalize_lines(newsletter.html))
        self.text_head = b"".join((
            b"MIME-Version: 1.0", CRLF,
            b'Content-Type: multipart/alternative; boundary="', boundary, b'"', CRLF, CRLF,
            b"--", boundary, CRLF,
            b'Content-Type: text/plain; charset="utf-8"', CRLF,
            b"Content-Transfer-Encoding: quoted-printable", CRLF, CRLF,
        ))
        self.html_head = b"".join((
            CRLF, b"--", boundary, CRLF,
            b'Content-Type: text/html; charset="utf-8"', CRLF,
            b"Content-Transfer-Encoding: quoted-printable", CRLF, b"MIME-Version: 1.0", CRLF, CRLF,
        ))
        self.tail = b"".join((CRLF, b"--", boundary, b"--", CRLF))
        self.stuffed = tuple(map(dot_stuff, (self.header_block, self.text_head, self.html_head,
                                             self.tail)))
        self._date: tuple[datetime, bytes] | None = None

    def build(self, recipient: Recipient, *, date: datetime, message_id: str) -> bytes:
        """The message bytes for one recipient (CRLF line ends, ready for SMTP or an .eml)."""
        return b"".join(self.parts(recipient, date=date, message_id=message_id))

    def parts(self, recipient: Recipient, *, date: datetime, message_id: str,
              stuffed: bool = False) -> list[bytes]:
        """The message as pieces that each start a line; stuffed: as SMTP's DATA carries it."""
        if not recipient.email.isascii():  # SMTPUTF8 addresses: let the stdlib handle them
            data = self.reference(recipient, date=date, message_id=message_id).as_bytes()
            return [dot_stuff(data) if stuffed else data]
        name = _one_line(recipient.name)
        url = recipient.unsubscribe_url
        own = b"".join((
            _to_header(name, recipient.email),
            b"Date: ", self._date_value(date), CRLF,
            b"Message-ID: ", full_message_id(message_id, self.domain).encode("ascii"), CRLF,
            _folded("List-Unsubscribe", list_unsubscribe_value(recipient, self.site)),
        ))
        block, text_head, html_head, tail = (
            self.stuffed if stuffed else (self.header_block, self.text_head, self.html_head,
                                          self.tail))
        return [
            block, dot_stuff(own) if stuffed else own, text_head,
            *self.text_body.pieces(placeholders.text_values(name, url), stuffed=stuffed),
            html_head,
            *self.html_body.pieces(placeholders.html_values(name, url), stuffed=stuffed),
            tail,
        ]

    def _date_value(self, date: datetime) -> bytes:
        """The Date header's value, formatted once per send time (a batch shares one)."""
        cached = self._date
        if cached is None or cached[0] != date:
            cached = self._date = (date, format_datetime(date).encode("ascii"))
        return cached[1]

    def reference(self, recipient: Recipient, *, date: datetime, message_id: str) -> EmailMessage:
        """The same message through the slow path, for checks and unusual addresses."""
        return build_email_message(
            self.newsletter, self.site, recipient, lang=self.lang, list_id=self.list_id,
            message_id_domain=self.domain, date=date, message_id=message_id,
        )


class QpTemplate:
    """A body pre-encoded as quoted-printable pieces around its placeholders."""

    def __init__(self, text: str) -> None:
        literals, self.slots = placeholders.split(text)
        self.literals = tuple(_qp_piece(piece.encode("utf-8")) for piece in literals)
        self.stuffed = tuple(map(dot_stuff, self.literals))

    def fill(self, values: dict[str, str]) -> bytes:
        """The encoded body with each slot's value (or default) encoded in place."""
        return b"".join(self.pieces(values))

    def pieces(self, values: dict[str, str], *, stuffed: bool = False) -> list[bytes]:
        """The encoded body as pieces, each starting a line (and dot-stuffed when asked)."""
        literals = self.stuffed if stuffed else self.literals
        out = [literals[0]]
        for (key, default), literal in zip(self.slots, literals[1:], strict=True):
            piece = _qp_piece((values.get(key) or default).encode("utf-8"))
            out.append(dot_stuff(piece) if stuffed else piece)
            out.append(literal)
        return out


def sample_eml(
    newsletter: Newsletter, config: Config, *, lang: str, date: datetime, message_id: str,
) -> bytes:
    """An .eml addressed to the configured sample reader, for the outbox when nobody subscribed."""
    site = config.site
    base = site.unsubscribe_url or f"{site.url.rstrip('/')}/unsubscribe"
    recipient = Recipient(
        email=config.newsletter.sample_recipient, unsubscribe_url=base,
        unsubscribe_mailto=site.unsubscribe_mailto,
    )
    domain = site.sender.rpartition("@")[2].strip("> ") or "localhost"
    builder = MessageBuilder(
        newsletter, site, lang=lang, list_id=site.list_id, message_id_domain=domain
    )
    return builder.build(recipient, date=date, message_id=message_id)


def _shared_headers(
    newsletter: Newsletter, site: Site, *, lang: str, list_id: str
) -> list[tuple[str, str]]:
    """Headers every recipient gets, in the order both builds write them."""
    headers = [("From", site.sender)]
    if site.reply_to:
        headers.append(("Reply-To", site.reply_to))
    headers += [
        ("Subject", newsletter.subject),
        ("List-Id", list_id_value(site, list_id)),
        ("List-Unsubscribe-Post", ONE_CLICK),
        ("Content-Language", lang),  # must stay last: the reference build sets it after the body
    ]
    return headers


def _encoded_headers(newsletter: Newsletter, site: Site, *, lang: str, list_id: str) -> bytes:
    """The shared headers encoded and folded by the stdlib policy (RFC 2047 for non-ASCII)."""
    holder = EmailMessage(policy=SMTP_POLICY)
    for name, value in _shared_headers(newsletter, site, lang=lang, list_id=list_id):
        holder[name] = value
    return holder.as_bytes().removesuffix(CRLF)


def _address(name: str, email: str) -> Address:
    """The To address; a non-ASCII local part is given in parts (addr_spec parsing refuses it)."""
    if email.isascii():
        return Address(display_name=name, addr_spec=email)
    local, _, domain = email.rpartition("@")
    return Address(display_name=name, username=local, domain=domain)


def _to_header(name: str, address: str) -> bytes:
    """The To line; formataddr is the fast common case, the policy folds unusually long ones."""
    value = formataddr((name, address), charset="utf-8") if name else address
    if len(value) <= 72:
        return b"To: " + value.encode("ascii") + CRLF
    header = SMTP_POLICY.header_factory("To", Address(display_name=name, addr_spec=address))
    return SMTP_POLICY.fold_binary("To", header)


def _folded(name: str, value: str) -> bytes:
    """An ASCII header, folded after commas to stay under 78 characters where it can."""
    line = f"{name}: {value}"
    if len(line) > 78:
        line = line.replace(", <", ",\r\n <")
    return line.encode("ascii") + CRLF


def dot_stuff(data: bytes) -> bytes:
    """SMTP transparency for bytes that start a line: CRLF line ends, leading dots doubled.

    RFC 5321 §4.5.2 (https://www.rfc-editor.org/rfc/rfc5321#section-4.5.2). The line ends are
    counted first: when they are all CRLF already, that is about ten times cheaper than a regex.
    """
    crlf = data.count(b"\r\n")
    if data.count(b"\r") != crlf or data.count(b"\n") != crlf:
        data = re.sub(rb"\r\n|\r|\n", b"\r\n", data)
    if b"\n." in data:
        data = data.replace(b"\n.", b"\n..")
    return b"." + data if data.startswith(b".") else data


def _qp_piece(data: bytes) -> bytes:
    """Quoted-printable for one piece; a piece ending mid-line gets a soft line break."""
    if not data:
        return b""
    encoded = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)
    encoded = encoded.replace(b"\n", CRLF)
    if encoded.endswith(CRLF):
        return encoded
    head, newline, last = encoded.rpartition(CRLF)
    prefix = head + newline
    if len(last) < QP_MAX_LINE:
        return prefix + last + b"=" + CRLF
    cut = QP_MAX_LINE - 1
    while b"=" in last[cut - 2:cut]:  # never split an =XX escape
        cut -= 1
    return prefix + last[:cut] + b"=" + CRLF + last[cut:] + b"=" + CRLF


def _boundary(newsletter: Newsletter) -> str:
    """A stable boundary; '=_' never occurs in quoted-printable text (RFC 2045 §6.7)."""
    return "=_publisher_" + hashlib.sha256(newsletter.html.encode("utf-8")).hexdigest()[:16]


def _one_line(name: str) -> str:
    """A display name on one line: a newline in a header value would start a new header."""
    return " ".join(name.split())


def _mailto(address: str) -> str:
    """A mailto: URI from a bare address or one that already has the scheme."""
    return address if address.startswith("mailto:") else f"mailto:{address}"
