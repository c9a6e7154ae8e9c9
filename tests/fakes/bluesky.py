"""A Bluesky PDS that enforces the parts of the atproto API publisher relies on.

Contract: sessions from `com.atproto.server.createSession` are real HS256 JWTs with `exp`; an
expired access token is answered `400 ExpiredToken`
(https://docs.bsky.app/docs/api/com-atproto-server-create-session). `createRecord` validates an
`app.bsky.feed.post` against its lexicon
(https://github.com/bluesky-social/atproto/blob/main/lexicons/app/bsky/feed/post.json):
300 graphemes / 3000 bytes, facet byte ranges that cover the link or #tag they claim, reply refs
that exist, an external-embed thumb blob of at most 1,000,000 bytes. An existing rkey answers
500, as the production PDS does (bluesky-social/atproto#3718). 429 carries `ratelimit-reset`.
`deleteRecord` (https://docs.bsky.app/docs/api/com-atproto-repo-delete-record) only works on the
session's own repo and answers 200 for a record that is already gone.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import jwt

from publisher.networks.counting import bluesky_bytes, bluesky_length

from .forms import header, json_body, query
from .served import ServedFake, bearer_token
from .server import Reply, Request

JWT_SECRET = "fake-pds-signing-secret-0123456789"
TID_RE = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
THUMB_MAX_BYTES = 1_000_000
POST = "app.bsky.feed.post"


class FakeBluesky(ServedFake):
    """One account on one PDS, with every post record in creation order."""

    def __init__(
        self,
        *,
        handle: str = "editor.example.com",
        password: str = "app-pass-word-1234",
        access_ttl: int = 7200,
        state_file: Path | None = None,
    ) -> None:
        self.handle = handle
        self.did = "did:plc:fakeeditor0000000000000"
        self.password = password
        self.access_ttl = access_ttl
        self.skew = 0.0  # seconds added to the fake's clock: lets tests age tokens
        self.posts: list[dict[str, Any]] = []  # {"rkey", "uri", "cid", "record"}
        self.blobs: dict[str, dict[str, Any]] = {}  # cid → {"size", "mimeType"}
        self.revoked: set[str] = set()  # refresh token ids already used
        self.deletes: list[str] = []  # rkeys deleteRecord was called for, in order
        self.sessions_created = 0
        self.refreshes = 0
        self.resume(state_file)
        self.serve(rate_limit_headers=rate_limit_headers,
                   error_body=lambda status, message: {
                       "error": "RateLimitExceeded" if status == 429 else "InternalServerError",
                       "message": message})

    def now(self) -> float:
        """The fake's clock."""
        return time.time() + self.skew

    def texts(self) -> list[str]:
        """Post texts in creation order."""
        return [p["record"]["text"] for p in self.posts]

    def snapshot(self) -> dict[str, Any]:
        """State to persist."""
        return {"posts": self.posts, "blobs": self.blobs}

    def restore(self, state: dict[str, Any]) -> None:
        """Reload persisted state."""
        self.posts, self.blobs = state["posts"], state["blobs"]

    def route(self, request: Request) -> Reply:
        """Dispatch one XRPC call."""
        method = request.path.removeprefix("/xrpc/")
        if method == "com.atproto.server.createSession":
            return self.create_session(request)
        if method == "com.atproto.server.refreshSession":
            return self.refresh_session(request)
        problem = self.check_token(request, "com.atproto.access")
        if problem is not None:
            return problem
        if method == "com.atproto.server.getSession":
            return Reply(200, {"handle": self.handle, "did": self.did, "active": True})
        if method == "com.atproto.repo.uploadBlob":
            return self.upload_blob(request)
        if method == "com.atproto.repo.createRecord":
            return self.create_record(request)
        if method == "com.atproto.repo.getRecord":
            return self.get_record(request)
        if method == "com.atproto.repo.deleteRecord":
            return self.delete_record(request)
        return error(501, "MethodNotImplemented", f"{method} is not implemented")

    def tokens(self) -> dict[str, Any]:
        """A fresh access/refresh pair."""
        now = int(self.now())
        access = jwt.encode({"scope": "com.atproto.access", "sub": self.did, "iat": now,
                             "exp": now + self.access_ttl}, JWT_SECRET, algorithm="HS256")
        refresh = jwt.encode({"scope": "com.atproto.refresh", "sub": self.did, "iat": now,
                              "exp": now + 90 * 86400, "jti": uuid.uuid4().hex},
                             JWT_SECRET, algorithm="HS256")
        return {"accessJwt": access, "refreshJwt": refresh, "handle": self.handle,
                "did": self.did, "active": True}

    def create_session(self, request: Request) -> Reply:
        """Log in with the handle (or DID) and an app password."""
        body = json_body(request) or {}
        if body.get("identifier") not in (self.handle, self.did) or \
                body.get("password") != self.password:
            return error(401, "AuthenticationRequired", "Invalid identifier or password")
        self.sessions_created += 1
        return Reply(200, self.tokens())

    def refresh_session(self, request: Request) -> Reply:
        """Trade a refresh token (once) for a new pair."""
        problem = self.check_token(request, "com.atproto.refresh")
        if problem is not None:
            return problem
        claims = self.claims(request)
        self.revoked.add(claims["jti"])
        self.refreshes += 1
        return Reply(200, self.tokens())

    def claims(self, request: Request) -> dict[str, Any]:
        """The verified (but not expiry-checked) claims of the Bearer token."""
        token = bearer_token(request)
        decoded: dict[str, Any] = jwt.decode(token, JWT_SECRET, algorithms=["HS256"],
                                             options={"verify_exp": False, "verify_iat": False})
        return decoded

    def check_token(self, request: Request, scope: str) -> Reply | None:
        """None when the Bearer token is valid for scope, else the PDS's error reply."""
        if not bearer_token(request):
            return error(401, "AuthenticationRequired", "Authentication Required")
        try:
            claims = self.claims(request)
        except jwt.InvalidTokenError:
            return error(400, "InvalidToken", "Token could not be verified")
        if claims.get("scope") != scope or claims.get("jti") in self.revoked:
            return error(400, "InvalidToken", "Bad token scope")
        if claims["exp"] <= self.now():
            return error(400, "ExpiredToken", "Token has expired")
        return None

    def upload_blob(self, request: Request) -> Reply:
        """Store a blob and return its ref."""
        mime = header(request, "content-type") or "application/octet-stream"
        cid = "bafkrei" + hashlib.sha256(request.body).hexdigest()[:52]
        self.blobs[cid] = {"size": len(request.body), "mimeType": mime}
        return Reply(200, {"blob": {"$type": "blob", "ref": {"$link": cid}, "mimeType": mime,
                                    "size": len(request.body)}})

    def create_record(self, request: Request) -> Reply:
        """Validate and store one post."""
        body = json_body(request) or {}
        if body.get("repo") not in (self.did, self.handle):
            return error(400, "InvalidRequest", "Input/repo must be the session's repo")
        if body.get("collection") != POST:
            return error(400, "InvalidRequest", "this fake only stores app.bsky.feed.post")
        rkey = body.get("rkey") or self.next_tid()
        if not TID_RE.match(rkey):
            return error(400, "InvalidRequest", f"Invalid record key for {POST}: {rkey}")
        if any(p["rkey"] == rkey for p in self.posts):
            return error(500, "InternalServerError", "Internal Server Error")
        record = body.get("record")
        problem = self.validate_post(record)
        if problem:
            return error(400, "InvalidRequest", f"Invalid {POST} record: {problem}")
        uri = f"at://{self.did}/{POST}/{rkey}"
        cid = "bafyrei" + hashlib.sha256(json.dumps(record, sort_keys=True).encode()
                                         ).hexdigest()[:52]
        self.posts.append({"rkey": rkey, "uri": uri, "cid": cid, "record": record})
        return Reply(200, {"uri": uri, "cid": cid, "validationStatus": "valid",
                           "commit": {"cid": cid, "rev": self.next_tid()}})

    def get_record(self, request: Request) -> Reply:
        """One stored record by rkey."""
        params = query(request)
        for post in self.posts:
            if post["rkey"] == params.get("rkey") and params.get("collection") == POST:
                return Reply(200, {"uri": post["uri"], "cid": post["cid"],
                                   "value": post["record"]})
        return error(400, "RecordNotFound", f"Could not locate record: {params.get('rkey')}")

    def delete_record(self, request: Request) -> Reply:
        """Delete one of the session's own records; a missing one is fine (200)."""
        body = json_body(request) or {}
        if body.get("repo") not in (self.did, self.handle):
            return error(400, "InvalidRequest", "Input/repo must be the session's repo")
        rkey = str(body.get("rkey", ""))
        self.deletes.append(rkey)
        self.posts = [p for p in self.posts if not (p["rkey"] == rkey
                                                    and body.get("collection") == POST)]
        return Reply(200, {"commit": {"cid": "bafyreicommit", "rev": self.next_tid()}})

    def next_tid(self) -> str:
        """A server-chosen TID."""
        return tid(int(self.now() * 1_000_000), len(self.posts) % 1024)

    def validate_post(self, record: Any) -> str:
        """'' when the record satisfies the lexicon, else the first problem."""
        if not isinstance(record, dict) or record.get("$type") != POST:
            return "Record/$type must be app.bsky.feed.post"
        text = record.get("text")
        if not isinstance(text, str):
            return "Record/text must be a string"
        if bluesky_length(text) > 300:
            return "Record/text must not be longer than 300 graphemes"
        if bluesky_bytes(text) > 3000:
            return "Record/text must not be longer than 3000 characters"
        try:
            datetime.fromisoformat(str(record.get("createdAt")).replace("Z", "+00:00"))
        except ValueError:
            return "Record/createdAt must be an valid atproto datetime"
        langs = record.get("langs", [])
        if not isinstance(langs, list) or len(langs) > 3:
            return "Record/langs must not have more than 3 elements"
        return (self.check_facets(text, record.get("facets", []))
                or self.check_reply(record.get("reply"))
                or self.check_embed(record.get("embed")))

    def check_facets(self, text: str, facets: Any) -> str:
        """Every facet's byte slice must be the link or tag it claims."""
        data = text.encode("utf-8")
        for number, facet in enumerate(facets):
            where = f"Record/facets/{number}"
            start, end = facet["index"]["byteStart"], facet["index"]["byteEnd"]
            if not 0 <= start < end <= len(data):
                return f"{where}/index is outside the text"
            try:
                covered = data[start:end].decode("utf-8")
            except UnicodeDecodeError:
                return f"{where}/index splits a UTF-8 character"
            for feature in facet["features"]:
                kind = feature.get("$type")
                if kind == "app.bsky.richtext.facet#link" and \
                        not shows_link(covered, feature["uri"]):
                    return f"{where} covers {covered!r}, not the link {feature['uri']}"
                if kind == "app.bsky.richtext.facet#tag" and \
                        not shows_tag(covered, feature["tag"]):
                    return f"{where} covers {covered!r}, not the tag #{feature['tag']}"
        return ""

    def check_reply(self, reply: Any) -> str:
        """Reply refs must name stored posts by uri and cid, and agree on the root."""
        if reply is None:
            return ""
        known = {p["uri"]: p for p in self.posts}
        for part in ("root", "parent"):
            ref = reply.get(part) or {}
            post = known.get(ref.get("uri", ""))
            if post is None or post["cid"] != ref.get("cid"):
                return f"Record/reply/{part} does not refer to an existing post"
        parent_reply = known[reply["parent"]["uri"]]["record"].get("reply")
        expected_root = parent_reply["root"]["uri"] if parent_reply else reply["parent"]["uri"]
        if reply["root"]["uri"] != expected_root:
            return "Record/reply/root is not the root of the parent's thread"
        return ""

    def check_embed(self, embed: Any) -> str:
        """An external embed's thumb must be an uploaded image blob of at most 1,000,000 bytes."""
        if embed is None:
            return ""
        if embed.get("$type") != "app.bsky.embed.external":
            return "Record/embed must be app.bsky.embed.external here"
        external = embed.get("external") or {}
        if not all(isinstance(external.get(k), str) for k in ("uri", "title", "description")):
            return "Record/embed/external must have uri, title and description"
        thumb = external.get("thumb")
        if thumb is None:
            return ""
        blob = self.blobs.get(thumb.get("ref", {}).get("$link", ""))
        if blob is None:
            return "Record/embed/external/thumb blob was not uploaded"
        if blob["size"] > THUMB_MAX_BYTES:
            return (f"Record/embed/external/thumb file too big (maxSize={THUMB_MAX_BYTES}, "
                    f"got {blob['size']})")
        if not blob["mimeType"].startswith("image/"):
            return "Record/embed/external/thumb must be an image"
        return ""


