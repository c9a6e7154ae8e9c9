"""A Mastodon instance that enforces the parts of the API publisher relies on.

Contract (https://docs.joinmastodon.org/methods/): a v2 instance document with this server's
limits; Bearer tokens; `POST /api/v1/statuses` with Idempotency-Key replay, 422 with the real
"Validation failed" body over the limit, 404 for an unknown `in_reply_to_id`; media via
`POST /api/v2/media` (202 while processing) and `GET /api/v1/media/:id` (206 until done); 429 with
an ISO 8601 `X-RateLimit-Reset`. Corrections: `GET /api/v1/statuses/:id` and `…/source`,
`PUT /api/v1/statuses/:id` (https://docs.joinmastodon.org/methods/statuses/#edit: the status
becomes what is sent, so attachments not re-sent in `media_ids` are dropped) and
`DELETE /api/v1/statuses/:id` (#delete); each answers 404 "Record not found" for an unknown id
or another account's status, as Mastodon scopes them to the token's account.

Scheduling (https://docs.joinmastodon.org/methods/statuses/#create,
https://docs.joinmastodon.org/entities/ScheduledStatus/,
https://docs.joinmastodon.org/methods/scheduled_statuses/): `scheduled_at` (ISO 8601) at least
5 minutes ahead makes the create answer a ScheduledStatus `{id, scheduled_at, params,
media_attachments}` instead of a Status; sooner is 422 (mastodon/mastodon#30584, the body as in
mastodon/mastodon#12557). `GET /api/v1/scheduled_statuses[/:id]` and
`DELETE /api/v1/scheduled_statuses/:id` (200 `{}`, 404 "Record not found" once gone).
`release(now)` posts what is due (the fake's clock).
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from publisher.networks.counting import mastodon_length

from .forms import fields, header, json_body, multipart
from .served import ServedFake, bearer_token
from .server import Reply, Request

FIRST_ID = 113_000_000_000_000_000
SCHEDULE_MINIMUM = 5 * 60  # scheduled_at at least 5 minutes ahead
TOO_SOON = "Validation failed: Scheduled at The scheduled date must be in the future"


class FakeMastodon(ServedFake):
    """One account on one instance, with every status it accepted in order."""

    def __init__(
        self,
        *,
        token: str = "mastodon-test-token-123",
        username: str = "editor",
        max_characters: int = 1000,
        url_length: int = 23,
        processing_polls: int = 2,
        state_file: Path | None = None,
    ) -> None:
        self.token = token
        self.username = username
        self.max_characters = max_characters
        self.url_length = url_length
        self.processing_polls = processing_polls
        self.statuses: list[dict[str, Any]] = []
        self.idempotency: dict[str, str] = {}
        self.media: dict[str, dict[str, Any]] = {}
        self.next_id = FIRST_ID
        self.deleted: list[dict[str, Any]] = []
        self.calls: Counter[str] = Counter()  # "PUT <id>" / "DELETE <id>" → how many requests
        self.scheduled: list[dict[str, Any]] = []  # ScheduledStatus entities waiting
        self.clock: Any = time.time  # tests may move the fake's time
        self.resume(state_file)
        self.serve(rate_limit_headers=rate_limit_headers,
                   error_body=lambda status, message: {"error": message})

    def texts(self) -> list[str]:
        """Status texts in the order they were created."""
        return [s["text"] for s in self.statuses]

    def snapshot(self) -> dict[str, Any]:
        """State to persist."""
        return {"statuses": self.statuses, "idempotency": self.idempotency,
                "media": self.media, "next_id": self.next_id, "deleted": self.deleted,
                "calls": dict(self.calls), "scheduled": self.scheduled}

    def restore(self, state: dict[str, Any]) -> None:
        """Reload persisted state."""
        self.statuses = state["statuses"]
        self.idempotency = state["idempotency"]
        self.media = state["media"]
        self.next_id = state["next_id"]
        self.deleted = state.get("deleted", [])
        self.calls = Counter(state.get("calls", {}))
        self.scheduled = state.get("scheduled", [])

    def route(self, request: Request) -> Reply:
        """Dispatch one request."""
        path = request.path
        if request.method == "GET" and path == "/api/v2/instance":
            return Reply(200, self.instance())
        if bearer_token(request) != self.token:
            return Reply(401, {"error": "The access token is invalid"})
        if request.method == "GET" and path == "/api/v1/accounts/verify_credentials":
            return Reply(200, {"id": "1", "username": self.username, "acct": self.username,
                                   "url": f"{self.url}/@{self.username}"})
        if request.method == "POST" and path == "/api/v1/statuses":
            return self.create_status(request)
        if request.method == "POST" and path == "/api/v2/media":
            return self.upload_media(request)
        if request.method == "GET" and path.startswith("/api/v1/media/"):
            return self.media_status(path.rsplit("/", 1)[-1])
        if path.startswith("/api/v1/statuses/"):
            return self.one_status(request, path.removeprefix("/api/v1/statuses/"))
        if path.startswith("/api/v1/scheduled_statuses"):
            return self.scheduled_status(request, path.removeprefix("/api/v1/scheduled_statuses"))
        return Reply(404, {"error": "Record not found"})

    def add_foreign_status(self, text: str) -> str:
        """A status by another account on this instance (its id), which this token cannot touch."""
        self.next_id += 1
        self.statuses.append({"id": str(self.next_id), "text": text, "in_reply_to_id": None,
                              "language": "en", "media_ids": [], "idempotency_key": "",
                              "account": "someone-else"})
        return str(self.next_id)

    def one_status(self, request: Request, rest: str) -> Reply:
        """GET, PUT and DELETE of one of this account's statuses, and GET …/source."""
        status_id, _, tail = rest.partition("/")
        status = next((s for s in self.statuses if s["id"] == status_id
                       and s.get("account", self.username) == self.username), None)
        if status is None:
            return Reply(404, {"error": "Record not found"})
        if request.method == "GET" and tail == "source":
            return Reply(200, {"id": status_id, "text": status["text"], "spoiler_text": ""})
        if tail:
            return Reply(404, {"error": "Record not found"})
        if request.method == "GET":
            return Reply(200, self._public(status))
        self.calls[f"{request.method} {status_id}"] += 1
        if request.method == "DELETE":
            self.statuses.remove(status)
            self.deleted.append(status)
            return Reply(200, {**self._public(status), "text": status["text"]})
        if request.method == "PUT":
            return self.edit_status(request, status)
        return Reply(404, {"error": "Record not found"})

    def edit_status(self, request: Request, status: dict[str, Any]) -> Reply:
        """PUT /api/v1/statuses/:id: the status becomes exactly what is sent."""
        given = json_body(request) or {}
        text = str(given.get("status") or "")
        media_ids = [str(m) for m in given.get("media_ids") or []]
        if (refused := self._refuse_text(text, media_ids)) is not None:
            return refused
        if any(m not in self.media for m in media_ids):
            return Reply(422, {"error": "Validation failed: media not found"})
        status.update(text=text, media_ids=media_ids, language=given.get("language"),
                      edits=status.get("edits", 0) + 1)
        return Reply(200, self._public(status))

    def _refuse_text(self, text: str, media_ids: list[str]) -> Reply | None:
        """Mastodon's 422 for a blank or over-long status, on create and on edit alike."""
        if not text.strip() and not media_ids:
            return Reply(422, {"error": "Validation failed: Text can't be blank"})
        if mastodon_length(text, url_length=self.url_length) > self.max_characters:
            return Reply(422, {"error": "Validation failed: Text character limit of "
                                            f"{self.max_characters} exceeded"})
        return None

    def instance(self) -> dict[str, Any]:
        """The v2 instance document with this server's (non-default) limits."""
        # https://docs.joinmastodon.org/entities/Instance/#statuses
        host = self.url.split("//", 1)[1]
        return {"domain": host, "title": "Fake Mastodon", "version": "4.3.0",
                "configuration": {
                    "statuses": {"max_characters": self.max_characters,
                                 "max_media_attachments": 4,
                                 "characters_reserved_per_url": self.url_length},
                    "media_attachments": {"image_size_limit": 16_777_216,
                                          "description_limit": 1500}}}

    def create_status(self, request: Request) -> Reply:
        """POST /api/v1/statuses with Mastodon's validations and idempotency."""
        # https://docs.joinmastodon.org/methods/statuses/#create
        key = header(request, "idempotency-key")
        if key and key in self.idempotency:
            earlier = self.idempotency[key]
            waiting = next((s for s in self.scheduled if s["id"] == earlier), None)
            return Reply(200, waiting or self._public(self._status(earlier)))
        given = json_body(request) if header(request, "content-type").startswith(
            "application/json") else fields(request)
        text = str(given.get("status") or "")
        media_ids = [str(m) for m in given.get("media_ids") or []]
        if (refused := self._refuse_text(text, media_ids)) is not None:
            return refused
        if given.get("scheduled_at"):
            return self.schedule_status(given, text, media_ids, key)
        parent = given.get("in_reply_to_id")
        if parent and not any(s["id"] == str(parent) for s in self.statuses):
            return Reply(404, {"error": "Record not found"})
        for media_id in media_ids:
            if self.media.get(media_id, {}).get("polls_left", 1) > 0:
                return Reply(422, {"error": "Cannot attach files that have not finished "
                                                "processing. Try again in a moment!"})
        self.next_id += 1
        status: dict[str, Any] = {
            "id": str(self.next_id), "text": text, "in_reply_to_id": parent and str(parent),
            "language": given.get("language"), "media_ids": media_ids, "idempotency_key": key}
        self.statuses.append(status)
        if key:
            self.idempotency[key] = status["id"]
        return Reply(200, self._public(status))

    def schedule_status(self, given: dict[str, Any], text: str, media_ids: list[str],
                        key: str) -> Reply:
        """A create with scheduled_at: validated like a status, kept as a ScheduledStatus."""
        try:
            at = datetime.fromisoformat(str(given["scheduled_at"]).replace("Z", "+00:00"))
        except ValueError:
            return Reply(422, {"error": "Validation failed: Scheduled at is invalid"})
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        if at.timestamp() < self.clock() + SCHEDULE_MINIMUM:
            return Reply(422, {"error": TOO_SOON})
        self.next_id += 1
        entity: dict[str, Any] = {
            "id": str(self.next_id),
            "scheduled_at": at.astimezone(UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "params": {"text": text, "media_ids": media_ids or None,
                       "language": given.get("language"), "idempotency": key or None,
                       "in_reply_to_id": given.get("in_reply_to_id"),
                       "scheduled_at": None, "visibility": None},
            "media_attachments": [self._media_json(m) for m in media_ids]}
        self.scheduled.append(entity)
        if key:
            self.idempotency[key] = entity["id"]
        return Reply(200, entity)

    def scheduled_status(self, request: Request, rest: str) -> Reply:
        """GET the list or one ScheduledStatus; DELETE one (404 once it is gone)."""
        status_id = rest.strip("/")
        if request.method == "GET" and not status_id:
            return Reply(200, list(self.scheduled))
        entity = next((s for s in self.scheduled if s["id"] == status_id), None)
        if entity is None:
            return Reply(404, {"error": "Record not found"})
        if request.method == "GET":
            return Reply(200, entity)
        if request.method == "DELETE":
            self.calls[f"DELETE scheduled {status_id}"] += 1
            self.scheduled.remove(entity)
            return Reply(200, {})
        return Reply(404, {"error": "Record not found"})

    def release(self, now: float | None = None) -> int:
        """Post the scheduled statuses whose time has come, as Mastodon's scheduler does."""
        now = self.clock() if now is None else now
        with self.lock:
            due = [s for s in self.scheduled
                   if datetime.fromisoformat(s["scheduled_at"].replace("Z", "+00:00"))
                   .timestamp() <= now]
            for entity in due:
                self.scheduled.remove(entity)
                self.next_id += 1
                params = entity["params"]
                self.statuses.append({"id": str(self.next_id), "text": params["text"],
                                      "in_reply_to_id": params["in_reply_to_id"],
                                      "language": params["language"],
                                      "media_ids": params["media_ids"] or [],
                                      "idempotency_key": params["idempotency"] or "",
                                      "scheduled_id": entity["id"]})
            self.save()
        return len(due)

    def _status(self, status_id: str) -> dict[str, Any]:
        """A stored status by id."""
        return next(s for s in self.statuses if s["id"] == status_id)

    def _public(self, status: dict[str, Any]) -> dict[str, Any]:
        """The Status entity as the API returns it."""
        return {"id": status["id"], "in_reply_to_id": status["in_reply_to_id"],
                "language": status["language"], "content": f"<p>{status['text']}</p>",
                "uri": f"{self.url}/users/{self.username}/statuses/{status['id']}",
                "url": f"{self.url}/@{self.username}/{status['id']}",
                "media_attachments": [self._media_json(m) for m in status["media_ids"]]}

    def upload_media(self, request: Request) -> Reply:
        """POST /api/v2/media: accepted for asynchronous processing (202)."""
        # https://docs.joinmastodon.org/methods/media/#v2
        parts = multipart(request)
        if "file" not in parts:
            return Reply(422, {"error": "Validation failed: File can't be blank"})
        description = parts.get("description", (b"", ""))[0].decode()
        if len(description) > 1500:
            return Reply(422, {"error": "Validation failed: Description is too long"})
        self.next_id += 1
        media_id = str(self.next_id)
        self.media[media_id] = {"size": len(parts["file"][0]), "description": description,
                                "polls_left": self.processing_polls}
        return Reply(202 if self.processing_polls else 200, self._media_json(media_id))

    def media_status(self, media_id: str) -> Reply:
        """GET /api/v1/media/:id: 206 while processing, then 200 with a URL."""
        entry = self.media.get(media_id)
        if entry is None:
            return Reply(404, {"error": "Record not found"})
        if entry["polls_left"] > 0:
            entry["polls_left"] -= 1
            return Reply(206, self._media_json(media_id))
        return Reply(200, self._media_json(media_id))

    def _media_json(self, media_id: str) -> dict[str, Any]:
        """The MediaAttachment entity."""
        entry = self.media[media_id]
        done = entry["polls_left"] <= 0
        return {"id": media_id, "type": "image", "description": entry["description"],
                "url": f"{self.url}/media/{media_id}.jpg" if done else None}


def rate_limit_headers(seconds: int) -> dict[str, str]:
    """Mastodon's rate-limit headers, the reset as an ISO 8601 timestamp."""
    # https://docs.joinmastodon.org/api/rate-limits/
    reset = datetime.now(UTC) + timedelta(seconds=seconds)
    return {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": reset.isoformat(timespec="microseconds").replace("+00:00", "Z")}
