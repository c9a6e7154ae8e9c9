"""Social posts an editor would send: the right words, the link, hashtags, each within its limit.

Text comes from (in order) the editor's `social.<network>`, else the summary `lede` chooses
(front-matter summary, summary section, the lead read as an inverted pyramid). What each
network allows comes from its `Network` facts; how a text is cut and laid out within one post
is `layout`. Names: a `SocialPost` is a post; a str of its text is a text; a network's name is
a name and its facts a `Network`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from publisher.config.settings import SocialSettings
from publisher.edition.layout import (
    MAX_MEASURED_CHARS,
    Fits,
    Piece,
    fill,
    join_sentences,
    prefixed,
    shorten,
    suffixed,
    tailed,
    with_tail,
)
from publisher.edition.lede import key_points, summary_points, summary_sentences
from publisher.errors import InputError
from publisher.model import Article, Facet, FaqDigest, Highlight, LinkCard, SocialPost
from publisher.networks import get_network, output_network
from publisher.networks.counting import (
    DEFAULT_URL_LENGTH,
    Measurement,
    find_mentions,
    find_urls,
    measure,
)
from publisher.networks.facets import detect_facets, tag_spans
from publisher.networks.hashtags import hashtags
from publisher.networks.network import Card, Network
from publisher.source.condense import answer_sentences, qualifies
from publisher.text.sentences import split_sentences

MAX_FAQ_HIGHLIGHTS = 2
CARD_DESCRIPTION_CHARS = 300
WORDS: dict[str, dict[str, str]] = {
    "en": {"key_points": "Key points:", "read_more": "Read the full article:", "bullet": "• "},
    "ja": {"key_points": "【要点】", "read_more": "記事全文はこちら：", "bullet": "・"},
}
@dataclass(frozen=True)
class Target:
    """One network as the composer sees it: how it counts and how much room it gives."""

    network: Network
    limit: int
    url_length: int = DEFAULT_URL_LENGTH

    @property
    def name(self) -> str:
        """The network's name, as front matter and the edition spell it."""
        return self.network.name

    def measure(self, text: str) -> Measurement:
        """The network's own measurement of `text`."""
        return measure(self.name, text, limit=self.limit, url_length=self.url_length)

    def fits(self, text: str) -> bool:
        """Whether `text` is within the limit as the network counts it (measured only when it
        could be: counting a hostile 200 KB paragraph again per candidate would cost seconds)."""
        return len(text) <= MAX_MEASURED_CHARS and self.measure(text).fits


def compose_social(
    article: Article, digest: FaqDigest, settings: SocialSettings, *, thread: bool | None = None
) -> dict[str, tuple[SocialPost, ...]]:
    """Posts per network in settings.networks; a thread where the network has them, when asked."""
    as_thread = thread if thread is not None else (article.thread or settings.thread)
    posts: dict[str, tuple[SocialPost, ...]] = {}
    for name in settings.networks:
        target = target_for(name, settings)
        link = tracked_link(article.url, settings.utm.get(name, {}))
        tags = hashtags(article.tags, name, limit=settings.hashtags)
        if as_thread and target.network.thread:
            texts = _thread_texts(article, digest, target, link, tags)
        else:
            texts = [_single_text(article, target, link, tags)]
        posts[name] = _finish(article, target, texts, link)
    return posts


def compose_faq_posts(
    article: Article, digest: FaqDigest, settings: SocialSettings
) -> dict[str, tuple[SocialPost, ...]]:
    """One post per FAQ item (question, short answer, link), to thread or spread over days."""
    pairs = _faq_pairs(article, digest)
    posts: dict[str, tuple[SocialPost, ...]] = {}
    for name in settings.networks:
        target = target_for(name, settings)
        link = tracked_link(article.url, settings.utm.get(name, {}))
        tags = hashtags(article.tags, name, limit=settings.hashtags)
        texts = [
            with_tail(target.fits, _qa_body(pair, lang=article.lang), link, tags)
            for pair in pairs
        ]
        texts = [t for t in texts if t.strip()]
        posts[name] = _finish(article, target, texts, link) if texts else ()
    return posts


def target_for(name: str, settings: SocialSettings) -> Target:
    """The limit and URL length a network gets under these settings."""
    network = get_network(name, where="[social] networks")
    if network.instance_limits:  # [social] <network>_limit and _url_length, or the server's
        return Target(network, *settings.instance_limits(name))
    return Target(network, network.limit)


