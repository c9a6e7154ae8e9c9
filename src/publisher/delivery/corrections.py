"""After the send: `publish retract` deletes what a post put on each network, exactly once.

Each deletion is an action in the ledger, written pending before the provider call and done
after it, like a delivery. A run killed mid-call leaves the action pending; the next run asks the
network whether the post still exists before deleting, so nothing is deleted twice. What a
channel can do is data (its `facts`: can_delete, can_edit), read here, never probed.

A post handed to its provider with `--at` (Mastodon's `scheduled_at`) is recorded under the
ScheduledStatus id. Mastodon deletes that record when it posts and gives the status a new id;
neither the ScheduledStatus entity nor GET /api/v1/scheduled_statuses/:id (404 once posted)
names the new status (https://docs.joinmastodon.org/entities/ScheduledStatus/,
https://docs.joinmastodon.org/methods/scheduled_statuses/), so retract and --update refuse such
a post in one line (exit 4) instead of acting on an id that no longer exists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from publisher.channels import Receipt, SocialChannel
from publisher.config.settings import Config
from publisher.delivery.scheduling import Held, provider_held
from publisher.errors import DeliveryError, InputError, PermanentDeliveryError
from publisher.model import SocialPost
from publisher.networks import NAMES as NETWORK_NAMES
from publisher.plan import OUTBOX, channel_name
from publisher.stores.ledger import Ledger, Row
from publisher.text.counts import counted

if TYPE_CHECKING:
    from publisher.delivery.pipeline import Options, Prepared


@dataclass(frozen=True)
class LivePost:
    """One post a network holds for this article, and every ledger row that records it.

    After `--update` the same post is recorded under the first and the corrected edition.
    """

    channel: str
    provider_id: str
    url: str
    rows: tuple[Row, ...]
    pending: bool  # an earlier retract of it was interrupted

    @property
    def name(self) -> str:
        """The --network name it belongs to."""
        return social_network(self.rows[0].item)

    @property
    def receipt(self) -> Receipt:
        """What the channel needs to find the post."""
        row = self.rows[0]
        return Receipt(row.provider_id, row.url, row.extra)


@dataclass
class Retraction:
    """What one `publish retract` did, per network."""

    deleted: dict[str, int] = field(default_factory=dict)
    already_gone: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    removed_urls: list[str] = field(default_factory=list)
    newsletter_readers: int = 0  # who already has the newsletter: it cannot be recalled
    # Newsletter sends a provider holds for a time (`--at`): nobody has them before it.
    newsletter_held: list[Held] = field(default_factory=list)


def social_network(item: str) -> str:
    """`x-faq#2` → `x`: the channel name of a social ledger item."""
    return channel_name(item.split("#", 1)[0])


def is_social_item(item: str) -> bool:
    """Social posts are keyed `<output>#<position>`; recipients and files are not."""
    return "#" in item and "@" not in item


def check_network(network: str | None) -> None:
    """--network names one network (or the outbox files of one)."""
    if network is not None and network not in NETWORK_NAMES:
        raise InputError(f"unknown network {network!r}", where="--network",
                         fix=f"use one of {', '.join(NETWORK_NAMES)}")


def live_posts(ledger: Ledger, slug: str, network: str | None) -> list[LivePost]:
    """The posts this article has on the networks (all its editions), replies before roots."""
    retractions = {(a.channel, a.item, a.target): a.state
                   for a in ledger.actions("retract", slug=slug)}
    grouped: dict[tuple[str, str], list[Row]] = {}
    for edition_id in ledger.editions(slug):
        for row in ledger.rows(edition_id, state="sent"):
            if not is_social_item(row.item) or (network and social_network(row.item) != network):
                continue
            if retractions.get((row.channel, row.item, row.provider_id)) == "done":
                continue
            grouped.setdefault((row.channel, row.provider_id), []).append(row)
    found = [
        LivePost(channel, pid, rows[0].url, tuple(rows),
                 any(retractions.get((r.channel, r.item, pid)) == "pending" for r in rows))
        for (channel, pid), rows in grouped.items()
    ]
    return sorted(found, key=lambda p: (p.channel, p.rows[0].item.split("#")[0],
                                        -_position(p.rows[0].item)))


def refuse_scheduled(rows: Iterable[Row], source: str, verb: str) -> None:
    """A post its provider was to make at `--at` time has an id publisher cannot reach."""
    held = next((r for r in rows if r.extra.get("scheduled_at")), None)
    if held is None:
        return
    raise PermanentDeliveryError(
        f"{held.item} was scheduled at {held.channel} for {held.extra['scheduled_at']}; "
        f"{held.channel} posts it under a new id its API does not link to the scheduled one, "
        f"so publisher cannot find the post to {verb}", where=source,
        fix=f"before that time run `publish unschedule {source}`; after it, {verb} the post "
            "on the instance by hand (other networks: --network NAME)")


def newsletter_reach(ledger: Ledger, slug: str, *, now: datetime) -> tuple[int, list[Held]]:
    """Recipients the post's newsletter was delivered to, and the sends a provider still holds.

    A send handed to SendGrid or Resend with `--at` is recorded like a delivery, but the
    provider keeps it until its time: its readers are not counted as having it.
    """
    held = [h for h in provider_held(ledger, slug, now=now) if h.readers]
    waiting = {(h.edition_id, h.channel, item) for h in held for item in h.readers}
    readers: set[str] = set()
    for edition_id in ledger.editions(slug):
        readers.update(r.item for r in ledger.rows(edition_id, state="sent")
                       if "@" in r.item and (edition_id, r.channel, r.item) not in waiting)
    return len(readers), held


def retract(
    ledger: Ledger, slug: str, targets: list[LivePost],
    channels: Mapping[str, SocialChannel], *, now: datetime,
) -> Retraction:
    """Delete each live post once: pending before the call, done after, 404 as already gone."""
    readers, held = newsletter_reach(ledger, slug, now=now)
    report = Retraction(newsletter_readers=readers, newsletter_held=held)
    for target in targets:
        _retract_one(ledger, slug, target, channels[target.channel], report)
    return report


def _retract_one(ledger: Ledger, slug: str, target: LivePost, channel: SocialChannel,
                 report: Retraction) -> None:
    """One post: every row recording it moves pending → done (or failed) together."""
    from publisher.channels.http import with_retries

    def mark(state: str, error: str = "") -> None:
        for row in target.rows:
            ledger.mark_action(row.edition_id, slug, row.channel, row.item, "retract",
                               target=target.provider_id, state=state, error=error)

    tried = [target.pending]

    def delete() -> bool:
        attempted, tried[0] = tried[0], True  # a retry asks first whether the last try landed
        return bool(channel.delete_post(target.receipt, attempted_before=attempted))

    mark("pending")
    try:
        deleted = with_retries(delete)
    except DeliveryError as exc:
        report.errors.append(f"{target.name} {target.rows[0].item}: {exc.one_line()}")
        mark("failed", exc.one_line())
        return
    mark("done")
    tally = report.deleted if deleted else report.already_gone
    tally[target.name] = tally.get(target.name, 0) + 1
    if target.url.startswith("https://"):
        report.removed_urls.append(target.url)


def open_deleters(config: Config, targets: Iterable[LivePost]) -> dict[str, SocialChannel]:
    """The channels that can delete these posts, preflighted (the outbox deletes files)."""
    from publisher.channels import registry
    from publisher.channels.http import with_retries
    from publisher.channels.outbox import Outbox

    channels: dict[str, SocialChannel] = {}
    try:
        for name in sorted({t.channel for t in targets}):
            if not registry.facts(name).can_delete:
                continue
            if name == OUTBOX:
                channels[name] = Outbox(Path(config.outbox), config.site)
                continue
            channels[name] = registry.build_social(name, config)
            with_retries(channels[name].preflight)
    except BaseException:
        for channel in channels.values():
            channel.close()
        raise
    return channels


def without_retracted_links(path: Path, urls: list[str]) -> bool:
    """--write-back: drop the deleted posts' URLs from the article's `syndication:`."""
    from publisher.source.writeback import write_back

    return write_back(path, [], remove=urls) if urls else False


def _position(item: str) -> int:
    """The thread position of a social item."""
    tail = item.rsplit("#", 1)[-1]
    return int(tail) if tail.isdigit() else 0


# -- publish POST --update ---------------------------------------------------------------------

@dataclass
class Update:
    """What one `--update` did, per output: edited, unchanged, or left old where no edit exists."""

    edited: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)
    cannot_edit: dict[str, int] = field(default_factory=dict)  # network → posts keeping old text
    current: bool = False  # the article is already the edition that was sent


def update(post_path: Path, config: Config, options: Options) -> Update:
    """Correct the live posts of an article that changed since it was sent, then adopt it.

    The first edition's shape (single post or thread) is kept; live posts whose text changed
    are edited once where the network can edit, the outbox and FAQ files are rewritten, and the
    corrected article becomes the current edition (it inherits what the first one delivered),
    so a plain `publish POST` afterwards sends nothing.
    """
    from dataclasses import replace

    from publisher.delivery.pipeline import load_article, prepare
    from publisher.networks import NETWORKS
    from publisher.stores.backends import open_ledger

    article = load_article(post_path, config)
    ledger = open_ledger(config.ledger)
    try:
        with ledger.lock(article.slug, source=str(post_path)):
            if ledger.tally(article.content_hash):
                return Update(current=True)
            previous = _sent_edition(ledger, article.slug, article.content_hash, post_path)
            live = _live_rows(ledger, article.slug, previous)
            refuse_scheduled(live.values(), str(post_path), "edit")
            shape = _shape(live)
            thread = any(n > 1 for out, n in shape.items()
                         if out in NETWORKS and NETWORKS[out].thread)
            prepared = prepare(replace(options, thread=thread), config)
            try:
                refuse_reshaped(prepared.edition.social, shape, post_path)
                report = _edit_changed(ledger, prepared, live, previous)
                ledger.carry_over(article.slug, previous, article.content_hash)
                adopt_edits(ledger, article.content_hash, live)
                _rewrite_files(prepared, config)
            finally:
                prepared.close()
            return report
    finally:
        ledger.close()


def _sent_edition(ledger: Ledger, slug: str, current: str, source: Path) -> str:
    """The newest other edition of the post that delivered something."""
    found = ledger.other_editions(slug, current)
    for edition_id in ledger.editions(slug):
        if edition_id in found:
            return edition_id
    raise InputError("nothing of this post was sent yet, so there is nothing to update",
                     where=str(source), fix="send it with `publish POST`")


def _live_rows(ledger: Ledger, slug: str, edition_id: str) -> dict[str, Row]:
    """The edition's sent social posts that were not retracted, by ledger item."""
    retracted = {(a.channel, a.item, a.target) for a in ledger.actions("retract", slug=slug)
                 if a.state != "failed"}
    return {row.item: row for row in ledger.rows(edition_id, state="sent")
            if is_social_item(row.item)
            and (row.channel, row.item, row.provider_id) not in retracted}


