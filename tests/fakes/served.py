"""What the fakes share: their server, faults, and (the networks') one lock and saved state.

An email API's or a platform's fake subclasses `RunningFake` and serves inside
`with fake.running():`. A social network's fake subclasses `ServedFake`, supplies
`route(request)` (where it checks its provider's own auth scheme and answers in its provider's
error shape), `snapshot()` and `restore(state)`, and calls `serve(...)` last in `__init__` with
its provider's 429 reset headers and error body, so an injected 429 or 500 looks as that
provider's would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from .forms import header, load_state, save_state
from .server import FakeHTTPServer, Faults, Reply, Request, serving


class RunningFake:
    """A fake on a local server that runs only while a with-block does."""

    server: FakeHTTPServer

    @property
    def url(self) -> str:
        """Base URL for the channel's `base_url`."""
        return self.server.url

    @contextmanager
    def running(self) -> Iterator[Self]:
        """Serve while the with-block runs."""
        with serving(self.server):
            yield self


class ServedFake:
    """A fake provider on a local server; each request is served under one lock, then saved."""

    state_file: Path | None = None
    http: FakeHTTPServer
    lock: threading.Lock

    def resume(self, state_file: Path | None) -> None:
        """Keep state in this file and reload what a fake before a restart left there."""
        self.state_file = state_file
        saved = load_state(state_file)
        if saved is not None:
            self.restore(saved)

    def serve(
        self, *, rate_limit_headers: Callable[[int], Mapping[str, str]],
        error_body: Callable[[int, str], Any],
    ) -> None:
        """Start serving, with the provider's own 429 headers and error body for faults."""
        self.lock = threading.Lock()
        self.http = FakeHTTPServer(self.serve_request, rate_limit_headers=rate_limit_headers,
                                   error_body=error_body).start()

    @property
    def url(self) -> str:
        """The base URL a client should use."""
        return self.http.url

    def set_faults(self, faults: Faults) -> None:
        """Turn fault injection on (Faults() turns it off)."""
        self.http.faults = faults

    def close(self) -> None:
        """Stop the server."""
        self.http.stop()

    def serve_request(self, request: Request) -> Reply:
        """Serve one request under the fake's lock and persist the result."""
        with self.lock:
            reply = self.route(request)
            self.save()
            return reply

    def save(self) -> None:
        """Persist the state (the caller holds the lock)."""
        save_state(self.state_file, self.snapshot())

    def route(self, request: Request) -> Reply:
        """Answer one request as the provider would."""
        raise NotImplementedError

    def snapshot(self) -> dict[str, Any]:
        """The state a restarted fake reloads."""
        raise NotImplementedError

    def restore(self, state: dict[str, Any]) -> None:
        """Reload what `snapshot` saved."""
        raise NotImplementedError


def bearer_token(request: Request) -> str:
    """The token of an `Authorization: Bearer …` header, '' without one.

    The scheme name is case-insensitive (https://www.rfc-editor.org/rfc/rfc6750#section-2.1).
    """
    scheme, _, token = header(request, "authorization").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""
