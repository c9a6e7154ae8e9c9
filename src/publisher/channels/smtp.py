"""SMTP: one message per recipient over a few connections kept for the whole send.

Security is STARTTLS (RFC 3207), implicit TLS (RFC 8314) or none (local servers only); AUTH when
a user is configured, the password from SMTP_PASSWORD. smtplib opens each session (greeting,
EHLO, STARTTLS, AUTH); the transactions after that are written and read here. Replies map per
RFC 5321 §4.2.1: a 5xx to RCPT or after DATA rejects that recipient for good; one that says
the address is bad (enhanced status 5.1.x or 5.2.1, RFC 3463 §3.2-3.3, or a bare 550/551/553
to RCPT) also bounces it, so the subscriber is suppressed. A 4xx defers it (failed for now: a
later run retries it). A connection dropped before a message's end-of-data line left is
reopened and the message resent; a drop (or silence past `timeout`) after that line left but
before its reply is ambiguous, so that recipient is reported uncertain and stays pending in the
ledger (`--retry-pending`). Failing before anything was sent raises a delivery error so the
shared loop can retry the batch.

When the server offers PIPELINING (RFC 2920, https://www.rfc-editor.org/rfc/rfc2920), MAIL,
RCPT and DATA go in one write, and after the 354 the content, its end-of-data line and the next
recipient's MAIL, RCPT and DATA go in one write too (§3.1: the message content may be the first
"command" of a group, and DATA must end one); the replies are read in order, each attributed to
its recipient. So a message costs one round trip, and at most one message per connection is
ever handed over unanswered. Without PIPELINING each command waits for its reply. With
`connections = N`, one thread drives N non-blocking sockets: while the server reads one
connection's message, the next recipient's is built and written on another.
"""

from __future__ import annotations

import base64
import hashlib
import re
import selectors
import smtplib
import socket
import ssl
import time
from collections import deque
from collections.abc import Sequence
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
PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")  # no quoting needed
LOST_REPLY = ("the server took the message, then the connection dropped before its reply"
              " (maybe delivered)")
MAX_LINE = 8192  # smtplib's own bound on a reply line
RECV_SIZE = 65536
MAX_LINES = 100  # lines of one multi-line reply before the server counts as broken
END_OF_DATA = b".\r\n"
RSET = b"RSET\r\n"
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


@dataclass(frozen=True)
class Refusal:
    """Why the server did not take one recipient, and what that means for it."""

    reason: str
    transient: bool  # a 4xx: try again later
    bad_address: bool  # the server says the mailbox does not exist or is disabled


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
        tls = _Tls(settings.ca_file)
        self.pool = [_Connection(settings, self.envelope_from, tls)
                     for _ in range(max(1, connections))]
        self._selector = selectors.DefaultSelector()
        self._links = [_Link(connection, self._selector) for connection in self.pool]
        self._cached: tuple[Any, str, MessageBuilder] | None = None

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
        """Send each recipient its own message; the connections take recipients in turn."""
        job = _Job(self, batch)
        _run(self._links[:min(len(self._links), len(batch.recipients)) or 1], job,
             self._selector)
        return _merge(job.outcome, batch.recipients)

    def close(self) -> None:
        """QUIT every open connection."""
        for link in self._links:
            link.close(politely=True)

    def _builder(self, batch: EmailBatch) -> MessageBuilder:
        """One MessageBuilder per newsletter (its shared parts are encoded once)."""
        cached = self._cached
        if cached is None or cached[0] is not batch.newsletter or cached[1] != batch.lang:
            builder = MessageBuilder(
                batch.newsletter, self.site, lang=batch.lang, list_id=self.list_id,
                message_id_domain=self.domain,
            )
            cached = self._cached = (batch.newsletter, batch.lang, builder)
        return cached[2]


@dataclass
class _Outcome:
    """What became of a batch's recipients so far, and why a connection gave up."""

    accepted: dict[str, str] = field(default_factory=dict)
    refused: dict[str, Refusal] = field(default_factory=dict)
    uncertain: set[str] = field(default_factory=set)
    failures: list[Exception] = field(default_factory=list)


@dataclass(frozen=True)
class _Message:
    """One recipient's transaction: its RCPT path and its dot-stuffed content."""

    email: str
    message_id: str
    rcpt: bytes  # the RCPT TO path, <…> quoted
    content: bytes  # dot-stuffed, then the end-of-data line
    utf8: bool  # the address needs SMTPUTF8 (RFC 6531)