def tracked_link(url: str, params: dict[str, str] | Any) -> str:
    """`url` with UTM parameters set and every non-ASCII part percent-encoded (IDNA host)."""
    if not url:
        return ""
    parts = urlsplit(url.strip())
    netloc = parts.netloc
    if not netloc.isascii():
        host = parts.hostname or ""
        netloc = netloc.replace(host, host.encode("idna").decode("ascii"))
    safe = "/%:@!$&'()*+,;=-._~"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query.extend((str(k), str(v)) for k, v in params.items())
    return urlunsplit(
        (
            parts.scheme,
            netloc,
            quote(parts.path, safe=safe),
            urlencode(query, quote_via=quote),
            quote(parts.fragment, safe=safe + "?"),
        )
    )


# --- single posts ---------------------------------------------------------------------------


def _single_text(article: Article, target: Target, link: str, tags: list[str]) -> str:
    """One post: the editor's text, or the best summary that fits, then tags and link."""
    editor = article.social.get(target.name, "").strip()
    if editor:
        return _editor_text(article, target, editor, link, tags)
    lang = _lang(article)
    if target.network.long_form:
        pieces = _linkedin_pieces(article, lang)
    else:
        pieces = _summary_pieces(article, lang)
    # Keep room for one hashtag unless the opening sentence needs it to stay whole.
    reserve = tags[:1]
    if pieces and not tailed(target.fits, link, reserve)(pieces[0].text):
        reserve = []
    body_fits = tailed(target.fits, link, reserve)
    return with_tail(target.fits, fill(pieces, body_fits, lang), link, tags)


def _editor_text(article: Article, target: Target, text: str, link: str, tags: list[str]) -> str:
    """The editor's own words kept verbatim; too long is their error to fix, not ours to cut."""
    with_link = text if not link or _has_link(text, article.url) else f"{text}\n\n{link}"
    result = target.measure(with_link)
    if not result.fits:
        over = result.detail or f"{result.length} {result.unit}, over the {result.limit} limit"
        field = f"social.{target.name}" + (" with the link" if with_link != text else "")
        raise InputError(
            f"{field} is {over}",
            where=article.source,
            fix=f"shorten social.{target.name} by {max(result.length - result.limit, 1)}",
        )
    if "#" in text or "＃" in text:
        return with_link
    return with_tail(target.fits, text, link, tags) or with_link


def _has_link(text: str, url: str) -> bool:
    """Whether the editor already put the article link in their text."""
    base = url.split("?")[0].rstrip("/")
    return bool(base) and base in text


def _summary_pieces(article: Article, lang: str) -> list[Piece]:
    """What the article is about, best source first: front matter, summary section, lead."""
    points = [] if article.summary.strip() else summary_points(article)
    if points:
        bullet = _words(lang)["bullet"]
        pieces = [Piece(bullet + p, "\n") for p in points]
        return [Piece(_title(article)), *pieces] if article.title else pieces
    return [Piece(s) for s in _hook_sentences(article)]


def _hook_sentences(article: Article) -> list[str]:
    """Prose that opens the story (see `lede`), else the title."""
    return summary_sentences(article) or ([_title(article)] if article.title else [])


def _linkedin_pieces(article: Article, lang: str) -> list[Piece]:
    """LinkedIn has room: title, the summary, then the key points as a list."""
    pieces = [Piece(_title(article))] if article.title else []
    sentences = _hook_sentences(article)
    pieces.extend(Piece(s, "\n\n" if i == 0 else "") for i, s in enumerate(sentences))
    points = [p for p in key_points(article) if p not in sentences]
    words = _words(lang)
    pieces.extend(
        Piece((words["key_points"] + "\n" if i == 0 else "") + words["bullet"] + p,
              "\n\n" if i == 0 else "\n")
        for i, p in enumerate(points)
    )
    return pieces


# --- threads --------------------------------------------------------------------------------


def _thread_texts(
    article: Article, digest: FaqDigest, target: Target, link: str, tags: list[str]
) -> list[str]:
    """Lead, key points, one or two FAQ highlights, then the link; numbered like `1/4`."""
    for digits in (1, 2):
        marker = "\n\n" + "9" * digits + "/" + "9" * digits
        fits = suffixed(target.fits, marker)
        texts = [_thread_lead(article, target, fits)]
        texts.extend(_key_point_texts(article, fits, texts[0]))
        texts.extend(
            with_tail(fits, _qa_body(pair, lang=article.lang), "", [])
            for pair in _faq_pairs(article, digest)[:MAX_FAQ_HIGHLIGHTS]
        )
        if link:
            texts.append(_link_text(article, fits, link, tags))
        texts = [t for t in texts if t]
        if len(str(len(texts))) <= digits:
            break
    total = len(texts)
    if total == 1:
        return texts
    return [f"{text}\n\n{i}/{total}" for i, text in enumerate(texts, start=1)]


