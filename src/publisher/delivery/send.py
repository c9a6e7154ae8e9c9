"""Plan → channels → ledger: the only loop that calls providers, and it records every call.

Each delivery is written pending before the call and sent (with the provider's id) after it. On a
rerun, sent rows are skipped; pending rows are retried when the channel is idempotent, otherwise
reported as uncertain until the editor passes --retry-pending.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TypeVar, cast

from publisher.channels import (
    BatchResult,
    CampaignChannel,
    EmailBatch,
    EmailChannel,
    LiveChannels,
    PostScheduler,
    Receipt,
    SocialChannel,
    TwoStepChannel,
)
from publisher.channels.http import RetryPolicy, with_retries
from publisher.channels.images import ImageLoader
from publisher.errors import (
    DeliveryError,
    InputError,
    LedgerConflict,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from publisher.model import Edition, Recipient, Recipients, SocialPost
from publisher.plan import Plan, Step, channel_name
from publisher.stores.ledger import (
    MAX_ATTEMPTS,
    PERMANENT,
    STOPPED,
    TRANSIENT,
    BatchRow,
    Claim,
    Ledger,
    Row,
)

T = TypeVar("T")
# A two-step post's first step, kept on its pending row: "staged_<name>" values for the key.
STAGED = "staged_"
STAGED_KEY = "staged_key"
Progress = Callable[[int], None]
# What became of an item that was not delivered, for the run's stderr lines (see report.py):
BOUNCED = "bounced"  # refused for good, the address is bad: the subscriber is suppressed
REFUSED = "refused"  # refused for good: not retried unless --retry-failed
RETRY = "retry"  # failed for now: the next run tries again
GIVEN_UP = "given up"  # failed max_attempts times: not retried unless --retry-failed
LOST = "lost"  # handed over in this run, the answer was lost: maybe delivered
UNCERTAIN = "uncertain"  # left pending by an earlier run: maybe delivered


@dataclass
class Outcome:
    """One line of the run's summary: what went where, and what happened to it."""

    output: str
    channel: str
    measure: str
    new: int = 0
    already: int = 0
    uncertain: int = 0
    failed: int = 0  # refused in this run, or refused/given up earlier and still not delivered
    lost: int = 0  # handed over in this run without an answer: uncertain now
    error: str = ""
    destinations: list[str] = field(default_factory=list)
    retracted: int = 0  # live posts deleted by `publish retract`, not posted again
    skipped: bool = False  # left out by --only/--skip
    refused: bool = False  # the ledger forbade it (exit 5), e.g. a thread under a single post
    queued: str = ""  # `--at` queued it in the ledger until this time (and why): `publish due`
    scheduled_for: str = ""  # `--at` handed it to the provider, which sends it at this time
    problems: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (fate, why) → items

    def note(self, fate: str, reason: str, items: Iterable[str]) -> None:
        """Remember what became of undelivered items, grouped by fate and reason."""
        self.problems.setdefault((fate, reason), []).extend(items)

    @property
    def undelivered(self) -> bool:
        """Whether anything of this output failed: the run exits 4."""
        return bool((self.error and not self.refused) or self.failed)

    @property
    def status(self) -> str:
        """A short word for the summary table."""
        if self.skipped:
            return "skipped"
        if self.queued:
            return f"queued for {self.queued}"
        if self.error:
            return "refused" if self.refused else "failed"
        held = bool(self.scheduled_for)
        parts = [
            f"{n} {word}"
            for n, word in (
                (self.new, "scheduled" if held else "new"),
                (self.already, "already scheduled" if held else "already sent"),
                (self.retracted, "retracted"),
                (self.uncertain + self.lost, "uncertain"), (self.failed, "failed"),
            )
            if n
        ]
        words = ", ".join(parts) or "nothing to send"
        return f"{words} for {self.scheduled_for} (at the provider)" if held else words


@dataclass
class SharedSend:
    """An email send split into numbered batches that several senders claim (PostgreSQL)."""

    claims: Ledger
    active_ids: Callable[[int], Iterable[int]]  # subscriber ids above an id, in order
    recipients_between: Callable[[int, int], Iterable[Recipient | Recipients]]  # one batch's
    lead: bool  # the lock holder: plans, reopens old batches, sends social posts and the digest
    join_wait: float = 30.0  # how long a joiner waits for the lead to plan the send


