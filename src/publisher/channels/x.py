"""X: posts through tweepy's `Client.create_tweet`, images through X's v2 chunked media upload.

Auth is OAuth 1.0a user context (four secrets) or an OAuth 2.0 user access token
(https://docs.x.com/resources/fundamentals/authentication/overview). Threads chain
`reply.in_reply_to_tweet_id` (https://docs.x.com/x-api/posts/create-post).

X has no idempotency key. A retried create after a lost answer meets X's duplicate check:
`403 {"detail": "You are not allowed to create a Tweet with duplicate content."}`. That answer
means "already posted" only when this post was attempted before (by this process, or by a run
the ledger remembers: `attempted_before`); then the channel finds the earlier post on the
account's timeline. Otherwise it is a real error.

tweepy has no way to change its host (`https://api.twitter.com` is fixed in `BaseClient.request`),
so `HostOverride`, a requests transport adapter mounted on the session tweepy uses, sends the
public hosts to a configured `api_base` — e.g. a local fake — and gives every call a timeout.

Corrections: the X API has no edit. `DELETE /2/tweets/:id`
(https://docs.x.com/x-api/posts/delete-post), through tweepy's `Client.delete_tweet`, answers
`{"data": {"deleted": true}}`; a post that is gone answers 404 (or `deleted: false`), and a
resumed delete first looks the post up (`GET /2/tweets/:id`, https://docs.x.com/x-api/posts/
get-post-by-id) so it is not sent twice.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Self
from urllib.parse import urlsplit, urlunsplit

from publisher.channels import ChannelContext, Facts, Hints, Receipt
from publisher.channels.http import HttpClient, status_error
from publisher.channels.images import ImageFile, ImageLoader, thumbnail_to_upload
from publisher.errors import ConfigError, PermanentDeliveryError, TransientDeliveryError
from publisher.model import SocialPost
from publisher.networks.x import NETWORK

if TYPE_CHECKING:
    import requests
    import tweepy

NAME = "x"
LIMIT = 280  # weighted characters (twitter-text v3)
SECRETS = ("X_API_KEY", "X_API_SECRET", "X_ACCESS_TOKEN", "X_ACCESS_TOKEN_SECRET")
OAUTH2_SECRET = "X_OAUTH2_USER_TOKEN"
PUBLIC_HOSTS = ("https://api.twitter.com", "https://api.x.com")
MEDIA_MAX_BYTES = 5_000_000  # tweet_image limit
CHUNK_BYTES = 1_000_000
ALT_TEXT_CHARS = 1000  # https://docs.x.com/x-api/media/create-media-metadata
DUPLICATE = "duplicate content"


def host_override_adapter(target: str, default_timeout: float) -> Any:
    """A requests adapter that reroutes the public API hosts to `target` and adds a timeout."""
    from requests.adapters import HTTPAdapter

    class HostOverride(HTTPAdapter):
        """Rewrites scheme and host of outgoing requests; keeps the signed Host header."""

        def send(
            self, request: requests.PreparedRequest, stream: bool = False,
            timeout: Any = None, verify: Any = True, cert: Any = None, proxies: Any = None,
        ) -> requests.Response:
            """Send, to `target` when one is set, never without a timeout."""
            if target and request.url:
                original = urlsplit(request.url)
                base = urlsplit(target)
                request = request.copy()
                request.url = urlunsplit((base.scheme, base.netloc,
                                          base.path.rstrip("/") + original.path,
                                          original.query, ""))
                # OAuth 1.0a signs scheme and host; tell the receiver what was signed.
                request.headers["Host"] = original.netloc
                request.headers["X-Forwarded-Proto"] = original.scheme
            return super().send(request, stream=stream, timeout=timeout or default_timeout,
                                verify=verify, cert=cert, proxies=proxies)

    return HostOverride()


KNOWN_SETTINGS = frozenset({"api_base", "auth", "timeout", "attach_image"})


@dataclass
class XChannel:
    """One X account."""

    client: tweepy.Client
    http: HttpClient  # same session as the client, for media upload
    auth: Any  # OAuth1 signer for requests, or None with an OAuth 2 user token
    attach_image: bool = NETWORK.attach_image  # X draws its own card; an image replaces it
    sleep: Callable[[float], None] = time.sleep
    max_polls: int = 30
    name: str = NAME
    # The X API has no edit; a retried create may post twice (the ledger resolves duplicates).
    facts: ClassVar[Facts] = Facts(
        kind="social", network="x", can_delete=True, attaches_images=True, secrets=SECRETS,
        docs="https://docs.x.com/x-api/posts/create-post",
    )
    _me: dict[str, str] = field(default_factory=dict)
    _tried: set[str] = field(default_factory=set)
    _media: dict[str, str] = field(default_factory=dict)

    @property
    def user_auth(self) -> bool:
        """tweepy's flag: OAuth 1.0a user context rather than a Bearer token."""
        return self.auth is not None

    @classmethod
    def from_config(cls, context: ChannelContext) -> Self:
        """The channel for `[channels.x]`: optional `api_base`, `auth` ("oauth1" or "oauth2").

        `attach_image = true` attaches the hero image to the first post; by default X shows its
        own link card from the article's Open Graph tags, which an attachment would replace.
        """
        import tweepy
        from requests_oauthlib import OAuth1  # type: ignore[import-untyped]

        settings = context.settings
        settings.allow(KNOWN_SETTINGS)
        api_base = settings.text("api_base", PUBLIC_HOSTS[1]).rstrip("/")
        mode = settings.text("auth", "oauth1")
        if mode == "oauth1":
            key, secret, token, token_secret = (
                context.secret(name, purpose="posting to X") for name in SECRETS)
            client = tweepy.Client(consumer_key=key, consumer_secret=secret, access_token=token,
                                   access_token_secret=token_secret, return_type=dict)
            auth: Any = OAuth1(key, secret, token, token_secret)
            headers: dict[str, str] = {}
        elif mode == "oauth2":
            bearer = context.secret(OAUTH2_SECRET, purpose="posting to X")
            client = tweepy.Client(bearer_token=bearer, return_type=dict)
            auth, headers = None, {"Authorization": f"Bearer {bearer}"}
        else:
            raise ConfigError(f"unknown auth {mode!r}", where=settings.where,
                              fix='use auth = "oauth1" or "oauth2"')
        adapter = host_override_adapter("" if api_base in PUBLIC_HOSTS else api_base,
                                        settings.number("timeout", 30.0))
        for host in PUBLIC_HOSTS:
            client.session.mount(f"{host}/", adapter)
        http = context.client(PUBLIC_HOSTS[1], headers=headers, session=client.session)
        return cls(client, http, auth,
                   attach_image=settings.flag("attach_image", NETWORK.attach_image))

    def preflight(self) -> Hints:
        """Check the credentials with GET /2/users/me."""
        self._whoami()
        return {"limit": LIMIT}

    def prepare_media(self, post: SocialPost, *, key: str,
                      images: ImageLoader | None = None) -> None:
        """Read, shrink and upload the post's image (once per key) before the post is sent."""
        upload = thumbnail_to_upload(post, key, self._media, MEDIA_MAX_BYTES, images,
                                     allowed=self.attach_image)
        if upload is not None:
            card, image = upload
            self._media[key] = self._upload_media(image, card.alt)

    def send_post(
        self, post: SocialPost, *, key: str, reply_to: Receipt | None, root: Receipt | None,
        attempted_before: bool = False,
    ) -> Receipt:
        """Create the post; a duplicate answer for a post tried before returns the earlier one."""
        self.prepare_media(post, key=key)
        media_ids = [self._media[key]] if key in self._media else None
        attempted = attempted_before or key in self._tried
        self._tried.add(key)
        parent = reply_to.provider_id if reply_to is not None else None
        try:
            created = self._tweepy(lambda: self.client.create_tweet(
                text=post.text, in_reply_to_tweet_id=parent, media_ids=media_ids,
                user_auth=self.user_auth))
        except PermanentDeliveryError as exc:
            if DUPLICATE not in exc.problem:
                raise
            if not attempted:
                raise PermanentDeliveryError(
                    "X refused the post as a duplicate of an earlier one", where=NAME,
                    fix="the ledger never sent it: delete the earlier post on X or change "
                        "the text, then rerun") from exc
            return self._find_posted(post.text, parent, exc)
        return _receipt(str(created["data"]["id"]))

    def edit_post(self, receipt: Receipt, post: SocialPost, *, attempted_before: bool) -> bool:
        """X posts cannot be edited through the API; the core never asks (facts.can_edit)."""
        raise PermanentDeliveryError("X posts cannot be edited through the API", where=NAME,
                                     fix="retract the post, then --resend")

    def delete_post(self, receipt: Receipt, *, attempted_before: bool) -> bool:
        """Delete the post; False when it is gone already."""
        tweet_id = receipt.provider_id
        if attempted_before:
            found = self._tweepy(lambda: self.client.get_tweet(tweet_id,
                                                               user_auth=self.user_auth))
            if not found.get("data"):
                return False
        try:
            reply = self._tweepy(lambda: self.client.delete_tweet(tweet_id,
                                                                  user_auth=self.user_auth))
        except PermanentDeliveryError as exc:
            if "HTTP 404" in exc.problem:
                return False
            raise
        return bool((reply.get("data") or {}).get("deleted"))

    def close(self) -> None:
        """Release connections."""
        self.client.session.close()

    def _whoami(self) -> dict[str, str]:
        """The authenticated user's id and username (cached)."""
        if not self._me:
            self._me = dict(self._tweepy(lambda: self.client.get_me(
                user_auth=self.user_auth))["data"])
        return self._me

    def _find_posted(self, text: str, parent: str | None, cause: Exception) -> Receipt:
        """The earlier post X says this one duplicates, from the account's recent posts."""
        # https://docs.x.com/x-api/users/get-posts — X rewrites links to t.co, so compare text
        # with URLs removed, and the reply parent.
        me = self._whoami()["id"]
        timeline = self._tweepy(lambda: self.client.get_users_tweets(
            me, max_results=20, tweet_fields=["referenced_tweets"], user_auth=self.user_auth))
        for tweet in timeline.get("data") or []:
            replied = [r["id"] for r in tweet.get("referenced_tweets") or []
                       if r.get("type") == "replied_to"]
            if _comparable(tweet["text"]) == _comparable(text) and \
                    (parent is None or parent in replied):
                return _receipt(str(tweet["id"]))
        raise PermanentDeliveryError(
            "X says this post exists, but it is not among the account's recent posts",
            where=NAME, fix="find it on X and record it, or delete it and rerun") from cause

    def _upload_media(self, image: ImageFile, alt: str) -> str:
        """Upload an image with v2 chunked INIT/APPEND/FINALIZE (+STATUS), then its alt text."""
        # https://docs.x.com/x-api/media/quickstart/media-upload-chunked
        init = self._media_call("INIT", media_type=image.mime, total_bytes=len(image.data),
                                media_category="tweet_image")
        media_id = str(init["data"]["id"])
        for index, start in enumerate(range(0, len(image.data), CHUNK_BYTES)):
            self.http.request("POST", "/2/media/upload", auth=self.auth, files={
                "command": (None, "APPEND"), "media_id": (None, media_id),
                "segment_index": (None, str(index)),
                "media": ("chunk", image.data[start:start + CHUNK_BYTES],
                          "application/octet-stream")})
        info = self._media_call("FINALIZE", media_id=media_id)["data"].get("processing_info")
        polls = 0
        while info and info.get("state") in ("pending", "in_progress"):
            if polls == self.max_polls:
                raise TransientDeliveryError(f"media {media_id} still processing", where=NAME,
                                             fix="retry in a minute")
            self.sleep(float(info.get("check_after_secs", 1)))
            polls += 1
            info = self.http.request("GET", "/2/media/upload", auth=self.auth, params={
                "command": "STATUS", "media_id": media_id}).json()["data"].get("processing_info")
        if info and info.get("state") == "failed":
            raise PermanentDeliveryError(f"X could not process the image: {info.get('error')}",
                                         where=NAME, fix="use a smaller JPEG or PNG")
        if alt.strip():  # https://docs.x.com/x-api/media/create-media-metadata
            self.http.request("POST", "/2/media/metadata", auth=self.auth, json={
                "id": media_id, "metadata": {"alt_text": {"text": alt[:ALT_TEXT_CHARS]}}})
        return media_id

    def _media_call(self, command: str, **fields: Any) -> Any:
        """One multipart media/upload command."""
        parts = {"command": (None, command), **{k: (None, str(v)) for k, v in fields.items()}}
        return self.http.request("POST", "/2/media/upload", auth=self.auth, files=parts).json()

    def _auth_fix(self) -> str:
        """What to check after a 401: the secrets of the configured auth mode only."""
        if self.user_auth:
            return f"check {', '.join(SECRETS)} (the app needs Read and Write access)"
        return (f"check {OAUTH2_SECRET}: an OAuth 2.0 user token with tweet.write, expired"
                " after 2 hours unless refreshed (auth = \"oauth2\" in [channels.x])")

    def _tweepy(self, call: Callable[[], Any]) -> Any:
        """Run a tweepy call, turning its exceptions into delivery errors."""
        import requests
        import tweepy

        try:
            return call()
        except tweepy.HTTPException as exc:
            if exc.response.status_code == 401:
                raise PermanentDeliveryError(
                    "X rejected the credentials (HTTP 401)", where=NAME, fix=self._auth_fix(),
                ) from exc
            raise status_error(NAME, exc.response) from exc
        except requests.Timeout as exc:
            raise TransientDeliveryError("request timed out", where=NAME,
                                         maybe_delivered=True) from exc
        except requests.ConnectionError as exc:
            raise TransientDeliveryError("connection failed", where=NAME,
                                         maybe_delivered=True) from exc


def _receipt(tweet_id: str) -> Receipt:
    """A receipt with the public URL that works without knowing the username."""
    return Receipt(provider_id=tweet_id, url=f"https://x.com/i/web/status/{tweet_id}")


def _comparable(text: str) -> str:
    """Text without URLs or runs of whitespace: X shortens links to t.co."""
    return " ".join(re.sub(r"https?://\S+", "", text).split())
