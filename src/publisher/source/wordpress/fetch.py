"""Fetch a WordPress post through the REST API: the only network access of the WordPress source.

`publish https://site.example/2025/11/some-post/` looks the post up by its slug
(`GET /wp-json/wp/v2/posts?slug=some-post`), `publish wp:SITE:ID` by its id
(`GET /wp-json/wp/v2/posts/ID`); then the author (`/wp/v2/users/<id>`), the category and tag
names (`/wp/v2/categories?include=…`, `/wp/v2/tags?include=…`, every page of X-WP-TotalPages)
and the featured image with its alt text (`/wp/v2/media/<id>`). The JSON becomes an Article in
`wordpress` (pure).

Docs: https://developer.wordpress.org/rest-api/reference/posts/ (the `slug` and `status`
arguments), https://developer.wordpress.org/rest-api/reference/media/,
https://developer.wordpress.org/rest-api/using-the-rest-api/pagination/ (X-WP-Total,
X-WP-TotalPages), https://developer.wordpress.org/rest-api/using-the-rest-api/authentication/
(Application Passwords: HTTP Basic with the user name and the password WordPress generated).
Errors are JSON `{"code": …, "message": …, "data": {"status": …}}`.

Every failure is one error: a site that is not WordPress, a missing post, a post that needs a
password, an answer that is not JSON. Nothing is sent, because nothing is built.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import requests

from publisher.config.secrets import get_secret, mask
from publisher.config.settings import WordPressSettings
from publisher.errors import ConfigError, InputError
from publisher.source.read import URL_REF
from publisher.source.wordpress.article import WpPost, post_from_json
from publisher.source.wordpress.html import html_text
from publisher.web import USER_AGENT

SECRET = "WORDPRESS_APP_PASSWORD"
MAX_BYTES = 10_000_000  # far above any post's JSON; a server streaming forever is cut off here
PER_PAGE = 100  # the REST API's maximum per_page
MAX_PAGES = 20  # 2,000 terms: no post has more
# Statuses an authenticated reader may ask for; readers without a password only see `publish`.
ALL_STATUSES = "publish,future,draft,pending,private"


@dataclass(frozen=True)
class PostRef:
    """Where a post lives: the site's REST root and its slug or id."""

    api: str  # e.g. https://site.example/wp-json
    slug: str = ""
    post_id: int = 0
    given: str = ""  # the reference as the editor wrote it, for messages


def parse_ref(text: str, settings: WordPressSettings) -> PostRef:
    """The REST root and slug or id of `https://site/…/slug/`, `…/?p=ID` or `wp:SITE:ID`.

    A path argument loses the URL's `//`; it is put back. `[wordpress] sites` maps a host or a
    short name to the site's base URL (a staging copy, or 127.0.0.1 in tests).
    """
    if text.startswith("wp:"):
        site, _, number = text[3:].rpartition(":")
        if not site or not number.isdigit():
            raise InputError(f"{text!r} is not wp:SITE:ID", where="POST",
                             fix="write e.g. wp:news.example.com:123 (the post's numeric id)")
        return PostRef(_api_root(settings.sites.get(site) or f"https://{site}"),
                       post_id=int(number), given=text)
    match = URL_REF.match(text)
    if not match:
        raise InputError(f"{text!r} is not a post URL", where="POST",
                         fix="give the post's address, e.g. https://site.example/2025/11/slug/")
    url = f"{match.group(1).lower()}://{match.group(2)}"
    parts = urlsplit(url)
    base = settings.sites.get(parts.netloc) or f"{parts.scheme}://{parts.netloc}"
    query_id = parse_qs(parts.query).get("p", [""])[0]
    if query_id.isdigit():
        return PostRef(_api_root(base), post_id=int(query_id), given=url)
    segments = [unquote(s) for s in parts.path.split("/") if s]
    if not segments:
        raise InputError(f"{url} names a site, not a post", where="POST",
                         fix="give the address of one post (…/2025/11/some-post/)")
    return PostRef(_api_root(base), slug=segments[-1], given=url)


def _api_root(base: str) -> str:
    """The REST root of a site's base URL (a base already ending in /wp-json is kept)."""
    base = base.rstrip("/")
    return base if base.endswith("/wp-json") else f"{base}/wp-json"


def fetch_post(ref: PostRef, settings: WordPressSettings) -> WpPost:
    """The post and what it refers to, read from the site; raises InputError or ConfigError."""
    password = get_secret(SECRET, required=False)
    with requests.Session() as session:
        session.headers["User-Agent"] = USER_AGENT
        session.headers["Accept"] = "application/json"
        session.trust_env = False
        if password and settings.user:
            session.auth = (settings.user, password)
        client = _Client(session, ref, settings.timeout, authenticated=bool(session.auth))
        post = client.the_post()
        author = client.author_name(post.get("author"))
        terms = [*client.term_names("categories", post.get("categories")),
                 *client.term_names("tags", post.get("tags"))]
        media = client.media(post.get("featured_media"))
    return post_from_json(post, author=author, terms=terms, media=media, where=ref.given)


