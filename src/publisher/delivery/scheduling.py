"""Scheduled editions at the edge: `--at` placement, `publish due`, status and `unschedule`.

`publish POST --at T` records one `schedules` row per output before anything is sent: outputs
whose channel declares a window (`channels.SCHEDULING`) that holds T go to the provider in this
run, with T attached (their deliveries rows are the scheduled sends, with the provider's ids);
the others are queued. `publish due` runs the ordinary send for every queued output whose time
has come, under the same lock and ledger, so two `due` runs never send anything twice.
`unschedule` cancels at the provider, forgets those deliveries, and dequeues the rest.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from publisher.channels import SchedulingChannel
from publisher.errors import DeliveryError, LedgerConflict, PublisherError
from publisher.plan import FAQ_DIGEST, OUTBOX, Plan, Step, channel_name
from publisher.schedule import PROVIDER, QUEUED, Placement, from_iso, is_due, iso, place
from publisher.stores.schedules import CANCELLED, SCHEDULED, SENT, Scheduled, ScheduleLog

if TYPE_CHECKING:
    from publisher.config.settings import Config
    from publisher.delivery.pipeline import Options, Prepared
    from publisher.delivery.send import Outcome
    from publisher.stores.ledger import Ledger, Row


@dataclass(frozen=True)
class Timing:
    """What one run delivers now: these plan outputs (and the FAQ digest or not).

    For `--at`, `at` and each channel's provider handle go with the outputs the providers hold,
    and `rows` are every output's schedule. `plain` is an ordinary run (--only/--skip apply).
    """

    outputs: frozenset[str]
    faq: bool
    plain: bool = False
    at: datetime | None = None
    handles: Mapping[str, str] = field(default_factory=dict)
    rows: Mapping[str, Scheduled] = field(default_factory=dict)

    @property
    def salts(self) -> dict[str, str]:
        """Each provider-held output's nonce, folded into its idempotency keys."""
        return {o: r.nonce for o, r in self.rows.items() if r.mode == PROVIDER}


def run_timing(ledger: Ledger, prepared: Prepared, options: Options) -> Timing:
    """A plain run, a `due` run of some outputs, or an `--at` run that records its schedule."""
    plan = prepared.plan
    steps = [s for s in plan.steps if channel_name(s.output) in options.channels]
    if options.due_outputs is not None:
        return Timing(frozenset(s.output for s in steps if s.output in options.due_outputs),
                      faq=FAQ_DIGEST in options.due_outputs)
    waiting = waiting_rows(ledger, plan)
    source = str(options.post)
    now = options.now or datetime.now(UTC)
    live = [r for r in waiting.values() if r.mode == QUEUED or not is_due(from_iso(r.at), now=now)]
    if options.at is None:
        if live:
            first = min(live, key=lambda r: r.at)
            raise LedgerConflict(
                f"this edition is scheduled for {first.at}", where=source,
                fix=f"let `publish due` send it, or `publish unschedule {source}` first")
        return Timing(frozenset(s.output for s in steps), faq=FAQ_DIGEST in options.channels,
                      plain=True)
    at = options.at
    other = next((r for r in live if from_iso(r.at) != at), None)
    if other is not None:
        raise LedgerConflict(f"this edition is already scheduled for {other.at}", where=source,
                             fix=f"`publish unschedule {source}` first, then schedule it again")
    fresh = [new_row(prepared, step, options, at, now) for step in steps
             if step.output not in waiting]
    if FAQ_DIGEST in options.channels and FAQ_DIGEST not in waiting:
        fresh.append(Scheduled(plan.edition_id, plan.post, source, FAQ_DIGEST, OUTBOX, iso(at),
                               QUEUED))
    ScheduleLog(ledger).add(fresh)
    rows = waiting_rows(ledger, plan)
    held = frozenset(o for o, r in rows.items() if r.mode == PROVIDER)
    return Timing(held, faq=False, at=at, rows=rows,
                  handles={r.channel: r.handle for r in rows.values() if r.handle})


def new_row(prepared: Prepared, step: Step, options: Options, at: datetime, now: datetime
            ) -> Scheduled:
    """Where one output waits; a provider that needs a handle for the send (SendGrid) gets one."""
    from publisher.channels.http import with_retries

    plan, live = prepared.plan, prepared.live
    placement = place(live.facts(step.channel).schedule, at, now=now,
                      posts=max(1, len(step.items)), provider=step.channel)
    handle = ""
    if placement.mode == PROVIDER:
        opened = (live.email.get(step.channel) or live.social.get(step.channel)
                  or live.campaign.get(step.channel))
        channel = cast(SchedulingChannel, opened)  # its facts declare a schedule window
        handle = with_retries(lambda: channel.open_schedule(at))
    return Scheduled(plan.edition_id, plan.post, str(options.post), step.output, step.channel,
                     iso(at), placement.mode, handle=handle, reason=placement.reason,
                     nonce=secrets.token_hex(8))


