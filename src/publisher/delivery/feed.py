"""`publish feed URL`: each item not yet published, oldest first, exactly once.

`plan_feed` reads the feed (a conditional GET with the last validators), picks the items
(`source.feed.choose`) and builds every item's edition before anything is sent, so a bad item
stops the run with nothing half-sent. `send_feed` then publishes them one by one through the
ordinary pipeline (one ledger post per item, so each delivery is exactly once as for a post
file) and records each guid in the ledger's feed tables (`stores.feeds`) once every output of it
was delivered. The validators are kept only when the whole feed was handled, so a run that
failed part-way reads the full feed again next time instead of getting a 304.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from publisher.errors import InputError
from publisher.source.feed.choose import PASSED, PENDING, PUBLISHED, Limits, choose
from publisher.source.feed.fetch import Validators
from publisher.source.feed.item import FeedItem
from publisher.stores.feeds import FeedItemRow, FeedLog, open_feed_log

if TYPE_CHECKING:  # the edition and delivery code loads only when the feed has changed
    from publisher.config.settings import Config
    from publisher.delivery.pipeline import Options, Prepared
    from publisher.delivery.send import Outcome
    from publisher.model import Article

FIRST_RUN_FIX = "pass --latest N, --since DATE or --all (e.g. --latest 1 for the newest item)"


@dataclass(frozen=True)
class FeedOptions:
    """What the editor asked of one feed run."""

    url: str
    limits: Limits
    resend: bool = False
    strict: bool = False
    out: Path | None = None
    templates: Path | None = None
    channels: frozenset[str] | None = None  # --only/--skip; None: every channel

    def for_item(self, item: FeedItem, *, dry_run: bool, resend: bool) -> Options:
        """The options of one item's run through the pipeline, as `publish POST` would get."""
        from publisher.delivery.pipeline import Options

        run = Options(Path(item.link), self.out, self.templates, dry_run=dry_run,
                      resend=resend, strict=self.strict)
        return run if self.channels is None else replace(run, channels=self.channels)


@dataclass
class FeedEntry:
    """One item this run publishes: its article, its prepared edition, then its outcomes."""

    item: FeedItem
    article: Article
    resend: bool  # a published item whose text changed, sent again under --resend
    prepared: Prepared
    outcomes: list[Outcome] = field(default_factory=list)


@dataclass
class FeedPlan:
    """What one run of a feed will do."""

    url: str
    title: str = ""
    unchanged: bool = False  # the server answered 304: nothing to read
    entries: list[FeedEntry] = field(default_factory=list)
    passed: tuple[FeedItem, ...] = ()
    already: int = 0  # items published before and not sent now
    held: int = 0  # items an earlier limited run left out, still left out
    validators: Validators = field(default_factory=Validators)
    warnings: tuple[str, ...] = ()


def plan_feed(options: FeedOptions, config: Config) -> FeedPlan:
    """Fetch, parse and choose; every chosen item's edition built (dry run: no channels)."""
    from publisher.source.feed.fetch import fetch_feed

    url = options.url
    log = open_feed_log(config.ledger)
    try:
        known, rows = log.known(url), log.items(url)
        if known is None and not rows and not options.limits.given:
            raise InputError("this feed was never published from: say how much of it to send",
                             where=url, fix=FIRST_RUN_FIX)
        plain = not options.limits.given and not options.resend
        answer = fetch_feed(url, config.feed, known if plain else None)
        if answer.unchanged:
            return FeedPlan(url, unchanged=True, validators=answer.validators)
        from publisher.source.feed.parse import parse_feed

        feed = parse_feed(answer.body, url=url, content_type=answer.content_type)
        states = {guid: row.state for guid, row in rows.items()}
        choice = choose(feed.items, states, options.limits, resend=options.resend)
        taken: set[str] = set()  # post names given to new items of this run
        entries = [entry for item in choice.publish
                   if (entry := _entry(item, rows.get(item.guid), log, options, config, taken))]
    finally:
        log.close()
    warnings = (*feed.warnings, *(w for e in entries for w in e.prepared.edition.warnings))
    now = {e.item.guid for e in entries} | {i.guid for i in choice.passed}
    rest = [states.get(guid) for guid in dict.fromkeys(i.guid for i in feed.items)
            if guid not in now]
    return FeedPlan(url, feed.title, entries=entries, passed=choice.passed,
                    already=sum(state != PASSED for state in rest),
                    held=sum(state == PASSED for state in rest),
                    validators=answer.validators, warnings=tuple(warnings))


