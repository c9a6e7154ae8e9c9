"""Threads (Meta): a post is a media container, created and then published.

API: https://developers.facebook.com/documentation/threads/posts — `POST /{user-id}/threads`
makes a container (`media_type` TEXT with `text` and `link_attachment`, or IMAGE with
`image_url`, which Threads fetches itself; `reply_to_id` threads a reply,
https://developers.facebook.com/documentation/threads/reference/publishing), then
`POST /{user-id}/threads_publish` with `creation_id` publishes it. Text is at most 500 characters
(emoji count as their UTF-8 bytes), a post holds at most 5 distinct links or the container is
refused (`THREADS_API__LINK_LIMIT_EXCEEDED`, https://developers.facebook.com/documentation/
threads/create-posts/text-attachments). Meta advises waiting ~30 seconds before publishing an
image container; `GET /{container-id}?fields=status` says when it is FINISHED
(https://developers.facebook.com/docs/threads/troubleshooting).

Exactly once: a container can be published only once, and the container id is handed to the
ledger (`checkpoint`) before `threads_publish` is called. A resumed post first asks for the
recorded container's status: FINISHED is published now, PUBLISHED means the interrupted run's
publish landed, and the post is found among the profile's threads or replies.

Tokens: a long-lived user token lasts 60 days and is refreshed with
`GET /refresh_access_token?grant_type=th_refresh_token` once it is a day old
(https://developers.facebook.com/docs/threads/get-started/long-lived-tokens/) — see
`refresh_token`. Corrections: Threads has no edit; `DELETE /{media-id}`
(https://developers.facebook.com/documentation/threads/posts/delete-posts) deletes a post.
Errors are Graph API bodies `{"error": {"message", "type", "code", "fbtrace_id"}}`; code 190 is
a bad token, codes 4, 17, 32 and 613 are rate limits (https://developers.facebook.com/docs/
graph-api/overview/rate-limiting/).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from publisher.channels import ChannelContext, ChannelSettings, Checkpoint, Facts, Hints, Receipt
from publisher.channels.http import HttpClient, status_error
from publisher.channels.images import ImageLoader
from publisher.config.secrets import get_secret, remember
from publisher.errors import ConfigError, PermanentDeliveryError, TransientDeliveryError
from publisher.model import SocialPost

NAME = "threads"
LIMIT = 500
MAX_LINKS = 5
SECRETS = ("THREADS_ACCESS_TOKEN",)
API_BASE = "https://graph.threads.net"
VERSION = "v1.0"
ALT_TEXT_CHARS = 1000
BAD_TOKEN = 190
RATE_LIMITED = (4, 17, 32, 613)
NOT_READY = 9007  # "The media is not ready for publishing"
URL_RE = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
TOKEN_FIX = (f"create a long-lived Threads token (threads_basic, threads_content_publish) and set "
             f"{SECRETS[0]}; refresh it within 60 days")
SETTINGS = frozenset({"user_id", "api_base", "access_token_env", "attach_image", "poll_interval",
                      "max_polls", "timeout"})


@dataclass
class ThreadsChannel:
    """One Threads profile."""

    http: HttpClient
    user_id: str = "me"
    attach_image: bool = False  # a TEXT post with link_attachment shows the article's card
    poll_interval: float = 30.0  # Meta: "wait on average 30 seconds" before publishing media
    max_polls: int = 10
    sleep: Callable[[float], None] = time.sleep
    name: str = NAME
    # A container publishes once, and its id is in the ledger before the publish (two_step).
    facts: ClassVar[Facts] = Facts(
        kind="social", network="threads", idempotent=True, two_step=True, can_delete=True,
        secrets=SECRETS, docs="https://developers.facebook.com/documentation/threads/posts",
    )
    _containers: dict[str, str] = field(default_factory=dict)  # post key → container id
    _profile: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_config(cls, context: ChannelContext) -> Self:
        """The channel for `[channels.threads]`: optional `user_id`, `api_base`, `access_token_env`.

        `attach_image = true` posts the hero image (an https URL Threads fetches) instead of the
        link card; `poll_interval` and `max_polls` pace the wait for an image to be processed.
        """
        settings = context.settings
        settings.allow(SETTINGS)
        api_base = _api_base(settings)
        token = context.secret(settings.text("access_token_env", SECRETS[0]),
                               purpose="posting to Threads")
        http = context.client(api_base, headers={"Authorization": f"Bearer {token}"})
        return cls(http, user_id=settings.text("user_id", "me") or "me",
                   attach_image=settings.flag("attach_image", False),
                   poll_interval=settings.number("poll_interval", 30.0),
                   max_polls=settings.integer("max_polls", 10))

    def preflight(self) -> Hints:
        """Check the token and that it belongs to the configured profile."""
        self._whoami()
        return {"limit": LIMIT}

    def prepare_media(self, post: SocialPost, *, key: str, images: ImageLoader | None = None
                      ) -> None:
        """Nothing to upload: Threads fetches an IMAGE container's `image_url` itself."""

    def send_post(
        self, post: SocialPost, *, key: str, reply_to: Receipt | None, root: Receipt | None,
        attempted_before: bool = False,
    ) -> Receipt:
        """One post in one process: both steps, nothing recorded between them."""
        return self.send_staged(post, key=key, reply_to=reply_to, root=root,
                                attempted_before=attempted_before, staged={},
                                checkpoint=lambda progress: None)

    def send_staged(
        self, post: SocialPost, *, key: str, reply_to: Receipt | None, root: Receipt | None,
        attempted_before: bool, staged: Mapping[str, str], checkpoint: Checkpoint,
    ) -> Receipt:
        """Create the container (recorded before publishing), wait for it, publish it once."""
        container = self._containers.get(key) or str(staged.get("container") or "")
        if container:
            state = self._status(container)
            if state == "PUBLISHED":  # an interrupted run's publish landed
                return self._find_published(post, reply_to, container)
            if state not in ("FINISHED", "IN_PROGRESS"):  # EXPIRED after 24 h, or ERROR
                container = ""
        if not container:
            container = self._create(post, reply_to)
            self._containers[key] = container
            checkpoint({"container": container})
        self._await_finished(container)
        try:
            media_id = str(self._call("POST", f"{self._me()}/threads_publish",
                                      data={"creation_id": container})["id"])
        except PermanentDeliveryError as exc:
            if self._status(container) != "PUBLISHED":
                raise
            return self._find_published(post, reply_to, container, cause=exc)
        return self._receipt(media_id, container)

    def edit_post(self, receipt: Receipt, post: SocialPost, *, attempted_before: bool) -> bool:
        """Threads posts cannot be edited through the API; the core never asks."""
        raise PermanentDeliveryError("Threads posts cannot be edited through the API",
                                     where=NAME, fix="retract the post, then --resend")

    def delete_post(self, receipt: Receipt, *, attempted_before: bool) -> bool:
        """Delete the post; False when it is gone already (Graph API code 100)."""
        response = self.http.request("DELETE", f"/{VERSION}/{receipt.provider_id}",
                                     ok=(200, 400, 401, 403))
        if response.status_code == 200:
            return bool(response.json().get("success"))
        if _error(response).get("code") == 100:
            return False  # "Object … does not exist": an interrupted delete landed
        raise self._refusal(response)

    def close(self) -> None:
        """Release connections."""
        self.http.close()

    def _create(self, post: SocialPost, reply_to: Receipt | None) -> str:
        """POST /{user-id}/threads: one media container for this post."""
        body: dict[str, str] = {"text": post.text}
        card = post.card
        if card is not None and self.attach_image and card.thumb.startswith(("https://",
                                                                               "http://")):
            body.update(media_type="IMAGE", image_url=card.thumb)
            if card.alt:
                body["alt_text"] = card.alt[:ALT_TEXT_CHARS]
        else:
            body["media_type"] = "TEXT"
            if card is not None and card.uri:
                body["link_attachment"] = card.uri
        links = set(URL_RE.findall(post.text)) | {body.get("link_attachment", "")} - {""}
        if len(links) > MAX_LINKS:
            raise PermanentDeliveryError(
                f"the post has {len(links)} links; Threads refuses more than {MAX_LINKS}",
                where=NAME, fix="take links out of social.threads (or the summary)")
        if reply_to is not None:
            body["reply_to_id"] = reply_to.provider_id
        return str(self._call("POST", f"{self._me()}/threads", data=body)["id"])

    def _await_finished(self, container: str) -> None:
        """Poll the container until Threads has processed it (images take a while)."""
        for _ in range(self.max_polls):
            state = self._status(container)
            if state == "FINISHED":
                return
            if state != "IN_PROGRESS":
                raise PermanentDeliveryError(f"Threads could not prepare the post ({state})",
                                             where=NAME, fix="check the image URL, then rerun")
            self.sleep(self.poll_interval)
        raise TransientDeliveryError(f"container {container} is still being processed",
                                     where=NAME, fix="run again in a few minutes (it resumes)")

    def _status(self, container: str) -> str:
        """The container's publishing status."""
        reply = self._call("GET", container, params={"fields": "id,status,error_message"})
        return str(reply.get("status") or "")

    def _find_published(self, post: SocialPost, reply_to: Receipt | None, container: str,
                        cause: Exception | None = None) -> Receipt:
        """The post an interrupted publish made, from the profile's recent threads or replies."""
        edge = "replies" if reply_to is not None else "threads"
        listed = self._call("GET", f"{self._me()}/{edge}",
                            params={"fields": "id,text,permalink", "limit": 25})
        for media in listed.get("data") or []:
            if media.get("text") == post.text:
                return Receipt(str(media["id"]), str(media.get("permalink") or ""),
                               {"container": container})
        raise PermanentDeliveryError(
            f"container {container} was published, but the post is not among the recent ones",
            where=NAME, fix="find it on Threads and delete it or record it, then rerun",
        ) from cause

    def _receipt(self, media_id: str, container: str) -> Receipt:
        """The receipt with the post's public permalink."""
        media = self._call("GET", media_id, params={"fields": "id,permalink"})
        return Receipt(media_id, str(media.get("permalink") or ""), {"container": container})

    def _whoami(self) -> dict[str, str]:
        """The token's profile id and username; a configured user_id must match it."""
        if not self._profile:
            me = self._call("GET", "me", params={"fields": "id,username"})
            if self.user_id not in ("me", str(me["id"])):
                raise PermanentDeliveryError(
                    f"the token belongs to @{me.get('username')} ({me['id']}), not user_id "
                    f"{self.user_id}", where=NAME,
                    fix=f"set user_id = \"{me['id']}\" in [channels.threads], or use that "
                        "profile's token")
            self._profile = {"id": str(me["id"]), "username": str(me.get("username") or "")}
        return self._profile

    def _me(self) -> str:
        """The profile id for the /{user-id}/… edges."""
        return self._whoami()["id"]

    def _call(self, method: str, node: str, **kwargs: Any) -> Any:
        """One Graph API call; Meta's error bodies become delivery errors that say what to do."""
        response = self.http.request(method, f"/{VERSION}/{node}", ok=(200, 400, 401, 403),
                                     **kwargs)
        if response.status_code == 200:
            return response.json()
        raise self._refusal(response)

    def _refusal(self, response: Any) -> Exception:
        """The delivery error a Graph API error body stands for."""
        code = _error(response).get("code")
        if code == BAD_TOKEN:
            return PermanentDeliveryError("the access token was rejected (Graph API code 190)",
                                          where=NAME, fix=TOKEN_FIX)
        if code in RATE_LIMITED or code == NOT_READY:
            return TransientDeliveryError(str(_error(response).get("message") or "rate limited"),
                                          where=NAME)
        return status_error(NAME, response)


