"""The whole job in order: read → parse → preflight → edition → plan → lock → deliver.

The CLI calls `prepare` and `publish`; everything it prints comes from the values returned here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from publisher.config.settings import Config, refuse_demo_identity
from publisher.edition.build import build_edition
from publisher.edition.newsletter.render import load_templates
from publisher.errors import (
    ConfigError,
    DeliveryError,
    InputError,
    LedgerConflict,
    TransientDeliveryError,
)
from publisher.model import Article, Edition, Recipient, Recipients
from publisher.plan import (
    CHANNEL_NAMES,
    FAQ_DIGEST,
    OUTBOX,
    Plan,
    build_plan,
    channel_name,
    email_route,
    is_platform,
    sends_to_own_list,
    social_route,
)
from publisher.source.faq import jsonld_text
from publisher.source.read import is_wordpress_ref, parse_article, read_post
from publisher.text.counts import counted

if TYPE_CHECKING:  # delivery modules load only when something is delivered, not for --dry-run
    from publisher.channels import (
        BatchResult,
        CampaignChannel,
        EmailChannel,
        Hints,
        LiveChannels,
        SocialChannel,
    )
    from publisher.channels.images import ImageLoader
    from publisher.delivery.scheduling import Timing
    from publisher.delivery.send import Outcome, SharedSend
    from publisher.stores.addresses import Subscriber
    from publisher.stores.ledger import Ledger


@dataclass(frozen=True)
class Options:
    """What the editor asked for on the command line."""

    post: Path
    out: Path | None = None
    templates: Path | None = None
    thread: bool | None = None
    dry_run: bool = False
    resend: bool = False
    retry_pending: bool = False
    join: bool = False  # help a send in progress (PostgreSQL) instead of stopping
    strict: bool = False  # warnings stop the run (exit 2) before anything is sent
    channels: frozenset[str] = frozenset(CHANNEL_NAMES)  # --only/--skip: what this run delivers
    proof: tuple[str, ...] = ()  # --proof: send only the newsletter, to these addresses
    retry_failed: bool = False  # try refused and given-up deliveries again
    at: datetime | None = None  # --at: providers that can hold the send get it, the rest queue
    now: datetime | None = None  # the clock, read once by the CLI, for placing --at
    due_outputs: frozenset[str] | None = None  # `publish due`: only these plan outputs


@dataclass
class Prepared:
    """An edition ready to deliver, with its plan and the live channels it needs."""

    article: Article
    edition: Edition
    plan: Plan
    folder: Path
    channels: LiveChannels | None = None  # None for a dry run: nothing is opened
    subscribers: int | None = None  # active subscribers in the list; None without a list

    @property
    def live(self) -> LiveChannels:
        """The opened channels (a dry run has none)."""
        if self.channels is None:
            raise AssertionError("a dry run opens no channels")  # pragma: no cover
        return self.channels

    def close(self) -> None:
        """Release every channel's connections."""
        if self.channels is not None:
            self.channels.close()


def load_article(path: Path, config: Config | None = None) -> Article:
    """Read and parse one post: a Markdown file, or a WordPress post's URL or wp:SITE:ID."""
    if is_wordpress_ref(str(path)):
        from publisher.source.wordpress.article import article_from_post
        from publisher.source.wordpress.fetch import fetch_post, parse_ref

        settings = (config or Config()).wordpress
        return article_from_post(fetch_post(parse_ref(str(path), settings), settings))
    return parse_article(read_post(path), source=str(path))


