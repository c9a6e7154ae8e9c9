"""A local Ghost Admin API fake: token auth, posts that email a newsletter, test sends.

Contract (https://docs.ghost.org/admin-api#token-authentication,
https://docs.ghost.org/admin-api/posts/sending-a-post, https://docs.ghost.org/admin-api#errors):
`Authorization: Ghost <JWT>`, the JWT signed HS256 with the hex-decoded secret of the Admin API
key `id:secret`, `kid` = id, `aud` = `/admin/`, `exp` at most 5 minutes after `iat`; failures are
401 `{"errors": [{"message", "type": "UnauthorizedError", …}]}`. Base path `/ghost/api/admin/`.
`GET newsletters/` lists newsletters (`status` active/archived). `POST posts/?source=html` takes
`{"posts": [{title, html, status, tags}]}` (title required, ≤ 255 chars, 422 ValidationError);
a post is emailed if and only if it is published (created, or edited from draft with the current
`updated_at`; a stale one is 409 UpdateCollisionError) with `?newsletter=<active slug>` and
optional `email_segment` (default all). Internal tags `#name` get the slug `hash-name`;
`GET posts/?filter=tag:<slug>` finds them. `POST email_previews/posts/{id}/` with `{"emails"}`
sends a test (204), behind Ghost's brute-force limiter (429 TooManyRequestsError, Retry-After).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .audience import Audience
from .served import RunningFake
from .server import FakeHTTPServer, Faults, Reply, Request

BASE = "/ghost/api/admin/"
MAX_TITLE = 255
MAX_LIFETIME = 5 * 60


def ghost_error(status: int, kind: str, text: str, context: str | None = None) -> Reply:
    """Ghost's error body."""
    return Reply(status, {"errors": [{"message": text, "context": context, "type": kind,
                                      "details": None, "property": None, "help": None,
                                      "code": None, "id": str(uuid.uuid4())}]})


class GhostFake(RunningFake):
    """State of the fake: the Admin API key, newsletters, members and posts."""

    def __init__(self, admin_key: str = "6489b2a1c0ffee0001a2b3c4:" + "ab" * 32, *,
                 newsletters: Iterable[str] = ("weekly",), archived: Iterable[str] = (),
                 subscribers: Iterable[str] = (), faults: Faults | None = None,
                 deliveries_path: Path | None = None) -> None:
        self.key_id, _, secret = admin_key.partition(":")
        self.secret = bytes.fromhex(secret)
        self.newsletters = {slug: "active" for slug in newsletters} | {
            slug: "archived" for slug in archived}
        self.audience = Audience("ghost", subscribers, deliveries_path=deliveries_path)
        self.posts: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.server = FakeHTTPServer(
            self.handle, faults=faults,
            error_body=lambda status, text: {"errors": [{
                "message": text, "type": "TooManyRequestsError" if status == 429
                else "InternalServerError"}]},
        )

    def handle(self, request: Request) -> Reply:
        """Verify the token, then route."""
        if not request.path.startswith(BASE):
            return ghost_error(404, "NotFoundError", "Resource not found")
        denied = self._verify(request.headers.get("authorization", ""))
        if denied:
            return denied
        parts = request.path[len(BASE):].strip("/").split("/")
        with self._lock:
            if parts == ["newsletters"] and request.method == "GET":
                return Reply(200, {"newsletters": [
                    {"id": f"nl{i}", "slug": slug, "name": slug.title(), "status": status}
                    for i, (slug, status) in enumerate(self.newsletters.items())]})
            if parts[0] == "posts":
                return self._posts(request, parts[1:])
            if parts[:2] == ["email_previews", "posts"] and request.method == "POST":
                return self.preview(parts[2] if len(parts) > 2 else "", request)
        return ghost_error(404, "NotFoundError", "Resource not found")

    def _verify(self, header: str) -> Reply | None:
        """The checks Ghost's admin-api-key auth makes on the token."""
        scheme, _, token = header.partition(" ")
        if scheme != "Ghost" or token.count(".") != 2:
            return ghost_error(401, "UnauthorizedError", "Authorization header format is"
                               ' "Authorization: Ghost [token]"')
        head_b64, claims_b64, signature = token.split(".")
        try:
            head = json.loads(_unb64(head_b64))
            claims = json.loads(_unb64(claims_b64))
        except ValueError:
            return ghost_error(401, "BadRequestError", "Invalid JWT")
        if head.get("kid") != self.key_id:
            return ghost_error(401, "UnauthorizedError", "Unknown Admin API Key")
        expected = hmac.new(self.secret, f"{head_b64}.{claims_b64}".encode(), hashlib.sha256)
        if head.get("alg") != "HS256" or not hmac.compare_digest(
            _b64(expected.digest()), signature
        ):
            return ghost_error(401, "UnauthorizedError", "Invalid token: invalid signature")
        now = time.time()
        if claims.get("aud") not in ("/admin/", "/v5/admin/"):
            return ghost_error(401, "UnauthorizedError", "Invalid token: jwt audience invalid")
        if not isinstance(claims.get("exp"), int | float) or claims["exp"] < now:
            return ghost_error(401, "UnauthorizedError", "Invalid token: jwt expired")
        if claims["exp"] - claims.get("iat", 0) > MAX_LIFETIME:
            return ghost_error(401, "UnauthorizedError", "Invalid token: maximum token lifetime"
                               " exceeded")
        return None

    def _posts(self, request: Request, rest: list[str]) -> Reply:
        """Route posts/ and posts/{id}/."""
        if not rest and request.method == "GET":
            return self.browse(request)
        if not rest and request.method == "POST":
            return self.add(request)
        post = self.posts.get(rest[0]) if rest else None
        if post is None:
            return ghost_error(404, "NotFoundError", "Post not found.")
        if request.method == "GET":
            return Reply(200, {"posts": [post]})
        if request.method == "PUT":
            return self.edit(post, request)
        return ghost_error(405, "MethodNotAllowedError", "Method not allowed")

    def browse(self, request: Request) -> Reply:
        """Posts, newest first; `filter=tag:<slug>` is the one filter the fake reads."""
        wanted = (request.query.get("filter") or [""])[0]
        slug = wanted[len("tag:"):] if wanted.startswith("tag:") else ""
        found = [p for p in reversed(self.posts.values())
                 if not slug or slug in {t["slug"] for t in p["tags"]}]
        return Reply(200, {"posts": found, "meta": {"pagination": {
            "page": 1, "limit": 15, "pages": 1, "total": len(found), "next": None}}})

    def add(self, request: Request) -> Reply:
        """A new post; published with a newsletter, it is emailed."""
        body = _one_post(request)
        if isinstance(body, Reply):
            return body
        problem = _invalid(body, creating=True) or self._bad_newsletter(request)
        if problem:
            return problem
        now = _now()
        post = {"id": uuid.uuid4().hex[:24], "uuid": str(uuid.uuid4()), "title": body["title"],
                "html": body.get("html", ""), "status": body.get("status", "draft"),
                "tags": [_tag(t) for t in body.get("tags", [])], "created_at": now,
                "updated_at": now, "published_at": None, "email": None, "newsletter": None,
                "email_segment": "all", "url": ""}
        self.posts[post["id"]] = post
        self._publish(post, request)
        return Reply(201, {"posts": [post]})

    def edit(self, post: dict[str, Any], request: Request) -> Reply:
        """Edit a post; updated_at must be the current one (Ghost's collision check)."""
        body = _one_post(request)
        if isinstance(body, Reply):
            return body
        if body.get("updated_at") != post["updated_at"]:
            return ghost_error(409, "UpdateCollisionError", "Saving failed! Someone else is"
                               " editing this post.")
        problem = _invalid(body, creating=False) or self._bad_newsletter(request)
        if problem:
            return problem
        was = post["status"]
        post.update({k: v for k, v in body.items() if k in ("title", "html", "status")})
        post["updated_at"] = _now()
        if was == "draft":
            self._publish(post, request)
        return Reply(200, {"posts": [post]})

    def preview(self, post_id: str, request: Request) -> Reply:
        """A test email of the post to the given addresses (204, no body)."""
        post = self.posts.get(post_id)
        if post is None:
            return ghost_error(404, "NotFoundError", "Post not found.")
        emails = request.json().get("emails") or []
        if not emails:
            return ghost_error(422, "ValidationError", "No emails provided.")
        self.audience.proof(post_id, emails, post["title"], post["html"])
        return Reply(204)

    def _bad_newsletter(self, request: Request) -> Reply | None:
        """A newsletter slug that is unknown or archived."""
        slug = (request.query.get("newsletter") or [""])[0]
        if slug and self.newsletters.get(slug) != "active":
            return ghost_error(400, "BadRequestError", "The newsletter parameter doesn't match"
                               " any active newsletter.", context=slug)
        return None

    def _publish(self, post: dict[str, Any], request: Request) -> None:
        """Publishing with a newsletter emails it, once."""
        if post["status"] != "published" or post["published_at"]:
            return
        post["published_at"] = _now()
        slug = (request.query.get("newsletter") or [""])[0]
        if not slug:
            return
        post["newsletter"] = {"slug": slug}
        post["email_segment"] = (request.query.get("email_segment") or ["all"])[0]
        post["email"] = {"id": uuid.uuid4().hex[:24], "status": "submitted",
                         "email_count": len(self.audience.emails),
                         "recipient_filter": post["email_segment"]}
        self.audience.send(post["id"], post["title"], post["html"])


