"""LinkedIn: a member's or an organization's post through the versioned Posts API.

API: https://learn.microsoft.com/en-us/linkedin/marketing/community-management/shares/posts-api
— `POST /rest/posts` with `LinkedIn-Version: YYYYMM` and `X-Restli-Protocol-Version: 2.0.0`;
`author` is `urn:li:person:…` or `urn:li:organization:…`; the link goes as `content.article`
(source, title, description, thumbnail); the new post's URN comes back in `x-restli-id`. The
thumbnail is an image URN from the Images API: `POST /rest/images?action=initializeUpload`, then a
`PUT` of the bytes to the `uploadUrl` it returns (https://learn.microsoft.com/en-us/linkedin/
marketing/community-management/shares/images-api).

`commentary` is "little" text (https://learn.microsoft.com/en-us/linkedin/marketing/
community-management/shares/little-text-format): `| { } @ [ ] ( ) < > # \\ * _ ~` are reserved
and, unescaped, make LinkedIn cut the post short while answering 201. `little_text` escapes them,
keeps URLs as written (so they still link) and turns `#tag` into a hashtag template.

LinkedIn has no idempotency key: a post whose answer was lost stays uncertain in the ledger
until `--retry-pending`. Corrections: the commentary is changed with a `PARTIAL_UPDATE`
(https://learn.microsoft.com/en-us/linkedin/marketing/community-management/shares/posts-api#
update-posts) and a post deleted with `DELETE /rest/posts/{urn}` (204; 404 once gone).
Rate-limited calls answer 429; daily limits reset at midnight UTC and no reset header is sent
(https://learn.microsoft.com/en-us/linkedin/shared/api-guide/concepts/rate-limits).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self
from urllib.parse import quote

from publisher.channels import ChannelContext, Facts, Hints, Receipt
from publisher.channels.http import HttpClient
from publisher.channels.images import ImageLoader, thumbnail_to_upload
from publisher.errors import ConfigError, PermanentDeliveryError
from publisher.model import SocialPost

NAME = "linkedin"
LIMIT = 3000
SECRETS = ("LINKEDIN_ACCESS_TOKEN",)
API_BASE = "https://api.linkedin.com"
VERSION = "202605"  # LinkedIn-Version; each version is served for at least a year
THUMB_MAX_BYTES = 5_000_000
RESERVED = "\\|{}@[]()<>#*_~"
AUTHOR_RE = re.compile(r"^urn:li:(person|organization):([^:\s]+)$")
# A URL is kept as written; a hashtag becomes {hashtag|\#|name}; the rest is escaped.
TOKEN_RE = re.compile(r"(?P<url>https?://\S+)|(?<!\S)#(?P<tag>\w+)")
SETTINGS = frozenset({"author", "version", "visibility", "attach_image", "api_base",
                      "access_token_env", "timeout"})
TOKEN_FIX = (f"create a token with w_member_social (w_organization_social for a page) and set "
             f"{SECRETS[0]}; LinkedIn tokens last 60 days")


def little_text(text: str) -> str:
    """Plain text as LinkedIn's little format: reserved characters escaped, #tags as hashtags."""
    out: list[str] = []
    pos = 0
    for match in TOKEN_RE.finditer(text):
        out.append(_escape(text[pos:match.start()]))
        url, tag = match.group("url"), match.group("tag")
        out.append(url if url else "{hashtag|\\#|" + tag + "}")
        pos = match.end()
    out.append(_escape(text[pos:]))
    return "".join(out)


def _escape(text: str) -> str:
    """Backslash before every reserved character."""
    return "".join("\\" + c if c in RESERVED else c for c in text)