def prepare(options: Options, config: Config, *, article: Article | None = None) -> Prepared:
    """Everything up to the plan; live channels are preflighted before anything is sent.

    `article` is one already read (a feed item); otherwise `options.post` is read.
    """
    article = article or load_article(options.post, config)
    templates = load_templates(_templates_dir(options, config))
    folder = (options.out or Path(config.outbox)) / (article.slug or "post")
    channels: LiveChannels | None = None
    hints: dict[str, Hints] = {}
    if options.dry_run:
        check_channel_tables(config)
    else:
        refuse_demo_identity(config)
        wanted = [email_route(config)] if options.proof else None  # a proof needs only email
        channels, hints = open_channels(config, wanted)
    edition = build_edition(article, config, templates, thread=options.thread, hints=hints,
                            missing_image=missing_image(article, config))
    plan = build_plan(edition, config)
    prepared = Prepared(article, edition, plan, folder, channels, subscriber_count(config))
    if channels is not None and not (options.strict and edition.warnings):
        from publisher.channels.outbox import Outbox

        outbox = Outbox(folder, config.site)
        outbox.preflight()
        channels.email[OUTBOX] = channels.social[OUTBOX] = outbox
    return prepared


def refuse_warnings(prepared: Prepared, options: Options) -> None:
    """--strict: any warning stops the run before anything is sent (exit 2, for CI).

    `prepare` leaves the outbox uncreated in that case, so a refused run writes nothing.
    """
    count = len(prepared.edition.warnings)
    if not options.strict or not count:
        return
    prepared.close()
    raise strict_refusal(count, where=str(options.post))


def strict_refusal(count: int, *, where: str) -> InputError:
    """--strict's answer to warnings (a post's or a feed's): nothing sent, exit 2."""
    return InputError(f"{counted(count, 'warning')} and --strict: nothing was sent", where=where,
                      fix="fix the warnings listed above, or run without --strict")


def image_loader(article: Article, config: Config) -> ImageLoader:
    """Reads the post's images next to it, within the [images] limits, once per run."""
    from publisher.channels.images import ImageLoader

    return ImageLoader(config.images, base_dir=Path(article.source).parent)


def missing_image(article: Article, config: Config) -> str:
    """The local `image:` file when it does not exist, else ''.

    A path the post may not read (outside its folder, absolute) is not reported here: delivery
    refuses it with its own error, and nothing is read to find out.
    """
    image = article.image
    if not image or image.startswith(("http://", "https://")):
        return ""
    from publisher.errors import InputError

    try:
        path = image_loader(article, config).local_path(image)
    except InputError:
        return ""
    if path.exists():
        return ""
    return image if Path(image).is_absolute() else str(Path(article.source).parent / image)


def subscriber_count(config: Config) -> int | None:
    """How many subscribers a real transport would reach; None when no list was imported."""
    from publisher.stores.setting import is_database_url

    target = str(config.subscribers)
    if not is_database_url(target) and not Path(target).is_file():
        return None  # nothing imported yet (and a dry run opens no database for nothing)
    from publisher.stores.backends import open_store

    store = open_store(target)
    try:
        return int(store.count_active())
    finally:
        store.close()


def publish(
    prepared: Prepared,
    config: Config,
    options: Options,
    *,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
    recipients: Callable[[], Iterable[Recipient]] | None = None,
) -> list[Outcome]:
    """Deliver a prepared edition under the post's send lock; the ledger makes it exactly once.

    With --join and a send of this post in progress, this run claims batches of its email
    send instead of stopping (PostgreSQL ledger and subscribers only).
    """
    from publisher.delivery.scheduling import run_timing
    from publisher.delivery.send import Run, deliver
    from publisher.stores.backends import open_ledger

    sharing = recipients is None and can_share(config)
    if options.join and not sharing:
        raise ConfigError(
            "--join needs the ledger and the subscribers on PostgreSQL, and an email provider",
            where=config.source or "publisher.toml",
            fix='set ledger = "postgresql://…" and subscribers = "postgresql://…"',
        )
    ledger = open_ledger(config.ledger)
    try:
        with ExitStack() as held:
            lead = take_lock_or_join(held, ledger, prepared, options)
            ledger.check_edition(
                prepared.plan.slug, prepared.plan.edition_id,
                resend=options.resend, source=str(options.post),
            )
            timing = run_timing(ledger, prepared, options)
            faq = _lead_outputs(ledger, prepared, config, options, timing) if lead else []
            plan = prepared.plan if lead else joiner_plan(prepared.plan)
            kept = tuple(s for s in plan.steps if s.output in timing.outputs)
            run = Run(
                ledger=ledger, edition=prepared.edition,
                plan=replace(plan, steps=kept), channels=prepared.live,
                recipients=recipients or (lambda: recipients_for(config)),
                retry_pending=options.retry_pending, progress=progress,
                shared=shared_send(held, ledger, config, lead=lead) if sharing else None,
                audience=audience_size(config) if progress and recipients is None else 0,
                resend=options.resend, images=image_loader(prepared.article, config),
                max_attempts=config.max_attempts, retry_failed=options.retry_failed,
                suppress=bounce_subscribers(config) if sends_to_own_list(config) else None,
                at=timing.at, schedule_ids=timing.handles, key_salts=timing.salts,
            )
            return [*faq, *in_plan_order(plan, deliver(run), timing)]
    finally:
        ledger.close()
        prepared.close()


