"""`publish due` and `publish unschedule`: a scheduled output's later life, over the ordinary send.

`due` runs the send of delivery/pipeline.py for every queued output whose time has come, under
the same lock and ledger, so two `due` runs never send anything twice. `unschedule` cancels at
the provider, forgets those deliveries, and dequeues the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, cast

from publisher.channels import SchedulingChannel
from publisher.delivery.pipeline import Options, load_article, prepare, publish
from publisher.delivery.scheduling import scheduled_deliveries
from publisher.errors import DeliveryError, LedgerConflict, PublisherError
from publisher.plan import FAQ_DIGEST, channel_name
from publisher.schedule import QUEUED, from_iso, is_due
from publisher.stores.schedules import CANCELLED, SCHEDULED, SENT, Scheduled, ScheduleLog

if TYPE_CHECKING:
    from publisher.config.settings import Config
    from publisher.delivery.pipeline import Prepared
    from publisher.delivery.send import Outcome
    from publisher.stores.ledger import Ledger


# -- publish due ------------------------------------------------------------------------------


@dataclass
class DueSend:
    """One post's queued outputs that `publish due` sent (or could not)."""

    source: str
    outputs: tuple[str, ...]
    outcomes: list[Outcome] = field(default_factory=list)
    prepared: Prepared | None = None
    problem: PublisherError | None = None


def due(config: Config, *, now: datetime,
        progress: Callable[[str, int], Callable[[int], None]] | None = None) -> list[DueSend]:
    """Send every queued output whose time has come, post by post, each exactly once."""
    from publisher.stores.backends import open_ledger

    ledger = open_ledger(config.ledger)
    try:
        ready = [r for r in ScheduleLog(ledger).rows(state=SCHEDULED)
                 if r.mode == QUEUED and is_due(from_iso(r.at), now=now)]
    finally:
        ledger.close()
    groups: dict[tuple[str, str], list[Scheduled]] = {}
    for row in ready:
        groups.setdefault((row.source, row.edition_id), []).append(row)
    return [send_due(config, source, edition_id, rows, progress)
            for (source, edition_id), rows in groups.items()]


def send_due(config: Config, source: str, edition_id: str, rows: list[Scheduled],
             progress: Callable[[str, int], Callable[[int], None]] | None) -> DueSend:
    """The ordinary send of one post, limited to its due outputs; settled ones are marked sent."""
    outputs = frozenset(r.output for r in rows)
    result = DueSend(source, tuple(sorted(outputs)))
    options = Options(Path(source), channels=frozenset(channel_name(o) for o in outputs),
                      due_outputs=outputs)
    try:
        prepared = prepare(options, config)
        if prepared.plan.edition_id != edition_id:
            prepared.close()
            raise LedgerConflict(
                "the article changed after it was scheduled", where=source,
                fix=f"`publish unschedule {source}`, then schedule the new text with --at")
        result.prepared = prepared
        result.outcomes = publish(prepared, config, options, progress=progress)
    except PublisherError as exc:
        result.problem = exc
        return result
    settled = {o.output for o in result.outcomes if not (
        o.error or o.failed or o.uncertain or o.lost or o.skipped)}
    done = [o for o in outputs if o in settled or (o == FAQ_DIGEST and "faq digest" in settled)]
    _set_state(config, edition_id, done, SENT)
    return result


def _set_state(config: Config, edition_id: str, outputs: list[str], state: str) -> None:
    """Record outputs of an edition as sent or cancelled."""
    from publisher.stores.backends import open_ledger

    ledger = open_ledger(config.ledger)
    try:
        ScheduleLog(ledger).set_state(edition_id, outputs, state)
    finally:
        ledger.close()


# -- unschedule ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Unscheduled:
    """What `unschedule` did to one output: cancelled at the provider, dequeued, or failed."""

    output: str
    channel: str
    where: str  # provider-scheduled or queued
    count: int = 0  # scheduled sends the provider cancelled
    error: str = ""
    uncertain: int = 0  # sends whose answer was lost: no id to cancel them by (kept pending)


def unschedule(post: Path, config: Config) -> list[Unscheduled]:
    """Cancel the post's scheduled outputs: at the provider where it holds them, else dequeue."""
    from publisher.stores.backends import open_ledger

    slug = load_article(post, config).slug
    ledger = open_ledger(config.ledger)
    channels: dict[str, SchedulingChannel] = {}
    try:
        with ledger.lock(slug, source=str(post)):
            results = []
            for row in ScheduleLog(ledger).rows(slug=slug, state=SCHEDULED):
                if row.mode == QUEUED:
                    ScheduleLog(ledger).set_state(row.edition_id, [row.output], CANCELLED)
                    results.append(Unscheduled(row.output, row.channel, "queued"))
                    continue
                if row.channel not in channels:
                    channels[row.channel] = _build(row.channel, config)
                results.append(cancel_at_provider(ledger, row, channels[row.channel]))
            return results
    finally:
        for channel in channels.values():
            channel.close()
        ledger.close()


def _build(name: str, config: Config) -> SchedulingChannel:
    """A channel that holds scheduled sends, built (not preflighted) to cancel them."""
    from publisher.channels import registry

    built = (registry.build_email(name, config) if name in registry.EMAIL
             else registry.build_campaign(name, config) if name in registry.PLATFORM
             else registry.build_social(name, config))
    return cast(SchedulingChannel, built)  # only a provider-held row names it


def cancel_at_provider(ledger: Ledger, row: Scheduled, channel: SchedulingChannel
                       ) -> Unscheduled:
    """Cancel one output's scheduled sends; only a cancel that succeeded frees them for a resend."""
    from publisher.channels.http import with_retries

    sends = scheduled_deliveries(ledger, row)
    # A batch handle (SendGrid's batch_id) covers every send made with it, answered or not;
    # otherwise only a send with an id can be cancelled.
    covered = sends if row.handle else [r for r in sends if r.provider_id]
    ids = [r.provider_id for r in covered if r.provider_id]
    try:
        count = with_retries(lambda: channel.cancel_schedule(row.handle, ids))
    except DeliveryError as exc:
        return Unscheduled(row.output, row.channel, "provider-scheduled", error=exc.one_line())
    log = ScheduleLog(ledger)
    log.forget_deliveries(row.edition_id, row.channel, [r.item for r in covered])
    log.set_state(row.edition_id, [row.output], CANCELLED)
    return Unscheduled(row.output, row.channel, "provider-scheduled", count=count,
                       uncertain=len(sends) - len(covered))
