"""Request bodies the WSGI app reads: only with a plain Content-Length, and never over a cap."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FORM_BODY_LIMIT = 16 * 1024  # a one-click or resubscribe form is a few dozen bytes
WEBHOOK_BODY_LIMIT = 4 * 1024 * 1024  # SendGrid batches up to ~1,000 events per POST


class BodyRefused(Exception):
    """A request body we will not read: its length is missing, malformed or over the cap."""

    def __init__(self, status: str) -> None:
        self.status = status
        super().__init__(status)


def read_body(environ: Mapping[str, Any], limit: int) -> bytes:
    """The request body, refused unless its Content-Length is a plain number within `limit`."""
    if environ.get("HTTP_TRANSFER_ENCODING"):
        raise BodyRefused("411 Length Required")  # wsgiref cannot de-chunk; we never guess
    raw = str(environ.get("CONTENT_LENGTH") or "").strip()
    if not raw:
        return b""
    if not raw.isdigit():  # "-1", "1e9", " 12 x" …
        raise BodyRefused("400 Bad Request")
    length = int(raw)
    if length > limit:
        raise BodyRefused("413 Content Too Large")
    body: bytes = environ["wsgi.input"].read(length) if length else b""
    if len(body) != length:
        raise BodyRefused("400 Bad Request")
    return body
