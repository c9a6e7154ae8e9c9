"""SMTP: one message per recipient over a few connections kept for the whole send.

Security is STARTTLS (RFC 3207), implicit TLS (RFC 8314) or none (local servers only); AUTH when
a user is configured, the password from SMTP_PASSWORD. smtplib opens each session (greeting,
EHLO, STARTTLS, AUTH); the transactions after that are written and read here, so a message costs
one write and a few buffered line reads. Replies map per RFC 5321 §4.2.1: a 5xx to RCPT or
after DATA rejects that recipient for good; one that says the address is bad (enhanced status
5.1.x or 5.2.1, RFC 3463 §3.2-3.3, or a bare 550/551/553 to RCPT) also bounces it, so the
subscriber is suppressed. A 4xx defers it (failed for now: a later run retries it). A
connection dropped before a message's content was sent is reopened and the message resent; a
drop after the content but before its reply is ambiguous, so that recipient is reported
uncertain and stays pending in the ledger (`--retry-pending`). Failing before anything was sent
raises a delivery error so the shared loop can retry the batch.

When the server offers PIPELINING (RFC 2920, https://www.rfc-editor.org/rfc/rfc2920), MAIL,
RCPT and DATA go in one write, and after the 354 the content, its end-of-data line and the next
recipient's MAIL, RCPT and DATA go in one write too (§3.1: the message content may be the first
"command" of a group, DATA must end one); the replies are read in order, each attributed to its
recipient. So a message costs one round trip, and at most one message per connection is ever
handed over and unanswered. With `connections = N` the batch's recipients are taken in order
by N workers, each with its own connection, kept (threads and sessions) until `close()`.
"""

from __future__ import annotations

import base64
import hashlib
import queue
import re
import smtplib
import socket
import ssl
import threading
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Any, ClassVar, Self

from publisher.channels import BatchResult, ChannelContext, EmailBatch, Facts, Hints
from publisher.channels.message import MessageBuilder, dot_stuff
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
MAX_LINES = 100  # lines of one multi-line reply before the server counts as broken
END_OF_DATA = b".\r\n"
RSET = b"RSET\r\n"
DROPS = (smtplib.SMTPServerDisconnected, OSError)
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


@dataclass
class _Outcome:
    """What one worker did with the recipients it took from a batch."""

    accepted: dict[str, str] = field(default_factory=dict)
    refused: dict[str, Refusal] = field(default_factory=dict)
    uncertain: set[str] = field(default_factory=set)
    failure: Exception | None = None  # why this worker stopped early
    crash: BaseException | None = None  # a bug or bad input: raised to the caller


@dataclass(frozen=True)
class _Message:
    """One recipient's transaction: its envelope paths and its dot-stuffed content."""

    email: str
    message_id: str
    rcpt: bytes  # the RCPT TO path, <…> quoted
    content: list[bytes]  # dot-stuffed pieces, then the end-of-data line
    size: int
    utf8: bool  # the address needs SMTPUTF8 (RFC 6531)


class _Job:
    """One batch as the workers share it: each takes the next recipient until none is left."""

    def __init__(self, channel: SmtpChannel, batch: EmailBatch) -> None:
        self.builder = channel._builder(batch)
        self.key = batch.key
        self.domain = channel.domain
        self.date = datetime.now(UTC)
        self.waiting = deque(batch.recipients)
        self.done: queue.SimpleQueue[_Outcome] = queue.SimpleQueue()

    def take(self, outcome: _Outcome) -> _Message | None:
        """The next recipient's message (deque.popleft is atomic); bad addresses are refused."""
        while True:
            try:
                recipient = self.waiting.popleft()
            except IndexError:
                return None
            path = _path(recipient.email)
            if path is None:
                outcome.refused[recipient.email] = Refusal(
                    "not a valid SMTP address (a line break or control character)", False, False)
                continue
            return self._message(recipient, path)

    def _message(self, recipient: Recipient, path: bytes) -> _Message:
        """Build one recipient's message, ready for the wire."""
        message_id = _message_id(self.key, recipient.email, self.domain)
        content = self.builder.parts(recipient, date=self.date, message_id=message_id,
                                     stuffed=True)
        if not content[-1].endswith(b"\r\n"):
            content.append(b"\r\n")
        content.append(END_OF_DATA)
        return _Message(recipient.email, message_id, path, content, sum(map(len, content)),
                        not recipient.email.isascii())


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
        self.pool = [_Connection(settings, self.envelope_from) for _ in range(max(1, connections))]
        self._cached: tuple[Any, str, MessageBuilder] | None = None
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []

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
        """Send each recipient its own message; every connection takes recipients in turn."""
        job = _Job(self, batch)
        helpers = min(len(self.pool), len(batch.recipients)) - 1
        while len(self._workers) < helpers:  # started once, kept for the whole send
            self._workers.append(_Worker(self.pool[len(self._workers) + 1]))
        for worker in self._workers[:max(0, helpers)]:
            worker.jobs.put(job)
        outcomes = [_work(self.pool[0], job)]  # this thread drives the first connection
        outcomes += [job.done.get() for _ in range(max(0, helpers))]
        return _merge(outcomes, batch.recipients)

    def close(self) -> None:
        """Stop the workers and QUIT every open connection."""
        for worker in self._workers:
            worker.jobs.put(None)
        for worker in self._workers:
            worker.join()
        self._workers = []
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