@dataclass
class Run:
    """What one delivery run needs from the edge: ledger, live channels and options."""

    ledger: Ledger
    edition: Edition
    plan: Plan
    channels: LiveChannels
    recipients: Callable[[], Iterable[Recipient | Recipients]]  # one by one, or pages of them
    retry_pending: bool = False
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] | None = None
    progress: Callable[[str, int], Progress] | None = None
    shared: SharedSend | None = None
    audience: int = 0  # how many recipients the send will reach, for the progress bar
    resend: bool = False  # post again what `publish retract` deleted, under fresh keys
    max_attempts: int = MAX_ATTEMPTS  # runs that try a transient failure before giving up
    retry_failed: bool = False  # --retry-failed: try refused and given-up items again
    suppress: Callable[[Mapping[str, str]], None] | None = None  # bounce addresses (email → why)
    at: datetime | None = None  # `--at`: every step of this run is handed to its provider for then
    schedule_ids: Mapping[str, str] = field(default_factory=dict)  # channel → provider handle
    key_salts: Mapping[str, str] = field(default_factory=dict)  # output → its schedule's nonce

    def may_retry(self, row: Row) -> bool:
        """Whether a failed row is tried again in this run."""
        return self.retry_failed or row.retryable(self.max_attempts)
    images: ImageLoader | None = None  # one per run, so an image is fetched once for all networks

    def __post_init__(self) -> None:
        """Without a loader given, images are read next to the post with the default limits."""
        if self.images is None:
            self.images = ImageLoader(base_dir=Path(self.edition.article.source).parent)


def deliver(run: Run) -> list[Outcome]:
    """Carry out every step; a channel that fails permanently stops, the others go on."""
    outcomes = []
    for step in run.plan.steps:
        if run.shared and not run.shared.lead and step.kind != "email":
            continue  # a joining sender only helps with the email batches
        outcome = Outcome(step.output, step.channel, step.measure)
        try:
            if step.kind == "email" and run.shared:
                send_shared_newsletter(run, step, run.channels.email[step.channel], outcome)
            elif step.kind == "email":
                send_newsletter(run, step, run.channels.email[step.channel], outcome)
            elif step.kind == "campaign":
                send_campaign(run, step, run.channels.campaign[step.channel], outcome)
            else:
                send_thread(run, step, run.channels.social[step.channel], outcome)
        except DeliveryError as exc:
            outcome.error = exc.one_line()
        except LedgerConflict as exc:  # this output only; the others go on
            outcome.error, outcome.refused = exc.one_line(), True
        outcomes.append(outcome)
        run.ledger.heartbeat(run.plan.slug)
    return outcomes


def send_newsletter(run: Run, step: Step, channel: EmailChannel, outcome: Outcome) -> None:
    """Stream recipients in batches; skip sent ones, resolve pending ones, send the rest."""
    tick = run.progress("newsletter", run.audience) if run.progress else None
    for chunk in _chunks(run.recipients(), channel.batch_size):
        _send_chunk(run, step, channel, chunk, outcome)
        run.ledger.heartbeat(run.plan.slug)  # a long send must not look stale to other hosts
        if tick:
            tick(len(chunk))


def send_campaign(run: Run, step: Step, channel: CampaignChannel, outcome: Outcome) -> None:
    """The newsletter as one campaign to a platform's own list, framed by the ledger.

    A row left pending by a killed run is simply tried again: `platform.deliver` finds the
    campaign that run created and starts it only if it has not gone out.
    """
    from publisher.channels.platform import deliver as deliver_campaign

    [item] = step.items
    ledger, edition_id = run.ledger, run.plan.edition_id
    row = ledger.get(edition_id, step.channel, item)
    if row is not None and row.state == "sent":
        outcome.already += 1
        return
    if row is not None and row.state == "failed" and not run.may_retry(row):
        _note_settled(outcome, row)
        return
    draft = replace(channel.draft(run.edition.newsletter, edition_id, run.edition.article.title),
                    send_at=run.at)  # set only when this platform holds the scheduled send
    ledger.mark_pending(edition_id, run.plan.slug, step.channel, [item], batch=draft.tag)
    try:
        receipt = _retrying(run, channel, lambda: deliver_campaign(channel, draft))
    except DeliveryError as exc:
        _record_failure(ledger, edition_id, step.channel, [item], exc)
        raise
    ledger.mark_sent(edition_id, step.channel,
                     {item: (receipt.provider_id, receipt.url, dict(receipt.extra))})
    outcome.new += 1
    outcome.destinations.append(receipt.provider_id)


