"""Ghost: the newsletter becomes a post that Ghost emails to one of its newsletters.

Contract (https://docs.ghost.org/admin-api#token-authentication,
https://docs.ghost.org/admin-api/posts/creating-a-post, https://docs.ghost.org/admin-api/posts/sending-a-post):
every request carries `Authorization: Ghost <JWT>`, a token signed HS256 with the hex-decoded
secret of the Admin API key `id:secret`, `kid` = id, `aud` = `/admin/`, valid for 5 minutes, so
one is made per request. The post is created as a draft with the internal tag `#publisher-<key>`
(found again by `filter=tag:hash-publisher-<key>`), then published with
`?newsletter=<slug>&email_segment=<segment>`, which is what makes Ghost email it; a run killed in
between publishes the same draft. `--proof` is Ghost's email preview send
(`POST email_previews/posts/{id}/`). The HTML goes in an HTML card so the conversion to Ghost's
editor format keeps it as written; Ghost wraps it in the newsletter's own template, which has the
unsubscribe link, and fills `%%{first_name, "…"}%%` and `%%{unsubscribe_url}%%`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Self

from publisher.channels import ChannelContext, Facts, Hints, table_where
from publisher.channels.http import HttpClient
from publisher.channels.platform import (
    Campaign,
    Draft,
    body_of,
    draft_for,
    quoted,
    required,
    secret,
)
from publisher.config.settings import Site
from publisher.edition.newsletter import placeholders
from publisher.errors import ConfigError
from publisher.model import Newsletter

if TYPE_CHECKING:
    import requests

NAME = "ghost"
SECRETS = ("GHOST_ADMIN_API_KEY",)
API = "/ghost/api/admin/"
KNOWN_SETTINGS = frozenset({"base_url", "timeout", "api_key_env", "newsletter", "email_segment"})
TOKEN_SECONDS = 5 * 60  # Ghost refuses tokens that live longer
ADMIN_KEY = re.compile(r"([0-9a-f]{24}):((?:[0-9a-f]{2})+)")
UNSENT = frozenset({"draft"})


def tags(key: str, default: str) -> str:
    """Ghost's email replacement strings for publisher's placeholders."""
    if key == placeholders.UNSUBSCRIBE_URL:
        return "%%{unsubscribe_url}%%"
    return f'%%{{first_name, "{quoted(default)}"}}%%' if default else "%%{first_name}%%"


def escape(text: str, html: bool) -> str:
    """Ghost's replacement opener in article HTML, written so it is not filled in."""
    return text.replace("%%{", "%%&#123;") if html else text


def admin_token(key_id: str, secret_hex: str, *, now: float | None = None) -> str:
    """A fresh Admin API JWT (HS256, kid = key id, aud /admin/, 5 minutes)."""
    issued = int(time.time() if now is None else now)
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key_id}).encode())
    claims = _b64(json.dumps({"iat": issued, "exp": issued + TOKEN_SECONDS,
                              "aud": "/admin/"}).encode())
    signature = hmac.new(bytes.fromhex(secret_hex), f"{head}.{claims}".encode(), hashlib.sha256)
    return f"{head}.{claims}.{_b64(signature.digest())}"


