"""SMTP (smtplib): one message per recipient over a few reused connections, reopened on a drop.

Security is STARTTLS (RFC 3207), implicit TLS (RFC 8314) or none (local servers only); AUTH when
a user is configured, the password from SMTP_PASSWORD. Replies map per RFC 5321 §4.2.1: a 5xx
to RCPT or DATA rejects that recipient for good; one that says the address is bad (enhanced
status 5.1.x or 5.2.1, RFC 3463 §3.2-3.3, or a bare 550/551/553 to RCPT) also bounces it, so
the subscriber is suppressed. A 4xx defers it (failed for now: a later run retries it). A
connection dropped before the message was handed over is reopened and the message resent; a
drop after the payload but before the reply is ambiguous, so that recipient is reported
uncertain and stays pending in the ledger (`--retry-pending`). Failing before anything was
sent raises a delivery error so the shared loop can retry the batch. When the server offers
PIPELINING (RFC 2920, https://www.rfc-editor.org/rfc/rfc2920), MAIL, RCPT and DATA go in one
write and their replies are read in order; the message itself still waits for the 354.
"""

from __future__ import annotations

import base64
import hashlib
import re
import smtplib
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Any, ClassVar, Self

from publisher.channels import BatchResult, ChannelContext, EmailBatch, Facts, Hints
from publisher.channels.message import MessageBuilder
from publisher.config.secrets import mask, remember
from publisher.config.settings import Site
from publisher.errors import ConfigError, PermanentDeliveryError, TransientDeliveryError
from publisher.model import Recipient

NAME = "smtp"
SECRETS = ("SMTP_PASSWORD",)
BATCH_SIZE = 50
SECURITY_PORTS = {"starttls": 587, "tls": 465, "none": 25}
ENHANCED = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})\b")  # RFC 3463 class.subject.detail
ADDRESS_STATUS = re.compile(r"5\.(1\.\d+|2\.1)$")  # bad mailbox/address, or mailbox disabled
LOST_REPLY = ("the server took the message, then the connection dropped before its reply"
              " (maybe delivered)")
