"""What every HTTP request publisher makes shares, whether it fetches a post or calls a provider.

The User-Agent it announces, the wait a server asks for, and URLs made safe to show.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime

from publisher.config.secrets import mask

USER_AGENT = "publisher/0.1 (+https://github.com/publisher-dev/publisher)"


def without_query(url: str) -> str:
    """The URL without query or fragment, which may carry a key (`?api_key=…`): safe to show."""
    return mask(url.split("?", 1)[0].split("#", 1)[0])


def retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait, from Retry-After or the provider's rate-limit reset header."""
    now = time.time() if now is None else now
    lowered = {k.lower(): v for k, v in headers.items()}
    if "retry-after" in lowered:  # RFC 9110 §10.2.3: delay-seconds or an HTTP-date
        return _seconds_or_date(lowered["retry-after"], now)
    for name in ("x-rate-limit-reset", "x-ratelimit-reset", "ratelimit-reset"):
        if name in lowered:
            return _reset_value(lowered[name], now)
    return None


def _seconds_or_date(value: str, now: float) -> float | None:
    """Parse a Retry-After value."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


def _reset_value(value: str, now: float) -> float | None:
    """A reset given as epoch seconds (X, Bluesky), delta seconds, or ISO 8601 (Mastodon)."""
    value = value.strip()
    try:
        number = float(value)
    except ValueError:
        try:
            return max(0.0, datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() - now)
        except ValueError:
            return None
    return max(0.0, number - now) if number > 1_000_000_000 else number
