"""A local Mailchimp Marketing API fake: one data centre, campaigns in three steps.

Contract (https://mailchimp.com/developer/marketing/docs/fundamentals/,
https://mailchimp.com/developer/marketing/api/campaigns/,
https://mailchimp.com/developer/marketing/api/campaign-content/,
https://mailchimp.com/developer/marketing/api/campaign-checklist/,
https://mailchimp.com/developer/marketing/docs/errors/): the API lives on the data centre named
by the key's suffix (`…-us6` → us6.api.mailchimp.com/3.0); the fake serves `/<dc>/3.0/` so a
client that picks the wrong one is caught, and answers it 401 "API Key Invalid" like Mailchimp.
HTTP basic auth, any user name, the key as password (401 "API Key Missing" without). Errors are
problem details `{"type", "title", "status", "detail", "instance"}`, validation ones with
`errors: [{"field", "message"}]`. `POST /campaigns` (type, recipients.list_id of an existing list,
settings.subject_line ≤ 150, from_name, reply_to) makes a campaign in status `save`;
`PUT /campaigns/{id}/content` sets its html (only while save/paused);
`POST /campaigns/{id}/actions/send` needs the send checklist ready (content set) and sends once
(400 otherwise); `POST /campaigns/{id}/actions/test` mails `test_emails` (send_type html or
plaintext). `GET /campaigns` pages with count (≤ 1000) and offset. A 429 ("You have exceeded the
limit of 10 simultaneous connections.") carries no reset header: Mailchimp documents none.
"""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .audience import Audience
from .served import RunningFake
from .server import FakeHTTPServer, Faults, Reply, Request

DOCS = "https://mailchimp.com/developer/marketing/docs/errors/"
MAX_SUBJECT = 150
MAX_COUNT = 1000
TYPES = frozenset({"regular", "plaintext", "absplit", "rss", "variate"})


def problem(status: int, title: str, detail: str,
            errors: list[dict[str, str]] | None = None) -> Reply:
    """Mailchimp's problem-detail error body."""
    body: dict[str, Any] = {"type": DOCS, "title": title, "status": status, "detail": detail,
                            "instance": str(uuid.uuid4())}
    if errors:
        body["errors"] = errors
    return Reply(status, body)


