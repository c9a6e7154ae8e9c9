"""A local SendGrid v3 fake that enforces the mail/send contract.

Contract (https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send and
https://www.twilio.com/docs/sendgrid/api-reference/mail-send/errors): Bearer auth; 1..1000
personalizations and at most 1000 recipients per call, each address once; `from.email`, a subject
and non-empty `content` (text/plain before text/html) required; 202 with `X-Message-Id` and no
body; errors are 400/401/403 `{"errors": [{"message", "field", "help"}]}`; 429 carries
`X-RateLimit-Reset` as epoch seconds
(https://www.twilio.com/docs/sendgrid/api-reference/how-to-use-the-sendgrid-v3-api/rate-limits).

Suppression lists (https://www.twilio.com/docs/sendgrid/api-reference/suppressions-bounces/retrieve-all-bounces
and its siblings for blocks, spam_reports, invalid_emails and, for global unsubscribes,
https://www.twilio.com/docs/sendgrid/api-reference/suppressions-global-suppressions/retrieve-all-global-suppressions):
`GET /v3/suppression/<list>?limit=&offset=` answers a JSON array of `{created, email, …}`, at most
`limit` (≤ 500) entries from `offset`; the key needs `suppression.read` or
`suppression.<list>.read`, else 403. The Event Webhook is signed as `webhooks.SendGridSigner` does.

Scheduled sends (https://www.twilio.com/docs/sendgrid/for-developers/sending-email/scheduling-parameters,
https://www.twilio.com/docs/sendgrid/api-reference/cancel-scheduled-sends): `send_at` is an integer
UNIX timestamp at most 72 hours ahead (400 on field `send_at` otherwise); `batch_id` must come from
`POST /v3/mail/batch` (201 `{"batch_id"}`). `POST /v3/user/scheduled_sends` `{batch_id, status:
cancel|pause}` answers 201, is refused later than 10 minutes before the batch's `send_at`, and a
batch with a status already is refused; `GET /v3/user/scheduled_sends/{batch_id}` lists it. A
cancelled batch is discarded at its time; `release(now)` delivers what is due (the fake's clock).
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from .served import RunningFake
from .server import Deliveries, FakeHTTPServer, Faults, Reply, Request
from .webhooks import SendGridSigner

MAX_PERSONALIZATIONS = 1000
MAX_RECIPIENTS = 1000
MAX_SUBSTITUTION_BYTES = 50_000
SUPPRESSION_LISTS = ("bounces", "blocks", "spam_reports", "invalid_emails", "unsubscribes")
MAX_PAGE = 500
SCHEDULE_HORIZON = 72 * 3600  # send_at at most 72 hours ahead
CANCEL_DEADLINE = 10 * 60  # no cancel or pause later than 10 minutes before send_at


def errors(status: int, message: str, field: str | None = None) -> Reply:
    """SendGrid's error body."""
    return Reply(status, {"errors": [{"message": message, "field": field, "help": None}]})


def rate_limit_headers(seconds: int) -> dict[str, str]:
    """What SendGrid sends with a 429: limit, remaining 0 and the reset as epoch seconds."""
    return {
        "X-RateLimit-Limit": "600",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(int(time.time()) + seconds),
    }


