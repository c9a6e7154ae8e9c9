"""Channels are the edge: one small module per service, each declaring its delivery facts as data.

An email channel takes batches of recipients; a social channel takes one post at a time (so a
thread can reply to the post before it). Both raise delivery errors and never return False.
`delivery/send.py` drives them and records every call in the ledger; `registry.py` lists them.

Every channel class declares `facts` (kind, the network it posts for, batch size, edit, delete,
images, secrets, scheduling), the way apprise's services declare theirs as class attributes
(`body_maxlen`, `title_maxlen`, `request_rate_per_sec`, `setup_url` in
https://github.com/caronc/apprise/blob/master/apprise/plugins/NotifyBase.py); the core reads
those flags and never probes a channel with getattr. Every channel is built the same way,
`Channel.from_config(context)`, from a `ChannelContext` (its settings table, the site, the
secrets and the HTTP client factory), and mypy checks each registry entry against its protocol.

How to add a channel (one module, its fake, a row in the contract table):

1. `channels/<name>.py`: a class with `facts: ClassVar[Facts]`, `from_config(cls, context)`
   and the methods of `EmailChannel`, `CampaignChannel` (a newsletter platform that owns the
   list) or `SocialChannel`; cite the provider's API docs in the
   module docstring. Read settings through `context.settings` (typed, a typo is refused) and
   secrets through `context.secret`; make every base URL configurable.
2. Register it in `channels/registry.py`: a loader in `EMAIL`, `PLATFORM` or `SOCIAL`. mypy
   refuses a class that does not satisfy the protocol.
3. `tests/fakes/<name>.py`: a local fake that enforces the provider's contract (auth, body
   shape, limits, error bodies, 429 with reset headers), on `tests/fakes/served.py`'s base.
4. A row in `CONTRACT` in `tests/test_channel_contract.py`: how to start the fake, good and bad
   settings and secrets, and how to count what it received. The suite is parametrized from the
   registry, so a registered channel without a row fails it.
5. The README's channel table: its `[channels.<name>]` keys and secrets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar, Literal, Protocol, Self, TypeVar

from publisher.config.settings import Site
from publisher.errors import ConfigError
from publisher.model import Newsletter, Recipient, SocialPost
from publisher.schedule import Window

if TYPE_CHECKING:
    import requests

    from publisher.channels.http import HttpClient
    from publisher.channels.images import ImageLoader
    from publisher.channels.platform import Campaign, Draft

Hints = Mapping[str, int]  # what a preflight tells the composer, e.g. {"limit": 500}
Checkpoint = Callable[[Mapping[str, str]], None]  # keeps a two-step post's first step in the ledger
Kind = Literal["email", "social", "both", "campaign"]  # campaign: a platform owns the list
T = TypeVar("T", str, int, float, bool)


@dataclass(frozen=True)
class Facts:
    """What a channel can do, declared once as data; the core reads this, never probes."""

    kind: Kind
    network: str = ""  # the network a social channel posts for ("" for email)
    batch_size: int = 1  # most recipients per provider call (email), and the default
    batch_call: bool = False  # one call sends a whole batch: the ledger keeps one row per call
    idempotent: bool = False  # a retried call with the same key cannot deliver twice
    can_edit: bool = False  # change a live post's text in place (`publish POST --update`)
    can_delete: bool = False  # delete a live post (`publish retract`)
    attaches_images: bool = False  # uploads the post's image (`prepare_media`) before sending
    secrets: tuple[str, ...] = ()  # the secrets it reads by default (env, .env or keyring)
    # what a dry run builds it with in place of each secret (never sent): the provider's shape
    stand_in: str = "publisher-dry-run-stand-in"
    # `publish POST --at`: how far ahead the provider holds a post or email until a given time
    # (None: it cannot; the ledger queues the output for `publish due`)
    schedule: Window | None = None
    two_step: bool = False  # a post takes two calls; the first one's result is kept in between
    docs: str = ""  # the provider API reference the module follows

    @property
    def can_schedule(self) -> bool:
        """Whether the provider can hold a send until a time (within `schedule`)."""
        return self.schedule is not None


@dataclass(frozen=True)
class ChannelSettings:
    """A `[channels.<name>]` table read with types: a wrong type or unknown key is one line."""

    name: str
    values: Mapping[str, object] = field(default_factory=dict)
    source: str = ""  # the config file the table was read from ('' for none)

    @property
    def where(self) -> str:
        """Where a message about this table points: the file and the table."""
        return table_where(self.name, self.source)

    def allow(self, keys: frozenset[str]) -> None:
        """Refuse unknown keys, so a typo is not silently ignored."""
        unknown = sorted(set(self.values) - keys)
        if unknown:
            raise ConfigError(f"unknown key {unknown[0]!r}", where=self.where,
                              fix=f"use one of: {', '.join(sorted(keys))}")

    def text(self, key: str, default: str = "") -> str:
        """A string setting."""
        return self._typed(key, default, str, "a string")

    def number(self, key: str, default: float) -> float:
        """A number setting (an integer or a decimal)."""
        value = self.values.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._wrong(key, "a number")
        return float(value)

    def integer(self, key: str, default: int) -> int:
        """A whole-number setting."""
        value = self.values.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._wrong(key, "a whole number")
        return value

    def flag(self, key: str, default: bool) -> bool:
        """A true/false setting."""
        return self._typed(key, default, bool, "true or false")

    def _typed(self, key: str, default: T, kind: type[T], words: str) -> T:
        """The value when it has the wanted type."""
        value = self.values.get(key, default)
        if not isinstance(value, kind):
            raise self._wrong(key, words)
        return value

    def _wrong(self, key: str, words: str) -> ConfigError:
        """The error for a value of the wrong type."""
        return ConfigError(f"{key} must be {words}", where=self.where,
                           fix=f"check {key} against the README's [channels.{self.name}] keys")


def table_where(name: str, source: str = "") -> str:
    """`publisher.toml [channels.<name>]`: a channel's table, in its file when it came from one."""
    return f"{source} [channels.{name}]" if source else f"[channels.{name}]"