def send_shared_newsletter(run: Run, step: Step, channel: EmailChannel, outcome: Outcome) -> None:
    """Claim numbered batches until none is left; other senders claim the rest concurrently."""
    assert run.shared is not None
    shared, edition_id = run.shared, run.plan.edition_id
    if shared.lead:
        shared.claims.plan_batches(edition_id, step.channel, channel.batch_size, shared.active_ids,
                                   reopen=True)
    else:
        _await_plan(shared, edition_id, step.channel)
    tick = run.progress("newsletter", run.audience) if run.progress else None
    while (claim := shared.claims.claim_batch(edition_id, step.channel)) is not None:
        done = _send_claim(run, step, channel, claim, outcome)
        if shared.lead:  # a joiner holds no lock to keep alive (its claims carry heartbeats)
            run.ledger.heartbeat(run.plan.slug)
        if tick:
            tick(done)


def _send_claim(
    run: Run, step: Step, channel: EmailChannel, claim: Claim, outcome: Outcome
) -> int:
    """One claimed id range through the usual pending/sent rows; given back if delivery fails."""
    assert run.shared is not None
    claims, done = run.shared.claims, 0
    try:
        members = run.shared.recipients_between(claim.first_id, claim.last_id)
        for chunk in _chunks(members, channel.batch_size):
            if done:  # a claim of several calls: the next one must not find it abandoned
                claims.touch_batch(claim)
            _send_chunk(run, step, channel, chunk, outcome)
            done += len(chunk)
    except BaseException:
        claims.release_batch(claim)
        raise
    claims.finish_batch(claim)
    return done


def _await_plan(shared: SharedSend, edition_id: str, channel: str) -> None:
    """A joiner starts once the lead has cut this edition's send into batches."""
    deadline = time.monotonic() + shared.join_wait
    while not shared.claims.planned(edition_id, channel):
        if time.monotonic() >= deadline:
            raise LedgerConflict(
                "no send of this edition is in progress to join",
                where=channel,
                fix="start `publish POST` first (or check both runs read the same article)",
            )
        time.sleep(0.2)


Prior = Mapping[int, Row | tuple[BatchRow, int]]  # subscriber id → where the ledger has them


def _send_chunk(
    run: Run, step: Step, channel: EmailChannel, chunk: Recipients, outcome: Outcome
) -> None:
    """Skip sent recipients, resend pending batches that may be resent, send the fresh ones.

    Where one call sends a whole batch and every recipient has a subscriber id, the ledger
    keeps one row per call (`mark_batch_pending`); otherwise one row per recipient.
    """
    prior: Prior | None = None
    if channel.facts.batch_call and all(chunk.ids):
        prior, rows = _recorded(run.ledger, run.plan.edition_id, step.channel, chunk)
    else:
        rows = run.ledger.states(run.plan.edition_id, step.channel, chunk.emails)
    fresh, retry = _sort_recipients(run, channel, chunk, rows, outcome)
    for key, recipients in retry.items():
        _send_batch(run, step, channel, key, recipients, outcome, prior)
    if fresh:
        _send_batch(run, step, channel, batch_key(run.plan.edition_id, step.channel,
                                                  fresh.emails,
                                                  salt=run.key_salts.get(step.output, "")),
                    fresh, outcome, prior)


