"""A local listmonk fake, shaped on its handlers and API docs.

Sources: knadh/listmonk cmd/campaigns.go, internal/core/campaigns.go, internal/auth/auth.go;
https://listmonk.app/docs/apis/apis/, https://listmonk.app/docs/apis/campaigns/.

Auth: an API user and token as `Authorization: token user:token` or HTTP basic `user:token`; a
wrong pair is 403 `{"message": "invalid API credentials"}`, an unknown scheme 400. Success bodies
are `{"data": …}`, failures `{"message": …}`. `POST /api/campaigns` always makes a draft and
validates like `validateCampaignFields`: from_email empty, `Name <addr>` or an address; name
1..2000 chars; subject 1..5000; at least one existing list; content_type one of richtext, html,
markdown, plain, visual; a future `send_at` if any. `PUT /api/campaigns/{id}/status` follows
`UpdateCampaignStatus`: running only from draft or paused ("Only paused campaigns and drafts can
be started."), scheduled only from draft/paused with send_at; starting mails the lists.
`POST /api/campaigns/{id}/test` validates the whole campaign in the body and mails `subscribers`
(emails) only. `GET /api/campaigns?tag=…` filters by tag (the handler reads `tag`);
`GET /api/lists?per_page=all` lists the lists. listmonk has no rate limit of its own; the 429
here is its reverse proxy's, with Retry-After.
"""

from __future__ import annotations

import base64
import re
import threading
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .audience import Audience
from .served import RunningFake
from .server import FakeHTTPServer, Faults, Reply, Request

FROM_ADDRESS = re.compile(r"((.+?)\s)?<(.+?)@(.+?)>")
PLAIN_ADDRESS = re.compile(r"[^@\s<>]+@[^@\s<>]+")
CONTENT_TYPES = frozenset({"richtext", "html", "markdown", "plain", "visual"})
MAX_NAME = 2000
MAX_SUBJECT = 5000


def message(status: int, text: str) -> Reply:
    """listmonk's error body (echo.HTTPError)."""
    return Reply(status, {"message": text})