def refresh_token(http: HttpClient, token: str) -> tuple[str, int]:
    """A refreshed long-lived token and its lifetime in seconds (th_refresh_token grant)."""
    # The token goes in the query string: the one form the endpoint documents.
    response = http.request("GET", "/refresh_access_token", ok=(200, 400, 401),
                            params={"grant_type": "th_refresh_token", "access_token": token})
    if response.status_code != 200:
        message = str(_error(response).get("message") or "refused")
        raise PermanentDeliveryError(f"Threads refused to refresh the token: {message}",
                                     where=NAME, fix=TOKEN_FIX)
    reply = response.json()
    remember(str(reply["access_token"]))
    return str(reply["access_token"]), int(reply.get("expires_in") or 0)


def refresh_stored_token(settings: ChannelSettings) -> tuple[str, str, int]:
    """`publish keys refresh threads`: refresh the token and store it where it was read from.

    Returns the secret's name, where the new value went and its lifetime in seconds. A token
    set in the environment is refused before anything is asked: publish cannot rewrite it, and
    a refreshed token nobody keeps would be lost.
    """
    from publisher.config.secrets import replace_secret, secret_source

    name = settings.text("access_token_env", SECRETS[0])
    old = get_secret(name, purpose="refreshing the Threads token")
    if secret_source(name) == "environment":
        raise ConfigError(
            f"{name} comes from the environment, which publish cannot rewrite",
            where="environment",
            fix=f"keep it in .env or the keyring (publish keys set {name}), then refresh")
    http = HttpClient(NAME, _api_base(settings), timeout=settings.number("timeout", 30.0))
    try:
        fresh, lifetime = refresh_token(http, old)
    except PermanentDeliveryError as exc:  # a token to replace by hand: a config problem
        raise ConfigError(exc.problem, where=exc.where, fix=exc.fix) from exc
    finally:
        http.close()
    return name, replace_secret(name, fresh), lifetime


def _api_base(settings: ChannelSettings) -> str:
    """`api_base` of [channels.threads], checked to be a URL."""
    api_base = settings.text("api_base", API_BASE)
    if not api_base.startswith(("https://", "http://")):
        raise ConfigError("api_base is not a URL", where=settings.where,
                          fix=f'set api_base = "{API_BASE}" or leave it out')
    return api_base


def _error(response: Any) -> dict[str, Any]:
    """The `error` object of a Graph API reply ({} when the body is not one)."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return {}
    return error if isinstance(error, dict) else {}
