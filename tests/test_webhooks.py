"""Provider webhooks on `publish serve`: verified events suppress at once, anything else changes
nothing. The fakes sign exactly as SendGrid, Postmark and Resend do; requests go over real sockets.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from publisher.stores.sqlite import SqliteSubscriberStore
from publisher.stores.subscribers import SubscriberStore
from publisher.unsubscribe.webhooks import Material
from tests.fakes.webhooks import SendGridSigner, SvixSigner, postmark_post
from tests.helpers import run_publish
from tests.helpers.e2e import free_port, serving_unsubscribe
from tests.helpers.serving import serving

SECRET = "webhook-test-secret-abcdefghijklmnop"
READERS = ("a@example.com", "b@example.com", "c@example.com", "d@example.com")
PM_USER, PM_PASSWORD = "pm-hooks", "pm-hook-password-81"


@pytest.fixture
def store(tmp_path: Path) -> SubscriberStore:
    store = SqliteSubscriberStore(tmp_path / "subs.sqlite3")
    for address in READERS:
        store.add(address)
    return store


@pytest.fixture
def signers() -> tuple[SendGridSigner, SvixSigner]:
    return SendGridSigner(), SvixSigner()


@pytest.fixture
def base(store: SubscriberStore, signers: tuple[SendGridSigner, SvixSigner]) -> Iterator[str]:
    material = Material(sendgrid_public_key=signers[0].public_key, postmark_user=PM_USER,
                        postmark_password=PM_PASSWORD, postmark_stream="broadcast",
                        resend_secret=signers[1].secret)
    with serving(store, SECRET, material=material) as url:
        yield url


def statuses(store: SubscriberStore) -> dict[str, str]:
    return {s.email: s.status for s in store.iter_all()}


def test_sendgrid_events_apply_once_and_blocks_do_not_suppress(
    store: SubscriberStore, signers: tuple[SendGridSigner, SvixSigner], base: str
) -> None:
    sendgrid, _ = signers
    now = int(time.time())
    events = [
        {"email": "A@example.com", "event": "bounce", "type": "bounce", "timestamp": now,
         "reason": "550 5.1.1 The email account that you tried to reach does not exist"},
        {"email": "b@example.com", "event": "bounce", "type": "blocked", "timestamp": now},
        {"email": "c@example.com", "event": "spamreport", "timestamp": now},
        {"email": "d@example.com", "event": "unsubscribe", "timestamp": now},
        {"email": "d@example.com", "event": "delivered", "timestamp": now},
    ]
    reply = sendgrid.post(f"{base}/webhooks/sendgrid", events)
    assert reply.status_code == 200
    assert reply.json() == {"bounced": 1, "complained": 1, "unsubscribed": 1, "unchanged": 0}
    assert statuses(store) == {"a@example.com": "bounced", "b@example.com": "subscribed",
                               "c@example.com": "complained", "d@example.com": "unsubscribed"}
    a = store.get("a@example.com")
    assert a is not None and a.reason.startswith("SendGrid bounce: 550 5.1.1")
    assert a.status_at == now
    again = sendgrid.post(f"{base}/webhooks/sendgrid", events)  # SendGrid retries: idempotent
    assert again.json()["unchanged"] == 3


def test_sendgrid_bad_signature_or_stale_timestamp_is_401_and_changes_nothing(
    store: SubscriberStore, signers: tuple[SendGridSigner, SvixSigner], base: str
) -> None:
    sendgrid, _ = signers
    events = [{"email": "a@example.com", "event": "spamreport", "timestamp": int(time.time())}]
    url = f"{base}/webhooks/sendgrid"
    assert SendGridSigner().post(url, events).status_code == 401  # someone else's key
    for skew in (-301, 301):
        assert sendgrid.post(url, events, timestamp=int(time.time()) + skew).status_code == 401
    body = json.dumps(events).encode()
    headers = sendgrid.headers(body)
    tampered = body.replace(b"spamreport", b"unsubscribe")
    assert requests.post(url, data=tampered, headers=headers, timeout=5).status_code == 401
    assert requests.post(url, data=body, timeout=5).status_code == 401  # unsigned
    assert set(statuses(store).values()) == {"subscribed"}


def test_postmark_basic_auth_stream_and_event_kinds(store: SubscriberStore, base: str) -> None:
    url = f"{base}/webhooks/postmark"
    stamp = "2026-12-01T10:00:00Z"
    hard = {"RecordType": "Bounce", "Type": "HardBounce", "Email": "a@example.com",
            "BouncedAt": stamp, "Description": "The server was unable to deliver your message",
            "MessageStream": "broadcast"}
    soft = {**hard, "Type": "SoftBounce", "Email": "b@example.com"}
    elsewhere = {**hard, "Email": "b@example.com", "MessageStream": "outbound"}
    spam = {"RecordType": "SpamComplaint", "Type": "SpamComplaint", "Email": "c@example.com",
            "BouncedAt": stamp, "MessageStream": "broadcast"}
    manual = {"RecordType": "SubscriptionChange", "Recipient": "d@example.com",
              "SuppressSending": True, "SuppressionReason": "ManualSuppression",
              "ChangedAt": stamp, "MessageStream": "broadcast"}
    assert postmark_post(url, hard, PM_USER, "wrong").status_code == 401
    assert requests.post(url, json=hard, timeout=5).status_code == 401
    assert set(statuses(store).values()) == {"subscribed"}
    for event in (hard, soft, elsewhere, spam, manual):
        assert postmark_post(url, event, PM_USER, PM_PASSWORD).status_code == 200
    assert statuses(store) == {"a@example.com": "bounced", "b@example.com": "subscribed",
                               "c@example.com": "complained", "d@example.com": "unsubscribed"}
    reactivated = {**manual, "Recipient": "d@example.com", "SuppressSending": False}
    postmark_post(url, reactivated, PM_USER, PM_PASSWORD)
    assert store.get("d@example.com").status == "unsubscribed"  # type: ignore[union-attr]


def test_resend_svix_signature_window_and_permanent_bounces_only(
    store: SubscriberStore, signers: tuple[SendGridSigner, SvixSigner], base: str
) -> None:
    _, svix = signers
    url = f"{base}/webhooks/resend"

    def event(kind: str, to: str, bounce: str = "") -> dict[str, object]:
        data: dict[str, object] = {"email_id": "e1", "to": [to]}
        if bounce:
            data["bounce"] = {"type": bounce, "subType": "General", "message": "mailbox unknown"}
        return {"type": kind, "created_at": "2026-12-01T10:00:00.000Z", "data": data}

    permanent = event("email.bounced", "a@example.com", "Permanent")
    assert SvixSigner().post(url, permanent).status_code == 401  # another endpoint's secret
    assert svix.post(url, permanent, timestamp=int(time.time()) - 400).status_code == 401
    assert svix.post(url, permanent, timestamp=int(time.time()) + 400).status_code == 401
    assert store.get("a@example.com").status == "subscribed"  # type: ignore[union-attr]
    assert svix.post(url, event("email.bounced", "b@example.com", "Transient")).status_code == 200
    assert svix.post(url, permanent).status_code == 200
    assert svix.post(url, event("email.complained", "c@example.com")).status_code == 200
    assert statuses(store) == {"a@example.com": "bounced", "b@example.com": "subscribed",
                               "c@example.com": "complained", "d@example.com": "subscribed"}
    body = json.dumps(permanent).encode()
    headers = svix.headers(body)
    rotated = {**headers, "svix-signature": "v1,bm90LWl0 " + headers["svix-signature"]}
    assert requests.post(url, data=body, headers=rotated, timeout=5).status_code == 200


def test_unconfigured_webhooks_answer_503_and_accept_nothing(store: SubscriberStore) -> None:
    with serving(store, SECRET) as base:
        signer = SendGridSigner()
        events = [{"email": "a@example.com", "event": "spamreport"}]
        assert signer.post(f"{base}/webhooks/sendgrid", events).status_code == 503
        assert postmark_post(f"{base}/webhooks/postmark", {}, "u", "p").status_code == 503
        assert SvixSigner().post(f"{base}/webhooks/resend", {}).status_code == 503
        assert requests.get(f"{base}/webhooks/resend", timeout=5).status_code == 405
        assert requests.post(f"{base}/webhooks/mailgun", timeout=5).status_code == 404
    assert set(statuses(store).values()) == {"subscribed"}


def test_publish_serve_reads_the_material_from_config_and_secrets(tmp_path: Path) -> None:
    sendgrid, svix = SendGridSigner(), SvixSigner()
    (tmp_path / "publisher.toml").write_text(
        f'[channels.sendgrid]\nwebhook_public_key = "{sendgrid.public_key}"\n'
        f'[channels.postmark]\nwebhook_user = "{PM_USER}"\n', encoding="utf-8")
    env = {"PUBLISHER_UNSUBSCRIBE_SECRET": SECRET, "POSTMARK_WEBHOOK_PASSWORD": PM_PASSWORD,
           "RESEND_WEBHOOK_SECRET": svix.secret}
    for address in READERS[:3]:
        assert run_publish("subscribers", "add", address, cwd=tmp_path, env=env).returncode == 0
    with serving_unsubscribe(tmp_path, free_port(), env) as base:
        assert sendgrid.post(f"{base}/webhooks/sendgrid", [
            {"email": "a@example.com", "event": "bounce", "timestamp": int(time.time())}
        ]).status_code == 200
        assert postmark_post(f"{base}/webhooks/postmark", {
            "RecordType": "SpamComplaint", "Email": "b@example.com", "MessageStream": "outbound",
        }, PM_USER, PM_PASSWORD).status_code == 200
        assert svix.post(f"{base}/webhooks/resend", {
            "type": "email.complained", "data": {"to": ["c@example.com"]},
        }).status_code == 200
    listed = run_publish("subscribers", "list", "--json", cwd=tmp_path, env=env)
    assert {r["email"]: r["status"] for r in json.loads(listed.stdout)} == {
        "a@example.com": "bounced", "b@example.com": "complained", "c@example.com": "complained"}


def test_the_fake_signature_is_what_sendgrid_documents() -> None:
    """Guard the fake itself: the signed payload is timestamp + body, the key base64 DER."""
    signer = SendGridSigner()
    body = b'[{"event":"processed"}]'
    headers = signer.headers(body, timestamp=1588788367)
    from publisher.unsubscribe.webhooks import verify_ecdsa

    signature = headers["X-Twilio-Email-Event-Webhook-Signature"]
    assert verify_ecdsa(signer.public_key, signature, b"1588788367" + body)
    assert not verify_ecdsa(signer.public_key, signature, body)
    assert base64.b64decode(signer.public_key)[:2] == b"\x30\x59"  # a P-256 SPKI sequence
