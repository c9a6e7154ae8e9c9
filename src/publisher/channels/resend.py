"""Resend `POST /emails/batch`: up to 100 personalised emails per call, exactly once by key.

Contract (https://resend.com/docs/api-reference/emails/send-batch-emails): Bearer auth; ≤ 100
emails per call; the answer is `{"data": [{"id"}…]}` in request order. The batch key goes in
`Idempotency-Key` (https://resend.com/docs/dashboard/emails/idempotency-keys): for 24 hours the
same key and body replay the first answer without sending again, so a retried or resumed batch
cannot duplicate (`idempotent = True`). The body is serialised deterministically for that reason.
Errors are `{"statusCode", "name", "message"}` (https://resend.com/docs/api-reference/errors).

Scheduling (`publish POST --at`): the batch endpoint does not take `scheduled_at` (its page
lists the field as unsupported), so a scheduled send goes one `POST /emails` per recipient
(https://resend.com/docs/api-reference/emails/send-email) with `scheduled_at` in ISO 8601, at
most 30 days ahead (https://resend.com/docs/dashboard/emails/schedule-email), each under its own
Idempotency-Key. That is one call per reader at Resend's default 2 requests a second (429s wait
for `retry-after`); `unschedule` cancels each email by `POST /emails/{id}/cancel`
(https://resend.com/docs/api-reference/emails/cancel-email).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, ClassVar, Self

from publisher.channels import BatchResult, ChannelContext, EmailBatch, Facts, Hints
from publisher.channels.esp import (
    KNOWN_SETTINGS,
    batch_size,
    bearer_client,
    error_detail,
    list_headers,
    mailbox,
    sender,
    subject_for,
)
from publisher.channels.http import HttpClient
from publisher.config.settings import Site
from publisher.edition.newsletter.render import personalize
from publisher.errors import PermanentDeliveryError, TransientDeliveryError
from publisher.model import Recipient
from publisher.schedule import Window, iso
from publisher.web import retry_after

NAME = "resend"
SECRETS = ("RESEND_API_KEY",)
BATCH_SIZE = 100
BASE_URL = "https://api.resend.com"
MAX_KEY = 256


class ResendChannel:
    """Email through Resend's batch API with idempotency keys."""

    facts: ClassVar[Facts] = Facts(
        kind="email", batch_size=BATCH_SIZE, batch_call=True, idempotent=True, secrets=SECRETS,
        schedule=Window(latest=timedelta(days=30)),  # scheduled_at, see the docstring
        docs="https://resend.com/docs/api-reference/emails/send-batch-emails",
    )
    name = NAME

    def __init__(self, http: HttpClient, site: Site, *, batch_size: int = BATCH_SIZE,
                 list_id: str = "") -> None:
        self.http = http
        self.site = site
        self.batch_size = batch_size
        self.list_id = list_id
        self.from_field = mailbox(*sender(site))

    @classmethod
    def from_config(cls, context: ChannelContext) -> Self:
        """Build from [channels.resend] (base_url, batch_size, timeout, list_id, api_key_env)."""
        settings = context.settings
        settings.allow(KNOWN_SETTINGS - {"message_stream"})
        http = bearer_client(context, SECRETS[0], "sending through Resend", BASE_URL)
        return cls(http, context.site, batch_size=batch_size(settings, BATCH_SIZE),
                   list_id=settings.text("list_id"))

    def preflight(self) -> Hints:
        """`GET /domains`; a sending-only key answers 401 restricted_api_key, which is fine."""
        response = self.http.request("GET", "/domains", ok=(200, 401))
        if response.status_code == 401 and _name(response) != "restricted_api_key":
            raise PermanentDeliveryError(
                f"HTTP 401: {error_detail(_json(response), 'message')}", where=NAME,
                fix="check RESEND_API_KEY",
            )
        return {}

    def send_batch(self, batch: EmailBatch) -> BatchResult:
        """One /emails/batch call under the batch's Idempotency-Key (scheduled: one per email)."""
        if batch.send_at is not None:
            return self._send_scheduled(batch, batch.send_at)
        payload = json.dumps([self.email(batch, r) for r in batch.recipients],
                             ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        response = self.http.request(
            "POST", "/emails/batch", data=payload.encode("utf-8"), ok=(200, 409),
            headers={"Content-Type": "application/json", "Idempotency-Key": idempotency_key(batch)},
        )
        if response.status_code == 409:
            raise _conflict(response)
        body = _json(response)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise TransientDeliveryError("unexpected /emails/batch answer (no data array)",
                                         where=NAME, maybe_delivered=True)
        return _result(batch.recipients, data, body.get("errors") or [])

    def _send_scheduled(self, batch: EmailBatch, at: datetime) -> BatchResult:
        """Each email alone with its scheduled_at, under a key of its own (replayed on retry)."""
        accepted: dict[str, str] = {}
        for recipient in batch.recipients:
            email = {**self.email(batch, recipient), "scheduled_at": iso(at)}
            key = idempotency_key(replace(batch, key=f"{batch.key}/{recipient.email}"))
            payload = json.dumps(email, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
            response = self.http.request(
                "POST", "/emails", data=payload.encode("utf-8"), ok=(200, 409),
                headers={"Content-Type": "application/json", "Idempotency-Key": key},
            )
            if response.status_code == 409:
                raise _conflict(response)
            accepted[recipient.email] = str(_json(response).get("id", ""))
        return BatchResult(accepted=accepted)

    def open_schedule(self, at: datetime) -> str:
        """Resend needs no handle: each scheduled email is cancelled by its own id."""
        return ""

    def cancel_schedule(self, handle: str, provider_ids: Sequence[str]) -> int:
        """Cancel each scheduled email; one canceled already (an earlier try) counts as done."""
        for email_id in provider_ids:
            response = self.http.request("POST", f"/emails/{email_id}/cancel", ok=(200, 422))
            if response.status_code == 422:
                state = _json(self.http.request("GET", f"/emails/{email_id}")).get("last_event")
                if state != "canceled":
                    raise PermanentDeliveryError(
                        f"email {email_id} is {state} and can no longer be canceled",
                        where=NAME, fix="it was sent already; nothing to unschedule")
        return len(provider_ids)

    def email(self, batch: EmailBatch, recipient: Recipient) -> dict[str, Any]:
        """One personalised email in Resend's JSON shape."""
        page, text = personalize(batch.newsletter, recipient)
        email: dict[str, Any] = {
            "from": self.from_field,
            "to": [mailbox(recipient.name, recipient.email)],
            "subject": subject_for(batch.newsletter, recipient),
            "html": page,
            "text": text,
            "headers": list_headers(recipient, self.site, self.list_id),
        }
        if self.site.reply_to:
            email["reply_to"] = self.site.reply_to
        return email

    def close(self) -> None:
        """Release pooled connections."""
        self.http.close()


def idempotency_key(batch: EmailBatch) -> str:
    """The batch key, hashed when it would exceed Resend's 256 characters."""
    key = f"publisher/{batch.key}"
    return key if len(key) <= MAX_KEY else "publisher/" + hashlib.sha256(key.encode()).hexdigest()


def _result(recipients: Sequence[Recipient], data: list[Any], errors: list[Any]) -> BatchResult:
    """Map ids (and, in permissive validation mode, per-index errors) back to recipients."""
    failed = {e.get("index"): str(e.get("message", "")) for e in errors if isinstance(e, dict)}
    accepted: dict[str, str] = {}
    rejected: dict[str, str] = {}
    ids = iter(data)
    for index, recipient in enumerate(recipients):
        if index in failed:
            rejected[recipient.email] = f"Resend: {failed[index]}"
            continue
        entry = next(ids, None)
        if not isinstance(entry, dict) or not entry.get("id"):
            raise TransientDeliveryError("Resend answered with fewer ids than emails",
                                         where=NAME, maybe_delivered=True)
        accepted[recipient.email] = str(entry["id"])
    return BatchResult(accepted=accepted, rejected=rejected)


def _conflict(response: Any) -> Exception:
    """409: the same key still in flight (retry later) or reused with another body (stop)."""
    detail = error_detail(_json(response), "message")
    if _name(response) == "concurrent_idempotent_requests":
        return TransientDeliveryError(f"HTTP 409: {detail}", where=NAME,
                                      retry_after=retry_after(response.headers) or 1.0)
    return PermanentDeliveryError(
        f"HTTP 409: {detail}", where=NAME,
        fix="the batch changed since it was first sent under this key; check the ledger",
    )


def _json(response: Any) -> Any:
    """The body as JSON, or {} when it is not."""
    try:
        return response.json()
    except ValueError:
        return {}


def _name(response: Any) -> str:
    """Resend's error name."""
    body = _json(response)
    return str(body.get("name", "")) if isinstance(body, dict) else ""
