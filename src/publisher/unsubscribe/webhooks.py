"""Provider event webhooks: verified bounces, complaints and opt-outs applied to the list at once.

Each endpoint verifies the request the way its provider signs it, and refuses (401, nothing
changed) a bad signature, wrong credentials, or a timestamp more than five minutes from now.
Without its verification material configured an endpoint answers 503: unverified events are
never accepted.

- SendGrid Event Webhook, signed with ECDSA P-256 / SHA-256 over `timestamp + raw body`, the
  signature (base64 DER) in `X-Twilio-Email-Event-Webhook-Signature`, the time in
  `X-Twilio-Email-Event-Webhook-Timestamp`, checked against `[channels.sendgrid]
  webhook_public_key` (base64 DER as SendGrid shows it)
  (https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features).
  `bounce` (type bounce, not blocked) becomes bounced, `spamreport` complained, `unsubscribe`
  unsubscribed (https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event).
- Postmark bounce, spam-complaint and subscription-change webhooks behind HTTP basic auth
  (user `[channels.postmark] webhook_user`, password POSTMARK_WEBHOOK_PASSWORD)
  (https://postmarkapp.com/developer/webhooks/webhooks-overview). Only the configured
  `message_stream` counts. HardBounce becomes bounced, SpamComplaint complained, and a
  SubscriptionChange that suppresses with reason ManualSuppression unsubscribed; soft bounces,
  deferrals and reactivations change nothing
  (https://postmarkapp.com/developer/webhooks/bounce-webhook,
  https://postmarkapp.com/developer/webhooks/subscription-change-webhook). Postmark signs
  nothing and sends no timestamp header, so basic auth over HTTPS is its whole check; a replay
  is harmless because applying a suppression twice changes nothing. (Its event times are not
  checked: Postmark retries a failed webhook for hours, and a late retry must still count.)
- Resend webhooks, signed by Svix: HMAC-SHA256 over `svix-id.svix-timestamp.body` keyed with the
  base64 part of RESEND_WEBHOOK_SECRET (`whsec_…`), any of the space-separated `v1,<base64>`
  signatures matching (https://docs.svix.com/receiving/verifying-payloads/how-manual,
  https://resend.com/docs/webhooks/verify-webhooks-requests). `email.bounced` with a Permanent
  bounce becomes bounced and `email.complained` complained
  (https://resend.com/docs/dashboard/webhooks/event-types).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from publisher.errors import ConfigError
from publisher.stores.subscribers import SubscriberStore, Suppression
from publisher.unsubscribe.body import WEBHOOK_BODY_LIMIT, read_body
from publisher.unsubscribe.sync import epoch_or_none, iso_or_none

if TYPE_CHECKING:
    from publisher.config.settings import Config

TOLERANCE_SECONDS = 300
PROVIDERS = ("sendgrid", "postmark", "resend")
POSTMARK_PASSWORD = "POSTMARK_WEBHOOK_PASSWORD"
RESEND_SECRET = "RESEND_WEBHOOK_SECRET"
SENDGRID_SIGNATURE = "HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_SIGNATURE"
SENDGRID_TIMESTAMP = "HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_TIMESTAMP"


class Refused(Exception):
    """A webhook we answer with an error status and apply nothing from."""

    def __init__(self, status: str, why: str) -> None:
        self.status = status
        self.why = why
        super().__init__(f"{status}: {why}")


@dataclass(frozen=True)
class Material:
    """What verifies each provider's webhooks; None where it is not configured."""

    sendgrid_public_key: str | None = None
    postmark_user: str | None = None
    postmark_password: str | None = None
    postmark_stream: str = "outbound"
    resend_secret: str | None = None


