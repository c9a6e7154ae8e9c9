"""LinkedIn's versioned REST API (api.linkedin.com/rest) as far as publisher relies on it.

Contract (https://learn.microsoft.com/en-us/linkedin/marketing/community-management/shares/
posts-api): every `/rest` call carries `Authorization: Bearer`, `LinkedIn-Version: YYYYMM` of
an active version and `X-Restli-Protocol-Version: 2.0.0`. `POST /rest/posts` needs `author` (the
token's member or an organization it administers), `commentary`, `visibility`,
`distribution.feedDistribution` and `lifecycleState`; an article is `content.article` with
`source` and `title`, and a `thumbnail` that must be an image uploaded through the Images API
(https://learn.microsoft.com/en-us/linkedin/marketing/community-management/shares/images-api:
`POST /rest/images?action=initializeUpload`, then `PUT` of the bytes to the `uploadUrl`). The
answer is 201 with the post's URN in `x-restli-id`. `commentary` is "little" text
(https://learn.microsoft.com/en-us/linkedin/marketing/community-management/shares/
little-text-format): an unescaped reserved character that starts no template is where LinkedIn
cuts the shown text short, so `shown` is what a reader would see. `DELETE /rest/posts/{urn}`
answers 204, an unknown post 404. Errors are `{"status", "serviceErrorCode", "code",
"message"}`; rate-limited calls get 429 (limits reset at midnight UTC; LinkedIn sends no reset
header, https://learn.microsoft.com/en-us/linkedin/shared/api-guide/concepts/rate-limits).
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from publisher.networks.counting import linkedin_length

from .forms import header, json_body, query
from .served import ServedFake, bearer_token
from .server import Reply, Request

PERSON_ID = "AbC123xYz"
OLDEST_VERSION = "202601"  # earlier versions are sunset; newer ones than the fake's clock unknown
NEWEST_VERSION = "202612"
RESERVED = set("\\|{}@[]()<>#*_~")
# The little-format templates a commentary may use (a hashtag, a mention); anything else
# reserved and unescaped is where LinkedIn's parser stops.
TEMPLATE_RE = re.compile(r"\{hashtag\|\\#\|[^{}|]+\}|@\[[^\[\]]+\]\(urn:li:(?:person|organization)"
                         r":[^()]+\)")
URL_RE = re.compile(r"https?://[^\s]+")
VISIBILITY = ("PUBLIC", "CONNECTIONS", "LOGGED_IN")


def li_error(status: int, message: str, *, code: str = "", service: int = 0) -> Reply:
    """An error reply in LinkedIn's shape."""
    body: dict[str, Any] = {"status": status, "message": message}
    if service:
        body["serviceErrorCode"] = service
    if code:
        body["code"] = code
    return Reply(status, body)


def shown_text(commentary: str) -> str:
    """What LinkedIn shows for a little-format commentary: unescaped, cut at a stray reserved."""
    out: list[str] = []
    i = 0
    while i < len(commentary):
        char = commentary[i]
        url = URL_RE.match(commentary, i) if char in "hH" else None
        template = TEMPLATE_RE.match(commentary, i) if char in "{@" else None
        if url is not None:  # links are left as written and still link
            out.append(url.group(0))
            i = url.end()
        elif template is not None:
            body = template.group(0)
            out.append("#" + body.split("|")[2][:-1] if body.startswith("{") else
                       "@" + body[2:body.index("]")])
            i = template.end()
        elif char == "\\" and i + 1 < len(commentary) and commentary[i + 1] in RESERVED:
            out.append(commentary[i + 1])
            i += 2
        elif char in RESERVED:
            break  # LinkedIn truncates the post here, and still answers 201
        else:
            out.append(char)
            i += 1
    return "".join(out)