def _recorded(
    ledger: Ledger, edition_id: str, channel: str, chunk: Recipients
) -> tuple[Prior, dict[str, Row]]:
    """Where the ledger has each recipient: a per-recipient row (older sends, refusals) first,
    else the batch row whose ids hold them; and each as a row, for sorting."""
    items = (ledger.states(edition_id, channel, chunk.emails)
             if ledger.has_items(edition_id, channel) else {})
    covered = ledger.covering(edition_id, channel, chunk.ids)
    prior: dict[int, Row | tuple[BatchRow, int]] = {}
    if not items and not covered:
        return prior, {}  # none of them recorded yet: the usual first send
    rows: dict[str, Row] = {}
    for email, member in zip(chunk.emails, chunk.ids, strict=True):
        row = items.get(email)
        if row is not None:
            prior[member] = rows[email] = row
        elif (found := covered.get(member)) is not None:
            prior[member], rows[email] = found, found[0].row(found[1])
    return prior, rows


def _sort_recipients(
    run: Run, channel: EmailChannel, chunk: Recipients, rows: Mapping[str, Row],
    outcome: Outcome,
) -> tuple[Recipients, dict[str, Recipients]]:
    """Split a chunk into fresh recipients and pending batches worth resending under their key."""
    if not rows:
        return chunk, {}  # none recorded: all fresh
    fresh: list[int] = []  # positions in the chunk
    retry: dict[str, list[int]] = {}
    for at, email in enumerate(chunk.emails):
        row = rows.get(email)
        if row is None or (row.state == "failed" and run.may_retry(row)):
            fresh.append(at)
        elif row.state == "sent":
            outcome.already += 1
        elif row.state == "failed":
            _note_settled(outcome, row)
        elif channel.facts.idempotent or run.retry_pending:
            retry.setdefault(row.batch, []).append(at)
        else:
            outcome.uncertain += 1
            outcome.note(UNCERTAIN, row.error, [row.item])
    return chunk.picked(fresh), {key: chunk.picked(kept) for key, kept in retry.items()}


def _note_settled(outcome: Outcome, row: Row) -> None:
    """A failure from an earlier run that this run leaves alone: it still counts as failed."""
    outcome.failed += 1
    outcome.note(REFUSED if row.failure == PERMANENT else GIVEN_UP, row.error, [row.item])


def _send_batch(
    run: Run, step: Step, channel: EmailChannel, key: str, recipients: Recipients,
    outcome: Outcome, prior: Prior | None = None,
) -> None:
    """One provider call, framed by ledger writes (one batch row per call when `prior` is given).
    """
    ledger, edition_id = run.ledger, run.plan.edition_id
    emails = recipients.emails
    written: list[BatchRow] | None = None
    if prior is None:
        ledger.mark_pending(edition_id, run.plan.slug, step.channel, emails, batch=key)
    else:
        written = ledger.mark_batch_pending(edition_id, run.plan.slug, step.channel, key,
                                            recipients.ids, emails, prior)
    batch = EmailBatch(key, run.edition.newsletter, recipients, run.edition.article.lang,
                       send_at=run.at, schedule_id=run.schedule_ids.get(step.channel, ""))
    try:
        result = _retrying(run, channel, lambda: channel.send_batch(batch))
    except DeliveryError as exc:
        if written is None:
            maybe = _record_failure(ledger, edition_id, step.channel, emails, exc)
        else:
            maybe = _record_batch_failure(ledger, written, exc)
        if maybe and not channel.facts.idempotent:
            outcome.lost += len(emails)
            outcome.note(LOST, exc.problem, emails)
        raise
    if written is None:
        ledger.mark_sent(edition_id, step.channel,
                         {e: (i, "", {}) for e, i in result.accepted.items()})
    else:
        refused = {**{e: (why, TRANSIENT) for e, why in result.deferred.items()},
                   **{e: (why, PERMANENT) for e, why in result.rejected.items()}}
        ledger.settle_batch(written, result.accepted, refused=refused,
                            uncertain=result.uncertain)
    _record_refusals(run, step.channel, result, outcome, recorded=written is not None)
    outcome.new += len(result.accepted)
    if len(outcome.destinations) < 3:
        outcome.destinations.extend(list(result.accepted.values())[:1])