def _thread_lead(article: Article, target: Target, fits: Fits) -> str:
    """The first post: the editor's text, or the title with the summary's opening."""
    editor = article.social.get(target.name, "").strip()
    if editor:
        if not fits(editor):
            result = target.measure(editor)
            raise InputError(
                f"social.{target.name} is {result.length} {result.unit}; as a thread's first "
                f"post it must leave room for the numbering within {result.limit}",
                where=article.source,
                fix=f"shorten social.{target.name}",
            )
        return editor
    lang = _lang(article)
    title = shorten(_title(article), fits, lang) or ""
    sentences = [Piece(s) for s in _hook_sentences(article) if s != _title(article)]
    body = fill(sentences, lambda b: fits(f"{title}\n\n{b}"), lang)
    return f"{title}\n\n{body}" if body else title


def _key_point_texts(article: Article, fits: Fits, lead: str) -> list[str]:
    """The summary section's points, packed under a heading into as few post texts as fit."""
    lang = _lang(article)
    heading, bullet = _words(lang)["key_points"], _words(lang)["bullet"]
    points = [p for p in key_points(article) if p not in lead]
    texts: list[str] = []
    current = heading
    for point in points:
        line = bullet + point
        if current != heading and not fits(f"{current}\n{line}"):
            texts.append(current)
            current = heading
        shortened = shorten(line, prefixed(fits, current + "\n"), lang)
        if shortened:
            current = f"{current}\n{shortened}"
    if current != heading:
        texts.append(current)
    return texts


def _link_text(article: Article, fits: Fits, link: str, tags: list[str]) -> str:
    """The last post: where to read the whole article, with hashtags while they fit."""
    lang = _lang(article)
    lead_in = _words(lang)["read_more"]
    sep = "" if lang == "ja" else " "
    title = shorten(_title(article), tailed(lambda t: fits(f"{lead_in}{sep}{t}"), link, []), lang)
    head = f"{lead_in}{sep}{title}" if title else lead_in.rstrip(":：")
    return with_tail(fits, head, link, tags)


# --- FAQ ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answered:
    """A question with its answer as plain text: whole, and the digest's short form."""

    question: str
    answer: str
    short: str


def _faq_pairs(article: Article, digest: FaqDigest) -> list[Answered]:
    """Each question with its whole and short answer, links kept as "label (URL)"."""
    items = digest.items or article.faq
    shorts = list(digest.short_answers) + [""] * len(items)
    out = []
    for item, short in zip(items, shorts, strict=False):
        whole = join_sentences(answer_sentences(item.answer, base_url=article.url))
        out.append(Answered(plain_text(item.question), whole, short or whole))
    return out


def _qa_body(pair: Answered, *, lang: str) -> Callable[[Fits], str]:
    """A Q/A post: the whole answer where it fits, else the short one, else the question alone.

    An answer is cut with `…` only when none of its sentences qualifies it (ただし, However…):
    a cut that drops the condition would promise what the article does not.
    """

    def build(fits: Fits) -> str:
        q_line = f"Q. {pair.question}"
        for answer in dict.fromkeys((pair.answer, pair.short)):
            if answer and fits(f"{q_line}\nA. {answer}"):
                return f"{q_line}\nA. {answer}"
        if pair.short and not any(qualifies(s) for s in split_sentences(pair.short)[1:]):
            a_line = shorten(f"A. {pair.short}", lambda t: fits(f"{q_line}\n{t}"), lang)
            if a_line:
                return f"{q_line}\n{a_line}"
        return shorten(q_line, fits, lang) or ""

    return build


# --- finishing ------------------------------------------------------------------------------


def _finish(
    article: Article, target: Target, texts: list[str], link: str
) -> tuple[SocialPost, ...]:
    """Measured posts with facets and card; raises rather than emit one over the limit."""
    lang = article.lang or "en"
    texts = [t for t in texts if t.strip()] or [link or _title(article)]
    total = len(texts)
    posts = []
    for position, text in enumerate(texts, start=1):
        result = target.measure(text)
        if not result.fits:
            raise InputError(
                f"the {target.name} post cannot fit: {result.length} {result.unit} > "
                f"{result.limit} {result.detail}".rstrip(),
                where=article.source,
                fix="shorten the title or the link, or raise the limit in publisher.toml",
            )
        posts.append(
            SocialPost(
                network=target.name,
                text=text,
                length=result.length,
                limit=result.limit,
                lang=lang,
                facets=bluesky_facets(text) if target.network.facets else (),
                card=_post_card(article, target.network, link, text, position),
                position=position,
                of=total,
            )
        )
    return tuple(posts)


