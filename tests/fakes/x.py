"""An X API v2 that enforces the parts publisher relies on.

Contract: OAuth 1.0a user-context requests carry a well-formed Authorization header whose
HMAC-SHA1 signature verifies (RFC 5849 §3.4; multipart bodies are not signed) for the known
consumer key and access token, with fresh nonces; `POST /2/tweets`
(https://docs.x.com/x-api/posts/create-post) holds at most 280 weighted characters, replies only
to posts that exist, and refuses an identical text with X's duplicate-content 403; 429s carry
`x-rate-limit-reset` in epoch seconds; `/2/media/upload` runs INIT/APPEND/FINALIZE/STATUS
(https://docs.x.com/x-api/media/quickstart/media-upload-chunked). `DELETE /2/tweets/:id`
(https://docs.x.com/x-api/posts/delete-post) deletes only the account's own posts (403
otherwise) and answers 404 for an unknown id; `GET /2/tweets/:id` answers a missing post with
a "Not Found Error" problem in a 200, as X does.
"""

from __future__ import annotations

import hmac
import math
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

from oauthlib.oauth1.rfc5849 import signature, utils

from publisher.networks.counting import x_length

from .forms import fields, header, json_body, multipart, query
from .served import ServedFake, bearer_token
from .server import Reply, Request

DUPLICATE_BODY = {"detail": "You are not allowed to create a Tweet with duplicate content.",
                  "type": "about:blank", "title": "Forbidden", "status": 403}
FIRST_ID = 1_800_000_000_000_000_000
USER_ID = "2244994945"