def preview(plan: Plan, channels: frozenset[str], at: datetime, *, now: datetime
            ) -> list[tuple[str, str, Placement]]:
    """`--at --dry-run`: where each output would wait, from the channels' declared windows only."""
    from publisher.channels.registry import facts

    rows = [(s.output, s.channel, place(facts(s.channel).schedule, at, now=now,
                                         posts=max(1, len(s.items)), provider=s.channel))
            for s in plan.steps if channel_name(s.output) in channels]
    if FAQ_DIGEST in channels:
        rows.append(("faq digest", OUTBOX, Placement(QUEUED)))
    return rows


def waiting_rows(ledger: Ledger, plan: Plan) -> dict[str, Scheduled]:
    """This edition's outputs that are scheduled and not yet sent or cancelled."""
    return {r.output: r for r in ScheduleLog(ledger).rows(post=plan.post, state=SCHEDULED)
            if r.edition == plan.edition_id}


def label(outcome: Outcome, timing: Timing) -> Outcome:
    """Mark an outcome of an `--at` run as held by its provider for the time."""
    row = timing.rows.get(outcome.output)
    if row is not None and row.mode == PROVIDER:
        outcome.scheduled_for = row.at
    return outcome


def queued_outcome(step: Step, row: Scheduled) -> Outcome:
    """The summary line of an output the ledger holds until `publish due`."""
    from publisher.delivery.send import Outcome

    return Outcome(step.output, step.channel, step.measure,
                   queued=row.at + (f" ({row.reason})" if row.reason else ""))


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
        groups.setdefault((row.source, row.edition), []).append(row)
    return [send_due(config, source, edition_id, rows, progress)
            for (source, edition_id), rows in groups.items()]


def send_due(config: Config, source: str, edition_id: str, rows: list[Scheduled],
             progress: Callable[[str, int], Callable[[int], None]] | None) -> DueSend:
    """The ordinary send of one post, limited to its due outputs; settled ones are marked sent."""
    from publisher.delivery.pipeline import Options, prepare, publish

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


# -- status and unschedule --------------------------------------------------------------------


def schedule_entries(ledger: Ledger, *, post: str | None = None) -> list[dict[str, Any]]:
    """`publish status`'s scheduled part: each output, where it waits, when, and the ids."""
    log = ScheduleLog(ledger)
    rows = log.rows(post=post) if post is not None else log.rows(state=SCHEDULED)
    entries = []
    for row in rows:
        ids = [r.provider_id for r in _deliveries(ledger, row) if r.provider_id]
        entries.append({
            "post": row.post, "source": row.source, "output": row.output,
            "channel": row.channel, "at": row.at, "state": row.state,
            "where": "provider-scheduled" if row.mode == PROVIDER else "queued",
            "handle": row.handle, "provider_ids": ids, "reason": row.reason,
        })
    return entries


def _deliveries(ledger: Ledger, row: Scheduled) -> list[Row]:
    """The deliveries rows of one scheduled output (a provider's scheduled sends)."""
    if row.mode != PROVIDER:
        return []
    found = ledger.rows(row.edition, row.channel)
    if row.output == "newsletter":
        return found
    return [r for r in found if r.item.startswith(f"{row.output}#")]


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
    from publisher.delivery.pipeline import load_article
    from publisher.stores.backends import open_ledger

    slug = load_article(post, config).slug
    ledger = open_ledger(config.ledger)
    channels: dict[str, SchedulingChannel] = {}
    try:
        with ledger.lock(slug, source=str(post)):
            results = []
            for row in ScheduleLog(ledger).rows(post=slug, state=SCHEDULED):
                if row.mode == QUEUED:
                    ScheduleLog(ledger).set_state(row.edition, [row.output], CANCELLED)
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

    sends = _deliveries(ledger, row)
    # A batch handle (SendGrid's batch_id) covers every send made with it, answered or not;
    # otherwise only a send with an id can be cancelled.
    covered = sends if row.handle else [r for r in sends if r.provider_id]
    ids = [r.provider_id for r in covered if r.provider_id]
    try:
        count = with_retries(lambda: channel.cancel_schedule(row.handle, ids))
    except DeliveryError as exc:
        return Unscheduled(row.output, row.channel, "provider-scheduled", error=exc.one_line())
    log = ScheduleLog(ledger)
    log.forget_deliveries(row.edition, row.channel, [r.item for r in covered])
    log.set_state(row.edition, [row.output], CANCELLED)
    return Unscheduled(row.output, row.channel, "provider-scheduled", count=count,
                       uncertain=len(sends) - len(covered))
