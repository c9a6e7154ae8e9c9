"""A tiny threaded HTTP server on 127.0.0.1 that fake providers plug into.

A fake is a `handle(request) -> Reply` function plus a `Deliveries` record. The server adds what
every fake shares: fault injection (a seeded share of requests answered with 500, 429 with reset
headers, a slow answer past the client's timeout, or a dropped connection) and the request log.
"""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

FAULT_KINDS = ("500", "429", "slow", "drop")


@dataclass(frozen=True)
class Request:
    """One HTTP request as a fake sees it."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON (ValueError when it is not JSON)."""
        return json.loads(self.body.decode("utf-8"))


@dataclass(frozen=True)
class Reply:
    """What a fake answers."""

    status: int
    body: Any = None  # JSON-serialisable, or bytes for a raw body, or None for no body
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Faults:
    """Which share of requests fail, and how; seeded so a run can be replayed.

    `phase` "before" fails the request before the fake processes it (nothing delivered);
    "after" processes it and then fails the answer (delivered, but the client cannot know).
    """

    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    seed: int = 0
    phase: str = "before"
    reset_seconds: int = 1
    slow_seconds: float = 2.0
    paths: tuple[str, ...] = ()  # only requests to these paths; empty means every path
    only_first: int = 0  # when > 0, only the first N matching requests may fault
    after_kinds: tuple[str, ...] = ()  # kinds acted out after processing, whatever the phase
    injected: Counter[str] = field(default_factory=Counter)
    _rng: random.Random = field(init=False, repr=False)
    _seen: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}")
        self._rng = random.Random(self.seed)

    def draw(self, path: str) -> str | None:
        """The fault for this request, if any."""
        if self.rate <= 0 or (self.paths and path not in self.paths):
            return None
        self._seen += 1
        if self.only_first and self._seen > self.only_first:
            return None
        if self._rng.random() >= self.rate:
            return None
        kind = self._rng.choice(self.kinds)
        self.injected[kind] += 1
        return kind


class Deliveries:
    """What a fake "delivered", per recipient with counts; optionally appended to a JSONL file."""

    def __init__(self, provider: str, path: Path | None = None) -> None:
        self.provider = provider
        self.path = path
        self.lock = threading.Lock()
        self.messages: list[dict[str, Any]] = []
        self.counts: Counter[str] = Counter()

    def record(self, email: str, provider_id: str, **detail: Any) -> None:
        """Remember one delivered message (and persist it when a file was given)."""
        entry = {"provider": self.provider, "email": email, "id": provider_id, **detail}
        with self.lock:
            self.messages.append(entry)
            self.counts[email.lower()] += 1
            if self.path is not None:
                with self.path.open("a", encoding="utf-8") as out:
                    out.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def emails(self) -> list[str]:
        """Every delivered address, in order, duplicates included."""
        with self.lock:
            return [m["email"] for m in self.messages]

    def duplicates(self) -> dict[str, int]:
        """Addresses delivered more than once."""
        with self.lock:
            return {email: n for email, n in self.counts.items() if n > 1}

    def for_email(self, email: str) -> list[dict[str, Any]]:
        """Every message delivered to one address."""
        with self.lock:
            return [m for m in self.messages if m["email"].lower() == email.lower()]


def read_deliveries(path: Path) -> Counter[str]:
    """Per-address delivery counts from a JSON-lines file written by `Deliveries`."""
    counts: Counter[str] = Counter()
    if path.exists():
        text = path.read_text(encoding="utf-8")
        complete = text[:text.rfind("\n") + 1]  # a line the fake is still writing is not yet one
        for line in complete.splitlines():
            if line.strip():
                counts[json.loads(line)["email"].lower()] += 1
    return counts


Handler = Callable[[Request], Reply]


class FakeHTTPServer:
    """A ThreadingHTTPServer on 127.0.0.1:0 serving one fake, with faults and a request log."""

    def __init__(
        self,
        handle: Handler,
        *,
        faults: Faults | None = None,
        rate_limit_headers: Callable[[int], Mapping[str, str]] | None = None,
        error_body: Callable[[int, str], Any] | None = None,
    ) -> None:
        self.handle = handle
        self.faults = faults or Faults()
        self.rate_limit_headers = rate_limit_headers or (lambda s: {"Retry-After": str(s)})
        self.error_body = error_body or (lambda status, message: {"message": message})
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        """The base URL a client should use."""
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeHTTPServer:
        """Serve in a background thread."""
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        self.httpd.shutdown()
        self.httpd.server_close()

    def count(self, method: str, path: str) -> int:
        """How many requests hit this route."""
        with self.lock:
            return sum(1 for r in self.requests if r.method == method and r.path == path)

    def dispatch(self, request: Request) -> Reply | str:
        """The fake's reply, or the fault to act out ("slow" or "drop")."""
        with self.lock:
            self.requests.append(request)
            fault = self.faults.draw(request.path)
        if fault and self.faults.phase == "before" and fault not in self.faults.after_kinds:
            return self._fault_reply(fault)
        reply = self.handle(request)
        return self._fault_reply(fault) if fault else reply

    def _fault_reply(self, fault: str) -> Reply | str:
        """The reply a fault stands for."""
        if fault == "500":
            return Reply(500, self.error_body(500, "internal server error (injected)"))
        if fault == "429":
            seconds = self.faults.reset_seconds
            return Reply(429, self.error_body(429, "too many requests"),
                         self.rate_limit_headers(seconds))
        return fault


@contextmanager
def serving(server: FakeHTTPServer) -> Iterator[FakeHTTPServer]:
    """Run a fake for the duration of a with-block."""
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _make_handler(server: FakeHTTPServer) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to one fake server."""

    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Stay quiet; the fake keeps its own log."""

        def _serve(self) -> None:
            """Read the request, ask the fake, write its reply or act out a fault."""
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            request = Request(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            outcome = server.dispatch(request)
            if outcome == "slow":
                time.sleep(server.faults.slow_seconds)
                outcome = "drop"
            if outcome == "drop":
                self.close_connection = True
                with suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            assert isinstance(outcome, Reply)
            self._write(outcome)

        def _write(self, reply: Reply) -> None:
            """Send a reply with a JSON (or raw) body."""
            if reply.body is None:
                payload = b""
            elif isinstance(reply.body, bytes):
                payload = reply.body
            else:
                payload = json.dumps(reply.body).encode("utf-8")
            self.send_response(reply.status)
            if payload and not isinstance(reply.body, bytes):
                self.send_header("Content-Type", "application/json")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    return _Handler
