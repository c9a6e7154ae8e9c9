"""`publish subscribers sync`: pull each email provider's suppressions into the subscriber list.

Idempotent: `SubscriberStore.suppress` only ever strengthens a status, so a second sync reports no
changes. What becomes what:

- SendGrid (https://www.twilio.com/docs/sendgrid/api-reference/suppressions-bounces/retrieve-all-bounces,
  …/suppressions-invalid-emails, …/suppressions-spam-reports, …/suppressions-blocks and
  https://www.twilio.com/docs/sendgrid/api-reference/suppressions-global-suppressions/retrieve-all-global-suppressions):
  bounces and invalid emails → bounced, spam reports → complained, global unsubscribes
  (`/v3/suppression/unsubscribes`, the list behind `/v3/asm/suppressions/global`) → unsubscribed.
  Blocks are counted and reported, never suppressed: SendGrid itself keeps sending to them.
  Each list is paged with `limit` (≤ 500) and `offset`.
- Postmark (https://postmarkapp.com/developer/api/suppressions-api#suppression-dump): the configured
  `message_stream`'s dump; HardBounce → bounced, SpamComplaint → complained, ManualSuppression →
  unsubscribed. Other streams are not ours.
- Resend (https://resend.com/docs/api-reference/suppressions/list-suppressions): `GET
  /suppressions`, cursor-paged; origin bounce → bounced, complaint → complained, manual →
  unsubscribed. A sending-only key may not read it (401 restricted_api_key): Resend is then
  skipped with a note, and its webhooks cover it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from publisher.errors import ConfigError, DeliveryError
from publisher.stores.subscribers import SubscriberStore, Suppression, SuppressReport

if TYPE_CHECKING:
    from publisher.channels import EmailChannel
    from publisher.channels.http import HttpClient
    from publisher.channels.postmark import PostmarkChannel
    from publisher.channels.resend import ResendChannel
    from publisher.channels.sendgrid import SendGridChannel
    from publisher.config.settings import Config

C = TypeVar("C", bound="EmailChannel")

ESPS = ("sendgrid", "postmark", "resend")
SENDGRID_PAGE = 500
RESEND_PAGE = 100
SENDGRID_LISTS: Sequence[tuple[str, str, str]] = (  # (list, status, label)
    ("bounces", "bounced", "bounce"),
    ("invalid_emails", "bounced", "invalid email"),
    ("spam_reports", "complained", "spam report"),
    ("unsubscribes", "unsubscribed", "global unsubscribe"),
)
SENDGRID_SCOPES = ("suppression.read",)
POSTMARK_STATUS = {"HardBounce": "bounced", "SpamComplaint": "complained",
                   "ManualSuppression": "unsubscribed"}
RESEND_STATUS = {"bounce": "bounced", "complaint": "complained", "manual": "unsubscribed"}
RESTRICTED = "restricted_api_key"


@dataclass
class SyncResult:
    """One provider's sync: what changed, blocks seen, or why it was skipped or failed."""

    provider: str
    report: SuppressReport = field(default_factory=SuppressReport)
    blocks: int = 0
    skipped: str = ""
    error: str = ""


def providers_to_sync(config: Config, only: Sequence[str] = ()) -> list[str]:
    """The ESPs named, else every ESP with a [channels.*] table or chosen as the transport."""
    if only:
        unknown = sorted(set(only) - set(ESPS))
        if unknown:
            raise ConfigError(f"unknown provider {unknown[0]!r}", where="--provider",
                              fix=f"use one of: {', '.join(ESPS)}")
        return list(dict.fromkeys(only))
    chosen = [name for name in ESPS
              if name in config.channels or config.newsletter.transport == name]
    if not chosen:
        raise ConfigError(
            "no email provider is configured", where=config.source or "publisher.toml",
            fix="add a [channels.sendgrid], [channels.postmark] or [channels.resend] table",
        )
    return chosen


