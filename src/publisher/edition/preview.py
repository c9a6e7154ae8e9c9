"""The preview page: one self-contained HTML file showing everything an edition will send.

The newsletter appears as subscribers see it (sandboxed srcdoc frames at 375 and 600 px), each
network's post or thread as that network shows it, then the FAQ digest, the JSON-LD and every
warning and lint finding. Everything from the article is escaped by Jinja's autoescaping; the
page runs only its own script (allowed by hash in its Content-Security-Policy), and the email
frames run none. Built from values alone: the edge passes in images it read as data URIs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jinja2
from markupsafe import Markup, escape

from publisher.config.settings import Config
from publisher.edition.checks import SUBJECT_WARN_COLUMNS
from publisher.edition.newsletter.lint import GMAIL_CLIP_BYTES, GMAIL_WARN_BYTES, Finding
from publisher.edition.newsletter.plaintext import display_width
from publisher.edition.newsletter.render import hero_url, templates_dir
from publisher.edition.social import highlights, link_card, plain_text
from publisher.model import Edition, LinkCard, SocialPost
from publisher.networks import FAQ_SUFFIX, output_network
from publisher.networks.network import Card

PREVIEW_TEMPLATE = "preview.html.j2"
SCRIPT_RE = re.compile(r"<script>(.*?)</script>", re.DOTALL)


@dataclass(frozen=True)
class Check:
    """One line of the checks panel."""

    level: str  # "error" or "warning"
    code: str
    message: str


def render_preview(
    edition: Edition,
    config: Config,
    *,
    html: str,
    findings: Sequence[Finding] = (),
    images: Mapping[str, str] | None = None,
) -> str:
    """The whole preview page for one edition; `html` is the newsletter for the sample reader."""
    images = images or {}
    news = edition.newsletter
    hero = hero_url(edition.article, config)
    if edition.article.image in images and hero:  # show the local file the site will serve
        html = html.replace(f'src="{escape(hero)}"', f'src="{images[edition.article.image]}"')
    size = news.html_bytes or len(news.html.encode("utf-8"))
    checks = [Check("warning", "edition", w) for w in edition.warnings]
    checks += [Check(f.level, f.code, f.message) for f in findings
               if not any(w.endswith(f.message) for w in edition.warnings)]  # said once
    context = {
        "article": edition.article,
        "site": config.site,
        "newsletter": {
            "subject": news.subject, "preheader": news.preheader, "html": html,
            "size_kb": f"{size / 1024:.1f}", "clip_kb": GMAIL_CLIP_BYTES // 1024,
            "size_ratio": min(size / GMAIL_CLIP_BYTES, 1.0),
            "size_level": _level(size, GMAIL_WARN_BYTES, GMAIL_CLIP_BYTES),
            "subject_width": display_width(news.subject), "subject_limit": SUBJECT_WARN_COLUMNS,
        },
        "networks": [
            _network_view(network, posts, edition, config, images)
            for network, posts in edition.social.items() if posts
        ],
        "faq": [
            {"question": plain_text(item.question), "short": plain_text(short),
             "answer": plain_text(item.answer)}
            for item, short in zip(edition.faq.items, edition.faq.short_answers, strict=True)
        ],
        "jsonld": _highlight_json(dict(edition.faq.jsonld)) if edition.faq.items else "",
        "checks": checks,
        "errors": sum(c.level == "error" for c in checks),
        "warnings": sum(c.level == "warning" for c in checks),
    }
    page = _template().render(**context)
    return _with_script_hash(page)


def _level(value: float, warn: float, limit: float) -> str:
    """ok, near or over: the colour of a meter."""
    return "over" if value > limit else ("near" if value > warn else "ok")


def _network_view(
    network: str, posts: Sequence[SocialPost], edition: Edition, config: Config,
    images: Mapping[str, str],
) -> dict[str, Any]:
    """One network's column: who posts, and each post as the network shows it."""
    base = network.removesuffix("-faq")
    name = config.site.name
    handle = _handle(base, name, config)
    return {
        "id": network,
        "base": base,
        "label": output_network(base).label + (" · FAQ" if network.endswith(FAQ_SUFFIX) else ""),
        "name": name,
        "initials": "".join(w[0] for w in name.split()[:2]).upper() or "P",
        "handle": handle,
        "posts": [_post_view(base, post, edition, config, images) for post in posts],
    }


def _handle(network: str, name: str, config: Config) -> str:
    """The account name a network shows: the configured one, else one made from the site name."""
    account = output_network(network).account
    slug = re.sub(r"[^a-z0-9]", "", name.lower()) or "publisher"
    setting = config.channels.get(network, {}).get(account.setting) if account.setting else None
    value = str(setting or account.default.format(slug=slug))
    host = urlsplit(value).hostname or "" if "://" in value else ""
    return account.shown.format(slug=slug, value=value, host=host)