def _lead_outputs(ledger: Ledger, prepared: Prepared, config: Config, options: Options,
                  timing: Timing) -> list[Outcome]:
    """What only the leading sender does (a --join helper does not): note what this run leaves
    out, write the outbox's edition files, and deliver the FAQ digest."""
    from publisher.channels.outbox import write_artifacts
    from publisher.edition.build import edition_json

    if timing.plain:
        remember_left_out(ledger, prepared.plan, options.channels)
    reader = next(sample_recipients(config))
    write_artifacts(prepared.folder, prepared.edition, edition_json(prepared.edition, reader),
                    faq=timing.faq and not is_own_digest(options.post, prepared.folder))
    return faq_outcomes(ledger, prepared, timing)


PROOF_PREFIX = "[PROOF] "


def send_proofs(prepared: Prepared, config: Config, addresses: tuple[str, ...]) -> Outcome:
    """--proof: the newsletter, exactly as a subscriber gets it, to these addresses only.

    The subject is marked [PROOF]; each copy is personalised for its address (a subscriber's
    name when the address is on the list). The ledger logs it as a proof, never as a delivery
    of the edition, so the real send stays possible afterwards; social posts are never proofed.
    """
    import secrets

    from publisher.channels import BatchResult, EmailBatch
    from publisher.channels.http import RetryPolicy, with_retries
    from publisher.delivery.send import Outcome
    from publisher.errors import DeliveryError
    from publisher.stores.backends import open_ledger

    route = email_route(config)
    if is_platform(route):
        return platform_proof(prepared, config, addresses)
    channel = prepared.live.email[route]
    news = prepared.edition.newsletter
    batch = EmailBatch(
        key=f"proof-{secrets.token_hex(12)}",  # every proof is new: never an idempotent replay
        newsletter=replace(news, subject=PROOF_PREFIX + news.subject),
        recipients=tuple(proof_recipients(config, addresses)),
        lang=prepared.edition.article.lang, proof=True,
    )
    outcome = Outcome("newsletter (proof)", route, prepared.plan.steps[0].measure)
    ledger = open_ledger(config.ledger)

    def record(address: str, state: str, error: str) -> None:
        ledger.mark_action(prepared.plan.edition_id, prepared.plan.slug, route, address, "proof",
                           target=batch.key, state=state, error=error)

    try:
        try:
            policy = RetryPolicy(retry_uncertain=channel.facts.idempotent)
            result = with_retries(lambda: channel.send_batch(batch), policy)
        except DeliveryError as exc:
            outcome.error = exc.one_line()
            result = BatchResult(accepted={}, rejected=dict.fromkeys(addresses, outcome.error))
        _proof_outcome(outcome, result, record)
        return outcome
    finally:
        ledger.close()
        prepared.close()