class _Worker(threading.Thread):
    """A thread that drives one connection for every batch of the send."""

    def __init__(self, connection: _Connection) -> None:
        super().__init__(name="smtp-worker", daemon=True)
        self.connection = connection
        self.jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.start()

    def run(self) -> None:
        """Take batches until told to stop (None)."""
        while (job := self.jobs.get()) is not None:
            job.done.put(_work(self.connection, job))


def _work(connection: _Connection, job: _Job) -> _Outcome:
    """Send recipients taken from the job until none is left or this connection gives up."""
    outcome = _Outcome()
    held: deque[_Message] = deque()  # taken, then a drop kept them from being handed over

    def take() -> _Message | None:
        return held.popleft() if held else job.take(outcome)

    drops = 0  # in a row, with nothing accepted, refused or lost in between
    try:
        while True:
            done = len(outcome.accepted) + len(outcome.refused) + len(outcome.uncertain)
            try:
                stop = connection.run(take, outcome)
            except (TransientDeliveryError, PermanentDeliveryError) as exc:
                outcome.failure = exc  # what it held was not sent; _merge defers it
                return outcome
            if stop is None:
                return outcome
            held.extendleft(reversed(stop.held))
            moved = len(outcome.accepted) + len(outcome.refused) + len(outcome.uncertain) > done
            drops = 0 if moved else drops + 1
            if drops == 2:
                outcome.failure = TransientDeliveryError(
                    f"{connection.where} dropped the connection twice", where=NAME)
                return outcome
    except BaseException as exc:  # handed to the caller's thread and raised there
        outcome.crash = exc
    return outcome


class _Connection:
    """One SMTP session, opened lazily and reopened after a drop."""

    def __init__(self, settings: SmtpSettings, sender: str) -> None:
        self.settings = settings
        self.sender = sender
        self.where = f"{settings.host}:{settings.port}"
        self.smtp: smtplib.SMTP | None = None
        self.session: _Session | None = None

    def open(self) -> _Session:
        """The live session, connecting (and securing, and logging in) when needed."""
        if self.session is None:
            self.smtp = _connect(self.settings)
            self.session = _Session(self.smtp, self.sender)
        return self.session

    def close(self) -> None:
        """QUIT politely; a dead connection is simply dropped."""
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (smtplib.SMTPException, OSError):
                self.smtp.close()
        self.smtp = self.session = None

    def run(self, take: Callable[[], _Message | None], outcome: _Outcome) -> _Resend | None:
        """Send messages until take() runs dry (None), or the connection drops (what it held)."""
        session = self.open()
        send = session.pipelined if session.pipelining else session.serial
        try:
            send(take, outcome)
        except _Resend as stop:
            self._discard()
            return stop
        return None

    def _discard(self) -> None:
        """Forget a broken session so the next message reconnects."""
        if self.smtp is not None:
            self.smtp.close()
        self.smtp = self.session = None


class _Resend(Exception):
    """The connection broke: the messages taken but not handed over (sent again on a new one)."""

    def __init__(self, held: list[_Message | None], *, lost: bool) -> None:
        super().__init__()
        self.held = [message for message in held if message is not None]
        self.lost = lost  # the reply to a message that was handed over: it is uncertain now


