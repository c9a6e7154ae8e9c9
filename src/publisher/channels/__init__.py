"""Channels are the edge: one small module per service, each declaring its limits and secrets.

An email channel takes batches of recipients; a social channel takes one post at a time (so a
thread can reply to the post before it). Both raise delivery errors and never return False.
`deliver.py` drives them and records every call in the ledger.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from publisher.model import Newsletter, Recipient, SocialPost

EMAIL_CHANNELS = ("smtp", "sendgrid", "postmark", "resend")
SOCIAL_CHANNELS = ("x", "bluesky", "mastodon")


@dataclass(frozen=True)
class Capabilities:
    """What a channel can do to a post after it went out; the core reads this, never probes."""

    edit: bool  # change a live post's text in place (`publish POST --update`)
    delete: bool  # delete a live post (`publish retract`)


# Mastodon edits (PUT /api/v1/statuses/:id) and deletes; X and Bluesky only delete (their APIs
# have no edit); the outbox rewrites or removes its files.
CAPABILITIES = {
    "mastodon": Capabilities(edit=True, delete=True),
    "x": Capabilities(edit=False, delete=True),
    "bluesky": Capabilities(edit=False, delete=True),
    "outbox": Capabilities(edit=True, delete=True),
}


@dataclass(frozen=True)
class Receipt:
    """What a provider gave back for one delivery: its id, the public URL and extra refs."""

    provider_id: str
    url: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)  # e.g. Bluesky's uri and cid


@dataclass(frozen=True)
class EmailBatch:
    """One provider call's worth of recipients, under a key that is stable across retries."""

    key: str  # derived from the edition and batch number; the Idempotency-Key where supported
    newsletter: Newsletter
    recipients: tuple[Recipient, ...]
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

    name: str
    batch_size: int
    idempotent: bool  # a retried batch with the same key cannot be delivered twice

    def preflight(self) -> None:
        """Check config and credentials with a cheap authenticated call."""

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


class SocialChannel(Protocol):
    """A social network account."""

    name: str
    idempotent: bool

    def preflight(self) -> Mapping[str, int]:
        """Check credentials; return composition hints such as {'limit': 1000, 'url_length': 23}."""

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

        Only channels whose capabilities say `edit` are asked.
        """

    def delete_post(self, receipt: Receipt, *, attempted_before: bool) -> bool:
        """Delete a live post; False when it was already gone (404, or an earlier try landed)."""

    def close(self) -> None:
        """Release connections."""