def _proof_outcome(outcome: Outcome, result: BatchResult,
                   record: Callable[[str, str, str], None]) -> None:
    """Each proof address logged done or failed (a proof is never retried by itself), counted."""
    from publisher.delivery.send import LOST

    for address, where in result.accepted.items():
        record(address, "done", "")
        outcome.destinations.append(where)
    refused = {**result.rejected, **result.deferred}
    for address, why in refused.items():
        record(address, "failed", why)
    outcome.new, outcome.failed = len(result.accepted), len(refused)
    outcome.lost = len(result.uncertain)
    if result.uncertain:
        outcome.note(LOST, "the answer was lost (maybe delivered)", list(result.uncertain))
    if refused and not outcome.error:
        outcome.error = "; ".join(f"{a}: {why}" for a, why in refused.items())


def platform_proof(prepared: Prepared, config: Config, addresses: tuple[str, ...]) -> Outcome:
    """--proof through a platform: its own test send of the edition's campaign (made a draft).

    The platform marks the subject itself; the proofed draft is the campaign the real send
    starts, and the ledger logs the proof as a proof, never as a delivery.
    """
    from publisher.channels.http import with_retries
    from publisher.channels.platform import proof
    from publisher.delivery.send import Outcome
    from publisher.errors import DeliveryError
    from publisher.stores.backends import open_ledger

    plan, route = prepared.plan, email_route(config)
    channel = prepared.live.campaign[route]
    draft = channel.draft(prepared.edition.newsletter, plan.edition_id, prepared.article.title)
    outcome = Outcome("newsletter (proof)", route, plan.steps[0].measure)
    ledger = open_ledger(config.ledger)
    try:
        try:
            receipt = with_retries(lambda: proof(channel, draft, addresses))
            outcome.new = len(addresses)
            outcome.destinations.append(receipt.provider_id)
        except DeliveryError as exc:
            outcome.error = exc.one_line()
        for address in addresses:
            ledger.mark_action(plan.edition_id, plan.slug, route, address, "proof",
                               target=draft.tag, state="failed" if outcome.error else "done",
                               error=outcome.error)
        return outcome
    finally:
        ledger.close()
        prepared.close()


def proof_recipients(config: Config, addresses: tuple[str, ...]) -> Iterator[Recipient]:
    """Each proof address as a subscriber would be addressed: name and signed unsubscribe link."""
    if email_route(config) == OUTBOX:
        sample = next(sample_recipients(config))
        for address in addresses:
            found = _listed(config, address)
            yield replace(sample, email=address, name=found.name if found else "")
        return
    from publisher.stores.addresses import new_uid
    from publisher.unsubscribe.tokens import (
        unsubscribe_base,
        unsubscribe_mailto,
        unsubscribe_secret,
    )
    from publisher.unsubscribe.tokens import unsubscribe_url as signed_url

    secret = unsubscribe_secret()
    for address in addresses:
        found = _listed(config, address)
        uid = found.uid if found else new_uid()  # an unlisted proof's link names nobody
        yield Recipient(
            email=address, name=found.name if found else "",
            unsubscribe_url=signed_url(unsubscribe_base(config.site), uid, secret),
            unsubscribe_mailto=unsubscribe_mailto(config.site, uid, secret),
        )


def _listed(config: Config, address: str) -> Subscriber | None:
    """The subscriber the list has for this address (None when it is not on the list)."""
    if not _has_subscriber_list(config.subscribers):
        return None
    from publisher.stores.backends import open_store

    store = open_store(config.subscribers)
    try:
        return store.get(address)
    finally:
        store.close()


def _has_subscriber_list(target: str | Path) -> bool:
    """Whether a subscriber list exists to look names up in (no file is created for a proof)."""
    from publisher.stores.setting import is_database_url

    return is_database_url(target) or Path(target).is_file()


def remember_left_out(ledger: Ledger, plan: Plan, chosen: frozenset[str]) -> None:
    """Record the channels --only/--skip left out, so status shows them and a later run sends them.

    A channel this run delivers is no longer left out.
    """
    present = {channel_name(step.output) for step in plan.steps} | {FAQ_DIGEST}
    for name in sorted(present - chosen):
        ledger.mark_action(plan.edition_id, plan.slug, "", name, "skip", state="done")
    ledger.drop_actions(plan.edition_id, "skip", sorted(present & chosen))


