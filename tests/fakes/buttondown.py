"""A local Buttondown fake that enforces the v1 emails contract.

Contract (https://docs.buttondown.com/api-authentication, https://docs.buttondown.com/api-emails-create,
https://docs.buttondown.com/api-emails-update, https://docs.buttondown.com/api-emails-send-draft,
https://docs.buttondown.com/api-idempotency-keys, https://docs.buttondown.com/api-error-codes,
https://docs.buttondown.com/api-rate-limits, https://docs.buttondown.com/api-pagination):
`Authorization: Token <key>` (401 `{"detail": …}`); `GET /v1/newsletters` lists the key's
newsletters; `POST /v1/emails` takes subject (1..2000 chars), body, status (draft, about_to_send,
scheduled; scheduled needs a future `publish_date`), metadata, and rejects unknown fields with a
422 `{"detail": [{"type": "extra_forbidden", "loc", "msg"}]}`; other errors are
`{"code", "detail", "metadata"}` (subject_invalid, status_invalid, publish_date_missing,
publish_date_invalid, email_duplicate). `about_to_send` mails the whole list. `X-Idempotency-Key`
replays the first answer. `PATCH /v1/emails/{id}` moves a draft to about_to_send or scheduled;
a sent email cannot change. `POST /v1/emails/{id}/send-draft` mails a draft to `recipients` only
(409 when it is not a draft). `GET /v1/emails` pages by 100 (`count`, `next`, `results`), filtered
by repeated `status`. A 429 carries Retry-After and X-RateLimit-{Limit,Remaining,Reset}.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .audience import Audience
from .served import RunningFake
from .server import FakeHTTPServer, Faults, Reply, Request

PAGE = 100
MAX_SUBJECT = 2000
FIELDS = frozenset({"subject", "body", "status", "publish_date", "metadata", "email_type", "slug",
                    "description", "canonical_url", "image"})
STATUSES = frozenset({"draft", "about_to_send", "scheduled"})


def error(status: int, code: str, detail: str) -> Reply:
    """Buttondown's coded error body."""
    return Reply(status, {"code": code, "detail": detail, "metadata": {}})