class SecretSource(Protocol):
    """Where secrets come from: the environment, .env or the keyring (config.secrets)."""

    def __call__(self, name: str, *, purpose: str) -> str:
        """The secret's value, or a ConfigError that says how to provide it."""


class HttpFactory(Protocol):
    """Builds the one HTTP client a channel talks through (channels.http.HttpClient)."""

    def __call__(self, channel: str, base_url: str, headers: Mapping[str, str] = ...,
                 timeout: float = ..., session: requests.Session | None = ...) -> HttpClient:
        """A client for one provider."""


def _env_secret(name: str, *, purpose: str) -> str:
    """The default SecretSource: config.secrets.get_secret."""
    from publisher.config.secrets import get_secret

    return get_secret(name, purpose=purpose)


def _http_client(channel: str, base_url: str, headers: Mapping[str, str] | None = None,
                 timeout: float = 30.0, session: requests.Session | None = None) -> HttpClient:
    """The default HttpFactory."""
    from publisher.channels.http import HttpClient

    return HttpClient(channel, base_url, dict(headers or {}), timeout, session)


@dataclass(frozen=True)
class ChannelContext:
    """Everything a channel is built from; the one argument of every `from_config`."""

    settings: ChannelSettings
    site: Site = field(default_factory=Site)
    secret: SecretSource = _env_secret
    http: HttpFactory = _http_client

    @property
    def name(self) -> str:
        """The channel's registry name, also its [channels.<name>] table."""
        return self.settings.name

    def client(self, base_url: str, *, headers: Mapping[str, str] | None = None,
               session: requests.Session | None = None) -> HttpClient:
        """An HTTP client for this channel, with the table's `timeout` (30 s by default)."""
        return self.http(self.name, base_url, dict(headers or {}),
                         self.settings.number("timeout", 30.0), session)