def _record_refusals(
    run: Run, channel: str, result: BatchResult, outcome: Outcome, *, recorded: bool = False
) -> None:
    """Refused recipients: for good (and bounced) or for now; lost answers stay pending.

    `recorded`: `settle_batch` already wrote their rows.
    """
    ledger, edition_id = run.ledger, run.plan.edition_id
    if result.rejected:
        if not recorded:
            ledger.mark_failed(edition_id, channel, result.rejected, PERMANENT)
        bounced = {e: why for e, why in result.rejected.items() if e in result.bounced}
        if bounced and run.suppress is not None:
            run.suppress(bounced)
        for email, why in result.rejected.items():
            outcome.note(BOUNCED if email in bounced else REFUSED, why, [email])
    if result.deferred:
        if not recorded:
            ledger.mark_failed(edition_id, channel, result.deferred, TRANSIENT)
        rows = ledger.states(edition_id, channel, list(result.deferred))
        for email, why in result.deferred.items():
            row = rows.get(email)
            last = row is not None and not run.may_retry(row)
            outcome.note(GIVEN_UP if last else RETRY, why, [email])
    if result.uncertain:
        if not recorded:
            ledger.mark_uncertain(edition_id, channel, result.uncertain)
        for email, why in result.uncertain.items():
            outcome.note(LOST, why, [email])
    outcome.failed += len(result.rejected) + len(result.deferred)
    outcome.lost += len(result.uncertain)


def send_thread(run: Run, step: Step, channel: SocialChannel, outcome: Outcome) -> None:
    """Post a thread in order, each reply to the post before it; resume after the last sent."""
    posts = run.edition.social[step.output]
    rows = run.ledger.states(run.plan.edition_id, step.channel, list(step.items))
    retractions = retracted_ids(run.ledger, run.plan.edition_id, step.channel)
    gone = {item for item, row in rows.items()
            if row.state == "sent" and row.provider_id in retractions.get(item, ())}
    refuse_reshaping(step, posts, rows, gone)
    if gone and not run.resend:
        outcome.retracted = len(gone)
        return  # retracted on purpose: posted again only with --resend
    if gone and len(gone) < sum(1 for r in rows.values() if r.state == "sent"):
        raise LedgerConflict(
            "only part of this thread was retracted", where=step.output,
            fix="finish it with `publish retract POST --network "
                f"{channel_name(step.output)}`, then --resend")
    root: Receipt | None = None
    parent: Receipt | None = None
    for post, item in zip(posts, step.items, strict=True):
        row = None if item in gone else rows.get(item)
        if row is not None and row.state == "sent":
            receipt = Receipt(row.provider_id, row.url, row.extra)
            outcome.already += 1
        elif row is not None and row.state == "failed" and not run.may_retry(row):
            _note_settled(outcome, row)
            return  # the rest of the thread would reply to a post that does not exist
        elif row is not None and row.state == "pending" and not (
            channel.facts.idempotent or run.retry_pending
        ):
            outcome.uncertain += 1
            outcome.note(UNCERTAIN, row.error, [item])
            return  # a later post cannot reply to a post we are unsure exists
        else:
            generation = len(retractions.get(item, ()))
            key = row.batch if row is not None and row.batch else batch_key(
                run.plan.edition_id, step.channel, [item], generation=generation,
                salt=run.key_salts.get(step.output, ""))
            receipt = _send_post(run, step, channel, item, post, parent, root, outcome, key=key,
                                 attempted_before=row is not None)
            outcome.new += 1
        outcome.destinations.append(receipt.url or receipt.provider_id)
        root = root or receipt
        parent = receipt


def refuse_reshaping(step: Step, posts: Sequence[SocialPost], rows: Mapping[str, Row],
                     gone: set[str]) -> None:
    """Never reply 2/5…5/5 under a live single post that has no 1/5 (exit 5 for this network)."""
    first = rows.get(step.items[0])
    if len(posts) > 1 and first is not None and first.state == "sent" and \
            step.items[0] not in gone and first.extra.get("of") == 1:
        raise LedgerConflict(
            "sent as a single post; retract it, then `--resend --thread`", where=step.output,
            fix=f"publish retract POST --network {channel_name(step.output)}")


def retracted_ids(ledger: Ledger, edition_id: str, channel: str) -> dict[str, set[str]]:
    """Per item, the provider ids `publish retract` deleted (or is deleting) on this channel.

    Their number is the generation of the item's next key.
    """
    found: dict[str, set[str]] = {}
    for action in ledger.actions("retract", edition_id=edition_id):
        if action.channel == channel and action.state != "failed":
            found.setdefault(action.item, set()).add(action.target)
    return found


