"""Bluesky: posts written to the account's PDS as `app.bsky.feed.post` records.

Sessions: `com.atproto.server.createSession` with an app password, renewed with
`refreshSession` when the access JWT is about to expire or the PDS answers `ExpiredToken`
(https://docs.bsky.app/docs/api/com-atproto-server-create-session,
https://docs.bsky.app/docs/api/com-atproto-server-refresh-session).

Exactly once: each post gets a record key derived from its ledger key (a valid TID, see
`rkey_for`), so a retried `createRecord` (https://docs.bsky.app/docs/api/com-atproto-repo-create-record)
cannot create a second post — the PDS refuses an existing rkey (today with a 500,
bluesky-social/atproto#3718). Before re-sending a post that may already exist, the channel looks
the rkey up with `getRecord` and returns the existing post instead.

Corrections: Bluesky has no edit. `com.atproto.repo.deleteRecord`
(https://docs.bsky.app/docs/api/com-atproto-repo-delete-record, "delete a repository record, or
ensure it doesn't exist") answers 200 for a record that is already gone.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

from publisher.channels import ChannelContext, Facts, Hints, Receipt
from publisher.channels.http import HttpClient, status_error
from publisher.channels.images import ImageLoader, thumbnail_to_upload
from publisher.config.secrets import remember
from publisher.errors import ConfigError, PermanentDeliveryError
from publisher.model import SocialPost

NAME = "bluesky"
LIMIT = 300  # graphemes; app.bsky.feed.post text maxGraphemes
MAX_BYTES = 3000  # app.bsky.feed.post text maxLength (UTF-8 bytes)
SECRETS = ("BLUESKY_APP_PASSWORD",)
THUMB_MAX_BYTES = 1_000_000  # app.bsky.embed.external thumb maxSize
COLLECTION = "app.bsky.feed.post"
TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
RKEY_EPOCH_US = 1_672_531_200_000_000  # 2023-01-01T00:00:00Z
RKEY_WINDOW_US = 365 * 86_400 * 1_000_000
TOKEN_ERRORS = ("ExpiredToken", "InvalidToken")
KNOWN_SETTINGS = frozenset({"handle", "pds_url", "app_password_env", "timeout"})


@dataclass
class Session:
    """Tokens from createSession/refreshSession and who they belong to."""

    did: str
    handle: str
    access_jwt: str
    refresh_jwt: str

    @property
    def expires_at(self) -> float:
        """The access token's `exp` claim (read, not verified: the PDS verifies it)."""
        return _jwt_exp(self.access_jwt)


