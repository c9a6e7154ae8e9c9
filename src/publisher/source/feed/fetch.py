"""Fetch a feed: the only network access of the feed source, through the hostile-URL fetch.

The feed's server is untrusted like any server a post names (`source.fetch`: a size cap while
streaming, one deadline, private addresses refused unless `[feed] allow_private` lists them).
The last complete read's ETag and Last-Modified go out as If-None-Match and If-Modified-Since,
so an unchanged feed costs the server a 304 and us nothing (RFC 9110 §13.1.1, §13.1.3:
https://www.rfc-editor.org/rfc/rfc9110#name-conditional-requests). Every failure is one error:
a 4xx, an answer too large or a refused address is bad input (exit 2); a server that cannot be
reached, answers 5xx or 429, or is too slow is one to try again later (exit 3).
"""

from __future__ import annotations

from dataclasses import dataclass

from publisher.config.settings import FeedSettings
from publisher.errors import ConfigError, InputError, PermanentDeliveryError, TransientDeliveryError
from publisher.source.fetch import FetchLimits, fetch_answer

ACCEPT = ("application/rss+xml, application/atom+xml, application/feed+xml;q=0.9,"
          " application/xml;q=0.8, text/xml;q=0.8, */*;q=0.1")


@dataclass(frozen=True)
class Validators:
    """The HTTP validators of a feed's last complete read."""

    etag: str = ""
    last_modified: str = ""

    def headers(self) -> dict[str, str]:
        """The conditional request headers they make (RFC 9110 §13.1.2, §13.1.3)."""
        found = {"If-None-Match": self.etag, "If-Modified-Since": self.last_modified}
        return {name: value for name, value in found.items() if value}


@dataclass(frozen=True)
class FeedAnswer:
    """The feed's bytes (none when unchanged), its content type and its new validators."""

    unchanged: bool
    body: bytes
    content_type: str
    validators: Validators


def fetch_feed(url: str, settings: FeedSettings, validators: Validators | None) -> FeedAnswer:
    """The feed at URL, or unchanged (304) since the validators were taken."""
    limits = FetchLimits(max_bytes=settings.max_bytes, seconds=settings.timeout,
                         allow_private=settings.allow_private, section="feed")
    conditional = validators.headers() if validators else {}
    try:
        answer = fetch_answer(url, limits, what="feed", accept=ACCEPT, conditional=conditional)
    except TransientDeliveryError as exc:
        raise ConfigError(exc.problem, where=url,
                          fix="check the address and try again later") from exc
    except PermanentDeliveryError as exc:
        raise InputError(exc.problem, where=url, fix=exc.fix) from exc
    headers = {name.lower(): value for name, value in answer.headers.items()}
    fresh = Validators(headers.get("etag", ""), headers.get("last-modified", ""))
    if answer.status == 304:
        return FeedAnswer(True, b"", "", validators or fresh)
    return FeedAnswer(False, answer.body, headers.get("content-type", ""), fresh)