def in_plan_order(plan: Plan, delivered: list[Outcome], timing: Timing) -> list[Outcome]:
    """The run's outcomes in plan order: a `skipped` line for each output --only/--skip left
    out, a `queued` line for each output `--at` queued; a `due` run shows only what it sent."""
    from publisher.delivery.scheduling import label, queued_outcome
    from publisher.delivery.send import Outcome

    done = iter(delivered)
    shown: list[Outcome] = []
    for step in plan.steps:
        if step.output in timing.outputs:
            shown.append(label(next(done), timing))
        elif step.output in timing.rows:
            shown.append(queued_outcome(step, timing.rows[step.output]))
        elif timing.plain:
            shown.append(Outcome(step.output, step.channel, step.measure, skipped=True))
    return shown


def faq_outcomes(ledger: Ledger, prepared: Prepared, timing: Timing) -> list[Outcome]:
    """The FAQ digest's line: written now, queued by --at, left out, or not part of a due run."""
    from publisher.delivery.scheduling import queued_outcome
    from publisher.plan import Step

    if FAQ_DIGEST in timing.rows:
        digest = Step("faq digest", OUTBOX, "email", (),
                      counted(len(prepared.edition.faq.items), "question"))
        return [queued_outcome(digest, timing.rows[FAQ_DIGEST])]
    if not timing.faq and not timing.plain:
        return []
    return [record_faq_digest(ledger, prepared, skipped=not timing.faq)]


def can_share(config: Config) -> bool:
    """Whether senders can split the email send: ledger and list both shared, a live provider."""
    from publisher.stores.backends import ledger_class, store_class

    return (ledger_class(config.ledger).shared and store_class(config.subscribers).shared
            and sends_to_own_list(config))


def joiner_plan(plan: Plan) -> Plan:
    """A joining sender's share of the plan: only the email batches (the lead posts the rest)."""
    return replace(plan, steps=tuple(s for s in plan.steps if s.kind == "email"))


def take_lock_or_join(
    held: ExitStack, ledger: Ledger, prepared: Prepared, options: Options
) -> bool:
    """True when this run holds the post's send lock; False when it joins the holder's send."""
    try:
        held.enter_context(ledger.lock(prepared.plan.slug, source=str(options.post)))
    except LedgerConflict:
        if not options.join:
            raise
        return False
    return True


def shared_send(held: ExitStack, ledger: Ledger, config: Config, *, lead: bool
                ) -> SharedSend:
    """The email send as claimable batches of subscriber ids, read from the PostgreSQL list."""
    from publisher.delivery.send import SharedSend
    from publisher.stores.backends import open_store
    from publisher.unsubscribe.tokens import recipient_pages, unsubscribe_secret

    secret = unsubscribe_secret()
    store = open_store(config.subscribers)
    held.callback(store.close)

    def between(first_id: int, last_id: int) -> Iterator[Recipients]:
        pages = store.active_pages(after=first_id - 1, through=last_id)
        yield from recipient_pages(pages, config.site, secret)

    return SharedSend(ledger, store.active_ids, between, lead=lead)


def write_preview(
    options: Options, config: Config, *, out: Path | None = None
) -> tuple[list[Path], tuple[str, ...]]:
    """`publish preview`: preview.html, with the newsletter's HTML and text for the sample reader.

    The files go to `out` when given, else to the post's outbox folder; nothing is sent and the
    ledger is not touched. Returns the files written and the edition's warnings.
    """
    from publisher.channels.outbox import write_atomic
    from publisher.edition.newsletter.lint import lint_newsletter, preview_files
    from publisher.edition.preview import render_preview

    prepared = prepare(replace(options, dry_run=True), config)
    edition = prepared.edition
    reader = next(sample_recipients(config))
    files = preview_files(edition.newsletter, reader)
    findings = lint_newsletter(edition.newsletter, prepared.article, config)
    page = render_preview(edition, config, html=files["newsletter.html"], findings=findings,
                          images=local_images(prepared.article, config))
    folder = out or prepared.folder
    written = []
    for name, content in {"preview.html": page, **files}.items():
        write_atomic(folder / name, content.encode())
        written.append(folder / name)
    return written, edition.warnings


