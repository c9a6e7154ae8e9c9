"""A real SMTP server on 127.0.0.1 (aiosmtpd) that stores messages and can misbehave on cue.

It can require AUTH, speak implicit TLS or STARTTLS, answer chosen recipients with 4xx/5xx,
drop the connection on chosen messages (before the message is taken, or after it was taken but
before the reply), and fail a seeded share of messages.
"""

from __future__ import annotations

import random
import re
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from .server import Deliveries

MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(\S+)", re.MULTILINE | re.IGNORECASE)


@dataclass(frozen=True)
class Received:
    """One message as the server took it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes

    def parsed(self) -> EmailMessage:
        """The message parsed with the modern email policy."""
        message = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(message, EmailMessage)
        return message


class SmtpFake:
    """An aiosmtpd server with a handler that records what it receives."""

    def __init__(
        self,
        *,
        reject: Mapping[str, str] | None = None,
        drop_on: set[int] | None = None,
        drop_after_data_on: set[int] | None = None,
        credentials: tuple[str, str] | None = None,
        implicit_tls: ssl.SSLContext | None = None,
        starttls: ssl.SSLContext | None = None,
        fault_rate: float = 0.0,
        seed: int = 0,
        deliveries_path: Path | None = None,
        pipelining: bool = False,
    ) -> None:
        self.pipelining = pipelining  # offer RFC 2920 PIPELINING (aiosmtpd reads commands in order)
        self.reject = {k.lower(): v for k, v in (reject or {}).items()}
        self.drop_on = drop_on or set()  # 1-based MAIL FROM numbers that drop before taking
        self.drop_after_data_on = drop_after_data_on or set()  # take, then drop before the reply
        self.credentials = credentials
        self.fault_rate = fault_rate
        self.rng = random.Random(seed)
        self.received: list[Received] = []
        self.refused: list[str] = []  # each RCPT answered with a configured refusal
        self.deliveries = Deliveries("smtp", deliveries_path)
        self.mail_count = 0
        self.data_count = 0
        self.connections = 0
        self.drops = 0
        self.lock = threading.Lock()
        self.port = _free_port()
        kwargs: dict[str, Any] = {"hostname": "127.0.0.1", "port": self.port}
        if implicit_tls is not None:
            kwargs["ssl_context"] = implicit_tls
        if starttls is not None:
            kwargs.update(tls_context=starttls, require_starttls=True)
        if credentials is not None:
            kwargs.update(authenticator=self._authenticate, auth_required=True,
                          auth_require_tls=starttls is not None)
        self.controller = Controller(self, **kwargs)

    @contextmanager
    def running(self) -> Iterator[SmtpFake]:
        """Serve while the with-block runs."""
        self.controller.start()
        try:
            yield self
        finally:
            self.controller.stop()

    def reject_count(self, address: str) -> int:
        """How often a RCPT for this address was refused."""
        return self.refused.count(address.lower())

    def messages_for(self, address: str) -> list[Received]:
        """Every message whose envelope included this address."""
        return [r for r in self.received if address.lower() in (t.lower() for t in r.rcpt_tos)]

    # -- aiosmtpd handler hooks ------------------------------------------------------------

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
        responses: list[str],
    ) -> list[str]:
        """Count connections (each client says EHLO once per connection)."""
        with self.lock:
            self.connections += 1
        session.host_name = hostname
        if self.pipelining:
            return [*responses[:-1], "250-PIPELINING", responses[-1]]
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str,
        mail_options: list[str],
    ) -> str:
        """Take the sender, or drop the connection when told to."""
        with self.lock:
            self.mail_count += 1
            drop = self.mail_count in self.drop_on or (
                self.fault_rate > 0 and self.rng.random() < self.fault_rate
            )
            if drop:
                self.drops += 1
        if drop:
            assert server.transport is not None
            server.transport.close()
            return "421 4.3.0 closing (injected)"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str,
        rcpt_options: list[str],
    ) -> str:
        """Accept the recipient unless a reply was configured for it."""
        if address.lower() in self.reject:
            with self.lock:
                self.refused.append(address.lower())
            return self.reject[address.lower()]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Store the message (and maybe drop before answering)."""
        data = envelope.original_content or b""
        if isinstance(data, str):  # pragma: no cover - decode_data is off
            data = data.encode()
        received = Received(str(envelope.mail_from), tuple(envelope.rcpt_tos), data)
        found = MESSAGE_ID.search(data.split(b"\r\n\r\n", 1)[0])
        message_id = found.group(1).decode("ascii", "replace") if found else ""
        with self.lock:
            self.data_count += 1
            self.received.append(received)
            drop = self.data_count in self.drop_after_data_on
            if drop:
                self.drops += 1
        for rcpt in received.rcpt_tos:
            self.deliveries.record(rcpt, str(message_id))
        if drop:
            assert server.transport is not None
            server.transport.close()
        return "250 2.0.0 OK queued"

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        """Accept only the configured user and password."""
        ok = isinstance(auth_data, LoginPassword) and self.credentials == (
            auth_data.login.decode(), auth_data.password.decode()
        )
        return AuthResult(success=ok, handled=False)


def _free_port() -> int:
    """A port nobody listens on right now (aiosmtpd cannot bind port 0 itself)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def self_signed(directory: Path) -> tuple[ssl.SSLContext, Path] | None:
    """A server TLS context for 127.0.0.1 and the CA file a client should trust, via openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context, cert
