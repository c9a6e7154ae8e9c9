"""Scheduled editions at the edge: `--at` placement and status (`publish due` and
`unschedule`, which run the ordinary send or cancel it, are delivery/due.py).

`publish POST --at T` records one `schedules` row per output before anything is sent: outputs
whose channel declares a window (`channels.SCHEDULING`) that holds T go to the provider in this
run, with T attached (their deliveries rows are the scheduled sends, with the provider's ids);
the others are queued. `publish due` runs the ordinary send for every queued output whose time
has come, under the same lock and ledger, so two `due` runs never send anything twice.
`unschedule` cancels at the provider, forgets those deliveries, and dequeues the rest.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from publisher.channels import SchedulingChannel
from publisher.errors import LedgerConflict
from publisher.plan import FAQ_DIGEST, OUTBOX, Plan, Step, channel_name
from publisher.schedule import PROVIDER, QUEUED, Placement, from_iso, is_due, iso, place
from publisher.stores.schedules import SCHEDULED, Scheduled, ScheduleLog

if TYPE_CHECKING:
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
        fresh.append(Scheduled(plan.edition_id, plan.slug, source, FAQ_DIGEST, OUTBOX, iso(at),
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
    return Scheduled(plan.edition_id, plan.slug, str(options.post), step.output, step.channel,
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
    return {r.output: r for r in ScheduleLog(ledger).rows(slug=plan.slug, state=SCHEDULED)
            if r.edition_id == plan.edition_id}


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


# -- status --------------------------------------------------------------------


HANDED_OVER = "handed-over"  # status only: a provider-held send whose time has passed


def schedule_entries(ledger: Ledger, *, now: datetime, slug: str | None = None
                     ) -> list[dict[str, Any]]:
    """`publish status`'s scheduled part: each output, where it waits, when, and the ids.

    A provider-held output whose time has passed is `handed-over`, not `scheduled`: the
    provider was asked to send it then, and publisher is never told whether it did.
    """
    log = ScheduleLog(ledger)
    rows = log.rows(slug=slug) if slug is not None else log.rows(state=SCHEDULED)
    entries = []
    for row in rows:
        ids = [r.provider_id for r in scheduled_deliveries(ledger, row) if r.provider_id]
        passed = row.mode == PROVIDER and is_due(from_iso(row.at), now=now)
        entries.append({
            "post": row.slug, "source": row.source, "output": row.output,
            "channel": row.channel, "at": row.at,
            "state": HANDED_OVER if row.state == SCHEDULED and passed else row.state,
            "where": "provider-scheduled" if row.mode == PROVIDER else "queued",
            "handle": row.handle, "provider_ids": ids, "reason": row.reason,
        })
    return entries


def held_words(channel: str, at: str, *, passed: bool) -> str:
    """A provider-held send in words: held until its time, or handed over for a past one."""
    if passed:
        return f"handed to {channel} for {at} — past; check {channel}"
    return f"held by {channel} until {at}"


@dataclass(frozen=True)
class Held:
    """An output its provider holds for `at`: asked to send then, never known to have sent.

    `items` are the ledger items of its deliveries rows (the scheduled sends).
    """

    edition_id: str
    output: str
    channel: str
    at: str
    source: str
    items: frozenset[str]
    passed: bool  # the time has come: the provider was to send it, publisher is not told

    @property
    def readers(self) -> frozenset[str]:
        """The newsletter recipients of the held send (none for social posts)."""
        return frozenset(i for i in self.items if "@" in i)


def provider_held(ledger: Ledger, slug: str, *, now: datetime) -> list[Held]:
    """The post's outputs handed to a provider with `--at` and not cancelled, soonest first."""
    return [
        Held(row.edition_id, row.output, row.channel, row.at, row.source,
             frozenset(r.item for r in scheduled_deliveries(ledger, row)),
             is_due(from_iso(row.at), now=now))
        for row in ScheduleLog(ledger).rows(slug=slug, state=SCHEDULED) if row.mode == PROVIDER
    ]


def scheduled_deliveries(ledger: Ledger, row: Scheduled) -> list[Row]:
    """The deliveries rows of one scheduled output (a provider's scheduled sends)."""
    if row.mode != PROVIDER:
        return []
    found = ledger.rows(row.edition_id, row.channel)
    if row.output == "newsletter":
        return found
    return [r for r in found if r.item.startswith(f"{row.output}#")]
