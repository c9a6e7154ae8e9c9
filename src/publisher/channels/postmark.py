"""Postmark `POST /email/batch`: up to 500 personalised messages per call, on a message stream.

Contract (https://postmarkapp.com/developer/user-guide/send-email-with-api/batch-emails): the
`X-Postmark-Server-Token` header; ≤ 500 messages and 50 MB per call; `MessageStream` picks the
stream (broadcast for newsletters). The answer is 200 even when entries fail, so each entry's
`ErrorCode` decides: 0 is accepted with its `MessageID`, anything else is rejected for good with
its `Message` (https://postmarkapp.com/developer/api/overview#error-codes), and 406 (inactive
recipient) also bounces the subscriber. Not idempotent.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

from publisher.channels import BatchResult, ChannelContext, EmailBatch, Facts, Hints
from publisher.channels.esp import (
    KNOWN_SETTINGS,
    api_key,
    batch_size,
    list_headers,
    mailbox,
    sender,
    subject_for,
)
from publisher.channels.http import REPLY_CHARS, HttpClient
from publisher.config.secrets import masked_excerpt
from publisher.config.settings import Site
from publisher.edition.newsletter.render import personalize
from publisher.errors import TransientDeliveryError
from publisher.model import Recipient

NAME = "postmark"
SECRETS = ("POSTMARK_SERVER_TOKEN",)
BATCH_SIZE = 500
BASE_URL = "https://api.postmarkapp.com"
DEFAULT_STREAM = "broadcast"
# 406: the address hard-bounced, complained or was suppressed on Postmark's side; it never gets
# mail again until reactivated (https://postmarkapp.com/developer/api/overview#error-codes).
INACTIVE_RECIPIENT = 406


class PostmarkChannel:
    """Email through Postmark's batch API."""

    facts: ClassVar[Facts] = Facts(
        kind="email", batch_size=BATCH_SIZE, batch_call=True, secrets=SECRETS,
        docs="https://postmarkapp.com/developer/user-guide/send-email-with-api/batch-emails",
    )
    name = NAME

    def __init__(self, http: HttpClient, site: Site, *, batch_size: int = BATCH_SIZE,
                 stream: str = DEFAULT_STREAM, list_id: str = "") -> None:
        self.http = http
        self.site = site
        self.batch_size = batch_size
        self.stream = stream
        self.list_id = list_id
        self.from_field = mailbox(*sender(site))

    @classmethod
    def from_config(cls, context: ChannelContext) -> Self:
        """Build from [channels.postmark] (base_url, batch_size, message_stream, list_id…)."""
        settings = context.settings
        settings.allow(KNOWN_SETTINGS | {"webhook_user"})
        token = api_key(context, SECRETS[0], "sending through Postmark")
        http = context.client(settings.text("base_url", BASE_URL), headers={
            "X-Postmark-Server-Token": token, "Accept": "application/json"})
        return cls(http, context.site, batch_size=batch_size(settings, BATCH_SIZE),
                   stream=settings.text("message_stream", DEFAULT_STREAM),
                   list_id=settings.text("list_id"))

    def preflight(self) -> Hints:
        """`GET /server` proves the server token works."""
        self.http.request("GET", "/server")
        return {}

    def send_batch(self, batch: EmailBatch) -> BatchResult:
        """One /email/batch call; per-entry ErrorCode splits accepted from rejected."""
        messages = [self.message(batch, r) for r in batch.recipients]
        entries = self.http.request("POST", "/email/batch", json=messages).json()
        if not isinstance(entries, list) or len(entries) != len(messages):
            raise TransientDeliveryError(  # results are positional; without them we cannot know
                "unexpected /email/batch answer (not one result per message)",
                where=NAME, maybe_delivered=True,
            )
        accepted: dict[str, str] = {}
        rejected: dict[str, str] = {}
        bounced: set[str] = set()
        for recipient, entry in zip(batch.recipients, entries, strict=True):
            if entry.get("ErrorCode") == 0 and entry.get("MessageID"):
                accepted[recipient.email] = str(entry["MessageID"])
                continue
            rejected[recipient.email] = (
                f"Postmark ErrorCode {entry.get('ErrorCode')}: "
                + masked_excerpt(str(entry.get("Message", "")), REPLY_CHARS)
            )
            if entry.get("ErrorCode") == INACTIVE_RECIPIENT:
                bounced.add(recipient.email)
        return BatchResult(accepted=accepted, rejected=rejected, bounced=frozenset(bounced))

    def message(self, batch: EmailBatch, recipient: Recipient) -> dict[str, Any]:
        """One personalised message in Postmark's JSON shape."""
        page, text = personalize(batch.newsletter, recipient)
        message: dict[str, Any] = {
            "From": self.from_field,
            "To": mailbox(recipient.name, recipient.email),
            "Subject": subject_for(batch.newsletter, recipient),
            "HtmlBody": page,
            "TextBody": text,
            "MessageStream": self.stream,
            "Headers": [
                {"Name": name, "Value": value}
                for name, value in list_headers(recipient, self.site, self.list_id).items()
            ],
        }
        if self.site.reply_to:
            message["ReplyTo"] = self.site.reply_to
        return message

    def close(self) -> None:
        """Release pooled connections."""
        self.http.close()
