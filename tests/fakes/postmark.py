"""A local Postmark fake that enforces the /email/batch contract.

Contract (https://postmarkapp.com/developer/user-guide/send-email-with-api/batch-emails and
https://postmarkapp.com/developer/api/overview#error-codes): `X-Postmark-Server-Token` header,
else 401 `{"ErrorCode": 10, "Message": …}`; a JSON array of at most 500 messages, else 422
ErrorCode 410; the answer is 200 even when some entries fail, one result per message in order:
`{"ErrorCode": 0, "Message": "OK", "MessageID", "SubmittedAt", "To"}` or a nonzero ErrorCode
(300 invalid request, 406 inactive recipient, 1235 unknown message stream).

Suppressions are per message stream
(https://postmarkapp.com/developer/api/suppressions-api#suppression-dump):
`GET /message-streams/<stream>/suppressions/dump` answers `{"Suppressions": [{"EmailAddress",
"SuppressionReason" (HardBounce, SpamComplaint, ManualSuppression), "Origin", "CreatedAt"}]}`, and
422 ErrorCode 1226 for an unknown stream. Webhooks carry basic auth (`webhooks.postmark_post`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import getaddresses, parseaddr
from pathlib import Path
from typing import Any

from .served import RunningFake
from .server import Deliveries, FakeHTTPServer, Faults, Reply, Request

MAX_BATCH = 500


def error(status: int, code: int, message: str) -> Reply:
    """Postmark's error body."""
    return Reply(status, {"ErrorCode": code, "Message": message})


class PostmarkFake(RunningFake):
    """State of the fake: the server token, streams, inactive recipients and deliveries."""

    def __init__(
        self,
        server_token: str = "pm-fake-server-token",
        *,
        streams: Iterable[str] = ("outbound", "broadcast"),
        inactive: Iterable[str] = (),
        faults: Faults | None = None,
        deliveries_path: Path | None = None,
        keep_bodies: bool = True,
        suppressions: dict[str, list[dict[str, Any]]] | None = None,
    ) -> None:
        self.server_token = server_token
        self.suppressions = {stream: list(found) for stream, found in (suppressions or {}).items()}
        self.streams = set(streams)
        self.inactive = {e.lower() for e in inactive}
        self.keep_bodies = keep_bodies
        self.deliveries = Deliveries("postmark", deliveries_path)
        self.server = FakeHTTPServer(
            self.handle,
            faults=faults,
            error_body=lambda status, message: {"ErrorCode": status, "Message": message},
        )

    def handle(self, request: Request) -> Reply:
        """Route one request."""
        token = request.headers.get("x-postmark-server-token")
        if token != self.server_token:
            return error(401, 10, "The Server Token you provided in the X-Postmark-Server-Token"
                         " request header was invalid.")
        if request.method == "GET" and request.path == "/server":
            return Reply(200, {"ID": 1, "Name": "Fake server", "DeliveryType": "Live"})
        if request.method == "POST" and request.path == "/email/batch":
            return self.batch(request)
        if request.method == "GET" and request.path.endswith("/suppressions/dump"):
            return self.dump(request.path.split("/")[2])
        return error(404, 404, f"no route {request.method} {request.path}")

    def dump(self, stream: str) -> Reply:
        """Every suppression of one message stream."""
        if stream not in self.streams:
            return error(422, 1226, "The message stream for the provided 'ID' was not found.")
        return Reply(200, {"Suppressions": self.suppressions.get(stream, [])})

    def batch(self, request: Request) -> Reply:
        """Validate the batch as a whole, then each message on its own."""
        if "json" not in request.headers.get("content-type", ""):
            return error(415, 409, "JSON required: set Content-Type: application/json.")
        try:
            messages = request.json()
        except ValueError:
            return error(422, 402, "Invalid JSON")
        if not isinstance(messages, list):
            return error(422, 403, "Incompatible JSON: the batch must be an array of messages.")
        if len(messages) > MAX_BATCH:
            return error(422, 410, f"Too many batch messages ({len(messages)}); the limit is 500.")
        return Reply(200, [self._one(m) for m in messages])

    def _one(self, message: Any) -> dict[str, Any]:
        """The result entry for one message, delivering it when valid."""
        problem = _problem(message, self.streams)
        if problem:
            return {"ErrorCode": problem[0], "Message": problem[1]}
        to = message["To"]
        if _address(to).lower() in self.inactive:
            return {"ErrorCode": 406, "Message": "You tried to send to recipient(s) that have"
                    f" been marked as inactive. Found inactive addresses: {_address(to)}."
                    " Inactive recipients are ones that have generated a hard bounce, a spam"
                    " complaint, or a manual suppression."}
        message_id = str(uuid.uuid4())
        detail: dict[str, Any] = {
            "subject": message["Subject"],
            "stream": message.get("MessageStream", "outbound"),
            "headers": {h["Name"]: h["Value"] for h in message.get("Headers", [])},
        }
        if self.keep_bodies:
            detail.update(html=message.get("HtmlBody", ""), text=message.get("TextBody", ""))
        self.deliveries.record(_address(to), message_id, **detail)
        submitted = datetime.now(UTC).isoformat()
        return {"ErrorCode": 0, "Message": "OK", "MessageID": message_id,
                "SubmittedAt": submitted, "To": to}


def _problem(message: Any, streams: set[str]) -> tuple[int, str] | None:
    """(ErrorCode, Message) when one batch entry breaks the contract."""
    if not isinstance(message, dict):
        return 300, "Invalid email request: each entry must be an object."
    for name in ("From", "To", "Subject"):
        if not message.get(name):
            return 300, f"Invalid email request: '{name}' is required."
    if len(getaddresses([message["To"]])) != 1:
        return 300, "Invalid email request: one recipient per batch entry in this fake."
    if not (message.get("HtmlBody") or message.get("TextBody")):
        return 300, "Provide either email TextBody or HtmlBody or both."
    if message.get("MessageStream", "outbound") not in streams:
        return 1235, "The message stream for the provided 'ID' was not found."
    headers = message.get("Headers", [])
    if not isinstance(headers, list) or any(
        not isinstance(h, dict) or set(h) != {"Name", "Value"} for h in headers
    ):
        return 300, "Invalid email request: Headers must be a list of {Name, Value}."
    return None


def _address(value: str) -> str:
    """The bare address of "Name <addr>" or "addr"."""
    return parseaddr(value)[1]