def text_digest(text: str) -> str:
    """A short fingerprint of a post's text, kept in the ledger to see later what changed."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _send_post(
    run: Run, step: Step, channel: SocialChannel, item: str, post: SocialPost,
    parent: Receipt | None, root: Receipt | None, outcome: Outcome, *, key: str,
    attempted_before: bool,
) -> Receipt:
    """One post, framed by ledger writes; the receipt keeps the text's shape and fingerprint."""
    ledger, edition_id = run.ledger, run.plan.edition_id
    _prepare_media(run, step, channel, item, post, key)
    ledger.mark_pending(edition_id, run.plan.slug, step.channel, [item], batch=key)

    def call() -> Receipt:
        if run.at is not None:  # placed at the provider (its `schedule` window): one post
            return cast(PostScheduler, channel).schedule_post(post, key=key, at=run.at)
        if channel.facts.two_step:
            return _send_staged(run, step, cast(TwoStepChannel, channel), item, post, parent,
                                root, key=key, attempted_before=attempted_before)
        return channel.send_post(post, key=key, reply_to=parent, root=root,
                                 attempted_before=attempted_before)

    try:
        receipt: Receipt = _retrying(run, channel, call)
    except InputError as exc:  # e.g. an unreadable card image: the post was never sent
        failure = PermanentDeliveryError(exc.problem, where=step.channel, fix=exc.fix)
        _record_failure(ledger, edition_id, step.channel, [item], failure)
        raise failure from exc
    except DeliveryError as exc:
        maybe = _record_failure(ledger, edition_id, step.channel, [item], exc)
        if maybe and not channel.facts.idempotent:
            outcome.lost += 1
            outcome.note(LOST, exc.problem, [item])
        raise
    extra = {**receipt.extra, "of": post.of, "text": text_digest(post.text)}
    ledger.mark_sent(edition_id, step.channel, {item: (receipt.provider_id, receipt.url, extra)})
    return Receipt(receipt.provider_id, receipt.url, extra)


def _send_staged(
    run: Run, step: Step, channel: TwoStepChannel, item: str, post: SocialPost,
    parent: Receipt | None, root: Receipt | None, *, key: str, attempted_before: bool,
) -> Receipt:
    """A two-step post, its first step's result kept on the pending row in between.

    Threads makes a container, then publishes it: the container id is written to the ledger
    before the publish, so a rerun after a crash publishes that container (or finds it
    published) instead of making and publishing a second one. It is kept under the post's key
    only, so a post sent again after a retraction never reuses the deleted post's container.
    """
    ledger, edition_id = run.ledger, run.plan.edition_id
    row = ledger.get(edition_id, step.channel, item)
    kept = row.extra if row is not None and row.extra.get(STAGED_KEY) == key else {}
    staged = {k.removeprefix(STAGED): str(v) for k, v in kept.items()
              if k.startswith(STAGED) and k != STAGED_KEY}

    def checkpoint(progress: Mapping[str, str]) -> None:
        ledger.mark_progress(edition_id, step.channel, item, {
            STAGED_KEY: key, **{STAGED + name: value for name, value in progress.items()}})

    return channel.send_staged(post, key=key, reply_to=parent, root=root,
                               attempted_before=attempted_before, staged=staged,
                               checkpoint=checkpoint)


def _prepare_media(
    run: Run, step: Step, channel: SocialChannel, item: str, post: SocialPost, key: str
) -> None:
    """Read and upload the post's image before it is marked pending: a failure here is definite.

    Nothing was posted yet, so the post is failed (retried next run), never left uncertain.
    """
    if not channel.facts.attaches_images:
        return

    assert run.images is not None  # Run.__post_init__
    images = run.images.retrying(run.policy, run.sleep)  # the fetch retries once per run

    def prepare() -> None:
        channel.prepare_media(post, key=key, images=images)

    try:
        if run.sleep is None:
            with_retries(prepare, run.policy)
        else:
            with_retries(prepare, run.policy, sleep=run.sleep)
    except (InputError, DeliveryError) as exc:
        problem = exc.problem if "image" in exc.problem else f"the image: {exc.problem}"
        failure: DeliveryError = PermanentDeliveryError(problem, where=step.channel, fix=exc.fix)
        if isinstance(exc, TransientDeliveryError):  # worth a rerun; nothing may have landed
            failure = TransientDeliveryError(problem, where=step.channel, fix=exc.fix)
        row = run.ledger.get(run.plan.edition_id, step.channel, item)
        if row is None:
            run.ledger.mark_pending(run.plan.edition_id, run.plan.slug, step.channel, [item],
                                    batch=key)
        if row is None or row.state != "pending":  # an earlier uncertain try stays uncertain
            run.ledger.mark_failed(run.plan.edition_id, step.channel, {item: failure.one_line()},
                                   failure_kind(failure))
        raise failure from exc


