"""The one HTTP seam: a session per provider, error mapping, rate-limit hints and retries.

Channel modules call `HttpClient.request`; it raises TransientDeliveryError (timeouts, dropped
connections, 5xx, 429 with the server's wait hint) or PermanentDeliveryError (other 4xx), never
returns a failed response. `with_retries` is the single retry loop every channel shares.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from publisher.config.secrets import masked_excerpt
from publisher.errors import PermanentDeliveryError, TransientDeliveryError
from publisher.web import USER_AGENT, retry_after, without_query

if TYPE_CHECKING:
    import requests
    from requests.sessions import _Settings

T = TypeVar("T")
REPLY_CHARS = 300  # how much of a provider's error reply a message quotes


@dataclass
class HttpClient:
    """A provider's base URL, default headers and timeout over one pooled requests.Session."""

    channel: str
    base_url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 30.0
    session: requests.Session | None = None

    def request(
        self, method: str, path: str, *, ok: tuple[int, ...] = (200, 201, 202, 204), **kwargs: Any
    ) -> requests.Response:
        """Send one request; any outcome but an expected status becomes a delivery error."""
        import requests

        if self.session is None:
            self.session = _session_class()()
            self.session.headers["User-Agent"] = USER_AGENT
        url = path if path.startswith("http") else f"{self.base_url.rstrip('/')}/{path.lstrip('/')}"
        headers = {**self.headers, **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", self.timeout)
        try:
            response = self.session.request(method, url, headers=headers, **kwargs)
        except requests.Timeout as exc:
            raise TransientDeliveryError(
                f"{method} {without_query(path)} timed out", where=self.channel,
                maybe_delivered=True,
            ) from exc
        except requests.ConnectionError as exc:
            raise TransientDeliveryError(
                f"{method} {without_query(path)}: connection failed", where=self.channel,
                maybe_delivered=True,
            ) from exc
        if response.status_code not in ok:
            raise status_error(self.channel, response)
        return response

    def close(self) -> None:
        """Release pooled connections."""
        if self.session is not None:
            self.session.close()


@cache
def _session_class() -> type[requests.Session]:
    """A requests session that reads the environment's settings once per origin, not per call.

    With `trust_env` (the default), every `Session.request` scans all of `os.environ` twice for
    proxy and no-proxy settings and reads the CA bundle variables: a send of 1000 batches did
    that 1000 times. This session asks requests itself (`merge_environment_settings`) once per
    scheme and host and reuses the answer; calls with their own proxies, stream, verify or
    cert settings are merged afresh, as before.
    """
    import requests

    class EnvironmentOnce(requests.Session):
        """`requests.Session` with the environment's settings kept per origin."""

        def __init__(self) -> None:
            super().__init__()
            self.environment: dict[str, _Settings] = {}

        def merge_environment_settings(
            self, url: str | bytes | None, proxies: MutableMapping[str, str] | None,
            stream: bool | None, verify: bool | str | None, cert: str | tuple[str, str] | None,
        ) -> _Settings:
            """Requests' own merge, asked once per origin for calls that set nothing."""
            if proxies or stream is not None or verify is not None or cert is not None:
                return super().merge_environment_settings(url, proxies, stream, verify, cert)
            text = url.decode() if isinstance(url, bytes) else str(url)
            origin = "{}://{}".format(*urlsplit(text)[:2])
            found = self.environment.get(origin)
            if found is None:
                found = super().merge_environment_settings(url, {}, None, None, None)
                self.environment[origin] = found
            fresh = found.copy()
            fresh["proxies"] = dict(found["proxies"])  # callers may change them
            return fresh

    return EnvironmentOnce


def status_error(channel: str, response: requests.Response) -> Exception:
    """The delivery error an unexpected HTTP status stands for."""
    detail = masked_excerpt(response.text, REPLY_CHARS)  # mask first, then cut
    problem = (f"HTTP {response.status_code} from {response.request.method} "
               f"{without_query(response.url)}: {detail}")
    if response.status_code == 429 or response.status_code >= 500:
        return TransientDeliveryError(
            problem, where=channel, retry_after=retry_after(response.headers)
        )
    fix = "check the credentials" if response.status_code in (401, 403) else "see the reply above"
    return PermanentDeliveryError(problem, where=channel, fix=fix)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts, exponential backoff, and the longest wait we accept."""

    attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_wait: float = 900.0  # a reset further away than this fails the channel instead
    retry_uncertain: bool = True  # False: a call that may have landed is not repeated


def with_retries(
    call: Callable[[], T],
    policy: RetryPolicy = RetryPolicy(),
    *,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[TransientDeliveryError, float], None] | None = None,
) -> T:
    """Run call, retrying transient failures with backoff that honours the server's hint."""
    for attempt in range(1, policy.attempts + 1):
        try:
            return call()
        except TransientDeliveryError as exc:
            if (attempt == policy.attempts or not exc.retry_now
                    or (exc.maybe_delivered and not policy.retry_uncertain)):
                raise
            delay = backoff_delay(exc, attempt, policy)
            if on_retry is not None:
                on_retry(exc, delay)
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def backoff_delay(exc: TransientDeliveryError, attempt: int, policy: RetryPolicy) -> float:
    """The server's wait when it gave one, else jittered exponential backoff."""
    if exc.retry_after is not None:
        if exc.retry_after > policy.max_wait:
            raise exc
        return exc.retry_after + random.uniform(0, 0.05)
    ceiling = min(policy.max_delay, policy.base_delay * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)

