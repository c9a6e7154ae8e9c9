"""Fetching a URL that a post names, with the post's server treated as hostile.

The post is untrusted, and so is every server it names. So the body is capped while it streams
(the Content-Length is not trusted), the whole fetch, redirects included, has one deadline (a
server that drips a byte every few seconds is cut off when it passes: a watchdog shuts the
socket down, which no per-read timeout can do), and private, loopback, link-local and other
non-public addresses are refused unless listed in `allow_private` of `[images]` (or `[feed]`, for
feeds) (SSRF: a post must not
make the CI machine read its cloud metadata service or an intranet). Each address is checked
before connecting and again on the connected socket, so a name that resolves differently the
second time (DNS rebinding) is caught. Redirects are followed by hand, each hop checked like the
first; a loop, or a redirect to `file:` or any scheme but http(s), is a failure of that fetch.
`fetch_answer` may send conditional headers (If-None-Match, If-Modified-Since) and then takes a
304 as an answer (RFC 9110 §13.1: https://www.rfc-editor.org/rfc/rfc9110#name-conditional-requests).
Proxy settings from the environment are not used: the peer must be the server itself.
"""

from __future__ import annotations

import contextvars
import ipaddress
import socket
import threading
import time
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from publisher.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from publisher.web import USER_AGENT, retry_after, without_query

MAX_REDIRECTS = 5
REDIRECTS = (301, 302, 303, 307, 308)
CHUNK = 64 * 1024


@dataclass(frozen=True)
class FetchLimits:
    """What one untrusted fetch may cost: bytes, seconds, and which private networks it reaches."""

    max_bytes: int = 20_000_000
    seconds: float = 20.0
    allow_private: tuple[str, ...] = ()  # CIDRs or addresses, e.g. ("127.0.0.1",) for tests
    section: str = "images"  # the publisher.toml table these limits come from, for fixes

    def allows(self, address: str) -> bool:
        """Whether a peer may be contacted: a public address, or one allow_private lists."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip.is_global and not ip.is_multicast:
            return True
        for entry in self.allow_private:
            network = ipaddress.ip_network(entry, strict=False)
            if network.version == ip.version and ip in network:
                return True
        return False


@dataclass(frozen=True)
class Fetched:
    """One fetch's answer: 200 with its body, or 304 (unchanged) with none; and its headers."""

    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


def fetch_untrusted(url: str, limits: FetchLimits, *, what: str = "image") -> bytes:
    """The body at URL within the limits, or a delivery error naming the limit or status hit."""
    return fetch_answer(url, limits, what=what).body


def fetch_answer(
    url: str, limits: FetchLimits, *, what: str, accept: str = "image/*",
    conditional: Mapping[str, str] | None = None,
) -> Fetched:
    """The answer at URL within the limits; with `conditional` validators a 304 is an answer."""
    watch = _Watch(limits)
    context = contextvars.copy_context()
    context.run(_WATCH.set, watch)
    watch.timer.start()
    request = _Request(what, accept, dict(conditional or {}))
    try:
        return context.run(_follow, url, watch, request)
    finally:
        watch.timer.cancel()


@dataclass(frozen=True)
class _Request:
    """What one fetch asks for: the thing named in messages, Accept, and conditional headers."""

    what: str
    accept: str
    conditional: Mapping[str, str]


class _Refused(Exception):
    """A connection to an address the limits do not allow (raised from inside urllib3)."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__(address)


class _Watch:
    """One fetch's deadline and sockets: when the deadline passes, they are shut down."""

    def __init__(self, limits: FetchLimits) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.seconds
        self.expired = False
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.timer = threading.Timer(limits.seconds, self.expire)
        self.timer.daemon = True

    def remaining(self) -> float:
        """Seconds left before the deadline (a little at least, so a timeout is never zero)."""
        return max(0.05, self.deadline - time.monotonic())

    def admit(self, sock: socket.socket) -> None:
        """Check a freshly connected socket's peer, and watch it until the deadline."""
        peer = str(sock.getpeername()[0])
        if not self.limits.allows(peer):
            sock.close()
            raise _Refused(peer)
        with self.lock:
            self.sockets.append(sock)
            if self.expired:
                _shut(sock)

    def expire(self) -> None:
        """The deadline passed: unblock every read at once."""
        with self.lock:
            self.expired = True
            for sock in self.sockets:
                _shut(sock)


_WATCH: contextvars.ContextVar[_Watch | None] = contextvars.ContextVar("fetch_watch",
                                                                       default=None)


def _shut(sock: socket.socket) -> None:
    """Shut a socket down from another thread: a recv blocked on it returns at once."""
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _follow(url: str, watch: _Watch, request: _Request) -> Fetched:
    """GET URL, following redirects by hand; each hop is checked like the first."""
    session = _session()
    what = request.what
    try:
        for _ in range(MAX_REDIRECTS + 1):
            response = _get(session, url, watch, request)
            with response:
                if response.status_code == 304 and request.conditional:
                    return Fetched(304, b"", dict(response.headers))
                if response.status_code not in REDIRECTS:
                    return Fetched(200, _body(response, url, watch, what),
                                   dict(response.headers))
                location = response.headers.get("Location", "")
            if not location:
                raise PermanentDeliveryError(f"{what} URL {without_query(url)} redirects nowhere",
                                             where=what, fix=f"use the {what}'s final URL")
            url = urljoin(url, location)
        raise PermanentDeliveryError(
            f"{what} URL redirects more than {MAX_REDIRECTS} times (a redirect loop?)",
            where=what, fix=f"use the {what}'s final URL")
    finally:
        session.close()