class _Job:
    """One batch: its recipients in order, built into messages as the connections take them."""

    def __init__(self, channel: SmtpChannel, batch: EmailBatch) -> None:
        self.builder = channel._builder(batch)
        self.key = batch.key
        self.domain = channel.domain
        self.date = datetime.now(UTC)
        self.waiting = deque(batch.recipients)
        self.held: deque[_Message] = deque()  # taken, then a drop kept them from the server
        self.spare: _Message | None = None  # built ahead, while the server reads the last one
        self.outcome = _Outcome()

    def take(self) -> _Message | None:
        """The next message: one given back after a drop, the one built ahead, or a new one."""
        if self.held:
            return self.held.popleft()
        spare, self.spare = self.spare, None
        return spare or self.build()

    def build(self) -> _Message | None:
        """Build the next recipient's message, ready for the wire; bad addresses are refused."""
        while self.waiting:
            recipient = self.waiting.popleft()
            path = _path(recipient.email)
            if path is None:
                self.outcome.refused[recipient.email] = Refusal(
                    "not a valid SMTP address (a line break or control character)", False, False)
                continue
            message_id = _message_id(self.key, recipient.email, self.domain)
            parts = self.builder.parts(recipient, date=self.date, message_id=message_id,
                                       stuffed=True)
            if not parts[-1].endswith(b"\r\n"):
                parts.append(b"\r\n")
            parts.append(END_OF_DATA)
            return _Message(recipient.email, message_id, path, b"".join(parts),
                            not recipient.email.isascii())
        return None

    def answered(self) -> int:
        """How many recipients have an answer (progress, to tell a flapping server).

        An uncertain one is no answer: a server that takes every message and then drops or
        falls silent would otherwise cost a reconnect (and `timeout`) for each reader.
        """
        return len(self.outcome.accepted) + len(self.outcome.refused)


class _Connection:
    """One SMTP session, opened lazily, kept across batches and reopened after a drop."""

    def __init__(self, settings: SmtpSettings, sender: str, tls: _Tls) -> None:
        self.settings = settings
        self.sender = sender
        self.tls = tls
        self.where = f"{settings.host}:{settings.port}"
        self.smtp: smtplib.SMTP | None = None

    def open(self) -> smtplib.SMTP:
        """The live session, connecting (and securing, and logging in) when needed."""
        if self.smtp is None:
            self.smtp = _connect(self.settings, self.tls)
        return self.smtp

    def close(self) -> None:
        """QUIT politely; a dead connection is simply dropped."""
        if self.smtp is not None:
            try:
                if self.smtp.sock is not None:
                    self.smtp.sock.settimeout(self.settings.timeout)
                self.smtp.quit()
            except (smtplib.SMTPException, OSError):
                self.smtp.close()
        self.smtp = None

    def discard(self) -> None:
        """Forget a broken session so the next message reconnects."""
        if self.smtp is not None:
            self.smtp.close()
        self.smtp = None