class _Session:
    """A ready session (smtplib did greeting, EHLO, TLS, AUTH): transactions, written and read."""

    def __init__(self, smtp: smtplib.SMTP, sender: str) -> None:
        if smtp.sock is None:
            raise smtplib.SMTPServerDisconnected("the session closed while it was set up")
        if smtp.file is None:
            smtp.file = smtp.sock.makefile("rb")
        self.sock: socket.socket = smtp.sock
        self.file = smtp.file
        self.pipelining = smtp.has_extn("pipelining")
        self.size = smtp.has_extn("size")
        self.utf8 = smtp.has_extn("smtputf8")
        self.mail = b"MAIL FROM:" + (_path(sender) or b"<>")
        self.sender_utf8 = not sender.isascii()
        self.reset = False  # a refused envelope left a transaction open: RSET before the next

    def pipelined(self, take: Callable[[], _Message | None], outcome: _Outcome) -> None:
        """RFC 2920 §3.1: a group ends with DATA, and the content after its 354 may start the
        next group, so the content, its end-of-data line and the next recipient's MAIL, RCPT and
        DATA go in one write: one round trip per message. The message after that is built
        while the server reads this one."""
        message, spare = self._next(take, outcome), None
        written = False  # the envelope already went out behind the previous content
        while message is not None:
            try:
                if not written:
                    self._write([RSET] if self.reset else [], self._envelope(message))
                    if self.reset:
                        self._reply()
                    self.reset = False
                mail, rcpt, data = self._reply(), self._reply(), self._reply()
            except DROPS as exc:
                raise _Resend([message, spare], lost=False) from exc
            if not self._accepted(message, mail, rcpt, data, outcome, [spare]):
                message, spare, written = spare or self._next(take, outcome), None, False
                continue
            following, spare = spare or self._next(take, outcome), None
            try:
                self._write(message.content, self._envelope(following) if following else b"")
            except DROPS as exc:
                outcome.uncertain.add(message.email)
                raise _Resend([following], lost=True) from exc
            if following is not None:
                spare = self._next(take, outcome)
            self._finish(message, outcome, [following, spare])
            message, written = following, True

    def serial(self, take: Callable[[], _Message | None], outcome: _Outcome) -> None:
        """Without PIPELINING: each command waits for its reply (RFC 5321 §4.3)."""
        while (message := self._next(take, outcome)) is not None:
            try:
                if self.reset:
                    self._command(RSET)
                    self.reset = False
                mail = self._command(self._mail(message))
                rcpt = self._command(b"RCPT TO:" + message.rcpt + b"\r\n") if mail[0] == 250 \
                    else (503, b"")
                data = self._command(b"DATA\r\n") if rcpt[0] in (250, 251) else (503, b"")
            except DROPS as exc:
                raise _Resend([message], lost=False) from exc
            if self._accepted(message, mail, rcpt, data, outcome, []):
                try:
                    self._write(message.content, b"")
                except DROPS as exc:
                    outcome.uncertain.add(message.email)
                    raise _Resend([], lost=True) from exc
                self._finish(message, outcome, [])

    def _next(self, take: Callable[[], _Message | None], outcome: _Outcome) -> _Message | None:
        """The next message this session can carry."""
        while (message := take()) is not None and not self._fits(message, outcome):
            pass
        return message

    def _fits(self, message: _Message, outcome: _Outcome) -> bool:
        """A non-ASCII address needs the server's SMTPUTF8 (RFC 6531); without it, refused."""
        if not (message.utf8 or self.sender_utf8) or self.utf8:
            return True
        if self.sender_utf8:
            raise PermanentDeliveryError(
                "the server does not offer SMTPUTF8, which the non-ASCII sender address needs",
                where=NAME, fix="use an ASCII sender address")
        outcome.refused[message.email] = Refusal(
            "the server does not offer SMTPUTF8, which this non-ASCII address needs", False, False)
        return False

    def _mail(self, message: _Message) -> bytes:
        """MAIL FROM, with SIZE (RFC 1870) and SMTPUTF8 (RFC 6531) when they apply."""
        options = b" SIZE=%d" % message.size if self.size else b""
        if message.utf8 or self.sender_utf8:
            options += b" SMTPUTF8"
        return b"%s%s\r\n" % (self.mail, options)

    def _envelope(self, message: _Message) -> bytes:
        """MAIL, RCPT and DATA as one pipelined group."""
        return b"%sRCPT TO:%s\r\nDATA\r\n" % (self._mail(message), message.rcpt)

    def _accepted(self, message: _Message, mail: tuple[int, bytes], rcpt: tuple[int, bytes],
                  data: tuple[int, bytes], outcome: _Outcome,
                  held: list[_Message | None]) -> bool:
        """Whether the server asked for the content; a refusal is recorded, a bad MAIL raised."""
        if mail[0] == 250 and rcpt[0] in (250, 251) and data[0] == 354:
            return True
        self.reset = True
        if mail[0] == 250:
            outcome.refused[message.email] = (
                _refusal(rcpt[0], rcpt[1], "RCPT TO") if rcpt[0] not in (250, 251)
                else _refusal(data[0], data[1], "DATA"))
        if data[0] == 354:
            try:  # RFC 2920 §3.1: DATA taken although the envelope failed, so end it empty
                self._command(END_OF_DATA)
            except DROPS as exc:
                raise _Resend(held, lost=False) from exc
        if mail[0] != 250:
            raise _reply_error(mail[0], mail[1], "MAIL FROM")
        return False

    def _finish(self, message: _Message, outcome: _Outcome, held: list[_Message | None]) -> None:
        """Read the reply to a message's end of data: that recipient's outcome (or uncertain)."""
        try:
            code, text = self._reply()
        except DROPS as exc:
            outcome.uncertain.add(message.email)
            raise _Resend(held, lost=True) from exc
        if code == 250:
            outcome.accepted[message.email] = message.message_id
        else:
            outcome.refused[message.email] = _refusal(code, text, "end of DATA")

    def _command(self, line: bytes) -> tuple[int, bytes]:
        """One command, then its reply."""
        self.sock.sendall(line)
        return self._reply()

    def _write(self, parts: list[bytes], tail: bytes) -> None:
        """One write (one system call for a message and the next envelope, usually)."""
        self.sock.sendall(b"".join((*parts, tail)) if parts else tail)

    def _reply(self) -> tuple[int, bytes]:
        """One reply; a multi-line one (RFC 5321 §4.2.1) joined; garbage counts as a drop."""
        lines: list[bytes] = []
        while True:
            line = self.file.readline(MAX_LINE + 1)
            if not line.endswith(b"\n") or len(lines) == MAX_LINES:
                raise smtplib.SMTPServerDisconnected(
                    "connection closed" if not line else "reply line too long, or too many")
            code, more = line[:3], line[3:4]
            if not code.isdigit() or more not in (b" ", b"-", b"\r", b"\n"):
                raise smtplib.SMTPServerDisconnected(f"not an SMTP reply: {line[:40]!r}")
            lines.append(line[4:].rstrip(b"\r\n"))
            if more != b"-":
                return int(code), b"\n".join(lines)


