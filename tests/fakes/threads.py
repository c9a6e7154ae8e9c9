"""A Threads API (graph.threads.net) that enforces the parts publisher relies on.

Contract (https://developers.facebook.com/documentation/threads/posts,
https://developers.facebook.com/documentation/threads/reference/publishing): every call carries
the user access token (`Authorization: Bearer` or `access_token`); a bad one is Meta's
`OAuthException` code 190. Publishing is two steps. `POST /{user-id}/threads` makes a media
container: `media_type` TEXT (needs `text`) or IMAGE (needs `image_url`), text of at most 500
characters with emoji counted as UTF-8 bytes, `reply_to_id` naming a published post,
`link_attachment` on TEXT only, and at most 5 distinct links
(`THREADS_API__LINK_LIMIT_EXCEEDED`, https://developers.facebook.com/documentation/threads/
create-posts/text-attachments). `GET /{container-id}?fields=status` reports IN_PROGRESS until
an image is processed, then FINISHED, then PUBLISHED
(https://developers.facebook.com/docs/threads/troubleshooting). `POST /{user-id}/threads_publish`
with `creation_id` publishes a FINISHED container once; one still processing, unknown or already
published is refused. `DELETE /{media-id}` (https://developers.facebook.com/documentation/
threads/posts/delete-posts) answers `{"success": true, "deleted_id": …}`.
`GET /refresh_access_token?grant_type=th_refresh_token` refreshes a long-lived token that is at
least 24 hours old and not expired (https://developers.facebook.com/docs/threads/get-started/
long-lived-tokens/). Errors are `{"error": {"message", "type", "code", "fbtrace_id"}}`; a 429
says code 4 and carries `X-App-Usage` (https://developers.facebook.com/docs/graph-api/overview/
rate-limiting/).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

from publisher.networks.counting import threads_length

from .forms import fields, query
from .served import ServedFake, bearer_token
from .server import Reply, Request

VERSION = "v1.0"
USER_ID = "17841400000000001"
FIRST_ID = 18_000_000_000_000_000
MAX_LINKS = 5
DAY = 86_400.0
LONG_LIVED_SECONDS = 60 * DAY
URL_RE = re.compile(r"(?:https?://|www\.)[^\s]+", re.IGNORECASE)


def meta_error(status: int, message: str, *, code: int, kind: str = "OAuthException",
               subcode: int | None = None) -> Reply:
    """An error reply in the Graph API's shape."""
    error: dict[str, Any] = {"message": message, "type": kind, "code": code,
                             "fbtrace_id": "A" + uuid.uuid4().hex[:22]}
    if subcode is not None:
        error["error_subcode"] = subcode
    return Reply(status, {"error": error})