def _post_view(
    network: str, post: SocialPost, edition: Edition, config: Config,
    images: Mapping[str, str],
) -> dict[str, Any]:
    """One post: its linkified text, meter, and the card or image the network shows under it."""
    card, media = _card_and_media(network, post, edition, config)
    return {
        "position": post.position,
        "of": post.of,
        "text": _linkified(network, post.text),
        "length": post.length,
        "limit": post.limit,
        "unit": output_network(network).unit,
        "ratio": min(post.length / post.limit, 1.0) if post.limit else 0.0,
        "level": _level(post.length, post.limit * 0.9, post.limit),
        "card": _card_view(card, images) if card else None,
        "media": {"src": _image_src(media.thumb, images), "alt": media.alt} if media else None,
    }


def _card_and_media(
    network: str, post: SocialPost, edition: Edition, config: Config
) -> tuple[LinkCard | None, LinkCard | None]:
    """(link card, attached image) under a post, as each network decides them.

    Bluesky shows the external embed we send. X, Mastodon, Threads and LinkedIn draw a card
    from the link's Open Graph tags (the article's title, summary and image) under a post that
    carries the link, unless an image is attached (`attach_image`, whose default each network
    declares): the network then shows the image instead.
    """
    article, facts = edition.article, output_network(network)
    if facts.card is Card.LINK_CARD:
        return post.card, None
    attach = post.card is not None and bool(post.card.thumb) and bool(
        config.channels.get(network, {}).get("attach_image", facts.attach_image))
    if attach:
        return None, post.card
    link = next((h.value for h in highlights(network, post.text) if h.kind == "link"), "")
    if not link or not article.url or article.url.split("?")[0] not in link:
        return None, None
    return link_card(article, link), None


def _card_view(card: LinkCard, images: Mapping[str, str]) -> dict[str, str]:
    """A card's fields with its thumbnail made loadable and its domain for the caption."""
    return {
        "title": card.title, "description": card.description,
        "domain": (urlsplit(card.uri).hostname or "").removeprefix("www."),
        "thumb": _image_src(card.thumb, images) if card.thumb else "", "alt": card.alt,
    }


def _image_src(source: str, images: Mapping[str, str]) -> str:
    """A data URI the edge read for a local image, an https URL as is, else nothing."""
    if source in images:
        return images[source]
    return source if source.startswith(("https://", "http://")) else ""


def _linkified(network: str, text: str) -> Markup:
    """The post text escaped, with each span the network links marked up as it shows it."""
    out: list[str] = []
    last = 0
    for span in highlights(network, text):
        out.append(str(escape(text[last:span.start])))
        shown = text[span.start:span.end]
        if span.kind == "link":
            shown = _display_url(network, shown)
            href = span.value if "://" in span.value else f"https://{span.value}"
            out.append(f'<a class="lk" href="{escape(href)}" rel="noopener noreferrer" '
                       f'target="_blank" title="{escape(span.value)}">{escape(shown)}</a>')
        else:
            out.append(f'<span class="{span.kind}">{escape(shown)}</span>')
        last = span.end
    out.append(str(escape(text[last:])))
    return Markup("".join(out))


def _display_url(network: str, url: str) -> str:
    """The link text a network shows: shortened on X and Mastodon, as written elsewhere."""
    cut = output_network(network).shown_link_chars
    if cut is None:
        return url
    bare = re.sub(r"^(?:https?://)?(?:www\.)?", "", url, flags=re.IGNORECASE)
    return bare if len(bare) <= cut else bare[:cut] + "…"


JSON_TOKEN_RE = re.compile(
    r'(?P<key>"(?:[^"\\]|\\.)*"(?=\s*:))|(?P<str>"(?:[^"\\]|\\.)*")|'
    r"(?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(?P<lit>\btrue\b|\bfalse\b|\bnull\b)"
)


def _highlight_json(data: Mapping[str, Any]) -> Markup:
    """Pretty JSON with keys, strings and numbers wrapped in spans; every piece escaped."""
    text = json.dumps(data, ensure_ascii=False, indent=2)
    out: list[str] = []
    last = 0
    for match in JSON_TOKEN_RE.finditer(text):
        out.append(str(escape(text[last:match.start()])))
        out.append(f'<span class="j-{match.lastgroup}">{escape(match.group(0))}</span>')
        last = match.end()
    out.append(str(escape(text[last:])))
    return Markup("".join(out))


def _with_script_hash(page: str) -> str:
    """Allow exactly the page's own inline script in its Content-Security-Policy, by hash."""
    found = SCRIPT_RE.search(page)
    digest = hashlib.sha256(found.group(1).encode("utf-8")).digest() if found else b""
    return page.replace("__SCRIPT_HASH__", base64.b64encode(digest).decode("ascii"), 1)


def _template() -> jinja2.Template:
    """The built-in preview template (autoescaping on, undefined names are errors)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
    )
    return env.get_template(PREVIEW_TEMPLATE)