SETTINGS = frozenset({
    "host", "port", "security", "user", "password_env", "timeout", "connections", "batch_size",
    "ca_file", "local_hostname", "list_id", "message_id_domain",
})


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to connect."""

    host: str = "localhost"
    port: int = 587
    security: str = "starttls"
    user: str = ""
    password: str = field(default="", repr=False)
    timeout: float = 30.0
    ca_file: str = ""
    local_hostname: str | None = None


@dataclass
class _Outcome:
    """What one worker did with its share of a batch."""

    accepted: dict[str, str] = field(default_factory=dict)
    refused: dict[str, Refusal] = field(default_factory=dict)
    uncertain: set[str] = field(default_factory=set)
    failure: Exception | None = None
    unsent: list[Recipient] = field(default_factory=list)


class _Ambiguous(Exception):
    """The connection dropped after the message was handed over, before the server answered."""


class SmtpChannel:
    """Email over SMTP with connection reuse and optional parallel connections."""

    facts: ClassVar[Facts] = Facts(
        kind="email", batch_size=BATCH_SIZE, secrets=SECRETS,  # the password only with a user
        docs="https://www.rfc-editor.org/rfc/rfc5321",
    )
    name = NAME

    def __init__(self, settings: SmtpSettings, site: Site, *, batch_size: int = BATCH_SIZE,
                 connections: int = 1, list_id: str = "", message_id_domain: str = "") -> None:
        self.settings = settings
        self.site = site
        self.batch_size = batch_size
        self.list_id = list_id
        self.envelope_from = parseaddr(site.sender)[1]
        self.domain = message_id_domain or self.envelope_from.rpartition("@")[2] or "localhost"
        self.pool = [_Connection(settings) for _ in range(max(1, connections))]
        self._cached: tuple[Any, str, MessageBuilder] | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, context: ChannelContext) -> Self:
        """Build from [channels.smtp]: host, port, security, user, timeout, connections, ca_file…"""
        settings = context.settings
        settings.allow(SETTINGS)
        security = settings.text("security", "starttls")
        if security not in SECURITY_PORTS:
            raise ConfigError(f"security must be one of {', '.join(SECURITY_PORTS)}",
                              where=settings.where, fix='e.g. security = "starttls"')
        user = settings.text("user")
        password = ""
        if user:
            password = context.secret(settings.text("password_env", SECRETS[0]),
                                      purpose=f"SMTP login as {user}")
            remember_login(user, password)
        smtp = SmtpSettings(
            host=settings.text("host", "localhost"),
            port=settings.integer("port", SECURITY_PORTS[security]),
            security=security, user=user, password=password,
            timeout=settings.number("timeout", 30.0),
            ca_file=settings.text("ca_file"),
            local_hostname=settings.text("local_hostname") or None,
        )
        return cls(
            smtp, context.site, batch_size=settings.integer("batch_size", BATCH_SIZE),
            connections=settings.integer("connections", 1),
            list_id=settings.text("list_id"),
            message_id_domain=settings.text("message_id_domain"),
        )

    def preflight(self) -> Hints:
        """Connect, EHLO, STARTTLS and log in, as a send would."""
        self.pool[0].open()
        return {}

    def send_batch(self, batch: EmailBatch) -> BatchResult:
        """Send each recipient its own message; split across the connections."""
        builder = self._builder(batch)
        date = datetime.now(UTC)
        workers = min(len(self.pool), len(batch.recipients)) or 1
        shares = [list(batch.recipients[i::workers]) for i in range(workers)]
        if workers == 1:
            outcomes = [self._send_share(self.pool[0], builder, batch.key, shares[0], date)]
        else:
            with ThreadPoolExecutor(workers) as pool:
                outcomes = list(pool.map(
                    lambda i: self._send_share(self.pool[i], builder, batch.key, shares[i], date),
                    range(workers),
                ))
        return _merge(outcomes)

    def close(self) -> None:
        """QUIT every open connection."""
        for connection in self.pool:
            connection.close()

    def _builder(self, batch: EmailBatch) -> MessageBuilder:
        """One MessageBuilder per newsletter (its shared parts are encoded once)."""
        with self._lock:
            cached = self._cached
            if cached is None or cached[0] is not batch.newsletter or cached[1] != batch.lang:
                builder = MessageBuilder(
                    batch.newsletter, self.site, lang=batch.lang, list_id=self.list_id,
                    message_id_domain=self.domain,
                )
                cached = self._cached = (batch.newsletter, batch.lang, builder)
            return cached[2]

    def _send_share(self, connection: _Connection, builder: MessageBuilder, key: str,
                    share: list[Recipient], date: datetime) -> _Outcome:
        """Send one worker's recipients in order, stopping at a connection-level failure."""
        outcome = _Outcome()
        for index, recipient in enumerate(share):
            message_id = _message_id(key, recipient.email, self.domain)
            data = builder.build(recipient, date=date, message_id=message_id)
            try:
                reply = connection.deliver(self.envelope_from, recipient.email, data)
            except _Ambiguous:
                outcome.uncertain.add(recipient.email)
                continue
            except (TransientDeliveryError, PermanentDeliveryError) as exc:
                outcome.failure = exc
                outcome.unsent = share[index:]
                return outcome
            if reply is None:
                outcome.accepted[recipient.email] = message_id
            else:
                outcome.refused[recipient.email] = reply
        return outcome