@dataclass
class BlueskyChannel:
    """One account on its PDS."""

    http: HttpClient
    handle: str
    password: str
    name: str = NAME
    # A deterministic record key per post makes a retried create harmless; there is no edit.
    facts: ClassVar[Facts] = Facts(
        kind="social", network="bluesky", idempotent=True, can_delete=True,
        attaches_images=True, secrets=SECRETS,
        docs="https://docs.bsky.app/docs/api/com-atproto-repo-create-record",
    )
    session: Session | None = None
    _tried: set[str] = field(default_factory=set)  # keys sent by this process
    _blobs: dict[str, dict[str, Any]] = field(default_factory=dict)  # key → uploaded thumb

    @classmethod
    def from_config(cls, context: ChannelContext) -> Self:
        """The channel for `[channels.bluesky]`: `handle`, `pds_url`, `app_password_env`."""
        settings = context.settings
        settings.allow(KNOWN_SETTINGS)
        handle = settings.text("handle").lstrip("@")
        if not handle:
            raise ConfigError("handle is missing", where=settings.where,
                              fix='set handle = "you.bsky.social"')
        password = context.secret(settings.text("app_password_env", SECRETS[0]),
                                  purpose="posting to Bluesky")
        return cls(context.client(settings.text("pds_url", "https://bsky.social")),
                   handle=handle, password=password)

    def preflight(self) -> Hints:
        """Log in and confirm the session; Bluesky's limits are fixed by the lexicon."""
        self.session = None
        self._login()
        self._xrpc("GET", "com.atproto.server.getSession")
        return {"limit": LIMIT, "max_bytes": MAX_BYTES}

    def prepare_media(self, post: SocialPost, *, key: str,
                      images: ImageLoader | None = None) -> None:
        """Read, shrink (≤ 1,000,000 bytes) and upload the card's thumbnail, once per post key."""
        upload = thumbnail_to_upload(post, key, self._blobs, THUMB_MAX_BYTES, images)
        if upload is None:
            return
        _, image = upload
        reply = self._xrpc("POST", "com.atproto.repo.uploadBlob", data=image.data,
                           headers={"Content-Type": image.mime})
        self._blobs[key] = reply["blob"]

    def send_post(
        self, post: SocialPost, *, key: str, reply_to: Receipt | None, root: Receipt | None,
        attempted_before: bool = False,
    ) -> Receipt:
        """Create the post under its deterministic rkey, or return it if it already exists."""
        rkey = rkey_for(key)
        if attempted_before or key in self._tried:
            existing = self._existing(rkey)
            if existing is not None:
                return existing
        self._tried.add(key)
        record = self._record(post, key, reply_to, root)
        created = self._xrpc("POST", "com.atproto.repo.createRecord", json={
            "repo": self._session().did, "collection": COLLECTION, "rkey": rkey,
            "record": record})
        return self._receipt(created["uri"], created["cid"])

    def edit_post(self, receipt: Receipt, post: SocialPost, *, attempted_before: bool) -> bool:
        """Bluesky posts cannot be edited; the core never asks (facts.can_edit)."""
        raise PermanentDeliveryError("Bluesky posts cannot be edited", where=NAME,
                                     fix="retract the post, then --resend")

    def delete_post(self, receipt: Receipt, *, attempted_before: bool) -> bool:
        """Delete the post's record; False when an interrupted run already deleted it."""
        uri = str(receipt.extra.get("uri") or receipt.provider_id)
        rkey = str(receipt.extra.get("rkey") or uri.rsplit("/", 1)[-1])
        if attempted_before and self._existing(rkey) is None:
            return False
        self._xrpc("POST", "com.atproto.repo.deleteRecord", json={
            "repo": self._session().did, "collection": COLLECTION, "rkey": rkey})
        return True

    def close(self) -> None:
        """Release connections."""
        self.http.close()

    def _record(self, post: SocialPost, key: str, reply_to: Receipt | None,
                root: Receipt | None) -> dict[str, Any]:
        """The app.bsky.feed.post record for one post."""
        record: dict[str, Any] = {
            "$type": COLLECTION,
            "text": post.text,
            "createdAt": datetime.now(UTC).isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"),
            "langs": [post.lang or "en"],
        }
        if post.facets:
            record["facets"] = [facet.as_json() for facet in post.facets]
        if reply_to is not None:  # https://docs.bsky.app/docs/advanced-guides/posts#replies
            record["reply"] = {"root": self._ref(root or reply_to), "parent": self._ref(reply_to)}
        if post.card is not None:
            external: dict[str, Any] = {"uri": post.card.uri, "title": post.card.title,
                                        "description": post.card.description}
            if post.card.thumb:
                self.prepare_media(post, key=key)
                external["thumb"] = self._blobs[key]
            record["embed"] = {"$type": "app.bsky.embed.external", "external": external}
        return record

    def _ref(self, receipt: Receipt) -> dict[str, str]:
        """A strong ref {uri, cid} to an earlier post, looked up if the ledger lacks the cid."""
        uri = str(receipt.extra.get("uri") or receipt.provider_id)
        cid = str(receipt.extra.get("cid") or "")
        if not cid:
            found = self._existing(uri.rsplit("/", 1)[-1])
            if found is None:
                raise PermanentDeliveryError(f"the post to reply to ({uri}) does not exist",
                                             where=NAME, fix="check the ledger's receipts")
            cid = str(found.extra["cid"])
        return {"uri": uri, "cid": cid}

    def _existing(self, rkey: str) -> Receipt | None:
        """The post already stored under rkey, if any."""
        reply = self._xrpc("GET", "com.atproto.repo.getRecord", params={
            "repo": self._session().did, "collection": COLLECTION, "rkey": rkey},
            missing_ok=True)
        return None if reply is None else self._receipt(reply["uri"], reply["cid"])

    def _receipt(self, uri: str, cid: str) -> Receipt:
        """The receipt with the public bsky.app URL."""
        rkey = uri.rsplit("/", 1)[-1]
        handle = self._session().handle
        return Receipt(provider_id=uri, url=f"https://bsky.app/profile/{handle}/post/{rkey}",
                       extra={"uri": uri, "cid": cid, "rkey": rkey})

    def _session(self) -> Session:
        """The current session, logging in or refreshing when the access token is stale."""
        if self.session is None:
            self._login()
        elif self.session.expires_at - time.time() < 60:
            self._refresh()
        assert self.session is not None
        return self.session

    def _xrpc(self, method: str, nsid: str, *, missing_ok: bool = False,
              **kwargs: Any) -> Any:
        """One authenticated XRPC call; an expired token is refreshed and the call repeated."""
        extra_headers = kwargs.pop("headers", {})
        for attempt in (1, 2):
            headers = {**extra_headers, "Authorization": f"Bearer {self._session().access_jwt}"}
            response = self.http.request(method, f"/xrpc/{nsid}", ok=(200, 400, 401),
                                         headers=headers, **kwargs)
            if response.status_code == 200:
                return response.json()
            name = _error_name(response)
            if name in TOKEN_ERRORS and attempt == 1:
                self._refresh()
                continue
            if missing_ok and name == "RecordNotFound":
                return None
            raise status_error(NAME, response)
        raise AssertionError("unreachable")  # pragma: no cover

    def _login(self) -> None:
        """createSession with the handle and app password."""
        response = self.http.request("POST", "/xrpc/com.atproto.server.createSession",
                                     ok=(200, 401), json={"identifier": self.handle,
                                                          "password": self.password})
        if response.status_code == 401:
            raise PermanentDeliveryError(
                f"the app password for {self.handle} was rejected (HTTP 401)", where=NAME,
                fix=f"create an app password (Settings → App passwords) and set {SECRETS[0]}",
            )
        self.session = _session_from(response.json())

    def _refresh(self) -> None:
        """refreshSession; when the refresh token is no good either, log in again."""
        assert self.session is not None
        response = self.http.request(
            "POST", "/xrpc/com.atproto.server.refreshSession", ok=(200, 400, 401),
            headers={"Authorization": f"Bearer {self.session.refresh_jwt}"})
        if response.status_code == 200:
            self.session = _session_from(response.json())
        else:
            self._login()