class Webhooks:
    """The three endpoints, applying what they verify to one subscriber store."""

    def __init__(self, store: SubscriberStore, material: Material,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.material = material
        self.clock = clock

    @classmethod
    def from_config(cls, config: Config, store: SubscriberStore) -> Webhooks:
        """Material from [channels.*] and the secrets; what is missing stays None (503)."""
        sendgrid = config.channels.get("sendgrid", {})
        postmark = config.channels.get("postmark", {})
        return cls(store, Material(
            sendgrid_public_key=str(sendgrid.get("webhook_public_key") or "") or None,
            postmark_user=str(postmark.get("webhook_user") or "") or None,
            postmark_password=_optional_secret(POSTMARK_PASSWORD, "Postmark webhooks"),
            postmark_stream=str(postmark.get("message_stream", "outbound")),
            resend_secret=_optional_secret(RESEND_SECRET, "Resend webhooks"),
        ))

    def handle(self, provider: str, environ: Mapping[str, Any]) -> tuple[str, str]:
        """(status line, body) for one webhook request."""
        if provider not in PROVIDERS:
            return "404 Not Found", "not found\n"
        if environ.get("REQUEST_METHOD") != "POST":
            return "405 Method Not Allowed", "POST only\n"
        verify = {"sendgrid": self._sendgrid, "postmark": self._postmark,
                  "resend": self._resend}[provider]
        try:
            self._configured(provider)
            body = read_body(environ, WEBHOOK_BODY_LIMIT)
            events = verify(environ, body)
        except Refused as refused:
            return refused.status, refused.why + "\n"
        report = self.store.suppress(events)
        return "200 OK", json.dumps(report.tally()) + "\n"

    def configured(self, provider: str) -> bool:
        """Whether this provider's verification material is set."""
        material = self.material
        return {
            "sendgrid": bool(material.sendgrid_public_key),
            "postmark": bool(material.postmark_user and material.postmark_password),
            "resend": bool(material.resend_secret),
        }[provider]

    def _configured(self, provider: str) -> None:
        """503 unless this provider's verification material is set."""
        if not self.configured(provider):
            raise Refused("503 Service Unavailable",
                          f"{provider} webhooks are not configured (see README: webhooks)")

    # -- SendGrid --------------------------------------------------------------------------

    def _sendgrid(self, environ: Mapping[str, Any], body: bytes) -> list[Suppression]:
        """Verify the ECDSA signature, then map the event batch."""
        stamp = str(environ.get(SENDGRID_TIMESTAMP, ""))
        signature = str(environ.get(SENDGRID_SIGNATURE, ""))
        self._fresh(_epoch(stamp))
        assert self.material.sendgrid_public_key is not None
        if not verify_ecdsa(self.material.sendgrid_public_key, signature,
                            stamp.encode("ascii", "replace") + body):
            raise Refused("401 Unauthorized", "signature does not verify")
        events = _json(body)
        if not isinstance(events, list):
            raise Refused("400 Bad Request", "expected a JSON array of events")
        return [s for event in events if isinstance(event, dict)
                for s in sendgrid_event(event)]

    # -- Postmark --------------------------------------------------------------------------

    def _postmark(self, environ: Mapping[str, Any], body: bytes) -> list[Suppression]:
        """Check basic auth, the stream and the event time, then map the event."""
        material = self.material
        assert material.postmark_user is not None and material.postmark_password is not None
        if not basic_auth_ok(str(environ.get("HTTP_AUTHORIZATION", "")),
                             material.postmark_user, material.postmark_password):
            raise Refused("401 Unauthorized", "wrong credentials")
        event = _json(body)
        if not isinstance(event, dict):
            raise Refused("400 Bad Request", "expected a JSON object")
        if event.get("MessageStream", material.postmark_stream) != material.postmark_stream:
            return []  # suppressions are per stream: another stream's events are not ours
        return postmark_event(event)

    # -- Resend ----------------------------------------------------------------------------

    def _resend(self, environ: Mapping[str, Any], body: bytes) -> list[Suppression]:
        """Verify the Svix signature and time, then map the event."""
        message_id = str(environ.get("HTTP_SVIX_ID", ""))
        stamp = str(environ.get("HTTP_SVIX_TIMESTAMP", ""))
        self._fresh(_epoch(stamp))
        assert self.material.resend_secret is not None
        if not verify_svix(self.material.resend_secret, message_id, stamp, body,
                           str(environ.get("HTTP_SVIX_SIGNATURE", ""))):
            raise Refused("401 Unauthorized", "signature does not verify")
        event = _json(body)
        if not isinstance(event, dict):
            raise Refused("400 Bad Request", "expected a JSON object")
        return resend_event(event)

    def _fresh(self, stamp: float) -> None:
        """401 when the request's time is more than five minutes from now, either way."""
        if abs(self.clock() - stamp) > TOLERANCE_SECONDS:
            raise Refused("401 Unauthorized", "timestamp outside the 5-minute window")


# -- verification ------------------------------------------------------------------------------


def verify_ecdsa(public_key_b64: str, signature_b64: str, payload: bytes) -> bool:
    """Whether an ECDSA/SHA-256 signature (base64 DER) over payload matches the key."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:
        key = load_der_public_key(base64.b64decode(public_key_b64, validate=True))
        signature = base64.b64decode(signature_b64, validate=True)
    except (ValueError, binascii.Error):
        return False
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return False
    try:
        key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def check_public_key(public_key_b64: str) -> None:
    """ConfigError unless the configured SendGrid key is a base64 DER EC public key."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:
        key = load_der_public_key(base64.b64decode(public_key_b64, validate=True))
    except (ValueError, binascii.Error) as exc:
        raise ConfigError("webhook_public_key is not a base64 DER public key",
                          where="[channels.sendgrid]",
                          fix="paste the verification key SendGrid shows under Mail Settings"
                          ) from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ConfigError("webhook_public_key is not an elliptic-curve key",
                          where="[channels.sendgrid]",
                          fix="paste the verification key SendGrid shows under Mail Settings")


def verify_svix(secret: str, message_id: str, stamp: str, body: bytes, header: str) -> bool:
    """Whether any `v1,<sig>` in the svix-signature header signs `id.timestamp.body`."""
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (ValueError, binascii.Error):
        return False
    content = f"{message_id}.{stamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    for item in header.split():
        version, _, given = item.partition(",")
        if version == "v1" and hmac.compare_digest(given, expected):
            return True
    return False


def basic_auth_ok(header: str, user: str, password: str) -> bool:
    """Whether an Authorization: Basic header carries exactly this user and password."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given = base64.b64decode(encoded.strip(), validate=True)
    except (ValueError, binascii.Error):
        return False
    expected = f"{user}:{password}".encode()
    return hmac.compare_digest(given, expected)


# -- event mapping -----------------------------------------------------------------------------


def sendgrid_event(event: Mapping[str, Any]) -> list[Suppression]:
    """The suppression one SendGrid event stands for, if any (blocks never suppress)."""
    email = str(event.get("email", ""))
    kind = event.get("event")
    at = epoch_or_none(event.get("timestamp"))
    if not email:
        return []
    if kind == "bounce" and event.get("type", "bounce") == "bounce":
        reason = str(event.get("reason") or event.get("status") or "bounce")
        return [Suppression(email, "bounced", f"SendGrid bounce: {reason}", at)]
    if kind == "spamreport":
        return [Suppression(email, "complained", "SendGrid spam report", at)]
    if kind == "unsubscribe":
        return [Suppression(email, "unsubscribed", "SendGrid unsubscribe", at)]
    return []


def postmark_event(event: Mapping[str, Any]) -> list[Suppression]:
    """The suppression one Postmark webhook stands for, if any."""
    record = event.get("RecordType")
    if record == "Bounce" and event.get("Type") == "HardBounce":
        detail = str(event.get("Description") or event.get("Details") or "hard bounce")
        return [Suppression(str(event.get("Email", "")), "bounced",
                            f"Postmark HardBounce: {detail}", iso_or_none(event.get("BouncedAt")))]
    if record == "SpamComplaint":
        return [Suppression(str(event.get("Email", "")), "complained", "Postmark SpamComplaint",
                            iso_or_none(event.get("BouncedAt")))]
    if (record == "SubscriptionChange" and event.get("SuppressSending") is True
            and event.get("SuppressionReason") == "ManualSuppression"):
        return [Suppression(str(event.get("Recipient", "")), "unsubscribed",
                            "Postmark ManualSuppression", iso_or_none(event.get("ChangedAt")))]
    return []


def resend_event(event: Mapping[str, Any]) -> list[Suppression]:
    """The suppressions one Resend event stands for (one per `to` address)."""
    data = _mapping(event.get("data"))
    to = data.get("to") or []
    addresses = [str(a) for a in (to if isinstance(to, list) else [to])]
    at = iso_or_none(event.get("created_at"))
    if event.get("type") == "email.bounced":
        bounce = _mapping(data.get("bounce"))
        if bounce.get("type") != "Permanent":
            return []
        reason = str(bounce.get("message") or bounce.get("subType") or "permanent bounce")
        return [Suppression(a, "bounced", f"Resend bounce: {reason}", at) for a in addresses]
    if event.get("type") == "email.complained":
        return [Suppression(a, "complained", "Resend complaint", at) for a in addresses]
    return []


# -- small parsers -----------------------------------------------------------------------------


def _optional_secret(name: str, purpose: str) -> str | None:
    """A secret if it is set, else None (the endpoint then answers 503)."""
    from publisher.config.secrets import get_secret

    try:
        return get_secret(name, purpose=purpose)
    except ConfigError:
        return None




def _json(body: bytes) -> Any:
    """The parsed body, or a 400."""
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise Refused("400 Bad Request", "body is not JSON") from exc


def _epoch(stamp: str) -> float:
    """A timestamp header in epoch seconds, or a 401 when missing or malformed."""
    if not stamp.strip().isdigit():
        raise Refused("401 Unauthorized", "missing or malformed timestamp")
    return float(stamp)


def _mapping(value: object) -> Mapping[str, Any]:
    """A JSON object, or an empty one for anything else."""
    return value if isinstance(value, dict) else {}