class _Link:
    """One connection inside the send loop: bytes out, replies in, and what each reply means.

    `expect` holds, in the order the server answers, each command sent and the message it
    belongs to; with it a drop tells exactly which recipients were handed over unanswered.
    """

    def __init__(self, connection: _Connection, selector: selectors.BaseSelector) -> None:
        self.connection = connection
        self.selector = selector
        self.sock: socket.socket | None = None
        self.expect: deque[tuple[bytes, _Message | None, int]] = deque()  # kind, message, at
        self.later: deque[tuple[bytes, bytes, _Message | None]] = deque()  # serial: not yet sent
        self.envelope: list[tuple[int, bytes]] = []  # this transaction's MAIL, RCPT replies
        self.inbox = bytearray()
        self.lines: list[bytes] = []  # a multi-line reply so far
        self.out = memoryview(b"")
        self.queued = self.sent = 0  # bytes since connecting: given to push(), taken by the kernel
        self.reset = False  # a refused envelope left a transaction open: RSET before the next
        self.broken: str = ""  # why the connection must be dropped
        self.deadline = 0.0
        self.drops = 0  # in a row, with no recipient answered in between
        self.answered_at_drop = 0  # the batch's answered recipients at the last drop
        self.failed = False  # gave up for this batch
        self.pipelining = self.size = self.utf8 = False
        self.mail = b""
        self.sender_utf8 = not connection.sender.isascii()
        self.events = 0

    @property
    def busy(self) -> bool:
        """Waiting for a reply or holding bytes to send."""
        return bool(self.expect or self.later or self.out)

    def connect(self) -> None:
        """Open (or reuse) the session and switch it to non-blocking for the loop."""
        smtp = self.connection.open()
        if self.sock is smtp.sock:
            return
        if smtp.sock is None:
            self.connection.discard()
            raise TransientDeliveryError(
                f"{self.connection.where} closed the session while it was set up", where=NAME)
        self.sock = smtp.sock
        self.sock.setblocking(False)
        self.selector.register(self.sock, selectors.EVENT_READ, self)
        self.events = selectors.EVENT_READ
        self.pipelining = smtp.has_extn("pipelining")
        self.size, self.utf8 = smtp.has_extn("size"), smtp.has_extn("smtputf8")
        self.mail = b"MAIL FROM:" + (_path(self.connection.sender) or b"<>")
        self.queued = self.sent = 0
        self.reset, self.broken = False, ""

    def begin(self, job: _Job) -> None:
        """Start the next transaction, if a message is left that this session can carry."""
        message = self._next(job)
        if message is None:
            return
        commands: list[tuple[bytes, bytes, _Message | None]] = []
        if self.reset:
            commands.append((b"rset", RSET, None))
            self.reset = False
        self.send(commands + self._envelope(message))

    def _next(self, job: _Job) -> _Message | None:
        """The next message this session can carry; one needing SMTPUTF8 it lacks is refused."""
        while (message := job.take()) is not None and message.utf8 and not self.utf8:
            job.outcome.refused[message.email] = Refusal(
                "the server does not offer SMTPUTF8, which this non-ASCII address needs",
                False, False)
        return message

    def _envelope(self, message: _Message) -> list[tuple[bytes, bytes, _Message | None]]:
        """MAIL (with SIZE, RFC 1870, and SMTPUTF8 when needed), RCPT and DATA."""
        options = b" SIZE=%d" % len(message.content) if self.size else b""
        if message.utf8 or self.sender_utf8:
            options += b" SMTPUTF8"
        return [(b"mail", b"%s%s\r\n" % (self.mail, options), message),
                (b"rcpt", b"RCPT TO:%s\r\n" % message.rcpt, message),
                (b"data", b"DATA\r\n", message)]

    def send(self, commands: list[tuple[bytes, bytes, _Message | None]]) -> None:
        """Pipelined: all in one write (RFC 2920). Serial: one now, each next after a reply."""
        if self.pipelining:
            self._write(commands)
        else:
            self.later.extend(commands)
            self._release()

    def _release(self) -> None:
        """Serial: the next command once the last one was answered (RFC 5321 §4.3)."""
        if not self.expect and self.later and not self.broken:
            self._write([self.later.popleft()])

    def _write(self, commands: list[tuple[bytes, bytes, _Message | None]]) -> None:
        """Note what each command's reply will mean, then write them together."""
        at = self.queued
        for kind, data, message in commands:
            self.expect.append((kind, message, at))
            at += len(data)
        self.push(b"".join(data for _, data, _ in commands))

    def push(self, data: bytes) -> None:
        """Queue bytes and write what the socket takes now."""
        self.deadline = time.monotonic() + self.connection.settings.timeout
        self.queued += len(data)
        self.out = memoryview(bytes(self.out) + data) if self.out else memoryview(data)
        self.flush()

    def flush(self) -> None:
        """Write until the socket would block (then wait for it to be writable)."""
        assert self.sock is not None
        sent = self.sent
        while self.out and not self.broken:
            try:
                n = self.sock.send(self.out)
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                break
            except OSError as exc:
                self.broken = f"write failed ({exc.__class__.__name__})"
                return
            self.sent += n
            self.out = self.out[n:]
        if self.sent > sent:  # the server is reading: `timeout` counts silence, not a long write
            self.deadline = time.monotonic() + self.connection.settings.timeout
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if self.out else 0)
        if events != self.events:  # one epoll_ctl only when the interest changes
            self.selector.modify(self.sock, events, self)
            self.events = events

    def receive(self, job: _Job) -> None:
        """Read what arrived and act on every complete reply, in order."""
        assert self.sock is not None
        while not self.broken:
            try:
                data = self.sock.recv(RECV_SIZE)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break
            except OSError as exc:
                self.broken = f"read failed ({exc.__class__.__name__})"
                break
            if not data:
                self.broken = "the server closed the connection"
                break
            self.inbox += data
            self.deadline = time.monotonic() + self.connection.settings.timeout
        self._replies(job)

    def _replies(self, job: _Job) -> None:
        """Each complete reply line by line; a multi-line one (RFC 5321 §4.2.1) joined."""
        inbox, start = self.inbox, 0
        while (end := inbox.find(b"\n", start)) >= 0:
            line = bytes(inbox[start:end + 1])
            start = end + 1
            code, more = line[:3], line[3:4]
            if not code.isdigit() or more not in (b" ", b"-", b"\r", b"\n") or \
                    len(line) > MAX_LINE or len(self.lines) == MAX_LINES:
                self.broken = f"not an SMTP reply: {_text(line[:40])}"
                break
            self.lines.append(line[4:].rstrip(b"\r\n"))
            if more != b"-":
                text, self.lines = b"\n".join(self.lines), []
                if not self.expect:
                    self.broken = "a reply nobody asked for"
                    break
                self._answer(int(code), text, job)
        del inbox[:start]
        if len(inbox) > MAX_LINE:
            self.broken = "reply line too long"

    def _answer(self, code: int, text: bytes, job: _Job) -> None:
        """What one reply means for its command's recipient."""
        kind, message, _ = self.expect.popleft()
        if kind in (b"mail", b"rcpt"):
            self.envelope.append((code, text))
        elif kind == b"data":
            assert message is not None
            (mail, mail_text), (rcpt, rcpt_text) = self.envelope
            self.envelope = []
            self._envelope_answered(message, (mail, mail_text), (rcpt, rcpt_text), (code, text),
                                    job)
        elif kind == b"end":
            assert message is not None
            if code == 250:
                job.outcome.accepted[message.email] = message.message_id
            else:
                job.outcome.refused[message.email] = _refusal(code, text, "end of DATA")
            if not self.expect and not self.later:
                self.begin(job)
        if not self.pipelining:
            self._release()

    def _envelope_answered(self, message: _Message, mail: tuple[int, bytes],
                           rcpt: tuple[int, bytes], data: tuple[int, bytes], job: _Job) -> None:
        """354: the content, with the next envelope behind it (RFC 2920 §3.1); else refused."""
        if mail[0] == 250 and rcpt[0] in (250, 251) and data[0] == 354:
            following = self._next(job)
            commands = [(b"end", message.content, message)]
            self.send(commands + (self._envelope(following) if following else []))
            if job.spare is None and following is not None:
                job.spare = job.build()  # built while the server reads this message
            return
        self.reset = True
        if data[0] == 354:  # RFC 2920 §3.1: DATA taken although the envelope failed: end it empty
            self.send([(b"dot", END_OF_DATA, None)])
        if mail[0] != 250:  # the session refuses our sender: this connection gives up
            job.held.appendleft(message)
            job.outcome.failures.append(_reply_error(mail[0], mail[1], "MAIL FROM"))
            self.failed = True
            return
        job.outcome.refused[message.email] = (
            _refusal(rcpt[0], rcpt[1], "RCPT TO") if rcpt[0] not in (250, 251)
            else _refusal(data[0], data[1], "DATA"))
        self.begin(job)

    def drop(self, job: _Job) -> None:
        """The connection broke: a message whose content left unanswered is uncertain, every
        other one it held goes back to be sent on another (or a new) connection."""
        held: dict[int, _Message] = {}  # by identity, in order
        for kind, message, at in self.expect:
            if message is None:
                continue
            if kind == b"end" and self.sent >= at + len(message.content):  # its end line left
                job.outcome.uncertain.add(message.email)
                held.pop(id(message), None)
            elif message.email not in job.outcome.uncertain:
                held.setdefault(id(message), message)
        for _, _, message in self.later:
            if message is not None:
                held.setdefault(id(message), message)
        job.held.extendleft(reversed(held.values()))
        self.close()
        answered = job.answered()
        self.drops = 1 if answered > self.answered_at_drop else self.drops + 1
        self.answered_at_drop = answered
        if self.drops >= 2:
            self.failed = True
            job.outcome.failures.append(TransientDeliveryError(
                f"{self.connection.where} dropped the connection twice ({self.broken})",
                where=NAME))

    def close(self, *, politely: bool = False) -> None:
        """Forget the socket and the state of its session (QUIT first when politely)."""
        if self.sock is not None:
            with suppress(KeyError, ValueError):
                self.selector.unregister(self.sock)
        if politely and not self.busy:
            self.connection.close()
        else:
            self.connection.discard()
        self.sock = None
        self.expect.clear()
        self.later.clear()
        self.envelope, self.lines = [], []
        self.inbox.clear()
        self.out = memoryview(b"")
        self.deadline = 0.0


