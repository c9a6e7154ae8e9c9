"""A local Resend fake that enforces the /emails/batch contract, idempotency replay included.

Contract (https://resend.com/docs/api-reference/emails/send-batch-emails,
https://resend.com/docs/api-reference/errors, https://resend.com/docs/dashboard/emails/idempotency-keys):
`Authorization: Bearer re_…` (401 missing_api_key, 403 invalid_api_key); at most 100 emails, each
with from, to (≤ 50), subject and html or text (422 validation_error); 200
`{"data": [{"id"}…]}`; `Idempotency-Key` ≤ 256 chars (400 invalid_idempotency_key): the same key
and body replays the first answer without sending again, the same key with another body is 409
invalid_idempotent_request, and one still in flight is 409 concurrent_idempotent_requests; 429
rate_limit_exceeded carries `retry-after` and `ratelimit-reset` (seconds).

Suppressions (https://resend.com/docs/api-reference/suppressions/list-suppressions):
`GET /suppressions?limit=&after=` answers `{"object": "list", "has_more", "data": [{"id", "email",
"origin" (bounce, complaint, manual), "created_at"}]}`, cursor-paged by the last id; a sending-only
key gets 401 restricted_api_key. Webhooks are signed by Svix (`webhooks.SvixSigner`).

Scheduling (https://resend.com/docs/api-reference/emails/send-email,
https://resend.com/docs/dashboard/emails/schedule-email,
https://resend.com/docs/api-reference/emails/cancel-email): `POST /emails` takes one email with
`scheduled_at`, an ISO 8601 time or natural language ("in 1 min"), at most 30 days ahead (422
validation_error otherwise), under the same Idempotency-Key rules; the batch endpoint refuses
`scheduled_at` (https://resend.com/docs/api-reference/emails/send-batch-emails). `GET /emails/{id}`
shows `last_event` (scheduled, canceled, delivered); `POST /emails/{id}/cancel` cancels a scheduled
email (`{"object": "email", "id"}`), 404 not_found for an unknown id, 422 for one no longer
scheduled. `release(now)` delivers what is due (the fake's clock).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from .served import RunningFake
from .server import Deliveries, FakeHTTPServer, Faults, Reply, Request
from .webhooks import SvixSigner

MAX_BATCH = 100
MAX_TO = 50
MAX_KEY = 256
SCHEDULE_HORIZON = 30 * 86400  # scheduled_at at most 30 days ahead
NATURAL = re.compile(r"^in (\d+) (min|mins|minute|minutes|hour|hours|day|days)$")
UNIT_SECONDS = {"min": 60, "mins": 60, "minute": 60, "minutes": 60, "hour": 3600,
                "hours": 3600, "day": 86400, "days": 86400}


def error(status: int, name: str, message: str) -> Reply:
    """Resend's error body."""
    return Reply(status, {"statusCode": status, "name": name, "message": message})


def rate_limit_headers(seconds: int) -> dict[str, str]:
    """What Resend sends with a 429 (IETF RateLimit fields plus Retry-After)."""
    return {"ratelimit-limit": "2", "ratelimit-remaining": "0",
            "ratelimit-reset": str(seconds), "retry-after": str(seconds)}