@dataclass
class LinkedInChannel:
    """One author: a member or an organization page."""

    http: HttpClient
    author: str
    attach_image: bool = True  # the article card's thumbnail
    visibility: str = "PUBLIC"
    name: str = NAME
    # No idempotency key: a post whose answer was lost stays uncertain. Commentary edits in place.
    facts: ClassVar[Facts] = Facts(
        kind="social", network="linkedin", can_edit=True, can_delete=True, attaches_images=True,
        secrets=SECRETS, docs="https://learn.microsoft.com/en-us/linkedin/marketing/"
                              "community-management/shares/posts-api",
    )
    _images: dict[str, str] = field(default_factory=dict)  # post key → image URN

    @classmethod
    def from_config(cls, context: ChannelContext) -> Self:
        """The channel for `[channels.linkedin]`: `author` (a person or organization URN).

        Optional: `version` (LinkedIn-Version), `api_base`, `access_token_env`, `visibility`,
        `attach_image = false` to post the article card without a thumbnail.
        """
        settings = context.settings
        settings.allow(SETTINGS)
        author = settings.text("author")
        _author_parts(author, where=settings.where)
        version = settings.text("version", VERSION)
        if not re.fullmatch(r"20\d{4}", version):
            raise ConfigError(f"version {version!r} is not YYYYMM", where=settings.where,
                              fix=f'set version = "{VERSION}"')
        visibility = settings.text("visibility", "PUBLIC")
        if visibility not in ("PUBLIC", "CONNECTIONS", "LOGGED_IN"):
            raise ConfigError(f"unknown visibility {visibility!r}", where=settings.where,
                              fix='use "PUBLIC", "CONNECTIONS" or "LOGGED_IN"')
        token = context.secret(settings.text("access_token_env", SECRETS[0]),
                               purpose="posting to LinkedIn")
        headers = {"Authorization": f"Bearer {token}", "LinkedIn-Version": version,
                   "X-Restli-Protocol-Version": "2.0.0"}
        http = context.client(settings.text("api_base", API_BASE), headers=headers)
        return cls(http, author=author, visibility=visibility,
                   attach_image=settings.flag("attach_image", True))

    def preflight(self) -> Hints:
        """Check the token and that it may post as the configured author."""
        kind, ident = _author_parts(self.author)
        if kind == "person":  # OpenID userinfo: the member the token belongs to
            sub = str(self._call("GET", "/v2/userinfo").json().get("sub") or "")
            if sub != ident:
                raise PermanentDeliveryError(
                    f"the token belongs to urn:li:person:{sub}, not {self.author}", where=NAME,
                    fix=f'set author = "urn:li:person:{sub}" in [channels.linkedin]')
        else:
            self._call("GET", f"/rest/organizations/{ident}")
        return {"limit": LIMIT}

    def prepare_media(self, post: SocialPost, *, key: str,
                      images: ImageLoader | None = None) -> None:
        """Upload the card's thumbnail through the Images API, once per post key."""
        upload = thumbnail_to_upload(post, key, self._images, THUMB_MAX_BYTES, images,
                                     allowed=self.attach_image)
        if upload is None:
            return
        _, image = upload
        started = self._call("POST", "/rest/images", params={"action": "initializeUpload"},
                             json={"initializeUploadRequest": {"owner": self.author}}).json()
        value = started["value"]
        self._call("PUT", str(value["uploadUrl"]), data=image.data,
                   headers={"Content-Type": image.mime})
        self._images[key] = str(value["image"])

    def send_post(
        self, post: SocialPost, *, key: str, reply_to: Receipt | None, root: Receipt | None,
        attempted_before: bool = False,
    ) -> Receipt:
        """Create the post; its URN is the x-restli-id of the answer."""
        body: dict[str, Any] = {
            "author": self.author, "commentary": little_text(post.text),
            "visibility": self.visibility,
            "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [],
                             "thirdPartyDistributionChannels": []},
            "lifecycleState": "PUBLISHED", "isReshareDisabledByAuthor": False,
        }
        card = post.card
        if card is not None and card.uri:
            self.prepare_media(post, key=key)
            article: dict[str, str] = {"source": card.uri, "title": card.title or card.uri}
            if card.description:
                article["description"] = card.description
            if key in self._images:
                article["thumbnail"] = self._images[key]
            body["content"] = {"article": article}
        response = self._call("POST", "/rest/posts", json=body, ok=(201,))
        urn = response.headers.get("x-restli-id", "")
        if not urn:
            raise PermanentDeliveryError("LinkedIn answered 201 without an x-restli-id",
                                         where=NAME, fix="check the post on LinkedIn")
        return Receipt(urn, f"https://www.linkedin.com/feed/update/{urn}/", {"urn": urn})

    def edit_post(self, receipt: Receipt, post: SocialPost, *, attempted_before: bool) -> bool:
        """Give the live post the new commentary; False when it has it already."""
        path = f"/rest/posts/{quote(receipt.provider_id, safe='')}"
        commentary = little_text(post.text)
        if self._call("GET", path).json().get("commentary") == commentary:
            return False  # an earlier, interrupted run made this edit
        self._call("POST", path, json={"patch": {"$set": {"commentary": commentary}}},
                   headers={"X-RestLi-Method": "PARTIAL_UPDATE"})
        return True

    def delete_post(self, receipt: Receipt, *, attempted_before: bool) -> bool:
        """Delete the post; False when it is gone already (404)."""
        path = f"/rest/posts/{quote(receipt.provider_id, safe='')}"
        return bool(self._call("DELETE", path, ok=(204, 404)).status_code == 204)

    def close(self) -> None:
        """Release connections."""
        self.http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One API call; a rejected token or an inactive version is explained in one line."""
        try:
            return self.http.request(method, path, **kwargs)
        except PermanentDeliveryError as exc:
            if "HTTP 401" in exc.problem:
                raise PermanentDeliveryError("the access token was rejected (HTTP 401)",
                                             where=NAME, fix=TOKEN_FIX) from exc
            if "HTTP 426" in exc.problem:
                raise PermanentDeliveryError(
                    f"LinkedIn no longer serves version {self.http.headers['LinkedIn-Version']}",
                    where=NAME, fix='set version = "YYYYMM" (an active one) in '
                                    "[channels.linkedin]") from exc
            raise


def _author_parts(author: str, *, where: str = "[channels.linkedin]") -> tuple[str, str]:
    """('person' | 'organization', id) of an author URN, or a ConfigError saying how to write it."""
    match = AUTHOR_RE.match(author)
    if match is None:
        raise ConfigError(
            f"author {author!r} is not a person or organization URN", where=where,
            fix='set author = "urn:li:person:<id>" (your member id) or '
                '"urn:li:organization:<id>"')
    return match.group(1), match.group(2)