class SendGridFake(RunningFake):
    """State of the fake: the accepted key, the deliveries and the server."""

    def __init__(
        self,
        api_key: str = "SG.fake-key-for-tests",
        *,
        faults: Faults | None = None,
        deliveries_path: Path | None = None,
        keep_bodies: bool = True,
        scopes: tuple[str, ...] = ("mail.send", "scopes.read"),
        suppressions: dict[str, list[dict[str, Any]]] | None = None,
    ) -> None:
        self.api_key = api_key
        self.keep_bodies = keep_bodies
        self.scopes = scopes
        self.suppressions = {name: list((suppressions or {}).get(name, []))
                             for name in SUPPRESSION_LISTS}
        self.signer = SendGridSigner()
        self.deliveries = Deliveries("sendgrid", deliveries_path)
        self.batches: dict[str, str] = {}  # batch_id → "" or its status (cancel, pause)
        self.scheduled: list[dict[str, Any]] = []  # accepted, waiting for send_at
        self.discarded: list[dict[str, Any]] = []  # cancelled batches at their time
        self.clock: Any = time.time  # tests may move the fake's time
        self._lock = threading.Lock()
        self.server = FakeHTTPServer(
            self.handle,
            faults=faults,
            rate_limit_headers=rate_limit_headers,
            error_body=lambda status, message: {"errors": [{"message": message, "field": None}]},
        )

    def handle(self, request: Request) -> Reply:
        """Route one request."""
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return errors(401, "The provided authorization grant is invalid, expired, or revoked")
        if request.method == "GET" and request.path == "/v3/scopes":
            return Reply(200, {"scopes": list(self.scopes)})
        if request.method == "POST" and request.path == "/v3/mail/send":
            return self.mail_send(request)
        if request.method == "GET" and request.path.startswith("/v3/suppression/"):
            return self.suppression_list(request)
        if request.method == "POST" and request.path == "/v3/mail/batch":
            return self.new_batch()
        if request.path.startswith("/v3/user/scheduled_sends"):
            return self.scheduled_sends(request)
        return errors(404, f"no route {request.method} {request.path}")

    def suppression_list(self, request: Request) -> Reply:
        """One page of a suppression list, for a key with the read scope."""
        name = request.path.removeprefix("/v3/suppression/")
        if name not in SUPPRESSION_LISTS:
            return errors(404, f"no route GET {request.path}")
        if not {"suppression.read", f"suppression.{name}.read"} & set(self.scopes):
            return errors(403, "access forbidden")
        try:
            limit = int(request.query.get("limit", [str(MAX_PAGE)])[0])
            offset = int(request.query.get("offset", ["0"])[0])
        except ValueError:
            return errors(400, "limit and offset must be integers", "limit")
        if not 1 <= limit <= MAX_PAGE or offset < 0:
            return errors(400, f"limit must be between 1 and {MAX_PAGE}", "limit")
        return Reply(200, self.suppressions[name][offset:offset + limit])

    def mail_send(self, request: Request) -> Reply:
        """Validate a mail/send body, then deliver every personalization."""
        try:
            body = request.json()
        except ValueError:
            return errors(400, "Bad Request", None)
        problem = validate(body) or self._check_schedule(body)
        if problem:
            return errors(400, problem[1], problem[0])
        message_id = uuid.uuid4().hex[:22]
        if body.get("send_at", 0) > self.clock():
            with self._lock:
                self.scheduled.append({"body": body, "id": message_id})
            return Reply(202, None, {"X-Message-Id": message_id})
        for personalization in body["personalizations"]:
            self._deliver(body, personalization, message_id)
        return Reply(202, None, {"X-Message-Id": message_id})

    def _check_schedule(self, body: dict[str, Any]) -> tuple[str | None, str] | None:
        """send_at: an integer UNIX time at most 72 hours ahead; batch_id: one we issued."""
        send_at = body.get("send_at")
        if send_at is not None:
            if not isinstance(send_at, int) or isinstance(send_at, bool):
                return "send_at", "send_at must be an integer UNIX timestamp."
            if send_at > self.clock() + SCHEDULE_HORIZON:
                return "send_at", ("The send_at parameter must be a unix timestamp no more than"
                                   " 72 hours in the future.")
        batch_id = body.get("batch_id")
        if batch_id is not None and batch_id not in self.batches:
            return "batch_id", "The batch_id is not valid."
        return None

    def new_batch(self) -> Reply:
        """POST /v3/mail/batch: a fresh batch id."""
        batch_id = uuid.uuid4().hex
        with self._lock:
            self.batches[batch_id] = ""
        return Reply(201, {"batch_id": batch_id})

    def scheduled_sends(self, request: Request) -> Reply:
        """Cancel or pause a batch (POST), or read its status (GET …/{batch_id})."""
        rest = request.path.removeprefix("/v3/user/scheduled_sends").strip("/")
        if request.method == "GET" and rest:
            status = self.batches.get(rest)
            return Reply(200, [{"batch_id": rest, "status": status}] if status else [])
        if request.method != "POST" or rest:
            return errors(404, f"no route {request.method} {request.path}")
        try:
            given = request.json()
        except ValueError:
            return errors(400, "Bad Request")
        batch_id, status = given.get("batch_id"), given.get("status")
        if status not in ("cancel", "pause"):
            return errors(400, "status must be either cancel or pause", "status")
        with self._lock:
            if batch_id not in self.batches:
                return errors(400, "The batch_id is not valid.", "batch_id")
            if self.batches[batch_id]:
                return errors(400, "This batch already has a status.", "batch_id")
            times = [m["body"]["send_at"] for m in self.scheduled
                     if m["body"].get("batch_id") == batch_id]
            if times and min(times) - self.clock() < CANCEL_DEADLINE:
                return errors(400, "A batch cannot be cancelled or paused later than 10 minutes"
                                   " before its send_at time.", "batch_id")
            self.batches[batch_id] = status
        return Reply(201, {"batch_id": batch_id, "status": status})

    def release(self, now: float | None = None) -> int:
        """Deliver the scheduled sends whose time has come (cancelled batches are discarded)."""
        now = self.clock() if now is None else now
        with self._lock:
            due = [m for m in self.scheduled if m["body"]["send_at"] <= now]
            self.scheduled = [m for m in self.scheduled if m["body"]["send_at"] > now]
        delivered = 0
        for message in due:
            status = self.batches.get(message["body"].get("batch_id", ""), "")
            if status == "pause":  # held until resumed (or expired)
                with self._lock:
                    self.scheduled.append(message)
                continue
            if status == "cancel":
                self.discarded.append(message)
                continue
            for personalization in message["body"]["personalizations"]:
                self._deliver(message["body"], personalization, message["id"])
                delivered += 1
        return delivered

    def _deliver(self, body: dict[str, Any], personalization: dict[str, Any], mid: str) -> None:
        """Render substitutions as SendGrid would and record each recipient."""
        subs = personalization.get("substitutions", {})
        rendered = {c["type"]: _substitute(c["value"], subs) for c in body["content"]}
        subject = _substitute(personalization.get("subject") or body.get("subject", ""), subs)
        headers = {**body.get("headers", {}), **personalization.get("headers", {})}
        for to in personalization["to"]:
            detail: dict[str, Any] = {"subject": subject, "headers": headers}
            if self.keep_bodies:
                detail.update(html=rendered.get("text/html", ""),
                              text=rendered.get("text/plain", ""))
            self.deliveries.record(to["email"], mid, **detail)