def _run(links: list[_Link], job: _Job, selector: selectors.BaseSelector) -> None:
    """Drive every connection from one thread until the batch is done or they all gave up.

    One thread and non-blocking sockets: while the server reads one connection's message, the
    next is built and written on another, and nothing waits for a thread to be woken.
    """
    for link in links:
        link.drops, link.answered_at_drop, link.failed = 0, 0, False
    try:
        while True:
            for link in links:
                if not link.busy and not link.failed and (job.held or job.spare or job.waiting):
                    _start(link, job)
            busy = [link for link in links if link.busy]
            if not busy:
                return
            if job.spare is None:
                job.spare = job.build()  # built while the server reads what was sent
            timeout = max(0.0, min(link.deadline for link in busy) - time.monotonic())
            for key, events in selector.select(timeout):
                link = key.data
                if link not in links:  # an idle session the server spoke on or closed: drop it
                    link.close()
                    continue
                if events & selectors.EVENT_WRITE:
                    link.flush()
                if events & selectors.EVENT_READ:
                    link.receive(job)
                if link.broken:
                    link.drop(job)
            now = time.monotonic()
            for link in busy:
                if link.sock is not None and link.busy and link.deadline <= now:
                    link.broken = "no reply in time"
                    link.drop(job)
    except BaseException:
        for link in links:  # a bug or bad input: no session is left half-way
            link.close()
        raise


