"""Warnings before harm: what `publish` says before it sends, computed from the edition alone.

`publish` prints these before delivering anything and `--strict` turns them into exit 2, so a CI
job stops a post that would go out with a clipped subject, no link, a missing image or tracked
URL. The only fact from outside (whether a local image file exists) is passed in by the edge.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from publisher.edition.newsletter.plaintext import display_width
from publisher.model import Article

# Inboxes show roughly 60 columns of a subject on a phone (about 30 Japanese characters).
SUBJECT_WARN_COLUMNS = 60
# Click-tracking parameters that analytics tools and social shares append to links: Google
# Analytics' utm_* (https://support.google.com/analytics/answer/10917952), Facebook's fbclid and
# the common `ref` referrer tag. Posting them would credit every click to the wrong campaign.
TRACKING_PARAM_RE = re.compile(r"utm_[a-z0-9_]+|ref|fbclid", re.IGNORECASE)


def strip_tracking(url: str) -> tuple[str, tuple[str, ...]]:
    """The URL without tracking parameters, and the names of those removed (in order)."""
    if not url or "?" not in url:
        return url, ()
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    removed = tuple(dict.fromkeys(k for k, _ in query if TRACKING_PARAM_RE.fullmatch(k)))
    if not removed:
        return url, ()
    kept = [(k, v) for k, v in query if not TRACKING_PARAM_RE.fullmatch(k)]
    return urlunsplit(parts._replace(query=urlencode(kept))), removed


def subject_too_wide(subject: str) -> str:
    """A warning when the subject is wider than a phone's inbox line, else ''."""
    width = display_width(subject)
    if width <= SUBJECT_WARN_COLUMNS:
        return ""
    return (f"the subject is {width} columns wide; phones show about {SUBJECT_WARN_COLUMNS}, "
            "so the end is cut off in the inbox — shorten the title")


def edition_warnings(
    article: Article, subject: str, *, removed_params: tuple[str, ...] = (),
    missing_image: str = "",
) -> tuple[str, ...]:
    """Every warning about this edition beyond the article's own (the FAQ's), in a fixed order."""
    where = article.source
    found = []
    if wide := subject_too_wide(subject):
        found.append(f"{where}: {wide}")
    if not article.url:
        found.append(f"{where}: the post has no url, so the social posts carry no link — "
                     "add `url:` to the front matter")
    if missing_image:
        found.append(f"{where}: image: {missing_image} does not exist, so the posts go without "
                     "it — fix the path (relative to the post) or remove `image:`")
    if removed_params:
        names = ", ".join(removed_params)
        found.append(f"{where}: url carries tracking parameters ({names}); they were stripped "
                     "from what is posted — remove them from `url:`")
    return tuple(found)