def _record_failure(
    ledger: Ledger, edition_id: str, channel: str, items: Sequence[str], exc: DeliveryError
) -> bool:
    """A definite failure is marked failed (retried next run); a maybe-landed call stays pending.

    True when the items were left pending because the call may have landed.
    """
    if isinstance(exc, TransientDeliveryError) and exc.maybe_delivered:
        ledger.mark_uncertain(edition_id, channel, dict.fromkeys(items, exc.problem))
        return True
    ledger.mark_failed(edition_id, channel, dict.fromkeys(items, exc.one_line()), failure_kind(exc))
    return False


def _record_batch_failure(ledger: Ledger, written: Sequence[BatchRow], exc: DeliveryError) -> bool:
    """`_record_failure` for a call recorded as batch rows."""
    if isinstance(exc, TransientDeliveryError) and exc.maybe_delivered:
        ledger.doubt_batch(written, exc.problem)
        return True
    ledger.fail_batch(written, exc.one_line(), failure_kind(exc))
    return False


def failure_kind(exc: DeliveryError) -> str:
    """How the ledger files a raised error: transient, or a stopped channel to fix and rerun."""
    return TRANSIENT if isinstance(exc, TransientDeliveryError) else STOPPED


def _retrying(run: Run, channel: EmailChannel | SocialChannel | CampaignChannel,
              call: Callable[[], T]) -> T:
    """The shared retry loop; a call that may have landed is retried only if it cannot duplicate."""
    policy = run.policy if channel.facts.idempotent else replace(run.policy, retry_uncertain=False)
    if run.sleep is None:
        return with_retries(call, policy)
    return with_retries(call, policy, sleep=run.sleep)


def batch_key(edition_id: str, channel: str, members: Sequence[str], *,
              generation: int = 0, salt: str = "") -> str:
    """A key stable across retries: the same edition, channel and members give the same key.

    generation counts retractions: a post sent again after `publish retract` gets a fresh
    key (a new Idempotency-Key, a new Bluesky record key), never the deleted post's. The
    members are hashed as one string, the same bytes as one update per "\\0member".
    """
    digest = hashlib.sha256(f"{edition_id}\0{channel}".encode())
    if members:
        digest.update(("\0" + "\0".join(members)).encode())
    if generation:
        digest.update(f"\0#{generation}".encode())
    if salt:  # a scheduled send: a new schedule after `unschedule` never replays the cancelled one
        digest.update(f"\0@{salt}".encode())
    return digest.hexdigest()[:32]


def _chunks(items: Iterable[Recipient | Recipients], size: int) -> Iterator[Recipients]:
    """Consecutive pages of at most size recipients, without materialising the stream; a page
    of exactly that size (the store's, for most channels) goes through as it is."""
    left = Recipients()
    for page in _pages(items, size):
        if not left and len(page) == size:
            yield page
            continue
        left += page
        while len(left) >= size:
            yield left[:size]
            left = left[size:]
    if left:
        yield left


def _pages(items: Iterable[Recipient | Recipients], size: int) -> Iterator[Recipients]:
    """The stream as pages: pages as they come, single recipients gathered size at a time."""
    single: list[Recipient] = []
    for item in items:
        if isinstance(item, Recipient):
            single.append(item)
            if len(single) == size:
                yield Recipients.of(single)
                single = []
            continue
        if single:
            yield Recipients.of(single)
            single = []
        yield item
    if single:
        yield Recipients.of(single)