class FakeThreads(ServedFake):
    """One Threads profile, its containers and its published posts in order."""

    def __init__(
        self,
        *,
        token: str = "threads-test-token-123",
        username: str = "editor",
        user_id: str = USER_ID,
        image_polls: int = 2,
        token_age: float = 2 * DAY,
        state_file: Path | None = None,
    ) -> None:
        self.username = username
        self.user_id = user_id
        self.image_polls = image_polls  # status checks an IMAGE container stays IN_PROGRESS
        now = time.time()
        self.tokens: dict[str, float] = {token: now - token_age}  # token → when it was issued
        self.containers: dict[str, dict[str, Any]] = {}
        self.posts: list[dict[str, Any]] = []  # published, in order
        self.deleted: list[dict[str, Any]] = []
        self.publish_calls = 0
        self.next_id = FIRST_ID
        self.resume(state_file)
        self.serve(rate_limit_headers=rate_limit_headers, error_body=error_body)

    def texts(self) -> list[str]:
        """Published texts in order."""
        return [p["text"] for p in self.posts]

    def snapshot(self) -> dict[str, Any]:
        """State to persist."""
        return {"tokens": self.tokens, "containers": self.containers, "posts": self.posts,
                "deleted": self.deleted, "next_id": self.next_id,
                "publish_calls": self.publish_calls}

    def restore(self, state: dict[str, Any]) -> None:
        """Reload persisted state."""
        self.tokens = state["tokens"]
        self.containers = state["containers"]
        self.posts = state["posts"]
        self.deleted = state["deleted"]
        self.next_id = state["next_id"]
        self.publish_calls = state["publish_calls"]

    def route(self, request: Request) -> Reply:
        """Dispatch one request."""
        given = fields(request)
        token = self.token_of(request, given)
        if request.path == "/refresh_access_token" and request.method == "GET":
            return self.refresh(token, given)
        if token not in self.tokens or time.time() - self.tokens[token] > LONG_LIVED_SECONDS:
            return meta_error(401, "Invalid OAuth access token - Cannot parse access token",
                              code=190)
        parts = request.path.strip("/").split("/")
        if len(parts) < 2 or parts[0] != VERSION:
            return meta_error(400, f"Unknown path components: {request.path}", code=2500)
        node, edge = parts[1], parts[2] if len(parts) > 2 else ""
        if node == "me":
            node = self.user_id
        if node == self.user_id:
            return self.user_edge(request, edge, given)
        if not edge and request.method == "GET":
            return self.read_node(node, given)
        if not edge and request.method == "DELETE":
            return self.delete(node)
        return unsupported(request.method, node)

    def token_of(self, request: Request, given: dict[str, Any]) -> str:
        """The access token from the Authorization header or the access_token parameter."""
        given_token = given.get("access_token") or query(request).get("access_token")
        return bearer_token(request) or str(given_token or "")

    def user_edge(self, request: Request, edge: str, given: dict[str, Any]) -> Reply:
        """The profile node and its edges."""
        if request.method == "GET" and not edge:
            return Reply(200, {"id": self.user_id, "username": self.username})
        if request.method == "POST" and edge == "threads":
            return self.create_container(given)
        if request.method == "POST" and edge == "threads_publish":
            return self.publish(str(given.get("creation_id") or ""))
        if request.method == "GET" and edge in ("threads", "replies"):
            wanted = edge == "replies"
            data = [self.public(p) for p in reversed(self.posts)
                    if bool(p["reply_to_id"]) == wanted]
            return Reply(200, {"data": data[: int(given.get("limit") or 25)]})
        return unsupported(request.method, f"{self.user_id}/{edge}")

    def create_container(self, given: dict[str, Any]) -> Reply:
        """POST /{user-id}/threads: validate and keep a media container."""
        kind = str(given.get("media_type") or "")
        text = str(given.get("text") or "")
        if kind not in ("TEXT", "IMAGE", "VIDEO", "CAROUSEL"):
            return meta_error(400, "(#100) The parameter media_type is required", code=100,
                              kind="THApiException")
        if kind == "TEXT" and not text.strip():
            return meta_error(400, "(#100) The parameter text is required for TEXT posts",
                              code=100, kind="THApiException")
        if kind == "IMAGE" and not str(given.get("image_url") or "").startswith("http"):
            return meta_error(400, "(#100) The parameter image_url is required", code=100,
                              kind="THApiException")
        if threads_length(text) > 500:
            return meta_error(400, "(#100) Param text must be at most 500 characters long.",
                              code=100, kind="THApiException")
        link = str(given.get("link_attachment") or "")
        if link and kind != "TEXT":
            return meta_error(400, "(#100) link_attachment is only supported on TEXT posts",
                              code=100, kind="THApiException")
        if len(set(URL_RE.findall(text)) | ({link} if link else set())) > MAX_LINKS:
            return meta_error(400, "THREADS_API__LINK_LIMIT_EXCEEDED: a post can have at most "
                              f"{MAX_LINKS} links", code=100, kind="THApiException")
        parent = str(given.get("reply_to_id") or "")
        if parent and not any(p["id"] == parent for p in self.posts):
            return meta_error(400, f"(#100) reply_to_id {parent} does not exist", code=100,
                              kind="THApiException")
        self.next_id += 1
        container_id = str(self.next_id)
        self.containers[container_id] = {
            "id": container_id, "media_type": kind, "text": text, "reply_to_id": parent,
            "link_attachment": link, "image_url": str(given.get("image_url") or ""),
            "alt_text": str(given.get("alt_text") or ""), "media_id": "",
            "polls_left": self.image_polls if kind == "IMAGE" else 0,
            "status": "IN_PROGRESS" if kind == "IMAGE" and self.image_polls else "FINISHED"}
        return Reply(200, {"id": container_id})

    def read_node(self, node: str, given: dict[str, Any]) -> Reply:
        """GET a container (its status) or a published post."""
        if node in self.containers:
            container = self.containers[node]
            if container["status"] == "IN_PROGRESS":
                container["polls_left"] -= 1
                if container["polls_left"] <= 0:
                    container["status"] = "FINISHED"
                return Reply(200, {"id": node, "status": "IN_PROGRESS"})
            return Reply(200, {"id": node, "status": container["status"]})
        post = next((p for p in self.posts if p["id"] == node), None)
        if post is None:
            return unsupported("get", node)
        return Reply(200, self.public(post))

    def publish(self, creation_id: str) -> Reply:
        """POST /{user-id}/threads_publish: a FINISHED container becomes a post, once."""
        self.publish_calls += 1
        container = self.containers.get(creation_id)
        if container is None:
            return meta_error(400, f"(#100) creation_id {creation_id!r} is not a container",
                              code=100, kind="THApiException")
        if container["status"] == "IN_PROGRESS":
            return meta_error(400, "The media is not ready for publishing, please wait for a "
                              "moment", code=9007, subcode=2207027, kind="THApiException")
        if container["status"] == "PUBLISHED":
            return meta_error(400, "The media has already been published", code=10,
                              kind="THApiException")
        self.next_id += 1
        post = {"id": str(self.next_id), "text": container["text"],
                "reply_to_id": container["reply_to_id"], "media_type": container["media_type"],
                "link_attachment": container["link_attachment"],
                "image_url": container["image_url"], "container": creation_id}
        self.posts.append(post)
        container.update(status="PUBLISHED", media_id=post["id"])
        return Reply(200, {"id": post["id"]})

    def delete(self, node: str) -> Reply:
        """DELETE /{media-id}: remove one of the profile's posts."""
        post = next((p for p in self.posts if p["id"] == node), None)
        if post is None:
            return unsupported("delete", node)
        self.posts.remove(post)
        self.deleted.append(post)
        return Reply(200, {"success": True, "deleted_id": node})

    def refresh(self, token: str, given: dict[str, Any]) -> Reply:
        """GET /refresh_access_token: a new 60-day token for one 24 hours old and unexpired."""
        if given.get("grant_type") != "th_refresh_token":
            return meta_error(400, "(#100) grant_type must be th_refresh_token", code=100)
        issued = self.tokens.get(token)
        if issued is None or time.time() - issued > LONG_LIVED_SECONDS:
            return meta_error(401, "Error validating access token: Session has expired",
                              code=190, subcode=463)
        if time.time() - issued < DAY:
            return meta_error(400, "(#10) The token is less than 24 hours old and cannot be "
                              "refreshed yet", code=10)
        fresh = f"threads-refreshed-{uuid.uuid4().hex}"
        self.tokens[fresh] = time.time()
        return Reply(200, {"access_token": fresh, "token_type": "bearer",
                           "expires_in": int(LONG_LIVED_SECONDS)})

    def public(self, post: dict[str, Any]) -> dict[str, Any]:
        """A Threads Media object as the API returns it."""
        return {"id": post["id"], "text": post["text"], "media_type": post["media_type"],
                "is_reply": bool(post["reply_to_id"]), "username": self.username,
                "permalink": f"https://www.threads.net/@{self.username}/post/{post['id']}"}


def unsupported(method: str, node: str) -> Reply:
    """Graph API's answer for an object that does not exist (or cannot be reached)."""
    return meta_error(400, f"Unsupported {method.lower()} request. Object with ID '{node}' "
                      "does not exist, cannot be loaded due to missing permissions, or does "
                      "not support this operation", code=100, subcode=33,
                      kind="GraphMethodException")


def error_body(status: int, message: str) -> dict[str, Any]:
    """An injected fault in Meta's error shape: code 4 is the app's rate limit."""
    return {"error": {"message": "Application request limit reached" if status == 429 else
                      message, "type": "OAuthException", "code": 4 if status == 429 else 2,
                      "fbtrace_id": "A" + uuid.uuid4().hex[:22]}}


def rate_limit_headers(seconds: int) -> dict[str, str]:
    """Meta's usage header (percentages of the app's limit); it carries no reset time."""
    return {"X-App-Usage": json.dumps({"call_count": 100, "total_cputime": 12,
                                       "total_time": 40})}