def _start(link: _Link, job: _Job) -> None:
    """Connect when needed and begin a transaction; a connection that cannot open gives up."""
    try:
        link.connect()
    except (TransientDeliveryError, PermanentDeliveryError) as exc:
        job.outcome.failures.append(exc)
        link.failed = True
        return
    link.begin(job)
    if link.broken:
        link.drop(job)


def _path(address: str) -> bytes | None:
    """The <…> path of an address for MAIL or RCPT; None when it could break the command line."""
    if any(c in address for c in "\r\n\0") or not address.isprintable():
        return None
    if PLAIN_ADDRESS.fullmatch(address):
        return f"<{address}>".encode("ascii")
    return smtplib.quoteaddr(address).encode("utf-8")


class _Tls:
    """The TLS context, made on first use and shared by the connections (loading the CA store
    costs about 20 ms); a plain local connection never makes one."""

    def __init__(self, ca_file: str) -> None:
        self.ca_file = ca_file
        self.made: ssl.SSLContext | None = None

    def context(self) -> ssl.SSLContext:
        """The shared context."""
        if self.made is None:
            try:
                self.made = ssl.create_default_context(cafile=self.ca_file or None)
            except OSError as exc:  # an unreadable ca_file (ssl.SSLError for a bad one is too)
                raise PermanentDeliveryError(
                    f"cannot use ca_file {self.ca_file!r} ({exc.__class__.__name__})",
                    where=NAME, fix="point ca_file at a PEM file of the private CA") from exc
        return self.made


def _connect(settings: SmtpSettings, tls: _Tls) -> smtplib.SMTP:
    """A ready session: connected, EHLO, secured as configured, logged in when a user is set."""
    where = f"{settings.host}:{settings.port}"
    smtp: smtplib.SMTP | None = None
    try:
        if settings.security == "tls":
            smtp = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout,
                                    local_hostname=settings.local_hostname, context=tls.context())
        else:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout,
                                local_hostname=settings.local_hostname)
        smtp.ehlo()
        if settings.security == "starttls":
            smtp.starttls(context=tls.context())
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


def _refusal(code: int, reply: bytes, stage: str) -> Refusal:
    """Classify a refusal: 4xx deferred; 5xx refused, and bounced when it blames the address."""
    text = _text(reply)
    enhanced = ENHANCED.match(text)
    if enhanced:
        bad = enhanced.group(1) == "5" and ADDRESS_STATUS.match(enhanced.group(0)) is not None
    else:
        bad = stage == "RCPT TO" and code in (550, 551, 553)
    return Refusal(f"{code} {text} (at {stage})", 400 <= code < 500, bad and code >= 500)


def _message_id(key: str, email: str, domain: str) -> str:
    """A Message-ID stable for this batch and recipient, so a resend is recognisable."""
    digest = hashlib.sha256(f"{key}\0{email.lower()}".encode()).hexdigest()[:32]
    return f"<{digest}@{domain}>"


def _merge(outcome: _Outcome, recipients: Sequence[Recipient]) -> BatchResult:
    """The batch's result; raise only when nothing at all was (or may have been) delivered."""
    accepted, refused, uncertain = outcome.accepted, outcome.refused, outcome.uncertain
    if outcome.failures and not accepted and not uncertain and not refused:
        raise outcome.failures[0]
    deferred = {e: r.reason for e, r in refused.items() if r.transient}
    why = str(outcome.failures[0]) if outcome.failures else "not sent"
    for recipient in recipients:  # never handed over: defer them instead of risking a resend
        email = recipient.email
        if email not in accepted and email not in refused and email not in uncertain:
            deferred[email] = why
    return BatchResult(
        accepted=dict(accepted),
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