def _b64(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class GhostChannel:
    """One Ghost site's Admin API, emailing one newsletter."""

    facts: ClassVar[Facts] = Facts(kind="campaign", idempotent=True, secrets=SECRETS,
                                   stand_in="0" * 24 + ":" + "00" * 32,  # ADMIN_KEY's shape
                                   docs="https://docs.ghost.org/admin-api/posts/sending-a-post")
    name = NAME

    def __init__(self, http: HttpClient, site: Site, admin_key: str, *, newsletter: str,
                 segment: str = "all", table: str = "") -> None:
        self.http = http
        self.table = table or table_where(NAME)  # where a refusal of its settings points
        self.site = site
        self.key_id, _, self.secret_hex = admin_key.partition(":")
        self.newsletter = newsletter
        self.segment = segment

    @classmethod
    def from_config(cls, context: ChannelContext) -> Self:
        """Build from [channels.ghost] (base_url, newsletter, email_segment, timeout…)."""
        context.settings.allow(KNOWN_SETTINGS)
        base_url = required(context, "base_url", '"https://your-site.ghost.io"')
        newsletter = required(context, "newsletter", '"default-newsletter" (its slug)')
        key = secret(context, SECRETS[0], "sending through Ghost")
        if not ADMIN_KEY.fullmatch(key):
            raise ConfigError(f"{SECRETS[0]} is not an Admin API key (id:secret)",
                              where="environment",
                              fix="copy the Admin API key of a custom integration"
                                  " (Settings → Integrations)")
        return cls(context.client(base_url), context.site, key, newsletter=newsletter,
                   segment=context.settings.text("email_segment", "all"),
                   table=context.settings.where)

    def draft(self, newsletter: Newsletter, key: str, title: str) -> Draft:
        """The edition with Ghost's replacement strings."""
        return draft_for(newsletter, key, self.site, title, tags, escape)

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One Admin API request under a token made for it."""
        headers = {"Authorization": f"Ghost {admin_token(self.key_id, self.secret_hex)}",
                   "Accept-Version": "v5.0"}
        return self.http.request(method, API + path, headers=headers, **kwargs)

    def preflight(self) -> Hints:
        """The key works and the newsletter is an active one."""
        found = self._call("GET", "newsletters/", params={"limit": "all"}).json()
        active = [n["slug"] for n in found.get("newsletters", []) if n.get("status") == "active"]
        if self.newsletter not in active:
            raise ConfigError(f"Ghost has no active newsletter {self.newsletter!r}",
                              where=f"{self.table} newsletter",
                              fix=f"use one of: {', '.join(active) or '(none)'}")
        return {}

    def find(self, draft: Draft) -> Campaign | None:
        """The post carrying this edition's internal tag."""
        found = self._call("GET", "posts/", params={
            "filter": f"tag:hash-{draft.tag}", "limit": "1", "fields": "id,status,url"}).json()
        posts = found.get("posts") or []
        return _campaign(posts[0]) if posts else None

    def create(self, draft: Draft) -> Campaign:
        """A draft post holding the newsletter in an HTML card, tagged with the edition."""
        card = f"<!--kg-card-begin: html-->\n{body_of(draft.html)}\n<!--kg-card-end: html-->"
        post = {"title": draft.title, "html": card, "status": "draft",
                "tags": [{"name": f"#{draft.tag}"}]}
        found = self._call("POST", "posts/", params={"source": "html"},
                           json={"posts": [post]}).json()
        return _campaign(found["posts"][0])

    def start(self, campaign: Campaign, draft: Draft) -> Campaign:
        """Publish the draft with the newsletter: Ghost emails it."""
        current = self._call("GET", f"posts/{campaign.id}/").json()["posts"][0]
        found = self._call(
            "PUT", f"posts/{campaign.id}/",
            params={"newsletter": self.newsletter, "email_segment": self.segment},
            json={"posts": [{"status": "published", "updated_at": current["updated_at"]}]},
        ).json()
        return _campaign(found["posts"][0])

    def test_send(self, campaign: Campaign, draft: Draft, addresses: Sequence[str]) -> None:
        """Ghost's test email of the post to the proof addresses."""
        self._call("POST", f"email_previews/posts/{campaign.id}/",
                   json={"emails": list(addresses), "newsletter": self.newsletter})

    def lookup(self, campaign_id: str) -> Campaign:
        """The post's status, with its email's when it has one."""
        found = self._call("GET", f"posts/{campaign_id}/", params={"include": "email"}).json()
        return _campaign(found["posts"][0])

    def close(self) -> None:
        """Release pooled connections."""
        self.http.close()


def _campaign(post: Mapping[str, Any]) -> Campaign:
    """A Ghost post as a Campaign; its state names the email's status once there is one."""
    status = str(post.get("status", ""))
    email = post.get("email") or {}
    state = f"{status}, email {email['status']}" if email.get("status") else status
    return Campaign(str(post["id"]), state, status not in UNSENT, str(post.get("url") or ""))
