"""Mastodon: statuses on a configured instance, idempotent through the Idempotency-Key header.

API: https://docs.joinmastodon.org/methods/statuses/#create — `Idempotency-Key` makes a
retried POST return the first status instead of posting twice (kept by the server for 1 hour;
older retries rely on the ledger). Limits come from `GET /api/v2/instance`
(https://docs.joinmastodon.org/entities/Instance/#statuses), not a hard-coded 500.

Corrections: `PUT /api/v1/statuses/:id` (https://docs.joinmastodon.org/methods/statuses/#edit)
replaces the status with what it is sent, so an edit re-sends the language and the attachments'
`media_ids` or they are dropped; `GET /api/v1/statuses/:id/source`
(https://docs.joinmastodon.org/methods/statuses/#source) shows the current plain text, so a
resumed edit that already landed is not made twice. `DELETE /api/v1/statuses/:id`
(https://docs.joinmastodon.org/methods/statuses/#delete) answers 404 for a status that is gone
or not the account's own.

Scheduling (`publish POST --at`): `scheduled_at` on the create
(https://docs.joinmastodon.org/methods/statuses/#create) at least 5 minutes ahead makes the
server keep a ScheduledStatus (https://docs.joinmastodon.org/entities/ScheduledStatus/) and post
it at that time; sooner is 422 (mastodon/mastodon#30584). `unschedule` deletes it with
`DELETE /api/v1/scheduled_statuses/:id` (https://docs.joinmastodon.org/methods/scheduled_statuses/).
A thread is never scheduled here: its replies would need the id of a status not yet posted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, Self

from publisher.channels import ChannelContext, Facts, Hints, Receipt
from publisher.channels.http import HttpClient
from publisher.channels.images import ImageFile, ImageLoader, thumbnail_to_upload
from publisher.errors import ConfigError, PermanentDeliveryError, TransientDeliveryError
from publisher.model import SocialPost
from publisher.networks.mastodon import NETWORK
from publisher.schedule import Window, iso

NAME = "mastodon"
LIMIT = 500  # Mastodon's default max_characters; preflight reads the instance's own
URL_LENGTH = 23  # default characters_reserved_per_url
SECRETS = ("MASTODON_ACCESS_TOKEN",)
MEDIA_MAX_BYTES = 8_000_000  # well under the default image_size_limit (16 MB)
DESCRIPTION_CHARS = 1500  # default description_limit (configuration.media_attachments)
KNOWN_SETTINGS = frozenset({"instance_url", "access_token_env", "timeout", "attach_image"})


@dataclass
class MastodonChannel:
    """One account on one instance."""

    http: HttpClient
    attach_image: bool = NETWORK.attach_image
    poll_interval: float = 1.0
    max_polls: int = 30
    sleep: Callable[[float], None] = time.sleep
    name: str = NAME
    # Idempotency-Key makes a retried create return the first status; PUT edits in place.
    facts: ClassVar[Facts] = Facts(
        kind="social", network="mastodon", idempotent=True, can_edit=True, can_delete=True,
        attaches_images=True, secrets=SECRETS,
        # scheduled_at ≥ 5 minutes ahead; a thread's replies need a posted parent
        schedule=Window(earliest=timedelta(minutes=5), single_posts_only=True),
        docs="https://docs.joinmastodon.org/methods/statuses/",
    )
    _media: dict[str, str] = field(default_factory=dict)  # post key → uploaded media id

    @classmethod
    def from_config(cls, context: ChannelContext) -> Self:
        """The channel for `[channels.mastodon]`: `instance_url`, optional `access_token_env`.

        The hero image goes with the thread's first post, alt text as its description, unless
        `attach_image = false`.
        """
        settings = context.settings
        settings.allow(KNOWN_SETTINGS)
        instance = settings.text("instance_url")
        if not instance.startswith(("https://", "http://")):
            raise ConfigError("instance_url is missing", where=settings.where,
                              fix='set instance_url = "https://mastodon.social" (your server)')
        token = context.secret(settings.text("access_token_env", SECRETS[0]),
                               purpose="posting to Mastodon")
        http = context.client(instance, headers={"Authorization": f"Bearer {token}"})
        return cls(http, attach_image=settings.flag("attach_image", NETWORK.attach_image))

    def preflight(self) -> Hints:
        """Check the token and read this instance's status limits."""
        # https://docs.joinmastodon.org/methods/accounts/#verify_credentials
        self._call("GET", "/api/v1/accounts/verify_credentials")
        instance = self._call("GET", "/api/v2/instance").json()
        statuses = instance.get("configuration", {}).get("statuses", {})
        return {"limit": int(statuses.get("max_characters", LIMIT)),
                "url_length": int(statuses.get("characters_reserved_per_url", URL_LENGTH))}

    def prepare_media(self, post: SocialPost, *, key: str,
                      images: ImageLoader | None = None) -> None:
        """Read, shrink and upload the post's image with its alt text, once per post key."""
        upload = thumbnail_to_upload(post, key, self._media, MEDIA_MAX_BYTES, images,
                                     allowed=self.attach_image)
        if upload is not None:
            card, image = upload
            self._media[key] = self._upload_media(image, card.alt or card.title)

    def send_post(
        self, post: SocialPost, *, key: str, reply_to: Receipt | None, root: Receipt | None,
        attempted_before: bool = False,
    ) -> Receipt:
        """Post one status; a retry with the same key returns the status already made."""
        body: dict[str, Any] = {"status": post.text, "language": _iso639_1(post.lang)}
        if reply_to is not None:
            body["in_reply_to_id"] = reply_to.provider_id
        self.prepare_media(post, key=key)
        if key in self._media:
            body["media_ids"] = [self._media[key]]
        status = self._call("POST", "/api/v1/statuses", json=body,
                            headers={"Idempotency-Key": key}).json()
        return Receipt(provider_id=str(status["id"]), url=str(status.get("url") or ""),
                       extra={"uri": status.get("uri", "")})

    def schedule_post(self, post: SocialPost, *, key: str, at: datetime) -> Receipt:
        """Hand one status to the server to post at `at`; a retry returns the same schedule."""
        body: dict[str, Any] = {"status": post.text, "language": _iso639_1(post.lang),
                                "scheduled_at": iso(at)}
        self.prepare_media(post, key=key)
        if key in self._media:
            body["media_ids"] = [self._media[key]]
        scheduled = self._call("POST", "/api/v1/statuses", json=body,
                               headers={"Idempotency-Key": key}).json()
        return Receipt(provider_id=str(scheduled["id"]),
                       extra={"scheduled_at": scheduled.get("scheduled_at", iso(at))})

    def open_schedule(self, at: datetime) -> str:
        """Mastodon needs no handle: each scheduled status has its own id."""
        return ""

    def cancel_schedule(self, handle: str, provider_ids: Sequence[str]) -> int:
        """Delete each scheduled status; one gone already (404) was deleted by an earlier try."""
        for status_id in provider_ids:
            self._call("DELETE", f"/api/v1/scheduled_statuses/{status_id}", ok=(200, 404))
        return len(provider_ids)

    def edit_post(self, receipt: Receipt, post: SocialPost, *, attempted_before: bool) -> bool:
        """Edit the status in place, keeping its attachments; False when it has the text already."""
        path = f"/api/v1/statuses/{receipt.provider_id}"
        source = self._call("GET", f"{path}/source").json()
        if source.get("text") == post.text:
            return False  # an earlier, interrupted run made this edit
        current = self._call("GET", path).json()
        body: dict[str, Any] = {
            "status": post.text, "language": _iso639_1(post.lang),
            "media_ids": [str(m["id"]) for m in current.get("media_attachments") or []],
            "spoiler_text": source.get("spoiler_text", ""),
            "sensitive": bool(current.get("sensitive", False)),
        }
        self._call("PUT", path, json=body)
        return True

    def delete_post(self, receipt: Receipt, *, attempted_before: bool) -> bool:
        """Delete the status; a 404 means it is gone already (or was never this account's)."""
        path = f"/api/v1/statuses/{receipt.provider_id}"
        if attempted_before and self._call("GET", path, ok=(200, 404)).status_code == 404:
            return False  # the interrupted run's delete landed
        return bool(self._call("DELETE", path, ok=(200, 404)).status_code == 200)

    def close(self) -> None:
        """Release connections."""
        self.http.close()

    def _upload_media(self, image: ImageFile, alt: str) -> str:
        """Upload an image with its description (alt text) and wait until it is processed."""
        # https://docs.joinmastodon.org/methods/media/#v2 — 202 means still processing;
        # GET /api/v1/media/:id answers 206 until it is done.
        reply = self._call("POST", "/api/v2/media", ok=(200, 202),
                           files={"file": ("image", image.data, image.mime)},
                           data={"description": alt[:DESCRIPTION_CHARS]})
        media_id = str(reply.json()["id"])
        status = reply.status_code
        polls = 0
        while status != 200:
            if polls == self.max_polls:
                raise TransientDeliveryError(f"media {media_id} still processing",
                                             where=NAME, fix="retry in a minute")
            self.sleep(self.poll_interval)
            polls += 1
            status = self._call("GET", f"/api/v1/media/{media_id}", ok=(200, 206)).status_code
        return media_id

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One API call, with a rejected token explained in one line."""
        try:
            return self.http.request(method, path, **kwargs)
        except PermanentDeliveryError as exc:
            if "HTTP 401" in exc.problem:
                raise PermanentDeliveryError(
                    "the access token was rejected (HTTP 401)", where=NAME,
                    fix=f"create a new token (Preferences → Development) and set {SECRETS[0]}",
                ) from exc
            raise


def _iso639_1(lang: str) -> str:
    """Mastodon wants an ISO 639 code: the primary subtag of a BCP 47 tag."""
    return (lang or "en").split("-")[0].split("_")[0].lower()