def validate(body: Any) -> tuple[str | None, str] | None:
    """The (field, message) of the first contract violation, or None."""
    if not isinstance(body, dict):
        return None, "Bad Request"
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        return "personalizations", "You must have at least one personalization."
    if len(personalizations) > MAX_PERSONALIZATIONS:
        return "personalizations", (
            f"The personalization block is limited to {MAX_PERSONALIZATIONS} personalizations"
            f" per API request. You have provided {len(personalizations)} personalizations."
        )
    if not isinstance(body.get("from"), dict) or not body["from"].get("email"):
        return "from.email", "The from object must be provided for every email send."
    recipients = list(itertools.chain.from_iterable(p.get("to") or [] for p in personalizations))
    if len(recipients) > MAX_RECIPIENTS:
        return "personalizations", "There is a limit of 1000 total recipients per request."
    for index, personalization in enumerate(personalizations):
        problem = _check_personalization(index, personalization, body)
        if problem:
            return problem
    emails = [r.get("email", "").lower() for r in recipients]
    if len(set(emails)) != len(emails):
        return "personalizations", (
            "Each unique email address in the personalizations array should only be included once."
        )
    return _check_content(body.get("content"))


def _check_personalization(index: int, p: Any, body: dict[str, Any]) -> tuple[str, str] | None:
    """Problems of one personalization object."""
    where = f"personalizations.{index}"
    if not isinstance(p, dict) or not isinstance(p.get("to"), list) or not p["to"]:
        return f"{where}.to", "The to array is required for all personalization objects."
    if any(not isinstance(to, dict) or "@" not in str(to.get("email", "")) for to in p["to"]):
        return f"{where}.to", "Each to object must at least have an email address."
    if not (p.get("subject") or body.get("subject")):
        return "subject", "The subject is required."
    for key in ("headers", "substitutions"):
        values = p.get(key, {})
        if not isinstance(values, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in values.items()
        ):
            return f"{where}.{key}", f"{key} must be an object of strings."
    size = sum(len(k.encode()) + len(v.encode()) for k, v in p.get("substitutions", {}).items())
    if size > MAX_SUBSTITUTION_BYTES:
        return f"{where}.substitutions", "Substitutions are limited to 50,000 bytes."
    return None


def _check_content(content: Any) -> tuple[str, str] | None:
    """Content must be non-empty typed values with text/plain first."""
    if not isinstance(content, list) or not content:
        return "content", (
            "Unless a valid template_id is provided, the content parameter is required."
        )
    if any(not isinstance(c, dict) or not c.get("type") or not c.get("value") for c in content):
        return "content", "Each content object must have a type and a non-empty value."
    types = [c["type"] for c in content]
    if "text/plain" in types and types[0] != "text/plain":
        return "content", "If present, text/plain must be first, followed by text/html."
    return None


def _substitute(text: str, substitutions: dict[str, str]) -> str:
    """Replace every substitution key with its value, as the provider does."""
    for key, value in substitutions.items():
        text = text.replace(key, value)
    return text