def _path(address: str) -> bytes | None:
    """The <…> path of an address for MAIL or RCPT; None when it could break the command line."""
    if any(c in address for c in "\r\n\0") or not address.isprintable():
        return None
    if PLAIN_ADDRESS.fullmatch(address):
        return f"<{address}>".encode("ascii")
    return smtplib.quoteaddr(address).encode("utf-8")


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
    """A whole message as DATA carries it: transparent, CRLF-terminated, then the end line."""
    data = dot_stuff(data)
    return data + (b"" if data.endswith(b"\r\n") else b"\r\n") + END_OF_DATA


def _message_id(key: str, email: str, domain: str) -> str:
    """A Message-ID stable for this batch and recipient, so a resend is recognisable."""
    digest = hashlib.sha256(f"{key}\0{email.lower()}".encode()).hexdigest()[:32]
    return f"<{digest}@{domain}>"


def _merge(outcomes: list[_Outcome], recipients: tuple[Recipient, ...]) -> BatchResult:
    """Combine the workers; raise only when nothing at all was (or may have been) delivered."""
    for outcome in outcomes:
        if outcome.crash is not None:
            raise outcome.crash
    accepted: dict[str, str] = {}
    refused: dict[str, Refusal] = {}
    uncertain: set[str] = set()
    for outcome in outcomes:
        accepted.update(outcome.accepted)
        refused.update(outcome.refused)
        uncertain |= outcome.uncertain
    failures = [o.failure for o in outcomes if o.failure is not None]
    if failures and not accepted and not uncertain and not refused:
        raise failures[0]
    deferred = {e: r.reason for e, r in refused.items() if r.transient}
    why = str(failures[0]) if failures else "not sent"
    for recipient in recipients:  # never handed over: defer them instead of risking a resend
        email = recipient.email
        if email not in accepted and email not in refused and email not in uncertain:
            deferred[email] = why
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