def rkey_for(key: str) -> str:
    """A TID-syntax record key that depends only on the ledger key.

    A TID is 53 bits of microseconds and 10 bits of clock id in base32-sortable
    (https://atproto.com/specs/tid). The timestamp is a hash of the key placed within 2023, so
    it is always in the past; record keys are only names (https://atproto.com/specs/record-key:
    "these keys can be specified by the end user") and feeds sort posts by createdAt.
    """
    digest = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")
    micros = RKEY_EPOCH_US + digest % RKEY_WINDOW_US
    value = (micros << 10) | (digest >> 54)
    return "".join(TID_ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(13)))


def _session_from(data: Mapping[str, Any]) -> Session:
    """A Session from a createSession/refreshSession answer; its tokens are masked from now on."""
    remember(data["accessJwt"])
    remember(data["refreshJwt"])
    return Session(did=data["did"], handle=data["handle"], access_jwt=data["accessJwt"],
                   refresh_jwt=data["refreshJwt"])


def _jwt_exp(token: str) -> float:
    """The `exp` claim of a JWT (0 when unreadable, which forces a refresh)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims.get("exp", 0))
    except (IndexError, ValueError):
        return 0.0


def _error_name(response: Any) -> str:
    """The XRPC error name of a failed response."""
    try:
        return str(response.json().get("error", ""))
    except ValueError:
        return ""