def local_images(article: Article, config: Config) -> dict[str, str]:
    """The post's local image as a data URI, so the preview page carries it with it.

    It is read like any image a post names (inside its folder, a regular file, capped); one
    that may not be read is simply left out of the preview.
    """
    import base64
    import mimetypes

    from publisher.errors import InputError

    if not article.image or article.image.startswith(("http://", "https://")):
        return {}
    mime = mimetypes.guess_type(Path(article.image).name)[0] or "application/octet-stream"
    if not mime.startswith("image/"):
        return {}
    try:
        data = image_loader(article, config).load(article.image)
    except InputError:
        return {}
    return {article.image: f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"}


def write_cross_digest(
    folder: Path, config: Config, *, since: str | None, last: int | None, out: Path | None,
    lang: str | None = None, url: str | None = None,
) -> dict[str, Any]:
    """`publish digest`: the FAQs of several posts as JSON-LD, Markdown and a publishable post,
    one digest per language (or only `lang`'s)."""
    from publisher.edition.cross_digest.merge import (
        as_date,
        by_language,
        primary_lang,
        select_posts,
    )

    if not folder.is_dir():
        raise InputError("not a folder of posts", where=str(folder), fix="pass e.g. posts/")
    articles = {path: load_article(path) for path in sorted(folder.glob("*.md"))}
    if lang:
        articles = {p: a for p, a in articles.items() if primary_lang(a) == lang.lower()}
        if not articles:
            raise InputError(f"no post in {lang!r}", where=str(folder),
                             fix="check --lang against the posts' lang: fields")
    chosen = select_posts(
        [(path, a.date) for path, a in articles.items()],
        since=as_date(since, where="--since"), last=last,
    )
    if not chosen:
        raise InputError("no posts match", where=str(folder), fix="widen --since or --last")
    split = by_language([articles[p] for p in chosen])
    return {"digests": [
        _write_digest(group, config, out=out, url=url, suffix=f"-{code}" if lang or len(split) > 1
                      else "")
        for code, group in split.items()
    ]}


def _write_digest(articles: list[Article], config: Config, *, out: Path | None, url: str | None,
                  suffix: str) -> dict[str, Any]:
    """One language's digest files in outbox/faq-digest-<date><suffix>/, and what was written."""
    from publisher.channels.outbox import write_atomic
    from publisher.edition.cross_digest.merge import build_cross_digest, primary_lang
    from publisher.edition.cross_digest.post import digest_post_markdown

    digest = build_cross_digest(articles, config.faq)
    day = (max((a.date for a in articles), default="") or "undated")[:10]
    slug = f"faq-digest-{day}{suffix}"
    target = (out or Path(config.outbox)) / slug
    link = digest_link(url, config, date=day, lang=primary_lang(articles[0]), slug=slug)
    files = {
        "digest.md": digest_post_markdown(digest, date=day, slug=slug, url=link),
        "faq.md": digest.markdown,
        "faq.html": digest.html,
        "faq.jsonld": jsonld_text(digest.jsonld),
    }
    for name, content in files.items():
        write_atomic(target / name, content.encode())
    return {
        "lang": digest.lang,
        "posts": [a.source for a in articles],
        "with_faq": digest.posts,
        "without_faq": list(digest.without_faq),
        "questions": len(digest.items),
        "url": link,
        "tags": list(digest.tags),
        "files": [str(target / name) for name in files],
        "publish": f"publish {target / 'digest.md'}",
    }


def digest_link(url: str | None, config: Config, *, date: str, lang: str, slug: str) -> str:
    """Where the digest's posts link: --url, else `[faq] digest_url`, else the site's home page
    when publisher.toml names one; `{date}`, `{lang}` and `{slug}` are filled in."""
    from publisher.config.settings import Site

    site = config.site.url if config.site.url != Site().url else ""
    template = url or config.faq.digest_url or site
    return template.replace("{date}", date).replace("{lang}", lang).replace("{slug}", slug)


def is_own_digest(post: Path, folder: Path) -> bool:
    """Whether `post` is the digest.md that `publish digest` wrote into this outbox folder: its
    faq.md, faq.html and faq.jsonld there are the digest's own, grouped by article."""
    return post.name == "digest.md" and post.resolve().parent == folder.resolve()


def record_faq_digest(ledger: Ledger, prepared: Prepared, *, skipped: bool = False
                      ) -> Outcome:
    """The FAQ digest lands in the outbox as files; the ledger says whether that is news."""
    from publisher.delivery.send import Outcome

    plan = prepared.plan
    outcome = Outcome("faq digest", OUTBOX, counted(len(prepared.edition.faq.items), "question"),
                      destinations=[str(prepared.folder / "faq.md")], skipped=skipped)
    if skipped:
        return outcome
    if ledger.get(plan.edition_id, OUTBOX, "faq") is not None:
        outcome.already = 1
        return outcome
    ledger.mark_pending(plan.edition_id, plan.slug, OUTBOX, ["faq"])
    ledger.mark_sent(plan.edition_id, OUTBOX, {"faq": (outcome.destinations[0], "", {})})
    outcome.new = 1
    return outcome


def syndicate(post: Path, outcomes: list[Outcome]) -> bool:
    """--write-back: record live posts' public URLs under `syndication:` in the article."""
    from publisher.source.writeback import write_back

    urls = [
        url
        for outcome in outcomes
        if outcome.channel != OUTBOX and not outcome.error
        for url in outcome.destinations
        if url.startswith("https://")
    ]
    return write_back(post, urls) if urls else False


def open_channels(config: Config, names: list[str] | None = None
                  ) -> tuple[LiveChannels, dict[str, Hints]]:
    """Build and preflight every live channel first, so one bad channel fails before any sends.

    names limits this to some channels (a proof opens only the email transport).
    """
    from publisher.channels import LiveChannels

    channels = LiveChannels()
    hints: dict[str, Hints] = {}
    if sends_to_own_list(config):  # a platform signs its own unsubscribe links
        from publisher.unsubscribe.tokens import unsubscribe_secret

        unsubscribe_secret()
    try:
        for name in live_channel_names(config):
            if names is not None and name not in names:
                continue
            hints[name] = open_channel(channels, name, config)
    except TransientDeliveryError as exc:
        channels.close()
        raise TransientDeliveryError(
            f"{exc.problem}, before anything was sent", where=exc.where,
            fix=exc.fix or "check that the server is up and its base URL in publisher.toml,"
            " then run the same command again", retry_after=exc.retry_after) from exc
    except BaseException:
        channels.close()
        raise
    return channels, hints


def check_channel_tables(config: Config) -> None:
    """A dry run reads every live channel's table as the real run will: a typo or a wrong value
    fails the dry run (exit 3), not the send; no secret is read and nothing is opened."""
    for name in live_channel_names(config):
        from publisher.channels.registry import check_table  # only when a channel is live

        check_table(name, config)


def open_channel(channels: LiveChannels, name: str, config: Config) -> Hints:
    """Build one live channel into `channels` (the newsletter's, or a network's), preflighted."""
    from publisher.channels.registry import build_campaign, build_email, build_social

    if name == email_route(config) and is_platform(name):
        campaign = channels.campaign[name] = build_campaign(name, config)
        return preflight(campaign)
    if name == email_route(config):
        email = channels.email[name] = build_email(name, config)
        return preflight(email)
    social = channels.social[name] = build_social(name, config)
    return preflight(social)


def live_channel_names(config: Config) -> list[str]:
    """Every configured channel other than the outbox, in a stable order."""
    names = {email_route(config)} | {social_route(n, config) for n in config.social.networks}
    return sorted(names - {OUTBOX})


def check_channels(config: Config) -> dict[str, Hints]:
    """`publish check`: preflight every live channel, then release them."""
    from publisher.channels import LiveChannels, table_where

    refuse_demo_identity(config)
    results: dict[str, Hints] = {}
    for name in live_channel_names(config):
        channels = LiveChannels()
        try:
            results[name] = open_channel(channels, name, config)
        except DeliveryError as exc:  # unreachable or failing now: the check did not pass (3)
            raise ConfigError(exc.problem, where=table_where(name, config.source), fix=exc.fix or (
                "check its base URL and that the server is up, then run `publish check`"
                " again")) from exc
        finally:
            channels.close()
    return results


def config_summary(config: Config) -> str:
    """`publish check`'s closing line: where everything goes, in one breath."""
    source = config.source or "no publisher.toml (embedded defaults)"
    live = [n for n in config.social.networks if social_route(n, config) != OUTBOX]
    boxed = [n for n in config.social.networks if n not in live]
    parts = [f"newsletter via {email_route(config)}"]
    if live:
        parts.append(f"posts live to {', '.join(live)}")
    if boxed:
        parts.append(f"to the outbox: {', '.join(boxed)}")
    parts.append(f"transient failures retried over {config.max_attempts} runs")
    return f"{source} is valid: " + "; ".join(parts)


def preflight(channel: EmailChannel | SocialChannel | CampaignChannel) -> Hints:
    """A channel's preflight; a refusal before anything was sent is a configuration problem.

    A refused credential, a server without STARTTLS or an unknown account is something to fix in
    publisher.toml or the secrets (exit 3); only a transient fault stays a delivery error (4).
    """
    from publisher.channels.http import with_retries
    from publisher.errors import PermanentDeliveryError

    try:
        return with_retries(channel.preflight)
    except PermanentDeliveryError as exc:
        raise ConfigError(exc.problem, where=exc.where, fix=exc.fix) from exc


def recipients_for(config: Config) -> Iterator[Recipient | Recipients]:
    """Who gets the newsletter: the sample reader for the outbox, else every active subscriber."""
    if email_route(config) == OUTBOX:
        yield from sample_recipients(config)
        return
    from publisher.stores.backends import open_store
    from publisher.unsubscribe.tokens import recipient_pages, unsubscribe_secret

    secret = unsubscribe_secret()
    store = open_store(config.subscribers)
    try:
        yield from recipient_pages(store.active_pages(), config.site, secret)
    finally:
        store.close()


def bounce_subscribers(config: Config) -> Callable[[Mapping[str, str]], None]:
    """Mark addresses a provider refused for good as bounced, with the reason and time."""

    def suppress(reasons: Mapping[str, str]) -> None:
        from publisher.stores.backends import open_store
        from publisher.stores.subscribers import Suppression

        store = open_store(config.subscribers)
        try:
            store.suppress(Suppression(email, "bounced", reason)
                           for email, reason in reasons.items())
        finally:
            store.close()

    return suppress


def audience_size(config: Config) -> int:
    """How many readers the newsletter goes to (one sample reader for the outbox)."""
    if not sends_to_own_list(config):
        return 1
    from publisher.stores.backends import open_store

    store = open_store(config.subscribers)
    try:
        return int(store.count_active())
    finally:
        store.close()


def sample_recipients(config: Config) -> Iterator[Recipient]:
    """The one sample reader the outbox addresses when there is no subscriber list."""
    site = config.site
    base = site.unsubscribe_url or f"{site.url.rstrip('/')}/unsubscribe"
    yield Recipient(
        email=config.newsletter.sample_recipient,
        name="",
        unsubscribe_url=f"{base}?t=sample",
        unsubscribe_mailto=site.unsubscribe_mailto,
    )


def _templates_dir(options: Options, config: Config) -> Path | None:
    """--templates beats the config's newsletter.templates; neither means the built-in set."""
    chosen = options.templates or (Path(config.newsletter.templates) if config.newsletter.templates
                                   else None)
    if chosen is not None and not chosen.is_dir():
        raise InputError(
            "templates folder not found", where=str(chosen), fix="point --templates at a folder"
        )
    return chosen