class FakeX(ServedFake):
    """One account with every post in creation order."""

    def __init__(
        self,
        *,
        consumer: tuple[str, str] = ("x-consumer-key-1", "x-consumer-secret-1"),
        token: tuple[str, str] = ("x-access-token-1", "x-access-secret-1"),
        bearer: str = "x-oauth2-user-token-1",
        processing_polls: int = 1,
        state_file: Path | None = None,
    ) -> None:
        self.consumer = consumer
        self.token = token
        self.bearer = bearer
        self.processing_polls = processing_polls
        self.tweets: list[dict[str, Any]] = []
        self.media: dict[str, dict[str, Any]] = {}
        self.nonces: set[str] = set()
        self.deletes: list[str] = []  # ids DELETE /2/tweets/:id was called for
        self.next_id = FIRST_ID
        self.resume(state_file)
        self.serve(rate_limit_headers=rate_limit_headers,
                   error_body=lambda status, message: {"title": message, "detail": message,
                                                       "type": "about:blank", "status": status})

    def texts(self) -> list[str]:
        """Post texts in creation order."""
        return [t["text"] for t in self.tweets]

    def snapshot(self) -> dict[str, Any]:
        """State to persist."""
        return {"tweets": self.tweets, "media": self.media, "next_id": self.next_id}

    def restore(self, state: dict[str, Any]) -> None:
        """Reload persisted state."""
        self.tweets, self.media, self.next_id = state["tweets"], state["media"], state["next_id"]

    def route(self, request: Request) -> Reply:
        """Authenticate, then dispatch."""
        problem = self.authenticate(request)
        if problem:
            return Reply(401, {"title": "Unauthorized", "type": "about:blank", "status": 401,
                               "detail": problem})
        path = request.path
        if request.method == "GET" and path == "/2/users/me":
            return Reply(200, {"data": {"id": USER_ID, "name": "Editor", "username": "editor"}})
        if request.method == "POST" and path == "/2/tweets":
            return self.create_tweet(request)
        if path.startswith("/2/tweets/") and request.method in ("GET", "DELETE"):
            return self.one_tweet(request.method, path.removeprefix("/2/tweets/"))
        if request.method == "GET" and path == f"/2/users/{USER_ID}/tweets":
            return self.timeline(request)
        if path == "/2/media/upload":
            return self.media_upload(request)
        if request.method == "POST" and path == "/2/media/metadata":
            return self.media_metadata(request)
        return Reply(404, {"title": "Not Found Error", "detail": f"no route {path}"})

    def authenticate(self, request: Request) -> str:
        """'' when the request is properly signed (OAuth 1.0a) or carries the user token."""
        auth = header(request, "authorization")
        if bearer_token(request) == self.bearer:
            return ""
        if not auth.startswith("OAuth "):
            return "Unauthorized"
        try:
            given = {k: utils.unescape(v) for k, v in utils.parse_authorization_header(auth)}
        except ValueError:
            return "malformed OAuth header"
        required = ("oauth_consumer_key", "oauth_token", "oauth_signature_method",
                    "oauth_timestamp", "oauth_nonce", "oauth_version", "oauth_signature")
        if any(name not in given for name in required):
            return "OAuth header lacks a required parameter"
        if given["oauth_consumer_key"] != self.consumer[0] or given["oauth_token"] != self.token[0]:
            return "unknown consumer key or token"
        if given["oauth_signature_method"] != "HMAC-SHA1" or given["oauth_version"] != "1.0":
            return "unsupported signature method"
        if abs(time.time() - int(given["oauth_timestamp"])) > 300:
            return "timestamp out of bounds"
        if given["oauth_nonce"] in self.nonces:
            return "nonce reused"
        if not hmac.compare_digest(given["oauth_signature"], self.expected_signature(request)):
            return "signature mismatch"
        self.nonces.add(given["oauth_nonce"])
        return ""

    def expected_signature(self, request: Request) -> str:
        """HMAC-SHA1 over the base string of the URL the client signed (RFC 5849 §3.4)."""
        scheme = header(request, "x-forwarded-proto") or "http"
        raw_query = urlencode([(k, v) for k, vs in request.query.items() for v in vs])
        form = request.body.decode() if header(request, "content-type").startswith(
            "application/x-www-form-urlencoded") else ""
        params = signature.collect_parameters(
            uri_query=raw_query, body=form, headers={"Authorization": header(request,
                                                                              "authorization")})
        base = signature.signature_base_string(
            request.method,
            signature.base_string_uri(f"{scheme}://{header(request, 'host')}{request.path}"),
            signature.normalize_parameters(params))
        keys = SimpleNamespace(client_secret=self.consumer[1], resource_owner_secret=self.token[1])
        return str(signature.sign_hmac_sha1_with_client(base, keys))

    def create_tweet(self, request: Request) -> Reply:
        """POST /2/tweets with X's checks."""
        body = json_body(request) or {}
        text = str(body.get("text") or "")
        if x_length(text) > 280:
            return invalid("Your Tweet text is too long. For more information on how X "
                           "determines text length see https://github.com/twitter/twitter-text.")
        parent = (body.get("reply") or {}).get("in_reply_to_tweet_id")
        if parent is not None and not any(t["id"] == str(parent) for t in self.tweets):
            return invalid(f"The `in_reply_to_tweet_id` [{parent}] does not exist.")
        media_ids = [str(m) for m in (body.get("media") or {}).get("media_ids") or []]
        if any(self.media.get(m, {}).get("state") != "succeeded" for m in media_ids):
            return invalid("Your media IDs are invalid.")
        if any(t["text"] == text for t in self.tweets):
            return Reply(403, DUPLICATE_BODY)
        self.next_id += 1
        tweet = {"id": str(self.next_id), "text": text,
                 "in_reply_to": str(parent) if parent else None, "media_ids": media_ids}
        self.tweets.append(tweet)
        return Reply(201, {"data": {"id": tweet["id"], "text": text,
                                    "edit_history_tweet_ids": [tweet["id"]]}})

    def add_foreign_tweet(self, text: str) -> str:
        """A post by another account (its id), which this account cannot delete."""
        self.next_id += 1
        self.tweets.append({"id": str(self.next_id), "text": text, "in_reply_to": None,
                            "media_ids": [], "author": "someone-else"})
        return str(self.next_id)

    def one_tweet(self, method: str, tweet_id: str) -> Reply:
        """GET or DELETE /2/tweets/:id."""
        tweet = next((t for t in self.tweets if t["id"] == tweet_id), None)
        if method == "GET":
            if tweet is None:
                return Reply(200, {"errors": [{
                    "value": tweet_id, "detail": f"Could not find tweet with id: [{tweet_id}].",
                    "title": "Not Found Error", "resource_type": "tweet", "parameter": "id",
                    "type": "https://api.twitter.com/2/problems/resource-not-found"}]})
            return Reply(200, {"data": {"id": tweet_id, "text": tweet["text"]}})
        self.deletes.append(tweet_id)
        if tweet is None:
            return Reply(404, {"title": "Not Found Error", "type": "about:blank", "status": 404,
                               "detail": f"Could not find tweet with id: [{tweet_id}]."})
        if tweet.get("author", USER_ID) != USER_ID:
            return Reply(403, {"title": "Forbidden", "type": "about:blank", "status": 403,
                               "detail": "You are not allowed to delete this Tweet."})
        self.tweets.remove(tweet)
        return Reply(200, {"data": {"deleted": True}})

    def timeline(self, request: Request) -> Reply:
        """GET /2/users/:id/tweets, newest first, with referenced_tweets."""
        limit = int(query(request).get("max_results", "10"))
        data = []
        for tweet in reversed(self.tweets[-limit:]):
            item: dict[str, Any] = {"id": tweet["id"], "text": tweet["text"],
                                    "edit_history_tweet_ids": [tweet["id"]]}
            if tweet["in_reply_to"]:
                item["referenced_tweets"] = [{"type": "replied_to", "id": tweet["in_reply_to"]}]
            data.append(item)
        return Reply(200, {"data": data, "meta": {"result_count": len(data)}})

    def media_upload(self, request: Request) -> Reply:
        """The chunked upload commands."""
        given = fields(request)
        command = given.get("command")
        media_id = str(given.get("media_id", ""))
        if command == "INIT":
            total = int(given.get("total_bytes", "0"))
            if not str(given.get("media_type", "")).startswith("image/") or \
                    not 0 < total <= 5_000_000:
                return invalid("media_type must be an image of at most 5 MB")
            self.next_id += 1
            media_id = str(self.next_id)
            self.media[media_id] = {"total": total, "received": 0, "segments": [],
                                    "state": "uploading", "polls_left": self.processing_polls}
            return Reply(200, {"data": {"id": media_id, "media_key": f"3_{media_id}",
                                        "expires_after_secs": 86400}})
        entry = self.media.get(media_id)
        if entry is None:
            return invalid(f"media_id {media_id} is unknown")
        if command == "APPEND":
            return self.append(entry, request, int(given.get("segment_index", "-1")))
        if command == "FINALIZE":
            if entry["received"] != entry["total"]:
                return invalid("Segments do not add up to provided total file size.")
            entry["state"] = "pending" if entry["polls_left"] else "succeeded"
            return Reply(200, {"data": self.media_json(media_id)})
        if command == "STATUS" and request.method == "GET":
            if entry["state"] != "succeeded":
                entry["polls_left"] -= 1
                entry["state"] = "succeeded" if entry["polls_left"] <= 0 else "in_progress"
            return Reply(200, {"data": self.media_json(media_id)})
        return invalid(f"unknown command {command}")

    def media_metadata(self, request: Request) -> Reply:
        """POST /2/media/metadata: alt text of at most 1000 characters for an uploaded image."""
        # https://docs.x.com/x-api/media/create-media-metadata
        body = json_body(request) or {}
        media_id = str(body.get("id", ""))
        entry = self.media.get(media_id)
        if entry is None:
            return invalid(f"media_id {media_id} is unknown")
        alt = ((body.get("metadata") or {}).get("alt_text") or {}).get("text")
        if not isinstance(alt, str) or not 0 < len(alt) <= 1000:
            return invalid("alt_text.text must be 1 to 1000 characters")
        entry["alt_text"] = alt
        return Reply(200, {"data": {"id": media_id,
                                    "associated_metadata": {"alt_text": {"text": alt}}}})

    def append(self, entry: dict[str, Any], request: Request, index: int) -> Reply:
        """APPEND one segment, in order."""
        chunk = multipart(request).get("media", (b"", ""))[0]
        if entry["state"] != "uploading" or index != len(entry["segments"]) or not chunk:
            return invalid("segment_index out of order or media missing")
        entry["segments"].append(len(chunk))
        entry["received"] += len(chunk)
        return Reply(204)

    def media_json(self, media_id: str) -> dict[str, Any]:
        """The media object with processing_info while not done."""
        entry = self.media[media_id]
        data: dict[str, Any] = {"id": media_id, "media_key": f"3_{media_id}",
                                "size": entry["total"], "expires_after_secs": 86400}
        if entry["state"] != "succeeded":
            data["processing_info"] = {"state": entry["state"], "check_after_secs": 1}
        else:
            data["processing_info"] = {"state": "succeeded", "progress_percent": 100}
        return data


def invalid(message: str) -> Reply:
    """X's 400 invalid-request problem."""
    return Reply(400, {"errors": [{"message": message}], "title": "Invalid Request",
                       "detail": "One or more parameters to your request was invalid.",
                       "type": "https://api.twitter.com/2/problems/invalid-request"})


def rate_limit_headers(seconds: int) -> dict[str, str]:
    """X's rate-limit headers; the reset is epoch seconds."""
    # https://docs.x.com/x-api/fundamentals/rate-limits
    return {"x-rate-limit-limit": "100", "x-rate-limit-remaining": "0",
            "x-rate-limit-reset": str(math.ceil(time.time() + seconds))}
