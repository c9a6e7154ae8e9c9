"""A hostile image host on 127.0.0.1: it drips, never ends, lies about sizes and redirects badly.

Paths:
- `/image.png`            the PNG it was given (200, with Content-Length)
- `/drip`                 200 with Content-Length 1000, then one byte every `drip_seconds`
- `/drip-headers`         the status line itself, one byte every `drip_seconds`
- `/endless`              200 without Content-Length, 64 KiB chunks until the client goes away
- `/huge-declared`        200 with Content-Length 1.5 GB, then a few bytes and a long wait
- `/loop`                 302 to itself
- `/redirect?to=URL`      302 to URL (e.g. `file:///etc/passwd` or another host)
"""

from __future__ import annotations

import threading
from collections import Counter
from contextlib import suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class HostileImageHost:
    """The server, what it was asked for, and how many body bytes it managed to send."""

    def __init__(self, png: bytes = b"", *, host: str = "127.0.0.1", drip_seconds: float = 0.5
                 ) -> None:
        self.png = png
        self.drip_seconds = drip_seconds
        self.hits: Counter[str] = Counter()
        self.sent: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.httpd = ThreadingHTTPServer((host, 0), _handler(self))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        """The base URL."""
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> HostileImageHost:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def count(self, path: str, sent: int) -> None:
        """Note body bytes sent on a path."""
        with self.lock:
            self.sent[path] += sent


def _handler(host: HostileImageHost) -> type[BaseHTTPRequestHandler]:
    """The request handler bound to one host."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

        def do_GET(self) -> None:
            """Misbehave according to the path."""
            parts = urlsplit(self.path)
            with host.lock:
                host.hits[parts.path] += 1
            with suppress(BrokenPipeError, ConnectionResetError):
                self._answer(parts.path, parse_qs(parts.query))

        def _answer(self, path: str, query: dict[str, list[str]]) -> None:
            if path == "/image.png":
                self._head(200, {"Content-Type": "image/png",
                                 "Content-Length": str(len(host.png))})
                self.wfile.write(host.png)
            elif path == "/drip":
                self._head(200, {"Content-Type": "image/png", "Content-Length": "1000"})
                self._drip(b"\x89" * 1000, path)
            elif path == "/drip-headers":
                self.close_connection = True
                self._drip(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcd", path)
            elif path == "/endless":
                self.close_connection = True
                self._head(200, {"Content-Type": "image/png", "Connection": "close"})
                chunk = b"\0" * 65536
                while not host.stopping.is_set():
                    self.wfile.write(chunk)
                    host.count(path, len(chunk))
            elif path == "/huge-declared":
                self._head(200, {"Content-Type": "image/png", "Content-Length": "1500000000"})
                self.wfile.write(b"\x89PNG")
                host.stopping.wait(30)
            elif path == "/loop":
                self._head(302, {"Location": "/loop", "Content-Length": "0"})
            elif path == "/redirect":
                self._head(302, {"Location": query["to"][0], "Content-Length": "0"})
            else:
                self._head(404, {"Content-Length": "0"})

        def _head(self, status: int, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()

        def _drip(self, data: bytes, path: str) -> None:
            """Write one byte at a time, slowly, until done or told to stop."""
            for index in range(len(data)):
                if host.stopping.wait(host.drip_seconds if index else 0):
                    return
                self.wfile.write(data[index:index + 1])
                self.wfile.flush()
                host.count(path, 1)

    return Handler