def _get(
    session: requests.Session, url: str, watch: _Watch, request: _Request
) -> requests.Response:
    """One hop: scheme and address checked, then a GET whose body is not read yet."""
    shown, what = without_query(url), request.what
    _check_target(url, watch.limits, what)
    headers = {"Accept-Encoding": "identity", "Accept": request.accept, **request.conditional}
    try:
        return session.get(url, stream=True, allow_redirects=False,
                           timeout=(watch.remaining(), watch.remaining()), headers=headers)
    except _Refused as exc:
        raise _refusal(exc.address, shown, what, watch.limits.section) from None
    except requests.RequestException as exc:
        raise _broken(exc, shown, watch, what) from exc


def _check_target(url: str, limits: FetchLimits, what: str) -> None:
    """Refuse a scheme other than http(s), and a host that resolves to a refused address."""
    shown = without_query(url)
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError as exc:
        raise PermanentDeliveryError(f"{what} URL {shown} is malformed ({exc})", where=what,
                                     fix=f"check the {what} URL") from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise PermanentDeliveryError(f"{what} URL leads to a {parts.scheme}: URL ({shown})",
                                     where=what, fix=f"only http and https {what}s are fetched")
    try:
        found = socket.getaddrinfo(host, port or 443, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise TransientDeliveryError(f"cannot fetch {what} {shown}: the host {host!r} is unknown",
                                     where=what) from exc
    for *_, address in found:
        if not limits.allows(str(address[0])):
            raise _refusal(str(address[0]), shown, what, limits.section)


def _body(response: requests.Response, url: str, watch: _Watch, what: str) -> bytes:
    """The body, read in chunks and given up as soon as it passes the cap or the deadline."""
    shown = without_query(url)
    if response.status_code != 200:
        problem = f"HTTP {response.status_code} for {what} {shown}"
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientDeliveryError(problem, where=what,
                                         retry_after=retry_after(response.headers))
        raise PermanentDeliveryError(problem, where=what, fix=f"check the {what} URL")
    cap = watch.limits.max_bytes
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > cap:
        raise _too_large(shown, cap, what, watch.limits.section)
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.raw.stream(CHUNK, decode_content=False):
            size += len(chunk)
            if size > cap:
                raise _too_large(shown, cap, what, watch.limits.section)
            chunks.append(chunk)
    except DeliveryError:
        raise
    except Exception as exc:  # requests', urllib3's and the socket's errors alike
        raise _broken(exc, shown, watch, what) from exc
    if watch.expired:  # the shut-down socket may look like a clean end of the body
        raise _too_slow(shown, watch.limits, what)
    return b"".join(chunks)


def _session() -> requests.Session:
    """A session whose connections check their peer address and report to the watchdog."""
    session = requests.Session()
    session.trust_env = False  # no proxy: the peer checked must be the server itself
    session.headers["User-Agent"] = USER_AGENT
    adapter = _WatchedAdapter(max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _admitted(sock: socket.socket) -> socket.socket:
    """A new connection's socket, after the current fetch's watch has checked and noted it."""
    watch = _WATCH.get()
    if watch is not None:
        watch.admit(sock)
    return sock


class _WatchedHTTP(HTTPConnection):
    """An HTTP connection checked the moment its socket connects."""

    def _new_conn(self) -> socket.socket:  # where urllib3 creates the socket, before TLS
        return _admitted(super()._new_conn())


class _WatchedHTTPS(HTTPSConnection):
    """An HTTPS connection checked the moment its socket connects, before the TLS handshake."""

    def _new_conn(self) -> socket.socket:
        return _admitted(super()._new_conn())


class _WatchedHTTPPool(HTTPConnectionPool):
    """Pools of watched connections."""

    ConnectionCls = _WatchedHTTP


class _WatchedHTTPSPool(HTTPSConnectionPool):
    """Pools of watched TLS connections."""

    ConnectionCls = _WatchedHTTPS


class _WatchedAdapter(HTTPAdapter):
    """requests' adapter over pools of watched connections."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """The usual pool manager, making watched pools."""
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool,
                                                   "https": _WatchedHTTPSPool}


def _refusal(address: str, shown: str, what: str, section: str) -> PermanentDeliveryError:
    """The error for an address that is not public."""
    return PermanentDeliveryError(
        f"{what} URL {shown} points to the non-public address {address}; not fetched",
        where=what, fix=f"use a public {what} URL, or list the network in [{section}]"
                        " allow_private")


def _too_large(shown: str, cap: int, what: str, section: str) -> PermanentDeliveryError:
    """The error for a body over the cap."""
    return PermanentDeliveryError(f"{what} {shown} is larger than {cap:,} bytes", where=what,
                                  fix=f"use a smaller {what}, or raise [{section}] max_bytes")


def _too_slow(shown: str, limits: FetchLimits, what: str) -> PermanentDeliveryError:
    """The error for a fetch past its deadline (not retried in this run: it would be as slow)."""
    return PermanentDeliveryError(
        f"{what} {shown} took longer than {limits.seconds:g} s to download", where=what,
        fix=f"host the {what} somewhere faster, or raise [{limits.section}] timeout")


def _broken(exc: Exception, shown: str, watch: _Watch, what: str) -> DeliveryError:
    """A failure of the transport: past the deadline, a timeout, or a connection that broke."""
    timeouts = (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)
    if watch.expired or isinstance(exc, timeouts):
        return _too_slow(shown, watch.limits, what)
    broken = (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
              urllib3.exceptions.ProtocolError, OSError)
    if isinstance(exc, broken):
        return TransientDeliveryError(f"cannot fetch {what} {shown}: the connection failed",
                                      where=what)
    return PermanentDeliveryError(f"cannot fetch {what} {shown} ({type(exc).__name__})",
                                  where=what, fix=f"check the {what} URL")