class MailchimpFake(RunningFake):
    """State of the fake: the key, its data centre, the audiences and the campaigns."""

    def __init__(self, api_key: str = "0123456789abcdef0123456789abcdef-us6", *,
                 lists: Iterable[str] = ("a1b2c3d4e5",), subscribers: Iterable[str] = (),
                 faults: Faults | None = None, deliveries_path: Path | None = None) -> None:
        self.api_key = api_key
        self.dc = api_key.rsplit("-", 1)[-1]
        self.lists = set(lists)
        self.audience = Audience("mailchimp", subscribers, deliveries_path=deliveries_path)
        self.campaigns: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.server = FakeHTTPServer(
            self.handle, faults=faults, rate_limit_headers=lambda seconds: {},
            error_body=lambda status, text: {
                "type": DOCS, "status": status, "instance": "",
                "title": "Too Many Requests" if status == 429 else "Internal Server Error",
                "detail": "You have exceeded the limit of 10 simultaneous connections."
                if status == 429 else text},
        )

    @property
    def url(self) -> str:
        """A `base_url` template for the channel: the client fills in `{dc}`."""
        return self.server.url + "/{dc}/3.0"

    def handle(self, request: Request) -> Reply:
        """Check data centre and key, then route."""
        dc, _, rest = request.path.lstrip("/").partition("/3.0/")
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Basic "):
            return problem(401, "API Key Missing", "Your request did not include an API key.")
        password = base64.b64decode(auth[6:]).decode().partition(":")[2]
        if dc != self.dc or password != self.api_key:
            return problem(401, "API Key Invalid", "Your API key may be invalid, or you've"
                           " attempted to access the wrong datacenter.")
        parts = rest.strip("/").split("/")
        with self._lock:
            return self._route(request, parts)

    def _route(self, request: Request, parts: list[str]) -> Reply:
        """The endpoints the channel uses."""
        method = request.method
        if parts == ["ping"] and method == "GET":
            return Reply(200, {"health_status": "Everything's Chimpy!"})
        if parts[0] == "lists" and len(parts) == 2 and method == "GET":
            if parts[1] not in self.lists:
                return problem(404, "Resource Not Found",
                               "The requested resource could not be found.")
            return Reply(200, {"id": parts[1], "name": "Readers",
                               "stats": {"member_count": len(self.audience.emails)}})
        if parts == ["campaigns"]:
            return self.browse(request) if method == "GET" else self.create(request)
        campaign = self.campaigns.get(parts[1]) if parts[0] == "campaigns" else None
        if campaign is None:
            return problem(404, "Resource Not Found", "The requested resource could not be found.")
        action = "/".join(parts[2:])
        if action == "" and method == "GET":
            return Reply(200, campaign)
        if action == "content" and method == "PUT":
            return self.content(campaign, request)
        if action == "send-checklist" and method == "GET":
            return Reply(200, _checklist(campaign))
        if action == "actions/send" and method == "POST":
            return self.send(campaign)
        if action == "actions/test" and method == "POST":
            return self.test(campaign, request)
        return problem(405, "Method Not Allowed", "The requested method and resource are not"
                       " compatible. See the Allow header for this resource's available methods.")

    def browse(self, request: Request) -> Reply:
        """Campaigns, oldest first unless sorted, paged by count and offset."""
        count = int((request.query.get("count") or ["10"])[0])
        offset = int((request.query.get("offset") or ["0"])[0])
        if count > MAX_COUNT:
            return problem(400, "Invalid Resource", "count must be at most 1000.")
        found = list(self.campaigns.values())
        if (request.query.get("sort_dir") or [""])[0] == "DESC":
            found.reverse()
        list_id = (request.query.get("list_id") or [""])[0]
        found = [c for c in found if not list_id or c["recipients"]["list_id"] == list_id]
        return Reply(200, {"campaigns": found[offset:offset + count], "total_items": len(found)})

    def create(self, request: Request) -> Reply:
        """A new regular campaign in status `save`."""
        body = request.json()
        errors = _invalid(body, self.lists)
        if errors:
            return problem(400, "Invalid Resource", "The resource submitted could not be"
                           " validated. For field-specific details, see the 'errors' array.",
                           errors)
        campaign_id = uuid.uuid4().hex[:10]
        self.campaigns[campaign_id] = campaign = {
            "id": campaign_id, "web_id": len(self.campaigns) + 1, "type": body["type"],
            "create_time": datetime.now(UTC).isoformat(), "status": "save", "send_time": "",
            "emails_sent": 0, "recipients": {"list_id": body["recipients"]["list_id"]},
            "settings": dict(body.get("settings", {})), "html": "",
        }
        return Reply(200, campaign)

    def content(self, campaign: dict[str, Any], request: Request) -> Reply:
        """Set the campaign's HTML while it can still change."""
        if campaign["status"] not in ("save", "paused"):
            return problem(400, "Bad Request", "You cannot update content for a campaign that"
                           " has already been sent.")
        html = request.json().get("html")
        if not isinstance(html, str):
            return problem(400, "Invalid Resource", "The resource submitted could not be"
                           " validated.", [{"field": "html", "message": "Schema describes"
                                            " string, NULL found instead"}])
        campaign["html"] = html
        return Reply(200, {"html": html, "plain_text": ""})

    def send(self, campaign: dict[str, Any]) -> Reply:
        """Send now, once, and only when the checklist is ready."""
        if campaign["status"] != "save":
            return problem(400, "Bad Request", "Your campaign has already been sent or is"
                           " sending.")
        if not _checklist(campaign)["is_ready"]:
            return problem(400, "Bad Request", "Your Campaign is not ready to send.")
        self.audience.send(campaign["id"], campaign["settings"]["subject_line"], campaign["html"])
        campaign.update(status="sent", send_time=datetime.now(UTC).isoformat(),
                        emails_sent=len(self.audience.emails))
        return Reply(204)

    def test(self, campaign: dict[str, Any], request: Request) -> Reply:
        """A test email of the campaign to test_emails."""
        body = request.json()
        to = body.get("test_emails")
        if not isinstance(to, list) or not to or body.get("send_type") not in ("html",
                                                                               "plaintext"):
            return problem(400, "Invalid Resource", "The resource submitted could not be"
                           " validated.", [{"field": "test_emails", "message": "Required"}])
        if not _checklist(campaign)["is_ready"]:
            return problem(400, "Bad Request", "Your Campaign is not ready to send.")
        self.audience.proof(campaign["id"], to, "[Test] " + campaign["settings"]["subject_line"],
                            campaign["html"])
        return Reply(204)


def _invalid(body: Any, lists: set[str]) -> list[dict[str, str]]:
    """Field errors of a new campaign."""
    if not isinstance(body, dict):
        return [{"field": "", "message": "Schema describes object"}]
    errors = []
    if body.get("type") not in TYPES:
        errors.append({"field": "type", "message": "Value is not one of the enum values"})
    if (body.get("recipients") or {}).get("list_id") not in lists:
        errors.append({"field": "recipients.list_id", "message": "The list does not exist."})
    settings = body.get("settings") or {}
    if len(str(settings.get("subject_line", ""))) > MAX_SUBJECT:
        errors.append({"field": "settings.subject_line",
                       "message": "Subject line must be 150 characters or less."})
    reply_to = settings.get("reply_to")
    if reply_to is not None and "@" not in str(reply_to):
        errors.append({"field": "settings.reply_to",
                       "message": "This value should be a valid email."})
    return errors


def _checklist(campaign: dict[str, Any]) -> dict[str, Any]:
    """The send checklist: content, subject, sender and reply-to must be set."""
    settings = campaign["settings"]
    missing = [name for name, ok in (
        ("content", bool(campaign["html"])), ("subject line", bool(settings.get("subject_line"))),
        ("from name", bool(settings.get("from_name"))), ("reply-to", bool(settings.get(
            "reply_to"))),
    ) if not ok]
    items = [{"type": "error", "id": i, "heading": f"Missing {name}", "details": ""}
             for i, name in enumerate(missing)]
    return {"is_ready": not missing, "items": items}
