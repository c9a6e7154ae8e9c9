"""A WordPress post, as the REST API gives it, turned into an Article; pure.

`wp_fetch` (the edge) gathers the JSON: the post, its author, its terms and its featured media.
Here that JSON becomes the text of a Markdown post — YAML front matter plus the body converted
by `wphtml` — which `source.parse_article` parses like any post file. One path, one Article:
a WordPress post and its Markdown twin give the same edition.

Fields: https://developer.wordpress.org/rest-api/reference/posts/ (title.rendered,
content.rendered, excerpt.rendered, date, link, slug, author, categories, tags,
featured_media) and https://developer.wordpress.org/rest-api/reference/media/ (source_url,
alt_text).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from publisher.errors import InputError
from publisher.model import Article
from publisher.source.read import parse_article
from publisher.source.wordpress.html import html_text, html_to_markdown

# WordPress ends an automatic excerpt with "[…]" (or "[...]"), and themes add "Read more" links.
EXCERPT_TAIL = re.compile(
    r"\s*(\[(?:…|\.\.\.)\]|…\s*(続きを読む|Read more|Continue reading).*)\s*$")


@dataclass(frozen=True)
class WpPost:
    """What publisher reads of one WordPress post, every field already plain."""

    link: str  # the canonical permalink; also the Article's source
    slug: str
    title: str
    date: str  # YYYY-MM-DD, the site's local date
    author: str
    excerpt: str
    content_html: str
    terms: tuple[str, ...]  # category names, then tag names
    image: str = ""
    image_alt: str = ""
    status: str = "publish"


def post_from_json(
    post: Mapping[str, Any],
    *,
    author: str = "",
    terms: Sequence[str] = (),
    media: Mapping[str, Any] | None = None,
    where: str,
) -> WpPost:
    """The REST API's post object (plus resolved author, terms and media) as a WpPost."""
    content = _rendered(post, "content", where)
    title = html_text(_rendered(post, "title", where))
    if not title:
        raise InputError("the WordPress post has no title", where=where,
                         fix="give the post a title in WordPress")
    excerpt = EXCERPT_TAIL.sub("", html_text(_rendered(post, "excerpt", where, required=False)))
    return WpPost(
        link=str(post.get("link") or where),
        slug=str(post.get("slug") or ""),
        title=title,
        date=str(post.get("date") or "")[:10],
        author=author,
        excerpt=excerpt,
        content_html=content,
        terms=tuple(dict.fromkeys(t for t in terms if t and t != "Uncategorized")),
        image=str((media or {}).get("source_url") or ""),
        image_alt=str((media or {}).get("alt_text") or ""),
        status=str(post.get("status") or "publish"),
    )


def post_markdown(post: WpPost) -> str:
    """The post as the text of a Markdown post file: front matter, then the converted body."""
    body, faq_pairs = html_to_markdown(post.content_html, base=post.link)
    meta: dict[str, Any] = {"title": post.title}
    optional = {
        "author": post.author, "date": post.date, "url": post.link, "image": post.image,
        "image_alt": post.image_alt, "tags": list(post.terms), "summary": post.excerpt,
        "slug": post.slug,
    }
    meta.update({key: value for key, value in optional.items() if value})
    if faq_pairs:
        meta["faq"] = [{"q": pair.question, "a": pair.answer} for pair in faq_pairs]
    front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False, width=10_000)
    return f"---\n{front}---\n{body}"


def article_from_post(post: WpPost) -> Article:
    """The Article a Markdown post with the same content gives."""
    article = parse_article(post_markdown(post), source=post.link)
    if post.status != "publish":
        warning = (f"{post.link}: the WordPress post is {post.status}, not published:"
                   " its link does not work for readers yet")
        return _with_warning(article, warning)
    return article


def _with_warning(article: Article, warning: str) -> Article:
    """The article with one more warning."""
    from dataclasses import replace

    return replace(article, warnings=(*article.warnings, warning))


def _rendered(post: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str:
    """`post[key]["rendered"]`, the HTML WordPress shows readers."""
    value = post.get(key)
    rendered = value.get("rendered") if isinstance(value, Mapping) else None
    if isinstance(rendered, str):
        return rendered
    if not required:
        return ""
    raise InputError(f"the WordPress answer has no {key}.rendered", where=where,
                     fix="check that the URL is a WordPress post (wp/v2/posts)")