def _entry(item: FeedItem, row: FeedItemRow | None, log: FeedLog, options: FeedOptions,
           config: Config, taken: set[str]) -> FeedEntry | None:
    """The item's article and dry-run edition; None for a published item whose text is the same."""
    from publisher.delivery.pipeline import prepare
    from publisher.source.feed.parse import item_article

    slug = row.slug if row else _new_slug(item, log, options.url, taken)
    article = item_article(item, slug=slug, feed_url=options.url)
    resend = row is not None and row.state == PUBLISHED
    if resend and row is not None and article.content_hash == row.edition_id:
        return None
    dry = options.for_item(item, dry_run=True, resend=resend)
    return FeedEntry(item, article, resend, prepare(dry, config, article=article))


def _new_slug(item: FeedItem, log: FeedLog, feed: str, taken: set[str]) -> str:
    """The ledger post name of an item seen for the first time: its slug, unless another item
    (in the ledger, or earlier in this run) holds it; the name is then added to `taken`."""
    from publisher.source.feed.parse import item_slug, unique_slug

    slug = item_slug(item)
    if slug in taken or log.post_taken(slug, feed, item.guid):
        slug = unique_slug(slug, item.guid)
    taken.add(slug)
    return slug


def send_feed(plan: FeedPlan, options: FeedOptions, config: Config) -> list[FeedEntry]:
    """Publish each planned item, oldest first; record guids; keep validators if all went."""
    from publisher.delivery.pipeline import prepare, publish

    log = open_feed_log(config.ledger)
    clean = True
    try:
        taken = {entry.article.slug for entry in plan.entries}
        for item in plan.passed:
            slug = _new_slug(item, log, plan.url, taken)
            log.mark(plan.url, FeedItemRow(item.guid, slug, "", PASSED))
        for entry in plan.entries:
            edition_id = entry.article.content_hash
            row = FeedItemRow(entry.item.guid, entry.article.slug, edition_id, PENDING)
            if not entry.resend:
                log.mark(plan.url, row)
            run = options.for_item(entry.item, dry_run=False, resend=entry.resend)
            entry.prepared = prepare(run, config, article=entry.article)
            entry.outcomes = publish(entry.prepared, config, run)
            if settled(entry.outcomes):
                log.mark(plan.url, replace(row, state=PUBLISHED))
            else:
                clean = False
        log.remember(plan.url, plan.validators if clean else Validators())
    finally:
        log.close()
    return plan.entries


def settled(outcomes: list[Outcome]) -> bool:
    """Every output delivered (or already): nothing failed, refused or uncertain."""
    return not any(o.undelivered or o.refused or o.uncertain or o.lost for o in outcomes)


# What `publish status` calls each stored state (the ledger's `passed` is shown as left out).
STATUS_STATES = {PUBLISHED: "published", PASSED: "left-out", PENDING: "pending"}


def feed_entries(log: FeedLog) -> list[dict[str, object]]:
    """Per known feed: how many items were published, left out and pending, and each item."""
    from datetime import UTC, datetime

    from publisher.schedule import iso

    grouped: dict[str, list[dict[str, str]]] = {}
    for feed, row, moment in log.history():
        grouped.setdefault(feed, []).append({
            "guid": row.guid, "post": row.slug, "state": STATUS_STATES.get(row.state, row.state),
            "at": iso(datetime.fromtimestamp(moment, UTC))})
    return [{"feed": feed, **{state.replace("-", "_"): sum(i["state"] == state for i in items)
                              for state in STATUS_STATES.values()}, "items": items}
            for feed, items in grouped.items()]