def context_for(name: str, values: Mapping[str, object], site: Site | None = None
                ) -> ChannelContext:
    """A context from a settings table, as tests and the registry build it."""
    return ChannelContext(ChannelSettings(name, values), site or Site())


@dataclass(frozen=True)
class Receipt:
    """What a provider gave back for one delivery: its id, the public URL and extra refs."""

    provider_id: str
    url: str = ""
    extra: Mapping[str, object] = field(default_factory=dict)  # e.g. Bluesky's uri and cid


@dataclass(frozen=True)
class EmailBatch:
    """One provider call's worth of recipients, under a key that is stable across retries."""

    key: str  # derived from the edition and batch number; the Idempotency-Key where supported
    newsletter: Newsletter
    recipients: Sequence[Recipient]  # a tuple, or a page of columns (`Recipients`)
    lang: str = "en"
    proof: bool = False  # a --proof copy: the outbox names it proof-<address>.eml
    send_at: datetime | None = None  # `--at`: the provider holds the batch until then
    schedule_id: str = ""  # the provider's handle for the whole scheduled send (SendGrid batch_id)


@dataclass(frozen=True)
class BatchResult:
    """Per-recipient outcome of a batch: accepted with a provider id, or refused with why.

    `rejected` was refused for good (an SMTP 5xx, an ESP's per-message error) and is not retried;
    `bounced` names those of them whose address is bad (SMTP 5.1.x/5.2.1, Postmark 406), so the
    subscriber is suppressed. `deferred` was refused for now (SMTP 4xx) and is retried on a later
    run. `uncertain` was handed over but the answer was lost: it stays pending.
    """

    accepted: Mapping[str, str]
    rejected: Mapping[str, str] = field(default_factory=dict)
    deferred: Mapping[str, str] = field(default_factory=dict)
    bounced: frozenset[str] = frozenset()
    uncertain: Mapping[str, str] = field(default_factory=dict)


class EmailChannel(Protocol):
    """An email transport: SMTP or an email service provider's batch API."""

    facts: ClassVar[Facts]
    name: str
    batch_size: int  # this account's batch size, at most facts.batch_size

    @classmethod
    def from_config(cls, context: ChannelContext) -> Self:
        """Build from the channel's settings, the site and the secrets."""

    def preflight(self) -> Hints:
        """Check config and credentials with a cheap authenticated call (email: no hints)."""

    def send_batch(self, batch: EmailBatch) -> BatchResult:
        """Deliver one batch or raise a DeliveryError."""

    def close(self) -> None:
        """Release connections."""


class SchedulingChannel(Protocol):
    """A channel whose provider holds a send until a time (its `schedule` window says how far).

    Email channels read `EmailBatch.send_at`; a social channel has `schedule_post`.
    """

    name: str

    def open_schedule(self, at: datetime) -> str:
        """The provider's handle for one scheduled send (SendGrid's batch_id), or ''."""

    def cancel_schedule(self, handle: str, provider_ids: Sequence[str]) -> int:
        """Cancel a scheduled send at the provider; how many scheduled items it cancelled."""

    def close(self) -> None:
        """Release connections."""


class PostScheduler(Protocol):
    """A social channel whose server posts a status at a time (Mastodon's `scheduled_at`)."""

    def schedule_post(self, post: SocialPost, *, key: str, at: datetime) -> Receipt:
        """Hand one post to the server to publish at `at`; a retry under key returns the same."""