@dataclass(frozen=True)
class Provider(Generic[C]):
    """One ESP whose suppressions are read: its channel class, the reader and the scope check."""

    load: Callable[[], type[C]]
    pull: Callable[[C, SubscriberStore, SyncResult], None]
    warn: Callable[[C], str]

    def open(self, name: str, config: Config) -> C:
        """The provider's channel, built like any channel from its [channels.<name>] table."""
        from publisher.channels.registry import context

        return self.load().from_config(context(name, config))

    def sync(self, name: str, config: Config, store: SubscriberStore, *, required: bool
             ) -> SyncResult:
        """Pull the suppressions; a table that cannot build a channel is skipped unless required."""
        result = SyncResult(name)
        try:
            channel = self.open(name, config)
        except ConfigError as exc:
            if required:
                raise
            result.skipped = f"not synced: {exc.one_line()}"  # e.g. a table for webhooks only
            return result
        try:
            self.pull(channel, store, result)
        except DeliveryError as exc:
            result.error = exc.one_line()
        finally:
            channel.close()
        return result

    def warning(self, name: str, config: Config) -> str:
        """What the key cannot read that sync needs ('' when it can read everything)."""
        try:
            channel = self.open(name, config)
        except ConfigError as exc:  # the transport's own problems fail `check` before this
            return f"cannot check what sync may read ({exc.problem})"
        try:
            return self.warn(channel)
        except DeliveryError as exc:
            return f"cannot check what sync may read ({exc.problem})"
        finally:
            channel.close()


def sync(config: Config, store: SubscriberStore, only: Sequence[str] = ()) -> list[SyncResult]:
    """Sync every chosen provider; one provider's failure is reported and the others go on."""
    return [PROVIDERS[name].sync(name, config, store,
                                 required=bool(only) or config.newsletter.transport == name)
            for name in providers_to_sync(config, only)]


def _sendgrid(channel: SendGridChannel, store: SubscriberStore, result: SyncResult) -> None:
    """Every suppression list, then the blocks count."""
    http: HttpClient = channel.http

    def entries() -> Iterator[Suppression]:
        for name, status, label in SENDGRID_LISTS:
            for item in _sendgrid_pages(http, name):
                reason = str(item.get("reason") or item.get("status") or "").strip()
                yield Suppression(str(item.get("email", "")), status,
                                  f"SendGrid {label}" + (f": {reason}" if reason else ""),
                                  epoch_or_none(item.get("created")))

    result.report = store.suppress(entries())
    result.blocks = sum(1 for _ in _sendgrid_pages(http, "blocks"))


def _sendgrid_pages(http: HttpClient, name: str) -> Iterator[Mapping[str, Any]]:
    """One suppression list, a page of SENDGRID_PAGE at a time."""
    offset = 0
    while True:
        page = _get(http, f"/v3/suppression/{name}",
                    params={"limit": SENDGRID_PAGE, "offset": offset})
        items = page if isinstance(page, list) else []
        yield from (i for i in items if isinstance(i, dict))
        if len(items) < SENDGRID_PAGE:
            return
        offset += SENDGRID_PAGE


def _postmark(channel: PostmarkChannel, store: SubscriberStore, result: SyncResult) -> None:
    """The configured message stream's suppression dump."""
    stream = str(channel.stream)
    dump = _get(channel.http, f"/message-streams/{stream}/suppressions/dump")
    items = dump.get("Suppressions", []) if isinstance(dump, dict) else []
    result.report = store.suppress(
        Suppression(str(item.get("EmailAddress", "")), POSTMARK_STATUS[reason],
                    f"Postmark {reason} ({item.get('Origin', 'unknown origin')})",
                    iso_or_none(item.get("CreatedAt")))
        for item in items
        if isinstance(item, dict) and (reason := item.get("SuppressionReason")) in POSTMARK_STATUS
    )


def _resend(channel: ResendChannel, store: SubscriberStore, result: SyncResult) -> None:
    """The team's suppressions, unless the key may only send."""
    http: HttpClient = channel.http
    first = http.request("GET", "/suppressions", params={"limit": RESEND_PAGE}, ok=(200, 401))
    body = first.json() if first.content else {}
    if first.status_code == 401:
        if isinstance(body, dict) and body.get("name") == RESTRICTED:
            result.skipped = ("the API key may only send emails, so it cannot read suppressions;"
                              " skipped (Resend's webhooks cover it, or use a full-access key)")
            return
        from publisher.channels.http import status_error

        raise status_error("resend", first)
    result.report = store.suppress(_resend_entries(http, body))