class FakeLinkedIn(ServedFake):
    """One member (and the organizations they administer), with their posts in order."""

    def __init__(
        self,
        *,
        token: str = "linkedin-test-token-123",
        person_id: str = PERSON_ID,
        organizations: tuple[str, ...] = ("5515715",),
        state_file: Path | None = None,
    ) -> None:
        self.token = token
        self.person_id = person_id
        self.organizations = organizations
        self.posts: list[dict[str, Any]] = []
        self.images: dict[str, dict[str, Any]] = {}  # image URN → {"owner", "size", "upload"}
        self.deleted: list[dict[str, Any]] = []
        self.versions: list[str] = []  # LinkedIn-Version of each /rest call
        self.next_id = 7_100_000_000_000_000_000
        self.resume(state_file)
        self.serve(rate_limit_headers=lambda seconds: {},  # LinkedIn sends no reset time
                   error_body=lambda status, message: {"status": status, "message": message,
                                                       "serviceErrorCode": 101 if status == 429
                                                       else 0})

    @property
    def author(self) -> str:
        """The member's person URN."""
        return f"urn:li:person:{self.person_id}"

    def texts(self) -> list[str]:
        """The text each post shows, in order."""
        return [p["shown"] for p in self.posts]

    def snapshot(self) -> dict[str, Any]:
        """State to persist."""
        return {"posts": self.posts, "images": self.images, "deleted": self.deleted,
                "next_id": self.next_id}

    def restore(self, state: dict[str, Any]) -> None:
        """Reload persisted state."""
        self.posts, self.images = state["posts"], state["images"]
        self.deleted, self.next_id = state["deleted"], state["next_id"]

    def route(self, request: Request) -> Reply:
        """Dispatch one request."""
        if bearer_token(request) != self.token:
            return li_error(401, "Invalid access token", code="INVALID_ACCESS_TOKEN",
                            service=65600)
        path = request.path
        if path.startswith("/dms-uploads/") and request.method == "PUT":
            return self.upload(path.removeprefix("/dms-uploads/"), request.body)
        if path == "/v2/userinfo" and request.method == "GET":
            return Reply(200, {"sub": self.person_id, "name": "Editor", "email_verified": True})
        if not path.startswith("/rest/"):
            return li_error(404, f"No resource found for {path}", code="NOT_FOUND")
        refused = self.refuse_headers(request)
        if refused is not None:
            return refused
        self.versions.append(header(request, "linkedin-version"))
        if path == "/rest/images" and request.method == "POST":
            return self.initialize_upload(request)
        if path.startswith("/rest/organizations/") and request.method == "GET":
            org = path.rsplit("/", 1)[-1]
            if org not in self.organizations:
                return li_error(403, f"Not enough permissions to access organization {org}",
                                code="ACCESS_DENIED", service=100)
            return Reply(200, {"id": int(org), "localizedName": "E2E News"})
        if path == "/rest/posts" and request.method == "POST":
            return self.create_post(request)
        if path.startswith("/rest/posts/"):
            return self.one_post(request, unquote(path.removeprefix("/rest/posts/")))
        return li_error(404, f"No resource found for {path}", code="NOT_FOUND")

    def refuse_headers(self, request: Request) -> Reply | None:
        """The versioning headers every /rest call needs."""
        version = header(request, "linkedin-version")
        if not version:
            return li_error(400, "A version must be present. Please specify a version by adding"
                            " the LinkedIn-Version header.", code="VERSION_MISSING")
        if not re.fullmatch(r"\d{6}", version) or not OLDEST_VERSION <= version <= NEWEST_VERSION:
            return li_error(426, f"Requested version {version} is not active",
                            code="NONEXISTENT_VERSION")
        if header(request, "x-restli-protocol-version") != "2.0.0":
            return li_error(400, "X-Restli-Protocol-Version 2.0.0 is required",
                            code="ILLEGAL_ARGUMENT")
        return None

    def may_author(self, urn: str) -> bool:
        """Whether the token may post as this URN."""
        return urn == self.author or urn in {f"urn:li:organization:{o}"
                                             for o in self.organizations}

    def initialize_upload(self, request: Request) -> Reply:
        """POST /rest/images?action=initializeUpload: an image URN and where to PUT its bytes."""
        if query(request).get("action") != "initializeUpload":
            return li_error(400, "action=initializeUpload is required", code="ILLEGAL_ARGUMENT")
        owner = str(((json_body(request) or {}).get("initializeUploadRequest") or {})
                    .get("owner") or "")
        if not self.may_author(owner):
            return li_error(403, f"Not enough permissions to upload as {owner!r}",
                            code="ACCESS_DENIED", service=100)
        self.next_id += 1
        urn = f"urn:li:image:D4E{self.next_id}"
        upload = uuid.uuid4().hex
        self.images[urn] = {"owner": owner, "size": 0, "upload": upload}
        return Reply(200, {"value": {
            "uploadUrlExpiresAt": int((time.time() + 3600) * 1000),
            "uploadUrl": f"{self.url}/dms-uploads/{upload}", "image": urn}})

    def upload(self, upload: str, data: bytes) -> Reply:
        """PUT of an image's bytes to its upload URL."""
        urn = next((u for u, i in self.images.items() if i["upload"] == upload), None)
        if urn is None or not data:
            return li_error(400, "Invalid or empty upload", code="ILLEGAL_ARGUMENT")
        self.images[urn]["size"] = len(data)
        return Reply(201)

    def create_post(self, request: Request) -> Reply:
        """POST /rest/posts: validate, keep, and name the post in x-restli-id."""
        body = json_body(request)
        if not isinstance(body, dict):
            return li_error(400, "The request body must be JSON", code="ILLEGAL_ARGUMENT")
        missing = [f for f in ("author", "commentary", "visibility", "distribution",
                               "lifecycleState") if f not in body]
        if missing:
            return li_error(422, f"/{missing[0]} :: field is required but not found",
                            code="UNPROCESSABLE_ENTITY", service=100)
        if not self.may_author(str(body["author"])):
            return li_error(403, f"Not enough permissions to post as {body['author']}",
                            code="ACCESS_DENIED", service=100)
        if body["visibility"] not in VISIBILITY or body["lifecycleState"] != "PUBLISHED" or \
                not (body["distribution"] or {}).get("feedDistribution"):
            return li_error(422, "visibility, lifecycleState or distribution is invalid",
                            code="UNPROCESSABLE_ENTITY", service=100)
        commentary = str(body["commentary"])
        if linkedin_length(shown_text(commentary)) > 3000:
            return li_error(422, "/commentary :: length exceeds 3000 characters",
                            code="UNPROCESSABLE_ENTITY", service=100)
        refused = self.refuse_article((body.get("content") or {}).get("article"))
        if refused is not None:
            return refused
        self.next_id += 1
        urn = f"urn:li:share:{self.next_id}"
        self.posts.append({"urn": urn, "author": body["author"], "commentary": commentary,
                           "shown": shown_text(commentary), "content": body.get("content")})
        return Reply(201, None, {"x-restli-id": urn})

    def refuse_article(self, article: Any) -> Reply | None:
        """An article needs a source and title; its thumbnail must be an uploaded image."""
        if article is None:
            return None
        if not str(article.get("source") or "").startswith("http") or not article.get("title"):
            return li_error(422, "/content/article :: source and title are required",
                            code="UNPROCESSABLE_ENTITY", service=100)
        thumb = article.get("thumbnail")
        if thumb is not None and not self.images.get(str(thumb), {}).get("size"):
            return li_error(422, f"/content/article/thumbnail :: {thumb} is not an uploaded "
                            "image", code="UNPROCESSABLE_ENTITY", service=100)
        return None

    def one_post(self, request: Request, urn: str) -> Reply:
        """GET, DELETE or partial update of one post by URN."""
        post = next((p for p in self.posts if p["urn"] == urn), None)
        if post is None:
            return li_error(404, f"Post {urn} not found", code="NOT_FOUND")
        if request.method == "GET":
            return Reply(200, {"id": urn, "author": post["author"],
                               "commentary": post["commentary"], "content": post["content"]})
        if request.method == "DELETE":
            self.posts.remove(post)
            self.deleted.append(post)
            return Reply(204)
        if request.method == "POST" and header(request, "x-restli-method") == "PARTIAL_UPDATE":
            patch = ((json_body(request) or {}).get("patch") or {}).get("$set") or {}
            if "commentary" in patch:
                post.update(commentary=str(patch["commentary"]),
                            shown=shown_text(str(patch["commentary"])))
            return Reply(204)
        return li_error(405, "Method not allowed", code="METHOD_NOT_ALLOWED")