def _one_post(request: Request) -> dict[str, Any] | Reply:
    """The single post of a `{"posts": [...]}` body."""
    try:
        body = request.json()
    except ValueError:
        return ghost_error(400, "BadRequestError", "Invalid JSON")
    posts = body.get("posts") if isinstance(body, dict) else None
    if not isinstance(posts, list) or len(posts) != 1 or not isinstance(posts[0], dict):
        return ghost_error(422, "ValidationError", "No root key ('posts') provided.")
    return posts[0]


def _invalid(post: dict[str, Any], *, creating: bool) -> Reply | None:
    """Ghost's validation of a post's fields."""
    title = post.get("title")
    if (creating or "title" in post) and (not isinstance(title, str) or not title.strip()):
        return ghost_error(422, "ValidationError", "Validation (isEmpty) failed for title",
                           context="posts.title")
    if isinstance(title, str) and len(title) > MAX_TITLE:
        return ghost_error(422, "ValidationError", "Value in [posts.title] exceeds maximum length"
                           " of 255 characters.", context="posts.title")
    if post.get("status", "draft") not in ("draft", "published", "scheduled"):
        return ghost_error(422, "ValidationError", "Validation (isIn) failed for status",
                           context="posts.status")
    return None


def _tag(tag: Any) -> dict[str, str]:
    """A tag as Ghost stores it: internal `#name` tags get the slug `hash-name`."""
    name = tag["name"] if isinstance(tag, dict) else str(tag)
    slug = re.sub(r"[^a-z0-9]+", "-", name.lstrip("#").lower()).strip("-")
    return {"name": name, "slug": f"hash-{slug}" if name.startswith("#") else slug,
            "visibility": "internal" if name.startswith("#") else "public"}


def _b64(data: bytes) -> str:
    """base64url without padding, as JWTs use."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    """Decode base64url without padding."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _now() -> str:
    """An ISO timestamp like Ghost's."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