class SocialChannel(Protocol):
    """A social network account."""

    facts: ClassVar[Facts]
    name: str

    @classmethod
    def from_config(cls, context: ChannelContext) -> Self:
        """Build from the channel's settings and the secrets."""

    def preflight(self) -> Hints:
        """Check credentials; return composition hints such as {'limit': 1000, 'url_length': 23}."""

    def prepare_media(self, post: SocialPost, *, key: str, images: ImageLoader | None = None
                      ) -> None:
        """Read and upload the post's image before it is sent; asked only when
        `facts.attaches_images`."""

    def send_post(
        self,
        post: SocialPost,
        *,
        key: str,
        reply_to: Receipt | None,
        root: Receipt | None,
        attempted_before: bool = False,
    ) -> Receipt:
        """Publish one post (replying to reply_to in a thread) or raise a DeliveryError.

        attempted_before is true when the ledger shows an earlier try that may have landed.
        """

    def edit_post(self, receipt: Receipt, post: SocialPost, *, attempted_before: bool) -> bool:
        """Give a live post the post's text; False when it already has it (a resumed edit).

        Only channels whose facts say `can_edit` are asked.
        """

    def delete_post(self, receipt: Receipt, *, attempted_before: bool) -> bool:
        """Delete a live post; False when it was already gone (404, or an earlier try landed)."""

    def close(self) -> None:
        """Release connections."""


class CampaignChannel(Protocol):
    """A newsletter platform that owns the list: one campaign per edition (channels/platform.py).

    `platform.deliver` drives it: find this edition's campaign before creating one, start it only
    if it has not gone out, so a resumed run sends the same campaign once.
    """

    facts: ClassVar[Facts]
    name: str

    @classmethod
    def from_config(cls, context: ChannelContext) -> Self:
        """Build from the channel's settings, the site and the secrets."""

    def preflight(self) -> Hints:
        """Check the credentials and that the configured list or newsletter exists."""

    def draft(self, newsletter: Newsletter, key: str, title: str) -> Draft:
        """The edition's campaign in this platform's template language."""

    def find(self, draft: Draft) -> Campaign | None:
        """This edition's campaign, if an earlier run created it."""

    def create(self, draft: Draft) -> Campaign:
        """A new campaign that is not sent yet."""

    def start(self, campaign: Campaign, draft: Draft) -> Campaign:
        """Give the campaign its content if needed and send it to the list."""

    def test_send(self, campaign: Campaign, draft: Draft, addresses: Sequence[str]) -> None:
        """The platform's own test send of the campaign to a few addresses (`--proof`)."""

    def lookup(self, campaign_id: str) -> Campaign:
        """The campaign's current state."""

    def close(self) -> None:
        """Release connections."""


class TwoStepChannel(SocialChannel, Protocol):
    """A social channel whose post takes two provider calls (Threads: container, then publish).

    Asked (instead of `send_post`) only when `facts.two_step`: `checkpoint` records the first
    call's result in the ledger before the second call, and `staged` is what an earlier,
    interrupted run recorded, so a rerun finishes that post instead of starting another.
    """

    def send_staged(
        self, post: SocialPost, *, key: str, reply_to: Receipt | None, root: Receipt | None,
        attempted_before: bool, staged: Mapping[str, str], checkpoint: Checkpoint,
    ) -> Receipt:
        """Publish one post, resuming from `staged`, or raise a DeliveryError."""


@dataclass
class LiveChannels:
    """The channels one run opened, by name; the outbox sits in both maps."""

    email: dict[str, EmailChannel] = field(default_factory=dict)
    social: dict[str, SocialChannel] = field(default_factory=dict)
    campaign: dict[str, CampaignChannel] = field(default_factory=dict)

    def close(self) -> None:
        """Release every channel's connections, each once."""
        seen: set[int] = set()
        every: list[EmailChannel | SocialChannel | CampaignChannel] = [
            *self.email.values(), *self.social.values(), *self.campaign.values()]
        for channel in every:
            if id(channel) not in seen:
                seen.add(id(channel))
                channel.close()

    def facts(self, name: str) -> Facts:
        """The facts of an open channel."""
        found: EmailChannel | SocialChannel | CampaignChannel | None = (
            self.email.get(name) or self.social.get(name) or self.campaign.get(name))
        if found is None:
            raise KeyError(name)
        return found.facts

