"""How each provider signs the webhooks it posts, so the fakes can post them to `publish serve`.

- SendGrid: ECDSA P-256 over `timestamp + body`, base64 DER in
  `X-Twilio-Email-Event-Webhook-Signature`, epoch seconds in `…-Timestamp`; the public key is shown
  as base64 DER (https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features).
- Postmark: HTTP basic auth with the user and password configured on the webhook
  (https://postmarkapp.com/developer/webhooks/webhooks-overview).
- Resend (Svix): `svix-id`, `svix-timestamp`, `svix-signature: v1,<base64 HMAC-SHA256 of
  id.timestamp.body>` keyed with the base64 after `whsec_`
  (https://docs.svix.com/receiving/verifying-payloads/how-manual).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from typing import Any

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


class SendGridSigner:
    """The key pair SendGrid generates when Signed Event Webhook Requests is enabled."""

    def __init__(self) -> None:
        self.private_key = ec.generate_private_key(ec.SECP256R1())

    @property
    def public_key(self) -> str:
        """The verification key as SendGrid's settings page shows it (base64 DER, no PEM)."""
        der = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(der).decode("ascii")

    def headers(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """The two signature headers for a body."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = self.private_key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
                "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
                "Content-Type": "application/json"}

    def post(self, url: str, events: list[dict[str, Any]], *, timestamp: int | None = None
             ) -> requests.Response:
        """POST an event batch to url as SendGrid does."""
        body = json.dumps(events).encode()
        return requests.post(url, data=body, headers=self.headers(body, timestamp), timeout=10)


class SvixSigner:
    """A Resend webhook endpoint's signing secret, and Svix's way of signing with it."""

    def __init__(self) -> None:
        self.secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()

    def headers(self, body: bytes, timestamp: int | None = None, message_id: str = ""
                ) -> dict[str, str]:
        """svix-id, svix-timestamp and svix-signature for a body."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        message_id = message_id or f"msg_{uuid.uuid4().hex}"
        key = base64.b64decode(self.secret.removeprefix("whsec_"))
        content = f"{message_id}.{stamp}.".encode() + body
        signature = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
        return {"svix-id": message_id, "svix-timestamp": stamp,
                "svix-signature": f"v1,{signature}", "Content-Type": "application/json"}

    def post(self, url: str, event: dict[str, Any], *, timestamp: int | None = None
             ) -> requests.Response:
        """POST one event to url as Resend does."""
        body = json.dumps(event).encode()
        return requests.post(url, data=body, headers=self.headers(body, timestamp), timeout=10)


def postmark_post(url: str, event: dict[str, Any], user: str, password: str
                  ) -> requests.Response:
    """POST one webhook to url as Postmark does, with the webhook's basic-auth credentials."""
    return requests.post(url, json=event, auth=(user, password), timeout=10)