def _resend_entries(http: HttpClient, page: Any) -> Iterator[Suppression]:
    """Every suppression, following the `after` cursor while has_more."""
    while isinstance(page, dict):
        items = [i for i in page.get("data", []) if isinstance(i, dict)]
        for item in items:
            origin = str(item.get("origin"))
            if origin in RESEND_STATUS:
                yield Suppression(str(item.get("email", "")), RESEND_STATUS[origin],
                                  f"Resend {origin}", iso_or_none(item.get("created_at")))
        if not page.get("has_more") or not items:
            return
        page = _get(http, "/suppressions", params={"limit": RESEND_PAGE,
                                                   "after": items[-1].get("id", "")})


def scope_warnings(config: Config) -> list[str]:
    """What `publish check` warns about: ESP keys that cannot read what sync needs."""
    warnings = []
    for name in [n for n in ESPS if n in config.channels or config.newsletter.transport == n]:
        warning = PROVIDERS[name].warning(name, config)
        if warning:
            warnings.append(f"{name}: {warning}")
    return warnings


def _sendgrid_warning(channel: SendGridChannel) -> str:
    """Which suppression scopes the key lacks."""
    scopes = set(_get(channel.http, "/v3/scopes").get("scopes", []))
    if "suppression.read" in scopes:
        return ""
    missing = [f"suppression.{name}.read" for name, *_ in SENDGRID_LISTS
               if f"suppression.{name}.read" not in scopes]
    if not missing:
        return ""
    return (f"the API key lacks {', '.join(missing)}: `subscribers sync` cannot read those lists"
            " (give it Suppressions read access)")


def _postmark_warning(channel: PostmarkChannel) -> str:
    """Whether the configured stream's suppressions can be read."""
    from publisher.errors import PermanentDeliveryError

    try:
        _get(channel.http, f"/message-streams/{channel.stream}/suppressions/dump")
    except PermanentDeliveryError as exc:
        return f"cannot read the {channel.stream!r} stream's suppressions ({exc.problem})"
    return ""


def _resend_warning(channel: ResendChannel) -> str:
    """Whether the key may read suppressions (a sending-only key may not)."""
    reply = channel.http.request("GET", "/suppressions", params={"limit": 1}, ok=(200, 401))
    if reply.status_code == 200:
        return ""
    return ("the API key may only send emails: `subscribers sync` will skip Resend; configure"
            " its webhook (RESEND_WEBHOOK_SECRET) or use a full-access key")


def _sendgrid_class() -> type[SendGridChannel]:
    from publisher.channels.sendgrid import SendGridChannel

    return SendGridChannel


def _postmark_class() -> type[PostmarkChannel]:
    from publisher.channels.postmark import PostmarkChannel

    return PostmarkChannel


def _resend_class() -> type[ResendChannel]:
    from publisher.channels.resend import ResendChannel

    return ResendChannel


PROVIDERS: Mapping[str, Provider[SendGridChannel] | Provider[PostmarkChannel]
                   | Provider[ResendChannel]] = {
    "sendgrid": Provider(_sendgrid_class, _sendgrid, _sendgrid_warning),
    "postmark": Provider(_postmark_class, _postmark, _postmark_warning),
    "resend": Provider(_resend_class, _resend, _resend_warning),
}


def _get(http: HttpClient, path: str, params: Mapping[str, Any] | None = None) -> Any:
    """One GET with the usual retries, as parsed JSON."""
    from publisher.channels.http import with_retries

    return with_retries(lambda: http.request("GET", path, params=dict(params or {})).json())


def epoch_or_none(value: object) -> float | None:
    """A JSON epoch-seconds number, or None."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def iso_or_none(value: object) -> float | None:
    """An ISO 8601 time as epoch seconds, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.timestamp() if parsed.tzinfo else None
