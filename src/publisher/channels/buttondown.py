"""Buttondown: the newsletter goes to Buttondown's own list as one email.

Contract (https://docs.buttondown.com/api-authentication, https://docs.buttondown.com/api-emails-create,
https://docs.buttondown.com/api-emails-update, https://docs.buttondown.com/api-emails-send-draft,
https://docs.buttondown.com/api-idempotency-keys, https://docs.buttondown.com/api-filtering):
`Authorization: Token <key>`. The email is created as a draft carrying the edition's tag in its
`metadata`, then PATCHed to `about_to_send`, so a run killed in between finds the draft
(`GET /v1/emails`, every status) and sends that one. `--proof` is Buttondown's send-draft.
Buttondown templates with Django (https://docs.buttondown.com/using-templating): the unsubscribe
link is `{{ unsubscribe_url }}`, and `{{`/`{%`/`{#` in the article are written with
`{% templatetag %}` so they show as typed. Subscribers carry no name field, so the greeting uses
its default. `--at` is Buttondown's own scheduling: the draft becomes `scheduled` with that
`publish_date`, and `publish unschedule` sets it back to a draft
(https://docs.buttondown.com/scheduling-emails-via-the-api).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

from publisher.channels import ChannelContext, Facts, Hints, table_where
from publisher.channels.http import HttpClient
from publisher.channels.platform import Campaign, Draft, draft_for, secret
from publisher.config.settings import Site
from publisher.edition.newsletter import placeholders
from publisher.errors import ConfigError, PermanentDeliveryError
from publisher.model import Newsletter
from publisher.schedule import Window

NAME = "buttondown"
SECRETS = ("BUTTONDOWN_API_KEY",)
BASE_URL = "https://api.buttondown.com"
KNOWN_SETTINGS = frozenset({"base_url", "timeout", "api_key_env", "newsletter"})
# Listing without a status filter hides drafts on older API versions
# (https://docs.buttondown.com/api-changelog-2025-06-01), so every status is asked for.
STATUSES = ("draft", "scheduled", "about_to_send", "in_flight", "sent")
UNSENT = frozenset({"draft"})
# The body's format is set explicitly: "plaintext" mode keeps HTML as written instead of
# treating it as Markdown (https://docs.buttondown.com/api-emails-create, body).
RAW_MODE = "<!-- buttondown-editor-mode: plaintext -->\n"
DJANGO_OPENERS = re.compile(r"\{([{%#])")
TEMPLATETAG = {"{": "openvariable", "%": "openblock", "#": "opencomment"}


def tags(key: str, default: str) -> str:
    """Buttondown's template variables for publisher's placeholders."""
    return "{{ unsubscribe_url }}" if key == placeholders.UNSUBSCRIBE_URL else default


def escape(text: str, html: bool) -> str:
    """Django template openers in article text, written so they render literally."""
    return DJANGO_OPENERS.sub(lambda m: f"{{% templatetag {TEMPLATETAG[m.group(1)]} %}}", text)


class ButtondownChannel:
    """Buttondown's v1 API for one newsletter."""

    facts: ClassVar[Facts] = Facts(kind="campaign", idempotent=True, secrets=SECRETS,
                                   schedule=Window(),  # no documented limit on publish_date
                                   docs="https://docs.buttondown.com/api-emails-create")
    name = NAME

    def __init__(self, http: HttpClient, site: Site, *, newsletter: str = "",
                 table: str = "") -> None:
        self.http = http
        self.table = table or table_where(NAME)  # where a refusal of its settings points
        self.site = site
        self.newsletter = newsletter

    @classmethod
    def from_config(cls, context: ChannelContext) -> Self:
        """Build from [channels.buttondown] (base_url, timeout, api_key_env, newsletter)."""
        context.settings.allow(KNOWN_SETTINGS)
        key = secret(context, SECRETS[0], "sending through Buttondown")
        http = context.client(context.settings.text("base_url", BASE_URL), headers={
            "Authorization": f"Token {key}", "Accept": "application/json"})
        return cls(http, context.site, newsletter=context.settings.text("newsletter"),
                   table=context.settings.where)

    def draft(self, newsletter: Newsletter, key: str, title: str) -> Draft:
        """The edition in Buttondown's template language."""
        return draft_for(newsletter, key, self.site, title, tags, escape)

    def preflight(self) -> Hints:
        """The key works and, when named, the newsletter is the key's."""
        found = self.http.request("GET", "/v1/newsletters").json().get("results", [])
        names = [str(n.get("username", "")) for n in found]
        if self.newsletter and self.newsletter not in names:
            raise ConfigError(
                f"newsletter {self.newsletter!r} is not one this API key can send to",
                where=f"{self.table} newsletter",
                fix=f"use one of: {', '.join(names) or '(none)'}, or the key of that newsletter",
            )
        return {}

    def find(self, draft: Draft) -> Campaign | None:
        """The email whose metadata carries this edition's tag."""
        for email in self._emails():
            if (email.get("metadata") or {}).get("publisher") == draft.tag:
                return _campaign(email)
        return None

    def _emails(self) -> Iterator[dict[str, Any]]:
        """Every email, following `next` through the pages."""
        page: str | None = "/v1/emails"
        params: dict[str, Any] | None = {"status": list(STATUSES)}
        while page:
            answer = self.http.request("GET", page, params=params).json()
            yield from answer.get("results", [])
            page, params = answer.get("next"), None  # `next` already carries the query

    def create(self, draft: Draft) -> Campaign:
        """A draft email tagged with the edition; its Idempotency-Key guards a retried POST."""
        body = {"subject": draft.subject, "body": RAW_MODE + draft.html, "status": "draft",
                "description": draft.preheader, "metadata": {"publisher": draft.tag}}
        email = self.http.request("POST", "/v1/emails", json=body,
                                  headers={"X-Idempotency-Key": f"{draft.tag}-create"}).json()
        return _campaign(email)

    def start(self, campaign: Campaign, draft: Draft) -> Campaign:
        """about_to_send: Buttondown mails the list (scheduled: at the draft's send_at)."""
        change: dict[str, str] = {"status": "about_to_send"}
        if draft.send_at is not None:
            when = draft.send_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            change = {"status": "scheduled", "publish_date": when}
        email = self.http.request("PATCH", f"/v1/emails/{campaign.id}", json=change).json()
        return _campaign(email)

    def open_schedule(self, at: datetime) -> str:
        """Buttondown needs no handle: the scheduled email is cancelled by its own id."""
        return ""

    def cancel_schedule(self, handle: str, provider_ids: Sequence[str]) -> int:
        """Set each scheduled email back to a draft; one already a draft counts as done."""
        for email_id in provider_ids:
            status = self.lookup(email_id).state
            if status == "scheduled":
                self.http.request("PATCH", f"/v1/emails/{email_id}", json={"status": "draft"})
            elif status != "draft":
                raise PermanentDeliveryError(
                    f"email {email_id} is {status} and can no longer be unscheduled",
                    where=NAME, fix="it went out already; nothing to unschedule")
        return len(provider_ids)

    def test_send(self, campaign: Campaign, draft: Draft, addresses: Sequence[str]) -> None:
        """Buttondown's send-draft to the proof addresses."""
        self.http.request("POST", f"/v1/emails/{campaign.id}/send-draft",
                          json={"recipients": list(addresses)})

    def lookup(self, campaign_id: str) -> Campaign:
        """The email's current status."""
        return _campaign(self.http.request("GET", f"/v1/emails/{campaign_id}").json())

    def close(self) -> None:
        """Release pooled connections."""
        self.http.close()


def _campaign(email: Mapping[str, Any]) -> Campaign:
    """A Buttondown email as a Campaign."""
    status = str(email.get("status", ""))
    return Campaign(str(email["id"]), status, status not in UNSENT,
                    str(email.get("absolute_url") or ""))