def _shape(live: dict[str, Row]) -> dict[str, int]:
    """How many posts each output had when it was sent (its thread length, 1 for a single)."""
    shape: dict[str, int] = {}
    for item, row in live.items():
        output = item.split("#", 1)[0]
        shape[output] = max(shape.get(output, 0), int(str(row.extra.get("of", _position(item)))))
    return shape


def refuse_reshaped(social: Mapping[str, tuple[SocialPost, ...]], shape: dict[str, int],
                    source: Path) -> None:
    """An edit keeps each post; a fix that changes a thread's length or overflows is refused."""
    for output, count in sorted(shape.items()):
        posts = social.get(output, ())
        fix = (f"retract it (`publish retract {source} --network {channel_name(output)}`), "
               f"run `publish {source} --update` again, then `publish {source} --resend` "
               "to post it afresh")
        if len(posts) != count:
            were = "was" if count == 1 else "were"
            raise InputError(f"{output}: the correction makes {counted(len(posts), 'post')} where "
                             f"{counted(count, 'post')} {were} sent, which an edit cannot do",
                             where=str(source), fix=fix)
        for post in posts:
            if post.length > post.limit:
                raise InputError(f"{output}: post {post.position} would be {post.length}/"
                                 f"{post.limit}, over the limit", where=str(source), fix=fix)