class _Connection:
    """One SMTP session, opened lazily and reopened after a drop."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self.smtp: smtplib.SMTP | None = None

    def open(self) -> smtplib.SMTP:
        """The live session, connecting (and securing, and logging in) when needed."""
        if self.smtp is None:
            self.smtp = _connect(self.settings)
        return self.smtp

    def close(self) -> None:
        """QUIT politely; a dead connection is simply dropped."""
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (smtplib.SMTPException, OSError):
                self.smtp.close()
            self.smtp = None

    def deliver(self, sender: str, rcpt: str, data: bytes) -> Refusal | None:
        """None when accepted, the reason when refused; raises on connection trouble."""
        for attempt in (1, 2):
            try:
                return _transaction(self.open(), sender, rcpt, data)
            except _Ambiguous:
                self._discard()
                raise
            except (smtplib.SMTPServerDisconnected, OSError) as exc:
                self._discard()
                if attempt == 2:
                    raise TransientDeliveryError(
                        f"{self.settings.host}:{self.settings.port} dropped the connection twice"
                        f" ({exc.__class__.__name__})", where=NAME,
                    ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _discard(self) -> None:
        """Forget a broken session so the next message reconnects."""
        if self.smtp is not None:
            self.smtp.close()
        self.smtp = None


def _transaction(smtp: smtplib.SMTP, sender: str, rcpt: str, data: bytes) -> Refusal | None:
    """MAIL, RCPT, DATA for one recipient; a refusal is returned, a broken MAIL is raised."""
    options = [f"SIZE={len(data)}"] if smtp.has_extn("size") else []
    if not (sender + rcpt).isascii():
        options.append("SMTPUTF8")
    pipelined = smtp.has_extn("pipelining") and "SMTPUTF8" not in options
    refusal = (_pipelined_envelope if pipelined else _envelope)(smtp, sender, rcpt, options)
    if refusal is not None:
        return refusal
    try:
        smtp.send(_dot_stuffed(data))
        code, reply = smtp.getreply()
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        raise _Ambiguous() from exc
    return None if code == 250 else _refusal(code, reply, "end of DATA")


def _envelope(smtp: smtplib.SMTP, sender: str, rcpt: str, options: list[str]) -> Refusal | None:
    """MAIL, RCPT and DATA one reply at a time; None once the server asked for the message."""
    code, reply = smtp.mail(sender, options)
    if code != 250:
        smtp.rset()
        raise _reply_error(code, reply, "MAIL FROM")
    code, reply = smtp.rcpt(rcpt)
    if code not in (250, 251):
        smtp.rset()
        return _refusal(code, reply, "RCPT TO")
    code, reply = smtp.docmd("DATA")
    if code != 354:
        smtp.rset()
        return _refusal(code, reply, "DATA")
    return None


def _pipelined_envelope(smtp: smtplib.SMTP, sender: str, rcpt: str,
                        options: list[str]) -> Refusal | None:
    """MAIL, RCPT and DATA in one write, their replies read in order (RFC 2920 §3.1)."""
    if "\r" in sender + rcpt or "\n" in sender + rcpt:
        raise ValueError("line break in an SMTP address")  # as smtplib's putcmd refuses it
    extra = "".join(f" {option}" for option in options)
    smtp.send(f"MAIL FROM:{smtplib.quoteaddr(sender)}{extra}\r\n"
              f"RCPT TO:{smtplib.quoteaddr(rcpt)}\r\nDATA\r\n".encode("ascii"))
    mail, to, data = smtp.getreply(), smtp.getreply(), smtp.getreply()
    if data[0] == 354 and (mail[0] != 250 or to[0] not in (250, 251)):
        smtp.send(b".\r\n")  # RFC 2920 §3.1: DATA taken anyway, so end it empty
        smtp.getreply()
    if mail[0] != 250:
        smtp.rset()
        raise _reply_error(mail[0], mail[1], "MAIL FROM")
    if to[0] not in (250, 251):
        smtp.rset()
        return _refusal(to[0], to[1], "RCPT TO")
    if data[0] != 354:
        smtp.rset()
        return _refusal(data[0], data[1], "DATA")
    return None


def _connect(settings: SmtpSettings) -> smtplib.SMTP:
    """A ready session: connected, EHLO, secured as configured, logged in when a user is set."""
    where = f"{settings.host}:{settings.port}"
    context = ssl.create_default_context(cafile=settings.ca_file or None)
    smtp: smtplib.SMTP | None = None
    try:
        if settings.security == "tls":
            smtp = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout,
                                    local_hostname=settings.local_hostname, context=context)
        else:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout,
                                local_hostname=settings.local_hostname)
        smtp.ehlo()
        if settings.security == "starttls":
            smtp.starttls(context=context)
            smtp.ehlo()
        if settings.user:
            smtp.login(settings.user, settings.password)
        return smtp
    except smtplib.SMTPAuthenticationError as exc:
        _close_quietly(smtp)
        raise PermanentDeliveryError(
            f"{where} refused the login for {settings.user!r}: {_text(exc.smtp_error)}",
            where=NAME, fix="check the SMTP user and SMTP_PASSWORD",
        ) from exc
    except smtplib.SMTPNotSupportedError as exc:
        _close_quietly(smtp)
        raise PermanentDeliveryError(
            f"{where} does not offer {'STARTTLS' if 'STARTTLS' in str(exc) else 'AUTH'}",
            where=NAME, fix='set security = "tls" or the right port in [channels.smtp]',
        ) from exc
    except ssl.SSLError as exc:
        _close_quietly(smtp)
        raise PermanentDeliveryError(
            f"TLS with {where} failed ({exc.reason or exc})", where=NAME,
            fix="check host, port and security, or set ca_file for a private CA",
        ) from exc
    except smtplib.SMTPResponseException as exc:
        _close_quietly(smtp)
        raise _reply_error(exc.smtp_code, exc.smtp_error, "connect") from exc
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        _close_quietly(smtp)
        raise TransientDeliveryError(
            f"cannot connect to {where} ({exc.__class__.__name__}: {mask(str(exc))})", where=NAME,
        ) from exc


def _reply_error(code: int, reply: bytes | str, stage: str) -> Exception:
    """A session-level reply as a delivery error: 4xx transient, else permanent."""
    problem = f"{stage}: {code} {_text(reply)}"
    if 400 <= code < 500:
        return TransientDeliveryError(problem, where=NAME)
    return PermanentDeliveryError(problem, where=NAME, fix="check the sender address and account")


@dataclass(frozen=True)
class Refusal:
    """Why the server did not take one recipient, and what that means for it."""

    reason: str
    transient: bool  # a 4xx: try again later
    bad_address: bool  # the server says the mailbox does not exist or is disabled


def _refusal(code: int, reply: bytes, stage: str) -> Refusal:
    """Classify a refusal: 4xx deferred; 5xx refused, and bounced when it blames the address."""
    text = _text(reply)
    enhanced = ENHANCED.match(text)
    if enhanced:
        bad = enhanced.group(1) == "5" and ADDRESS_STATUS.match(enhanced.group(0)) is not None
    else:
        bad = stage == "RCPT TO" and code in (550, 551, 553)
    return Refusal(f"{code} {text} (at {stage})", 400 <= code < 500, bad and code >= 500)


def _dot_stuffed(data: bytes) -> bytes:
    """CRLF line ends, leading dots doubled, and the end-of-data line (RFC 5321 §4.5.2)."""
    crlf = data.count(b"\r\n")
    if data.count(b"\r") != crlf or data.count(b"\n") != crlf:  # counting is ~10× a regex pass
        data = re.sub(rb"\r\n|\r|\n", b"\r\n", data)
    data = data.replace(b"\n.", b"\n..")
    if data.startswith(b"."):
        data = b"." + data
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def _message_id(key: str, email: str, domain: str) -> str:
    """A Message-ID stable for this batch and recipient, so a resend is recognisable."""
    digest = hashlib.sha256(f"{key}\0{email.lower()}".encode()).hexdigest()[:32]
    return f"<{digest}@{domain}>"


def _merge(outcomes: list[_Outcome]) -> BatchResult:
    """Combine the workers; raise only when nothing at all was (or may have been) delivered."""
    accepted: dict[str, str] = {}
    refused: dict[str, Refusal] = {}
    uncertain: set[str] = set()
    for outcome in outcomes:
        accepted.update(outcome.accepted)
        refused.update(outcome.refused)
        uncertain |= outcome.uncertain
    failures = [o for o in outcomes if o.failure is not None]
    if failures and not accepted and not uncertain and not refused:
        raise failures[0].failure  # type: ignore[misc]
    deferred = {e: r.reason for e, r in refused.items() if r.transient}
    for outcome in failures:  # partial progress: defer the rest instead of risking a resend
        deferred.update(dict.fromkeys((r.email for r in outcome.unsent), str(outcome.failure)))
    return BatchResult(
        accepted=accepted,
        rejected={e: r.reason for e, r in refused.items() if not r.transient},
        deferred=deferred,
        bounced=frozenset(e for e, r in refused.items() if r.bad_address),
        uncertain=dict.fromkeys(uncertain, LOST_REPLY),
    )


def _text(reply: bytes | str) -> str:
    """A server reply as one masked line."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return mask(" ".join(text.split()))


def remember_login(user: str, password: str) -> None:
    """Mask the exact AUTH strings a server may echo: PLAIN (RFC 4616) and LOGIN's password."""
    remember(base64.b64encode(f"\0{user}\0{password}".encode()).decode("ascii"))
    remember(base64.b64encode(password.encode()).decode("ascii"))


def _close_quietly(smtp: smtplib.SMTP | None) -> None:
    """Drop a half-open session."""
    if smtp is not None:
        with suppress(OSError):
            smtp.close()