class ResendFake(RunningFake):
    """State of the fake: keys, deliveries and the idempotency store."""

    def __init__(
        self,
        api_key: str = "re_fake_key_for_tests",
        *,
        sending_only: bool = False,
        faults: Faults | None = None,
        deliveries_path: Path | None = None,
        keep_bodies: bool = True,
        suppressions: list[dict[str, Any]] | None = None,
    ) -> None:
        self.api_key = api_key
        self.sending_only = sending_only
        self.suppressions = list(suppressions or [])
        self.signer = SvixSigner()
        self.keep_bodies = keep_bodies
        self.deliveries = Deliveries("resend", deliveries_path)
        self.replays = 0
        self._idempotent: dict[str, tuple[str, Reply]] = {}
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()
        self.emails: dict[str, dict[str, Any]] = {}  # id → {email, send_at, last_event}
        self.clock: Any = time.time  # tests may move the fake's time
        self.server = FakeHTTPServer(
            self.handle,
            faults=faults,
            rate_limit_headers=rate_limit_headers,
            error_body=lambda status, message: {
                "statusCode": status,
                "name": "rate_limit_exceeded" if status == 429 else "internal_server_error",
                "message": message,
            },
        )

    def handle(self, request: Request) -> Reply:
        """Route one request."""
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return error(401, "missing_api_key", "Missing API key in the authorization header.")
        if auth != f"Bearer {self.api_key}":
            return error(403, "invalid_api_key", "API key is invalid.")
        if request.method == "GET" and request.path == "/domains":
            if self.sending_only:
                return error(401, "restricted_api_key",
                             "This API key is restricted to only send emails.")
            return Reply(200, {"data": [{"id": "d1", "name": "example.com", "status": "verified"}]})
        if request.method == "POST" and request.path == "/emails/batch":
            return self.batch(request)
        if request.method == "POST" and request.path == "/emails":
            return self.idempotent(request, self._send_one)
        if request.path.startswith("/emails/"):
            return self.one_email(request, request.path.removeprefix("/emails/"))
        if request.method == "GET" and request.path == "/suppressions":
            return self.suppression_page(request)
        return error(404, "not_found", f"no route {request.method} {request.path}")

    def suppression_page(self, request: Request) -> Reply:
        """One page of the team's suppressions, after the `after` cursor."""
        if self.sending_only:
            return error(401, "restricted_api_key",
                         "This API key is restricted to only send emails.")
        try:
            limit = int(request.query.get("limit", ["20"])[0])
        except ValueError:
            return error(422, "validation_error", "limit must be a number")
        if not 1 <= limit <= 100:
            return error(422, "validation_error", "limit must be between 1 and 100")
        after = request.query.get("after", [""])[0]
        ids = [entry["id"] for entry in self.suppressions]
        start = ids.index(after) + 1 if after in ids else 0
        page = self.suppressions[start:start + limit]
        return Reply(200, {"object": "list", "has_more": start + limit < len(ids), "data": page})

    def batch(self, request: Request) -> Reply:
        """Apply idempotency, then validate and deliver the batch."""
        return self.idempotent(request, self._send)

    def idempotent(self, request: Request, send: Callable[[Request], Reply]) -> Reply:
        """Replay, refuse or run `send` by the request's Idempotency-Key."""
        key = request.headers.get("idempotency-key")
        if key is None:
            return send(request)
        if not 1 <= len(key) <= MAX_KEY:
            return error(400, "invalid_idempotency_key", "The key must be between 1-256 chars.")
        digest = hashlib.sha256(request.body).hexdigest()
        with self._lock:
            if key in self._in_flight:
                return error(409, "concurrent_idempotent_requests", "Same idempotency key used"
                             " while original request is still in progress.")
            if key in self._idempotent:
                first_digest, first_reply = self._idempotent[key]
                if first_digest != digest:
                    return error(409, "invalid_idempotent_request", "Same idempotency key used"
                                 " with a different request payload.")
                self.replays += 1
                return first_reply
            self._in_flight.add(key)
        try:
            reply = send(request)
            if reply.status == 200:
                with self._lock:
                    self._idempotent[key] = (digest, reply)
            return reply
        finally:
            with self._lock:
                self._in_flight.discard(key)

    def _send(self, request: Request) -> Reply:
        """Validate every email (all or nothing), then deliver them."""
        try:
            emails = request.json()
        except ValueError:
            return error(422, "validation_error", "Invalid JSON body.")
        if not isinstance(emails, list) or not emails:
            return error(422, "validation_error", "The batch must be a non-empty array.")
        if len(emails) > MAX_BATCH:
            return error(422, "validation_error",
                         f"Too many emails in the batch ({len(emails)}); the maximum is 100.")
        for index, email in enumerate(emails):
            problem = _problem(email)
            if problem:
                return error(422, "validation_error", f"emails[{index}]: {problem}")
        data = []
        for email in emails:
            email_id = str(uuid.uuid4())
            for to in _as_list(email["to"]):
                detail: dict[str, Any] = {"subject": email["subject"],
                                          "headers": email.get("headers", {})}
                if self.keep_bodies:
                    detail.update(html=email.get("html", ""), text=email.get("text", ""))
                self.deliveries.record(parseaddr(to)[1], email_id, **detail)
            data.append({"id": email_id})
        return Reply(200, {"data": data})


    def _send_one(self, request: Request) -> Reply:
        """POST /emails: one email, delivered now or held until its scheduled_at."""
        try:
            email = request.json()
        except ValueError:
            return error(422, "validation_error", "Invalid JSON body.")
        scheduled = email.get("scheduled_at") if isinstance(email, dict) else None
        problem = _problem({k: v for k, v in email.items() if k != "scheduled_at"}
                           if isinstance(email, dict) else email)
        send_at = self.clock()
        if problem is None and scheduled is not None:
            problem, send_at = self._schedule_time(scheduled)
        if problem:
            return error(422, "validation_error", problem)
        email_id = str(uuid.uuid4())
        with self._lock:
            self.emails[email_id] = {"email": email, "send_at": send_at,
                                     "last_event": "scheduled"}
        if send_at <= self.clock():
            self.release()
        return Reply(200, {"id": email_id})

    def _schedule_time(self, value: Any) -> tuple[str | None, float]:
        """scheduled_at as ISO 8601 or 'in N minutes/hours/days', at most 30 days ahead."""
        now = self.clock()
        text = str(value).strip()
        natural = NATURAL.match(text)
        if natural:
            at = now + int(natural[1]) * UNIT_SECONDS[natural[2]]
        else:
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                return ("The `scheduled_at` field must be a valid ISO 8601 date or natural"
                        " language such as 'in 1 min'.", now)
            if parsed.tzinfo is None:
                return "The `scheduled_at` field must include a time zone offset.", now
            at = parsed.timestamp()
        if at > now + SCHEDULE_HORIZON:
            return "The `scheduled_at` field cannot be more than 30 days in the future.", now
        return None, at

    def one_email(self, request: Request, rest: str) -> Reply:
        """GET /emails/{id} and POST /emails/{id}/cancel."""
        email_id, _, action = rest.partition("/")
        with self._lock:
            entry = self.emails.get(email_id)
            if entry is None:
                return error(404, "not_found", "Email not found")
            if request.method == "GET" and not action:
                return Reply(200, {"object": "email", "id": email_id,
                                   "last_event": entry["last_event"],
                                   "scheduled_at": _iso(entry["send_at"])})
            if request.method == "POST" and action == "cancel":
                if entry["last_event"] != "scheduled":
                    return error(422, "validation_error",
                                 f"Email is {entry['last_event']} and cannot be canceled.")
                entry["last_event"] = "canceled"
                return Reply(200, {"object": "email", "id": email_id})
        return error(404, "not_found", f"no route {request.method} {request.path}")

    def release(self, now: float | None = None) -> int:
        """Deliver the scheduled emails whose time has come (canceled ones stay canceled)."""
        now = self.clock() if now is None else now
        with self._lock:
            due = [(i, e) for i, e in self.emails.items()
                   if e["last_event"] == "scheduled" and e["send_at"] <= now]
            for _, entry in due:
                entry["last_event"] = "delivered"
        for email_id, entry in due:
            email = entry["email"]
            for to in _as_list(email["to"]):
                detail: dict[str, Any] = {"subject": email["subject"],
                                          "headers": email.get("headers", {})}
                if self.keep_bodies:
                    detail.update(html=email.get("html", ""), text=email.get("text", ""))
                self.deliveries.record(parseaddr(to)[1], email_id, **detail)
        return len(due)


def _iso(epoch: float) -> str:
    """A time as Resend shows it."""
    return datetime.fromtimestamp(epoch).astimezone().isoformat()


def _problem(email: Any) -> str | None:
    """Why one batch entry is invalid, or None."""
    if not isinstance(email, dict):
        return "each email must be an object"
    for name in ("from", "to", "subject"):
        if not email.get(name):
            return f"The `{name}` field is missing."
    if len(_as_list(email["to"])) > MAX_TO:
        return "The `to` field can have at most 50 addresses."
    if not (email.get("html") or email.get("text")):
        return "Provide `html` or `text`."
    for unsupported in ("attachments", "scheduled_at"):
        if unsupported in email:
            return f"The `{unsupported}` field is not supported in batch sends."
    headers = email.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        return "The `headers` field must be an object of strings."
    return None


def _as_list(value: Any) -> list[str]:
    """`to` may be one address or a list."""
    return [value] if isinstance(value, str) else list(value)
