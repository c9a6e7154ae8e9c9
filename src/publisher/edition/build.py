"""Article → Edition: every output built from one parsed article, with no I/O at all."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from publisher.config.settings import Config, SocialSettings
from publisher.edition.checks import edition_warnings, strip_tracking
from publisher.edition.newsletter.render import Templates, personalize, render_newsletter
from publisher.edition.social import compose_faq_posts, compose_social
from publisher.model import Article, Edition, FaqDigest, Recipient, SocialPost
from publisher.networks import NETWORKS, output_network
from publisher.source.faq import build_faq_digest

EDITION_FORMAT = 1


def build_edition(
    article: Article,
    config: Config,
    templates: Templates,
    *,
    thread: bool | None = None,
    hints: Mapping[str, Mapping[str, int]] | None = None,
    missing_image: str = "",
) -> Edition:
    """Compose the newsletter, the social posts and the FAQ digest of one article.

    hints carry what live channels told preflight, e.g. a Mastodon instance's own limit;
    missing_image names a local `image:` file the edge found missing. Tracking parameters are
    stripped from the canonical URL before anything is composed, with a warning.
    """
    clean_url, removed_params = strip_tracking(article.url)
    if removed_params:
        article = replace(article, url=clean_url)
    digest = build_faq_digest(article, config.faq)
    social_settings = config.social
    for name, told in (hints or {}).items():
        if told and name in NETWORKS and NETWORKS[name].instance_limits:
            social_settings = social_settings.with_server_limits(name, told)
    social = compose_social(article, digest, social_settings, thread=thread)
    if config.faq.social_posts and digest.items:
        social.update(faq_posts(article, digest, social_settings))
    newsletter = render_newsletter(article, digest, config, templates)
    warnings = edition_warnings(article, newsletter.subject, removed_params=removed_params,
                                missing_image=missing_image)
    return Edition(
        article=article,
        newsletter=newsletter,
        social=social,
        faq=digest,
        warnings=(*article.warnings, *warnings),
    )


def faq_posts(
    article: Article, digest: FaqDigest, settings: SocialSettings
) -> dict[str, tuple[SocialPost, ...]]:
    """One question-and-answer post each, as '<network>-faq' outputs to thread or spread out."""
    return {
        f"{network}-faq": tuple(replace(post, network=f"{network}-faq") for post in posts)
        for network, posts in compose_faq_posts(article, digest, settings).items()
    }


def edition_json(edition: Edition, reader: Recipient) -> dict[str, Any]:
    """The documented, stable JSON form of an edition (`--json` and outbox edition.json).

    The newsletter appears as the given sample reader would receive it.
    """
    article, news, faq = edition.article, edition.newsletter, edition.faq
    html, text = personalize(news, reader)
    return {
        "format": EDITION_FORMAT,
        "article": {
            "title": article.title, "author": article.author, "date": article.date,
            "lang": article.lang, "url": article.url, "slug": article.slug,
            "tags": list(article.tags), "image": article.image,
            "content_hash": article.content_hash,
        },
        "newsletter": {
            "subject": news.subject, "preheader": news.preheader, "html": html, "text": text,
        },
        "social": {net: [_post_json(p) for p in posts] for net, posts in edition.social.items()},
        "faq": {
            "items": [
                {"question": item.question, "answer": item.answer, "short_answer": short}
                for item, short in zip(faq.items, faq.short_answers, strict=True)
            ],
            "jsonld": dict(faq.jsonld),
            "markdown": faq.markdown,
        },
        "warnings": list(edition.warnings),
    }


def _post_json(post: SocialPost) -> dict[str, Any]:
    """One social post in the JSON contract."""
    data: dict[str, Any] = {
        "text": post.text, "length": post.length, "limit": post.limit, "lang": post.lang,
        "position": post.position, "of": post.of,
    }
    if output_network(post.network).facets:
        data["facets"] = [f.as_json() for f in post.facets]
    if post.card is not None:
        data["card"] = {
            "uri": post.card.uri, "title": post.card.title,
            "description": post.card.description, "thumb": post.card.thumb,
            "alt": post.card.alt,
        }
    return data
