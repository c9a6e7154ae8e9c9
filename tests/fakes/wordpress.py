"""A WordPress site's REST API (wp/v2), shaped like a real site's answers.

Contract (https://developer.wordpress.org/rest-api/reference/posts/, …/media/, …/users/,
…/categories/, …/tags/; https://developer.wordpress.org/rest-api/using-the-rest-api/pagination/):
`GET /wp-json/wp/v2/posts?slug=` answers a list (only published posts without authentication;
asking for another `status` unauthenticated is 400 `rest_invalid_param`), `GET …/posts/<id>`
an object (401 `rest_forbidden` for a draft or private post without authentication, 404
`rest_post_invalid_id` for an unknown id). Term lists honour `include`, `per_page` (1–100, else
400) and `page`, and send X-WP-Total and X-WP-TotalPages. Application Passwords are HTTP Basic
(https://developer.wordpress.org/rest-api/using-the-rest-api/authentication/); a wrong one is 401
`incorrect_password`. Errors are `{"code", "message", "data": {"status"}}`. Any path outside
/wp-json/ is the theme's HTML 404 page, and an unknown route is 404 `rest_no_route`.
"""

from __future__ import annotations

import base64
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .server import FakeHTTPServer, Reply, Request

HTML_404 = b"<!doctype html><html><body><h1>Page not found</h1></body></html>"
MAX_PER_PAGE = 100


def wp_error(status: int, code: str, message: str) -> Reply:
    """WordPress's error body."""
    return Reply(status, {"code": code, "message": message, "data": {"status": status}})


