"""Mailchimp: the newsletter becomes one regular campaign to an audience.

Contract (https://mailchimp.com/developer/marketing/docs/fundamentals/,
https://mailchimp.com/developer/marketing/api/campaigns/,
https://mailchimp.com/developer/marketing/api/campaign-content/,
https://mailchimp.com/developer/marketing/api/campaigns/send-test-email/): the API lives on the
data centre named by the key's suffix (`…-us6` → https://us6.api.mailchimp.com/3.0), with HTTP
basic auth (any user, the key as password). Three steps: `POST /campaigns` (its title carries the
edition's tag, so `GET /campaigns?list_id=…` finds it again), `PUT /campaigns/{id}/content`,
`POST /campaigns/{id}/actions/send`; a run killed between them resumes with the same campaign
and sends it only while its status is still `save`. `--proof` is `/actions/test`. Merge tags
(https://mailchimp.com/help/all-the-merge-tags-cheat-sheet/): `*|UNSUB|*`, `*|FNAME|*`; a `*|`
typed in the article is written `*&#124;` so Mailchimp does not fill it in.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar, Self

from publisher.channels import ChannelContext, Facts, Hints, table_where
from publisher.channels.http import HttpClient
from publisher.channels.platform import Campaign, Draft, draft_for, required, secret
from publisher.config.secrets import remember
from publisher.config.settings import Site
from publisher.edition.newsletter import placeholders
from publisher.errors import ConfigError, PermanentDeliveryError
from publisher.model import Newsletter

NAME = "mailchimp"
SECRETS = ("MAILCHIMP_API_KEY",)
BASE_URL = "https://{dc}.api.mailchimp.com/3.0"
KNOWN_SETTINGS = frozenset({"base_url", "timeout", "api_key_env", "list_id"})
API_KEY = re.compile(r"[0-9a-f]{32}-(us\d+)")
PAGE = 1000  # the largest `count` Mailchimp pages by
UNSENT = frozenset({"save"})


def tags(key: str, default: str) -> str:
    """Mailchimp merge tags for publisher's placeholders."""
    if key == placeholders.UNSUBSCRIBE_URL:
        return "*|UNSUB|*"
    if default:
        return f"*|IF:FNAME|**|FNAME|**|ELSE:|*{default}*|END:IF|*"
    return "*|FNAME|*"


def escape(text: str, html: bool) -> str:
    """A merge-tag opener in article text, written so Mailchimp shows it as typed."""
    return text.replace("*|", "*&#124;" if html else "*\u200c|")


def data_centre(key: str) -> str:
    """The `usX` suffix of a Mailchimp API key."""
    found = API_KEY.fullmatch(key)
    if not found:
        raise ConfigError(f"{SECRETS[0]} is not a Mailchimp API key (32 hex digits, -usN)",
                          where="environment",
                          fix="copy the key from Profile → Extras → API keys")
    return found.group(1)


class MailchimpChannel:
    """The Marketing API's campaigns, for one audience."""

    facts: ClassVar[Facts] = Facts(kind="campaign", idempotent=True, secrets=SECRETS,
                                   stand_in="0" * 32 + "-us1",  # API_KEY's shape
                                   docs="https://mailchimp.com/developer/marketing/api/campaigns/")
    name = NAME

    def __init__(self, http: HttpClient, site: Site, *, list_id: str, table: str = "") -> None:
        self.http = http
        self.table = table or table_where(NAME)  # where a refusal of its settings points
        self.site = site
        self.list_id = list_id

    @classmethod
    def from_config(cls, context: ChannelContext) -> Self:
        """Build from [channels.mailchimp] (list_id, base_url with {dc}, timeout, api_key_env)."""
        context.settings.allow(KNOWN_SETTINGS)
        list_id = required(context, "list_id", '"a1b2c3d4e5" (the Audience ID)')
        key = secret(context, SECRETS[0], "sending through Mailchimp")
        base_url = context.settings.text("base_url", BASE_URL).replace("{dc}", data_centre(key))
        basic = base64.b64encode(f"publisher:{key}".encode()).decode()
        remember(basic)  # the header's encoded form is masked like the key itself
        http = context.client(base_url, headers={"Authorization": f"Basic {basic}"})
        return cls(http, context.site, list_id=list_id, table=context.settings.where)

    def draft(self, newsletter: Newsletter, key: str, title: str) -> Draft:
        """The edition with Mailchimp's merge tags."""
        return draft_for(newsletter, key, self.site, title, tags, escape)

    def preflight(self) -> Hints:
        """The key works on its data centre and the audience exists."""
        self.http.request("GET", "/ping")
        try:
            self.http.request("GET", f"/lists/{self.list_id}")
        except PermanentDeliveryError as exc:
            if "HTTP 404" not in exc.problem:
                raise
            raise ConfigError(f"Mailchimp has no audience {self.list_id!r}",
                              where=f"{self.table} list_id",
                              fix="use the Audience ID (Audience → Settings)") from exc
        return {}

    def find(self, draft: Draft) -> Campaign | None:
        """The campaign whose title carries this edition's tag."""
        for row in self._campaigns():
            if f"[{draft.tag}]" in str((row.get("settings") or {}).get("title", "")):
                return _campaign(row)
        return None

    def _campaigns(self) -> Iterator[dict[str, Any]]:
        """The audience's campaigns, newest first, page by page."""
        offset = 0
        while True:
            answer = self.http.request("GET", "/campaigns", params={
                "list_id": self.list_id, "count": PAGE, "offset": offset,
                "sort_field": "create_time", "sort_dir": "DESC"}).json()
            rows = answer.get("campaigns") or []
            yield from rows
            offset += len(rows)
            if not rows or offset >= int(answer.get("total_items", 0)):
                return

    def create(self, draft: Draft) -> Campaign:
        """A regular campaign in status `save`, titled with the edition's tag."""
        body = {"type": "regular", "recipients": {"list_id": self.list_id}, "settings": {
            "subject_line": draft.subject, "preview_text": draft.preheader,
            "title": f"{draft.title} [{draft.tag}]", "from_name": draft.from_name,
            "reply_to": draft.from_email}}
        return _campaign(self.http.request("POST", "/campaigns", json=body).json())

    def start(self, campaign: Campaign, draft: Draft) -> Campaign:
        """Set the content, then send."""
        self._content(campaign, draft)
        self.http.request("POST", f"/campaigns/{campaign.id}/actions/send")
        return self.lookup(campaign.id)

    def _content(self, campaign: Campaign, draft: Draft) -> None:
        """The campaign's HTML (Mailchimp makes the plain-text part from it)."""
        self.http.request("PUT", f"/campaigns/{campaign.id}/content", json={"html": draft.html})

    def test_send(self, campaign: Campaign, draft: Draft, addresses: Sequence[str]) -> None:
        """Mailchimp's test email (the campaign needs its content first)."""
        self._content(campaign, draft)
        self.http.request("POST", f"/campaigns/{campaign.id}/actions/test",
                          json={"test_emails": list(addresses), "send_type": "html"})

    def lookup(self, campaign_id: str) -> Campaign:
        """The campaign's current status."""
        return _campaign(self.http.request("GET", f"/campaigns/{campaign_id}").json())

    def close(self) -> None:
        """Release pooled connections."""
        self.http.close()


def _campaign(row: Mapping[str, Any]) -> Campaign:
    """A Mailchimp campaign as a Campaign."""
    status = str(row.get("status", ""))
    return Campaign(str(row["id"]), status, status not in UNSENT,
                    str(row.get("archive_url") or ""))
