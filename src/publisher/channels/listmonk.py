"""listmonk (self-hosted): the newsletter becomes one campaign to the configured lists.

Contract (https://listmonk.app/docs/apis/apis/, https://listmonk.app/docs/apis/campaigns/, and
its handlers, knadh/listmonk cmd/campaigns.go and internal/core/campaigns.go): an API user and
token, sent as `Authorization: token user:token`. `POST /api/campaigns` always makes a draft; it
carries the edition's tag, so `GET /api/campaigns?tag=…` finds it again. `PUT
/api/campaigns/{id}/status` with `running` starts it, allowed only from draft or paused, so a
run killed between the two steps starts the same draft. `--proof` is `POST
/api/campaigns/{id}/test`, which validates the whole campaign again and mails only addresses that
are listmonk subscribers. Bodies are Go templates (https://listmonk.app/docs/templating/):
`{{ UnsubscribeURL }}` and `{{ .Subscriber.FirstName }}`; a `{{` in the article is written
`{{ "{{" }}` so it shows as typed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

from publisher.channels import ChannelContext, Facts, Hints, table_where
from publisher.channels.esp import mailbox
from publisher.channels.http import HttpClient
from publisher.channels.platform import Campaign, Draft, draft_for, quoted, required, secret
from publisher.config.settings import Site
from publisher.edition.newsletter import placeholders
from publisher.errors import ConfigError
from publisher.model import Newsletter

NAME = "listmonk"
SECRETS = ("LISTMONK_API_TOKEN",)
KNOWN_SETTINGS = frozenset({"base_url", "timeout", "api_key_env", "api_user", "lists",
                            "template_id"})
UNSENT = frozenset({"draft"})


def tags(key: str, default: str) -> str:
    """listmonk's template expressions for publisher's placeholders."""
    if key == placeholders.UNSUBSCRIBE_URL:
        return "{{ UnsubscribeURL }}"
    if default:
        return f'{{{{ or .Subscriber.FirstName "{quoted(default)}" }}}}'
    return "{{ .Subscriber.FirstName }}"


def escape(text: str, html: bool) -> str:
    """Go template openers in article text, written so they render literally."""
    return text.replace("{{", '{{ "{{" }}')


class ListmonkChannel:
    """One listmonk instance's campaigns API."""

    facts: ClassVar[Facts] = Facts(kind="campaign", idempotent=True, secrets=SECRETS,
                                   docs="https://listmonk.app/docs/apis/campaigns/")
    name = NAME

    def __init__(self, http: HttpClient, site: Site, *, lists: Sequence[object],
                 template_id: int | None = None, table: str = "") -> None:
        self.http = http
        self.table = table or table_where(NAME)  # where a refusal of its settings points
        self.site = site
        self.lists = [str(name) for name in lists]
        self.template_id = template_id
        self._ids: list[int] | None = None

    @classmethod
    def from_config(cls, context: ChannelContext) -> Self:
        """Build from [channels.listmonk] (base_url, api_user, lists, template_id, timeout)."""
        settings = context.settings
        settings.allow(KNOWN_SETTINGS)
        base_url = required(context, "base_url", '"https://lists.example.com"')
        user = required(context, "api_user", '"publisher"')
        lists = settings.values.get("lists")
        if not isinstance(lists, list) or not lists:
            raise ConfigError("lists must name at least one list", where=settings.where,
                              fix='set lists = ["Newsletter"] (names or ids)')
        template = settings.integer("template_id", 0) or None
        token = secret(context, SECRETS[0], "sending through listmonk")
        http = context.client(base_url, headers={"Authorization": f"token {user}:{token}"})
        return cls(http, context.site, lists=lists, template_id=template, table=settings.where)

    def draft(self, newsletter: Newsletter, key: str, title: str) -> Draft:
        """The edition in listmonk's template language."""
        return draft_for(newsletter, key, self.site, title, tags, escape)

    def preflight(self) -> Hints:
        """The API user works and every configured list exists."""
        self.list_ids()
        return {}

    def list_ids(self) -> list[int]:
        """The configured lists (by name or id) as listmonk ids."""
        if self._ids is None:
            answer = self.http.request("GET", "/api/lists", params={"per_page": "all"}).json()
            known = {str(row["id"]): int(row["id"]) for row in answer["data"]["results"]}
            known |= {str(row["name"]): int(row["id"]) for row in answer["data"]["results"]}
            missing = [name for name in self.lists if name not in known]
            if missing:
                raise ConfigError(f"listmonk has no list {missing[0]!r}",
                                  where=f"{self.table} lists",
                                  fix=f"use names or ids of: {', '.join(sorted(known)) or '-'}")
            self._ids = [known[name] for name in self.lists]
        return self._ids

    def find(self, draft: Draft) -> Campaign | None:
        """The campaign tagged with this edition."""
        answer = self.http.request("GET", "/api/campaigns", params={
            "tag": draft.tag, "per_page": "all", "no_body": "true"}).json()
        for row in answer["data"].get("results") or []:
            if draft.tag in (row.get("tags") or []):
                return _campaign(row)
        return None

    def create(self, draft: Draft) -> Campaign:
        """A draft campaign to the lists, tagged with the edition."""
        answer = self.http.request("POST", "/api/campaigns", json=self._fields(draft)).json()
        return _campaign(answer["data"])

    def _fields(self, draft: Draft) -> dict[str, Any]:
        """The campaign as listmonk validates it (create and test take the same fields)."""
        fields: dict[str, Any] = {
            "name": f"{draft.title} [{draft.tag}]", "subject": draft.subject,
            "lists": self.list_ids(), "from_email": mailbox(draft.from_name, draft.from_email),
            "content_type": "html", "body": draft.html, "altbody": draft.text,
            "type": "regular", "messenger": "email", "tags": [draft.tag],
        }
        if self.template_id is not None:
            fields["template_id"] = self.template_id
        return fields

    def start(self, campaign: Campaign, draft: Draft) -> Campaign:
        """Set it running: listmonk mails the lists."""
        answer = self.http.request("PUT", f"/api/campaigns/{campaign.id}/status",
                                   json={"status": "running"}).json()
        return _campaign(answer["data"])

    def test_send(self, campaign: Campaign, draft: Draft, addresses: Sequence[str]) -> None:
        """listmonk's campaign test to the proof addresses (they must be subscribers)."""
        self.http.request("POST", f"/api/campaigns/{campaign.id}/test",
                          json={**self._fields(draft), "subscribers": list(addresses)})

    def lookup(self, campaign_id: str) -> Campaign:
        """The campaign's current status."""
        answer = self.http.request("GET", f"/api/campaigns/{campaign_id}",
                                   params={"no_body": "true"}).json()
        return _campaign(answer["data"])

    def close(self) -> None:
        """Release pooled connections."""
        self.http.close()


def _campaign(row: Mapping[str, Any]) -> Campaign:
    """A listmonk campaign as a Campaign."""
    status = str(row.get("status", ""))
    return Campaign(str(row["id"]), status, status not in UNSENT)