def rate_limit_headers(seconds: int) -> dict[str, str]:
    """What Buttondown sends with a 429."""
    return {"Retry-After": str(seconds), "X-RateLimit-Limit": "600",
            "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()) + seconds)}


class ButtondownFake(RunningFake):
    """State of the fake: the key, the newsletter, its subscribers and its emails."""

    def __init__(self, api_key: str = "bd-fake-key", *, username: str = "news",
                 subscribers: Iterable[str] = (), faults: Faults | None = None,
                 deliveries_path: Path | None = None) -> None:
        self.api_key = api_key
        self.username = username
        self.audience = Audience("buttondown", subscribers, deliveries_path=deliveries_path)
        self.emails: dict[str, dict[str, Any]] = {}
        self.replays = 0
        self._idempotent: dict[str, Reply] = {}
        self._lock = threading.Lock()
        self.server = FakeHTTPServer(
            self.handle, faults=faults, rate_limit_headers=rate_limit_headers,
            error_body=lambda status, message: {"code": "rate_limited" if status == 429
                                                else "server_error", "detail": message},
        )

    def handle(self, request: Request) -> Reply:
        """Check the token, then route."""
        auth = request.headers.get("authorization", "")
        if not auth:
            return Reply(401, {"detail": "Authentication credentials were not provided."})
        if auth != f"Token {self.api_key}":
            return Reply(401, {"detail": "Invalid token."})
        parts = request.path.rstrip("/").split("/")[1:]  # v1, emails, id, action
        if parts == ["v1", "newsletters"] and request.method == "GET":
            return Reply(200, {"count": 1, "next": None, "previous": None, "results": [
                {"id": "nl_1", "username": self.username, "name": "Fake newsletter"}]})
        if parts[:2] != ["v1", "emails"]:
            return Reply(404, {"detail": "Not found."})
        with self._lock:
            return self._emails(request, parts[2:])

    def _emails(self, request: Request, rest: list[str]) -> Reply:
        """Route /v1/emails and below."""
        if not rest:
            if request.method == "GET":
                return self.listing(request)
            if request.method == "POST":
                return self.create(request)
        elif rest[0] not in self.emails:
            return Reply(404, {"detail": "Not found."})
        elif len(rest) == 1 and request.method == "GET":
            return Reply(200, self.emails[rest[0]])
        elif len(rest) == 1 and request.method == "PATCH":
            return self.update(rest[0], request)
        elif rest[1:] == ["send-draft"] and request.method == "POST":
            return self.send_draft(rest[0], request)
        return Reply(405, {"detail": f'Method "{request.method}" not allowed.'})

    def listing(self, request: Request) -> Reply:
        """One page of emails, newest first, optionally filtered by status."""
        wanted = set(request.query.get("status", []))
        found = [e for e in reversed(self.emails.values()) if not wanted or e["status"] in wanted]
        page = int(request.query.get("page", ["1"])[0])
        chunk = found[(page - 1) * PAGE:page * PAGE]
        more = len(found) > page * PAGE
        return Reply(200, {"count": len(found), "results": chunk,
                           "next": f"{self.url}/v1/emails?page={page + 1}" if more else None,
                           "previous": None})

    def create(self, request: Request) -> Reply:
        """A new email; about_to_send mails the list at once."""
        key = request.headers.get("x-idempotency-key", "")
        if key and key in self._idempotent:
            self.replays += 1
            return self._idempotent[key]
        body = request.json()
        problem = _problem(body, creating=True)
        if problem:
            return problem
        if body.get("status") == "about_to_send" and any(
            e["subject"] == body["subject"] and e["status"] == "sent" for e in self.emails.values()
        ):
            return error(400, "email_duplicate", "An email with the same identifiers already"
                         " exists.")
        email = {"id": str(uuid.uuid4()), "creation_date": _now(), "subject": body["subject"],
                 "body": body.get("body", ""), "status": body.get("status", "draft"),
                 "publish_date": body.get("publish_date"), "metadata": body.get("metadata", {}),
                 "absolute_url": ""}
        email["absolute_url"] = f"https://buttondown.com/{self.username}/archive/{email['id']}"
        self.emails[email["id"]] = email
        self._advance(email)
        reply = Reply(201, email)
        if key:
            self._idempotent[key] = reply
        return reply

    def update(self, email_id: str, request: Request) -> Reply:
        """Change a draft or a scheduled email; a sent one stays as it went."""
        email = self.emails[email_id]
        body = request.json()
        problem = _problem(body, creating=False)
        if problem:
            return problem
        if email["status"] not in ("draft", "scheduled"):
            return error(400, "status_invalid", f"An email that is {email['status']} cannot be"
                         " changed.")
        email.update(body)
        self._advance(email)
        return Reply(200, email)

    def send_draft(self, email_id: str, request: Request) -> Reply:
        """A test send of a draft to the given addresses."""
        email = self.emails[email_id]
        if email["status"] != "draft":
            return error(409, "email_not_draft", "Only drafts can be sent as a draft.")
        recipients = request.json().get("recipients") or []
        if not recipients:
            return error(400, "recipients_invalid", "Provide at least one recipient.")
        self.audience.proof(email_id, recipients, f"[PREVIEW] {email['subject']}", email["body"])
        return Reply(200, {})

    def _advance(self, email: dict[str, Any]) -> None:
        """about_to_send goes out now (the fake sends at once and marks it sent)."""
        if email["status"] == "about_to_send":
            self.audience.send(email["id"], email["subject"], email["body"])
            email["status"] = "sent"
            email["publish_date"] = _now()


def _problem(body: Any, *, creating: bool) -> Reply | None:
    """The error a create or update body earns, if any."""
    if not isinstance(body, dict):
        return Reply(422, {"detail": [{"type": "model_type", "loc": ["body"],
                                       "msg": "Input should be an object"}]})
    extra = sorted(set(body) - FIELDS)
    if extra:
        return Reply(422, {"detail": [{"type": "extra_forbidden", "loc": ["body", name],
                                       "msg": "Extra inputs are not permitted"} for name in extra]})
    subject = body.get("subject")
    if (creating or "subject" in body) and (
        not isinstance(subject, str) or not subject.strip() or len(subject) > MAX_SUBJECT
    ):
        return error(400, "subject_invalid", "The subject is missing or longer than 2000"
                     " characters.")
    status = body.get("status", "draft")
    if status not in STATUSES:
        return error(400, "status_invalid", f"{status!r} is not a status you can set.")
    if status == "scheduled":
        if not body.get("publish_date"):
            return error(400, "publish_date_missing", "A scheduled email needs a publish_date.")
        try:
            when = datetime.fromisoformat(str(body["publish_date"]).replace("Z", "+00:00"))
        except ValueError:
            return error(400, "publish_date_invalid", "publish_date is not an ISO 8601 date.")
        if when.tzinfo is None or when <= datetime.now(UTC):
            return error(400, "publish_date_invalid", "publish_date must be in the future.")
    return None


def _now() -> str:
    """An ISO 8601 timestamp like Buttondown's."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