@dataclass
class _Client:
    """GETs against one site's REST root, each answer checked and decoded."""

    session: requests.Session
    ref: PostRef
    timeout: float
    authenticated: bool

    def the_post(self) -> Mapping[str, Any]:
        """The post object, by id or by slug."""
        if self.ref.post_id:
            found = self.get(f"/wp/v2/posts/{self.ref.post_id}", {})
            if not isinstance(found, Mapping):
                raise self.not_wordpress("the post answer is not an object")
            return found
        params = {"slug": self.ref.slug}
        if self.authenticated:
            params["status"] = ALL_STATUSES
        found = self.get("/wp/v2/posts", params)
        if not isinstance(found, list):
            raise self.not_wordpress("the posts answer is not a list")
        if not found:
            hint = ("" if self.authenticated else f"; a draft or private post needs {SECRET}"
                    " and [wordpress] user")
            raise InputError(f"no post with the slug {self.ref.slug!r}{hint}",
                             where=self.ref.given, fix="check the post's address")
        if not isinstance(found[0], Mapping):
            raise self.not_wordpress("the posts answer holds no post object")
        return found[0]

    def author_name(self, author_id: object) -> str:
        """The author's display name; '' when the site hides its users."""
        if not isinstance(author_id, int) or author_id <= 0:
            return ""
        try:
            user = self.get(f"/wp/v2/users/{author_id}", {})
        except (InputError, ConfigError):
            return ""  # many sites block /users for privacy; the post is still fine
        return str(user.get("name") or "") if isinstance(user, Mapping) else ""

    def term_names(self, taxonomy: str, ids: object) -> list[str]:
        """The names of the post's terms, in the post's order, every page read."""
        wanted = [i for i in ids if isinstance(i, int)] if isinstance(ids, list) else []
        if not wanted:
            return []
        names: dict[int, str] = {}
        page, pages = 1, 1
        while page <= min(pages, MAX_PAGES):
            params = {"include": ",".join(map(str, wanted)), "per_page": str(PER_PAGE),
                      "page": str(page)}
            found, headers = self.get_with_headers(f"/wp/v2/{taxonomy}", params)
            for term in found if isinstance(found, list) else []:
                if isinstance(term, Mapping) and isinstance(term.get("id"), int):
                    names[term["id"]] = _plain_name(str(term.get("name") or ""))
            pages = _int(headers.get("X-WP-TotalPages"), 1)
            page += 1
        return [names[i] for i in wanted if names.get(i)]

    def media(self, media_id: object) -> Mapping[str, Any] | None:
        """The featured image's media object; None without one or when it is not readable."""
        if not isinstance(media_id, int) or media_id <= 0:
            return None
        try:
            found = self.get(f"/wp/v2/media/{media_id}", {})
        except (InputError, ConfigError):
            return None  # a deleted or private attachment: the post goes without an image
        return found if isinstance(found, Mapping) else None

    def get(self, path: str, params: Mapping[str, str]) -> Any:
        """The decoded JSON of one GET."""
        return self.get_with_headers(path, params)[0]

    def get_with_headers(
        self, path: str, params: Mapping[str, str]
    ) -> tuple[Any, Mapping[str, str]]:
        """The decoded JSON of one GET and the answer's headers; every failure one error."""
        url = self.ref.api + path
        try:
            with self.session.get(url, params=params, timeout=self.timeout, stream=True,
                                  allow_redirects=True) as response:
                body = _read_capped(response, url)
                status, headers = response.status_code, response.headers
        except requests.RequestException as exc:
            raise ConfigError(f"cannot reach the WordPress site ({type(exc).__name__})",
                              where=self.ref.api, fix="check the address, or set [wordpress]"
                              " sites to the site's base URL") from exc
        data = _json(body)
        if status >= 400:
            raise self.refused(status, data)
        if data is _NOT_JSON:
            raise self.not_wordpress(f"the answer to {path} is not JSON")
        return data, headers

    def refused(self, status: int, data: Any) -> InputError | ConfigError:
        """The error for a 4xx/5xx answer, with WordPress's own code and message."""
        code, message = _wp_error(data)
        said = f" ({code}: {mask(message)[:200]})" if code else ""
        if status in (401, 403):
            if not self.authenticated:
                return ConfigError(
                    f"WordPress answered {status}{said}: the post is not public",
                    where=self.ref.given,
                    fix=f"set [wordpress] user and the secret {SECRET} (an Application Password)")
            return ConfigError(f"WordPress refused the Application Password ({status}){said}",
                               where=self.ref.given,
                               fix=f"check [wordpress] user and {SECRET} (Users → Profile)")
        if status == 404 and code and code != "rest_no_route":
            return InputError(f"no such post (404{said})", where=self.ref.given,
                              fix="check the post's address or id")
        if status == 404:
            return self.not_wordpress(f"{self.ref.api} answered 404{said}")
        return ConfigError(f"the WordPress site answered {status}{said}", where=self.ref.given,
                           fix="try again later, or ask the site's administrator")

    def not_wordpress(self, problem: str) -> InputError:
        """The error for a site whose REST API is missing or answers something else."""
        return InputError(f"not a WordPress REST API: {problem}", where=self.ref.given,
                          fix="give a WordPress post's address (the site must serve /wp-json/)")


_NOT_JSON = object()


def _json(body: bytes) -> Any:
    """The body as JSON, or _NOT_JSON (an HTML page, an empty answer)."""
    try:
        return json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        return _NOT_JSON


def _read_capped(response: requests.Response, url: str) -> bytes:
    """The body, refused past MAX_BYTES whatever Content-Length said."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(64 * 1024):
        size += len(chunk)
        if size > MAX_BYTES:
            raise InputError(f"the answer is larger than {MAX_BYTES} bytes", where=url,
                             fix="check that the address is a WordPress post")
        chunks.append(chunk)
    return b"".join(chunks)


def _wp_error(data: Any) -> tuple[str, str]:
    """WordPress's error code and message from `{"code", "message", "data"}`."""
    if isinstance(data, Mapping):
        return str(data.get("code") or ""), str(data.get("message") or "")
    return "", ""


def _int(value: str | None, default: int) -> int:
    """A header's whole number, or the default."""
    return int(value) if value and value.strip().isdigit() else default


def _plain_name(name: str) -> str:
    """A term name: WordPress returns it HTML-escaped (`&amp;`)."""
    return html_text(name)