def _edit_changed(ledger: Ledger, prepared: Prepared, live: dict[str, Row],
                  previous: str) -> Update:
    """Edit, once each, the live posts whose text changed, where the channel can edit."""
    from publisher.channels.http import with_retries
    from publisher.delivery.send import text_digest

    report, current, slug = Update(), prepared.plan.edition_id, prepared.plan.slug
    edits = {(a.channel, a.item): a.state
             for a in ledger.actions("edit", edition_id=previous) if a.target == current}
    for output, posts in prepared.edition.social.items():
        for social in posts:
            item = f"{output}#{social.position}"
            row = live.get(item)
            if row is None:
                continue
            name = channel_name(output)
            if row.extra.get("text") == text_digest(social.text):
                report.unchanged[name] = report.unchanged.get(name, 0) + 1
                continue
            if not prepared.live.facts(row.channel).can_edit:
                report.cannot_edit[name] = report.cannot_edit.get(name, 0) + 1
                continue
            state = edits.get((row.channel, item))
            if state != "done":
                ledger.mark_action(previous, slug, row.channel, item, "edit", target=current)
                with_retries(_editor(prepared.live.social[row.channel], row, social,
                                     attempted=state == "pending"))
                ledger.mark_action(previous, slug, row.channel, item, "edit", target=current,
                                   state="done")
            report.edited[name] = report.edited.get(name, 0) + 1
            edited = {**row.extra, "text": text_digest(social.text)}
            live[item] = Row(**{**row.__dict__, "extra": edited})
    return report


def _editor(channel: SocialChannel, row: Row, social: SocialPost, *, attempted: bool
            ) -> Callable[[], bool]:
    """One edit call; its retries first check whether the previous try landed."""
    tried = [attempted]

    def edit() -> bool:
        before, tried[0] = tried[0], True
        return bool(channel.edit_post(Receipt(row.provider_id, row.url, row.extra), social,
                                      attempted_before=before))

    return edit


def _rewrite_files(prepared: Prepared, config: Config) -> None:
    """The outbox's edition files, web and FAQ outputs follow the corrected article."""
    from publisher.channels.outbox import write_artifacts
    from publisher.delivery.pipeline import sample_recipients
    from publisher.edition.build import edition_json

    reader = next(sample_recipients(config))
    write_artifacts(prepared.folder, prepared.edition, edition_json(prepared.edition, reader))


def adopt_edits(ledger: Ledger, edition_id: str, live: dict[str, Row]) -> None:
    """The corrected edition's rows remember the edited texts' fingerprints."""
    for item, row in live.items():
        ledger.mark_sent(edition_id, row.channel, {item: (row.provider_id, row.url, row.extra)})