def shows_tag(covered: str, tag: str) -> bool:
    """Whether the covered text is the tag: `#tag`, `＃tag`, or a cashtag `$aapl` for `$AAPL`."""
    if tag.startswith("$"):
        return covered.upper() == tag
    return covered[:1] in "#＃" and covered[1:] == tag


def shows_link(covered: str, uri: str) -> bool:
    """Whether the covered text displays the URI: in full, without scheme, or shortened."""
    bare = re.sub(r"^https?://", "", uri)
    if covered in (uri, bare):
        return True
    shortened = covered.removesuffix("…").removesuffix("...")
    return shortened != covered and len(shortened) > 0 and bare.startswith(
        re.sub(r"^https?://", "", shortened))


def tid(micros: int, clock_id: int) -> str:
    """Encode a TID: 53 bits of microseconds and 10 bits of clock id, base32-sortable."""
    alphabet = "234567abcdefghijklmnopqrstuvwxyz"
    value = (micros << 10) | clock_id
    return "".join(alphabet[(value >> (5 * i)) & 31] for i in reversed(range(13)))


def error(status: int, name: str, message: str) -> Reply:
    """An XRPC error body."""
    return Reply(status, {"error": name, "message": message})


def rate_limit_headers(seconds: int) -> dict[str, str]:
    """The PDS's rate-limit headers; the reset is epoch seconds."""
    reset = math.ceil(time.time() + seconds)
    return {"ratelimit-limit": "5000", "ratelimit-remaining": "0",
            "ratelimit-reset": str(reset), "ratelimit-policy": "5000;w=3600"}