class ListmonkFake(RunningFake):
    """State of the fake: the API user, lists, their subscribers and the campaigns."""

    def __init__(self, user: str = "publisher", token: str = "lm-fake-token", *,
                 lists: Iterable[str] = ("Newsletter",), subscribers: Iterable[str] = (),
                 faults: Faults | None = None, deliveries_path: Path | None = None) -> None:
        self.user = user
        self.token = token
        self.lists = {i: name for i, name in enumerate(lists, start=1)}
        self.audience = Audience("listmonk", subscribers, deliveries_path=deliveries_path)
        self.campaigns: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.server = FakeHTTPServer(self.handle, faults=faults,
                                     error_body=lambda status, text: {"message": text})

    def handle(self, request: Request) -> Reply:
        """Check the API credentials, then route."""
        denied = self._auth(request.headers.get("authorization", "").strip())
        if denied:
            return denied
        parts = request.path.rstrip("/").split("/")[1:]
        with self._lock:
            if parts == ["api", "lists"] and request.method == "GET":
                results = [{"id": i, "name": name, "type": "private", "optin": "single"}
                           for i, name in self.lists.items()]
                return Reply(200, {"data": {"results": results, "total": len(results),
                                            "page": 1, "per_page": len(results)}})
            if parts[:2] == ["api", "campaigns"]:
                return self._campaigns(request, parts[2:])
        return message(404, "Unknown route")

    def _auth(self, header: str) -> Reply | None:
        """Like parseAuthHeader + GetAPIToken."""
        if header.startswith("token"):
            pair = header[len("token"):].strip().split(":", 1)
        elif header.startswith("Basic"):
            try:
                pair = base64.b64decode(header[len("Basic"):].strip()).decode().split(":", 1)
            except ValueError:
                return message(400, "invalid Base64 value in Basic Authorization header")
        elif not header:
            return message(403, "invalid session")
        else:
            return message(400, "unknown Authorization scheme")
        if len(pair) < 2:
            return message(400, "api_key:token missing")
        if pair != [self.user, self.token]:
            return message(403, "invalid API credentials")
        return None

    def _campaigns(self, request: Request, rest: list[str]) -> Reply:
        """Route /api/campaigns and below."""
        if not rest:
            if request.method == "GET":
                return self.listing(request)
            if request.method == "POST":
                return self.create(request)
            return message(405, "Method Not Allowed")
        if not rest[0].isdigit() or int(rest[0]) < 1:
            return message(400, "Invalid ID.")
        campaign = self.campaigns.get(int(rest[0]))
        if campaign is None:
            return message(400, "Campaign not found.")
        if len(rest) == 1 and request.method == "GET":
            return Reply(200, {"data": campaign})
        if rest[1:] == ["status"] and request.method == "PUT":
            return self.set_status(campaign, request)
        if rest[1:] == ["test"] and request.method == "POST":
            return self.test(campaign, request)
        return message(405, "Method Not Allowed")

    def listing(self, request: Request) -> Reply:
        """Campaigns, newest first, filtered by repeated `tag` and `status`."""
        tags = set(request.query.get("tag", []))
        statuses = set(request.query.get("status", []))
        found = [c for c in reversed(self.campaigns.values())
                 if tags <= set(c["tags"]) and (not statuses or c["status"] in statuses)]
        return Reply(200, {"data": {"results": found, "total": len(found), "page": 1,
                                    "per_page": len(found), "query": ""}})

    def create(self, request: Request) -> Reply:
        """A new campaign, always a draft."""
        body = request.json()
        problem = self._invalid(body)
        if problem:
            return message(400, problem)
        campaign_id = len(self.campaigns) + 1
        now = datetime.now(UTC).isoformat()
        self.campaigns[campaign_id] = campaign = {
            "id": campaign_id, "uuid": str(uuid.uuid4()), "created_at": now, "updated_at": now,
            "name": body["name"], "subject": body["subject"], "from_email": body["from_email"],
            "body": body.get("body", ""), "content_type": body.get("content_type", "richtext"),
            "type": body.get("type", "regular"), "tags": list(body.get("tags") or []),
            "status": "draft", "send_at": body.get("send_at"), "started_at": None,
            "lists": [{"id": i, "name": self.lists[i]} for i in body["lists"]],
            "to_send": len(self.audience.emails), "sent": 0, "messenger": "email",
        }
        return Reply(200, {"data": campaign})

    def set_status(self, campaign: dict[str, Any], request: Request) -> Reply:
        """The transitions UpdateCampaignStatus allows; running mails the lists."""
        status = request.json().get("status", "")
        current = campaign["status"]
        if status == "running" and current not in ("draft", "paused"):
            return message(400, "Only paused campaigns and drafts can be started.")
        if status == "scheduled":
            if current not in ("draft", "paused"):
                return message(400, "Only draft campaigns can be scheduled.")
            if not campaign["send_at"]:
                return message(400, "Campaign needs a date to be scheduled.")
        if status == "paused" and current != "running":
            return message(400, "Only active campaigns can be paused.")
        if status not in ("running", "scheduled", "paused", "cancelled"):
            return message(400, "Invalid status.")
        campaign["status"] = status
        if status == "running":
            campaign["started_at"] = datetime.now(UTC).isoformat()
            self.audience.send(str(campaign["id"]), campaign["subject"], campaign["body"])
            campaign["sent"] = len(self.audience.emails)
            campaign["status"] = "finished"  # the fake's manager finishes at once
        return Reply(200, {"data": campaign})

    def test(self, campaign: dict[str, Any], request: Request) -> Reply:
        """Mail the campaign (as given in the body) to the listed subscribers only."""
        body = request.json()
        problem = self._invalid(body)
        if problem:
            return message(400, problem)
        emails = [e.strip().lower() for e in body.get("subscribers") or []]
        if not emails:
            return message(400, "There are no subscribers to target.")
        self.audience.proof(str(campaign["id"]), emails, body["subject"], body.get("body", ""))
        return Reply(200, {"data": True})

    def _invalid(self, body: Any) -> str:
        """validateCampaignFields' complaint about a campaign body, if any."""
        if not isinstance(body, dict):
            return "Invalid request body."
        sender = str(body.get("from_email") or "")  # empty means the instance's default
        if sender and not FROM_ADDRESS.fullmatch(sender) and not PLAIN_ADDRESS.fullmatch(sender):
            return "Invalid `from_email`."
        if not 1 <= len(str(body.get("name", "")).strip()) <= MAX_NAME:
            return "Invalid length for `name`."
        if not 1 <= len(str(body.get("subject", "")).strip()) <= MAX_SUBJECT:
            return "Invalid length for `subject`."
        lists = body.get("lists")
        if not isinstance(lists, list) or not lists or any(i not in self.lists for i in lists):
            return "Invalid list IDs."
        if body.get("content_type", "richtext") not in CONTENT_TYPES:
            return "Invalid content_type."
        if body.get("send_at"):
            when = datetime.fromisoformat(str(body["send_at"]).replace("Z", "+00:00"))
            if when <= datetime.now(UTC):
                return "send_at date should be in the future."
        return ""