def bluesky_facets(text: str) -> tuple[Facet, ...]:
    """Link, tag and cashtag facets where the Bluesky app puts them (see `facets`)."""
    return detect_facets(text)


def highlights(output: str, text: str) -> tuple[Highlight, ...]:
    """What `network` shows as links in `text` (URLs, hashtags, mentions), in code points.

    Bluesky shows exactly the facets we send; the others linkify the text themselves, found
    with the same URL, tag and mention rules that count and compose the post.
    """
    network = output_network(output)
    if network.facets:
        return tuple(Highlight(_char_offset(text, f.byte_start), _char_offset(text, f.byte_end),
                               f.kind, f.value) for f in bluesky_facets(text))
    found: list[Highlight] = [
        Highlight(url.start, url.end, "link", url.url)
        for url in find_urls(text)
        if not network.links_need_scheme or url.url.lower().startswith(("http://", "https://"))
    ]
    tags = [Highlight(s.start, s.end, "tag", s.value) for s in tag_spans(text)]
    if network.hashtags.linked_per_post is not None:  # Threads: the first is the topic tag
        tags = tags[: network.hashtags.linked_per_post]
    mentions = [Highlight(start, end, "mention", account)
                for start, end, account in find_mentions(text)] if network.mentions else []
    for extra in (*tags, *mentions):
        if not any(h.start < extra.end and extra.start < h.end for h in found):
            found.append(extra)
    return tuple(sorted(found, key=lambda h: h.start))


def _char_offset(text: str, byte_offset: int) -> int:
    """Code-point index of a UTF-8 byte offset (facets count bytes)."""
    return len(text.encode("utf-8")[:byte_offset].decode("utf-8", errors="ignore"))


def _post_card(
    article: Article, network: Network, link: str, text: str, position: int
) -> LinkCard | None:
    """A link card on the first post and the link post (Bluesky's embed, Threads' link
    attachment, LinkedIn's article); the hero image on X/Mastodon.

    X and Mastodon draw their own preview card from the link; the card here carries the hero
    image and its alt text for the thread's first post, which the channel attaches unless its
    `attach_image` setting says no (off by default on X, where the image replaces X's card).
    """
    if network.card is Card.LINK_CARD and link and (position == 1 or link in text):
        return link_card(article, link)
    if network.card is Card.HERO_IMAGE and position == 1 and article.image:
        return link_card(article, link)
    return None


def link_card(article: Article, link: str) -> LinkCard:
    """The link, title, description and image a card shows; delivery uploads the image."""
    description = join_sentences(_hook_sentences(article))
    if len(description) > CARD_DESCRIPTION_CHARS:
        description = shorten(description, lambda t: len(t) <= CARD_DESCRIPTION_CHARS, "") or ""
    return LinkCard(uri=link, title=_title(article), description=description,
                    thumb=article.image, alt=article.image_alt.strip())


# --- text helpers ---------------------------------------------------------------------------


def plain_text(markdown: str) -> str:
    """Inline Markdown as the plain text a reader sees (link text kept, markup dropped)."""
    from publisher.source.markdown import parse_inline_tokens

    out: list[str] = []
    for line in markdown.splitlines():
        tokens = parse_inline_tokens(line.strip())
        out.append("".join(_token_text(t) for token in tokens for t in token.children or []))
    return "\n".join(s for s in (o.strip() for o in out) if s)


def _title(article: Article) -> str:
    """The title as plain text: markup an editor typed there is not shown on social networks."""
    return plain_text(article.title) or article.title.strip()


def _token_text(token: Any) -> str:
    """The visible text of one inline token."""
    if token.type in ("text", "code_inline"):
        return str(token.content)
    if token.type in ("softbreak", "hardbreak"):
        return " "
    if token.type == "image":
        return "".join(_token_text(t) for t in token.children or [])
    return ""


def _lang(article: Article) -> str:
    """'ja' or 'en' for our own words (Key points, Read more) and for phrase cutting."""
    return "ja" if (article.lang or "").lower().startswith("ja") else "en"


def _words(lang: str) -> dict[str, str]:
    """The composer's few words of its own in this language."""
    return WORDS.get(lang, WORDS["en"])