@dataclass
class FakeWordPress:
    """One site: posts, users, terms and media, and one account's Application Password."""

    user: str = "editor"
    app_password: str = "abcd EFGH 1234 ijkl MNOP 5678"
    posts: list[dict[str, Any]] = field(default_factory=list)
    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    terms: dict[str, dict[int, dict[str, Any]]] = field(
        default_factory=lambda: {"categories": {}, "tags": {}})
    media: dict[int, dict[str, Any]] = field(default_factory=dict)
    hide_users: bool = False  # many sites block /wp/v2/users
    http: FakeHTTPServer = field(init=False)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.http = FakeHTTPServer(
            self.handle, error_body=lambda status, message: {
                "code": "rest_error", "message": message, "data": {"status": status}},
        ).start()

    @property
    def url(self) -> str:
        """The site's base URL."""
        return self.http.url

    def close(self) -> None:
        """Stop the server."""
        self.http.stop()

    def add_term(self, taxonomy: str, term_id: int, name: str) -> None:
        """A category or tag (names are HTML-escaped, as WordPress returns them)."""
        escaped = name.replace("&", "&amp;")
        self.terms[taxonomy][term_id] = {"id": term_id, "name": escaped, "taxonomy":
                                         "category" if taxonomy == "categories" else "post_tag",
                                         "slug": f"term-{term_id}"}

    def handle(self, request: Request) -> Reply:
        """Serve one request."""
        with self.lock:
            return self.route(request)

    def route(self, request: Request) -> Reply:
        """Dispatch a GET under /wp-json/; everything else is the theme's 404 page."""
        path = request.path.rstrip("/")
        if not path.startswith("/wp-json"):
            return Reply(404, HTML_404, {"Content-Type": "text/html; charset=UTF-8"})
        authed = self.authenticate(request)
        if isinstance(authed, Reply):
            return authed
        if request.method != "GET":
            return self.no_route()
        rest = path.removeprefix("/wp-json")
        if rest in ("", "/"):
            return Reply(200, {"name": "Fake site", "namespaces": ["wp/v2"], "routes": {}})
        parts = rest.strip("/").split("/")
        if parts[:2] != ["wp", "v2"] or len(parts) < 3:
            return self.no_route()
        kind, ident = parts[2], parts[3] if len(parts) > 3 else ""
        if kind == "posts":
            return self.one_post(ident, authed) if ident else self.find_posts(request, authed)
        if kind == "users" and ident.isdigit():
            return self.one_user(int(ident), authed)
        if kind in self.terms and not ident:
            return self.term_list(kind, request)
        if kind == "media" and ident.isdigit():
            found = self.media.get(int(ident))
            return Reply(200, found) if found else wp_error(404, "rest_post_invalid_id",
                                                            "Invalid post ID.")
        return self.no_route()

    def authenticate(self, request: Request) -> bool | Reply:
        """True for the right Application Password, False without one, 401 for a wrong one."""
        header = request.headers.get("authorization", "")
        if not header:
            return False
        scheme, _, value = header.partition(" ")
        try:
            user, _, password = base64.b64decode(value).decode("utf-8").partition(":")
        except ValueError:
            user, password = "", ""
        # WordPress ignores the spaces it shows in generated passwords.
        if (scheme.lower() == "basic" and user == self.user
                and password.replace(" ", "") == self.app_password.replace(" ", "")):
            return True
        return wp_error(401, "incorrect_password",
                        "The provided password is an invalid application password.")

    def find_posts(self, request: Request, authed: bool) -> Reply:
        """`GET /wp/v2/posts?slug=…&status=…`: a list, only what the reader may see."""
        statuses = (request.query.get("status", ["publish"])[0]).split(",")
        if not authed and statuses != ["publish"]:
            return wp_error(400, "rest_invalid_param", "Invalid parameter(s): status")
        slugs = request.query.get("slug", [""])[0].split(",")
        found = [p for p in self.posts
                 if p["slug"] in slugs and p["status"] in statuses]
        return Reply(200, found, {"X-WP-Total": str(len(found)), "X-WP-TotalPages": "1"})

    def one_post(self, ident: str, authed: bool) -> Reply:
        """`GET /wp/v2/posts/<id>`."""
        post = next((p for p in self.posts if ident.isdigit() and p["id"] == int(ident)), None)
        if post is None:
            return wp_error(404, "rest_post_invalid_id", "Invalid post ID.")
        if post["status"] != "publish" and not authed:
            return wp_error(401, "rest_forbidden", "Sorry, you are not allowed to do that.")
        return Reply(200, post)

    def one_user(self, user_id: int, authed: bool) -> Reply:
        """`GET /wp/v2/users/<id>`, unless the site hides its users."""
        user = self.users.get(user_id)
        if self.hide_users and not authed:
            return wp_error(401, "rest_user_cannot_view", "Sorry, you are not allowed to do that.")
        if user is None:
            return wp_error(404, "rest_user_invalid_id", "Invalid user ID.")
        return Reply(200, user)

    def term_list(self, taxonomy: str, request: Request) -> Reply:
        """A paged term list with X-WP-Total and X-WP-TotalPages."""
        per_page = _int_param(request.query, "per_page", 10)
        page = _int_param(request.query, "page", 1)
        if not 1 <= per_page <= MAX_PER_PAGE:
            return wp_error(400, "rest_invalid_param", "Invalid parameter(s): per_page")
        include = request.query.get("include", [""])[0]
        ids = [int(i) for i in include.split(",") if i.isdigit()]
        terms = [t for i, t in sorted(self.terms[taxonomy].items()) if not ids or i in ids]
        pages = max(1, math.ceil(len(terms) / per_page))
        if page > pages:
            return wp_error(400, "rest_post_invalid_page_number",
                            "The page number requested is larger than the number of pages"
                            " available.")
        chunk = terms[(page - 1) * per_page: page * per_page]
        return Reply(200, chunk, {"X-WP-Total": str(len(terms)), "X-WP-TotalPages": str(pages)})

    def no_route(self) -> Reply:
        """WordPress's answer to an unknown route."""
        return wp_error(404, "rest_no_route",
                        "No route was found matching the URL and request method.")


def _int_param(query: Mapping[str, list[str]], name: str, default: int) -> int:
    """A whole-number query parameter."""
    value = query.get(name, [str(default)])[0]
    return int(value) if value.lstrip("-").isdigit() else default


def post_json(
    post_id: int, slug: str, *, title: str, content: str, excerpt: str, base: str,
    date: str = "2025-11-20T08:30:00", status: str = "publish", author: int = 3,
    categories: tuple[int, ...] = (), tags: tuple[int, ...] = (), featured_media: int = 0,
) -> dict[str, Any]:
    """A post object as wp/v2 returns it (view context)."""
    link = f"{base}/{date[:4]}/{date[5:7]}/{slug}/"
    return {
        "id": post_id, "date": date, "date_gmt": date, "guid": {"rendered": f"{base}/?p={post_id}"},
        "modified": date, "slug": slug, "status": status, "type": "post", "link": link,
        "title": {"rendered": title}, "content": {"rendered": content, "protected": False},
        "excerpt": {"rendered": excerpt, "protected": False}, "author": author,
        "featured_media": featured_media, "comment_status": "open", "format": "standard",
        "categories": list(categories), "tags": list(tags),
        "_links": {"self": [{"href": f"{base}/wp-json/wp/v2/posts/{post_id}"}]},
    }
