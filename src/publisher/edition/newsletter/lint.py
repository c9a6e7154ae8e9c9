"""`publish lint` and `publish preview`: checks on a rendered newsletter, and files to open."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Literal

from markupsafe import escape

from publisher.config.settings import Config
from publisher.edition.checks import SUBJECT_WARN_COLUMNS, subject_too_wide
from publisher.edition.newsletter import placeholders
from publisher.edition.newsletter.plaintext import display_width
from publisher.edition.newsletter.render import personalize
from publisher.errors import LintFailed
from publisher.model import Article, Newsletter, Recipient

# Gmail shows "[Message clipped]" and hides the rest (including the unsubscribe footer) once the
# HTML passes about 102 KB: https://support.google.com/mail/thread/8590213
GMAIL_CLIP_BYTES = 102 * 1024
GMAIL_WARN_BYTES = 85 * 1024
SUBJECT_ERROR_COLUMNS = 150
PREVIEW_RECIPIENT = Recipient(
    email="preview@example.invalid", unsubscribe_url="https://example.invalid/unsubscribe"
)


@dataclass(frozen=True)
class Finding:
    """One lint result; any 'error' makes `publish lint` exit non-zero."""

    level: Literal["error", "warning"]
    code: str
    message: str


class _LinkCollector(HTMLParser):
    """Collects images (with their alt) and link targets from the compiled HTML."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.images: list[tuple[str, str | None]] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Record img src/alt and every href/src."""
        found = dict(attrs)
        if tag == "img":
            self.images.append((found.get("src") or "", found.get("alt")))
        for name in ("href", "src"):
            if found.get(name):
                self.urls.append(str(found[name]))


def lint_newsletter(newsletter: Newsletter, article: Article, config: Config) -> list[Finding]:
    """Everything that would make the email clip, break, or fail bulk-sender rules."""
    collector = _LinkCollector()
    collector.feed(newsletter.html)
    collector.close()
    return [
        *_size(newsletter),
        *_alt_text(collector.images, article),
        *_insecure(collector.urls),
        *_unsubscribe(newsletter),
        *_address(newsletter, config),
        *_subject(newsletter.subject),
        *_post_warnings(article),
    ]


def _post_warnings(article: Article) -> list[Finding]:
    """What `publish` warns about the post itself (an FAQ with no readable pair, unknown keys)."""
    return [Finding("warning", "post", warning) for warning in article.warnings]


def raise_on_errors(findings: Iterable[Finding], *, where: str) -> None:
    """LintFailed naming the first error, when there is any (the CLI exits 6)."""
    errors = [f for f in findings if f.level == "error"]
    if errors:
        raise LintFailed(
            f"{len(errors)} lint error(s), first: {errors[0].code}: {errors[0].message}",
            where=where,
            fix="fix the errors listed above and run `publish lint` again",
        )


def preview_files(
    newsletter: Newsletter, recipient: Recipient = PREVIEW_RECIPIENT
) -> dict[str, str]:
    """File name → content for `publish preview`, personalised for a sample reader."""
    page, text = personalize(newsletter, recipient)
    return {"newsletter.html": page, "newsletter.txt": text}


def _size(newsletter: Newsletter) -> list[Finding]:
    """Gmail clips long HTML, hiding the footer and its unsubscribe link."""
    size = newsletter.html_bytes or len(newsletter.html.encode("utf-8"))
    kb = f"{size / 1024:.1f} KB"
    if size > GMAIL_CLIP_BYTES:
        return [Finding("error", "gmail-clip",
                        f"HTML is {kb}; Gmail clips above 102 KB — shorten the article")]
    if size > GMAIL_WARN_BYTES:
        return [Finding("warning", "gmail-clip-near",
                        f"HTML is {kb}, close to Gmail's 102 KB clipping limit")]
    return []


def _alt_text(images: list[tuple[str, str | None]], article: Article) -> list[Finding]:
    """Screen readers and image-blocking clients need alt text."""
    found = [
        Finding("warning", "image-alt", f"image without alt text: {src}")
        for src, alt in images
        if not (alt or "").strip()
    ]
    if article.image and not article.image_alt.strip():
        found.append(Finding("warning", "hero-alt",
                             "the hero image has no image_alt in the front matter; "
                             "the title is used instead"))
    return found


def _insecure(urls: list[str]) -> list[Finding]:
    """Plain http links trigger warnings in clients and leak readers' clicks."""
    return [
        Finding("warning", "insecure-link", f"link is not https: {url}")
        for url in dict.fromkeys(urls)
        if url.lower().startswith("http://")
    ]


def _unsubscribe(newsletter: Newsletter) -> list[Finding]:
    """Bulk senders must offer an unsubscribe link in the body (and the header, added later)."""
    mark = placeholders.marker(placeholders.UNSUBSCRIBE_URL)
    found = []
    if f'href="{mark}"' not in newsletter.html:
        found.append(Finding("error", "no-unsubscribe",
                             "the HTML has no unsubscribe link — keep {{ unsubscribe_url }} "
                             "in an href in the template"))
    if mark not in newsletter.text:
        found.append(Finding("error", "no-unsubscribe-text",
                             "the plain-text part has no unsubscribe URL"))
    return found


def _address(newsletter: Newsletter, config: Config) -> list[Finding]:
    """Anti-spam law (CAN-SPAM and others) wants the sender's postal address in every email."""
    address = config.site.address.strip()
    if not address:
        return [Finding("error", "no-address",
                        "site.address is empty — set your postal address in publisher.toml")]
    if address not in newsletter.text or _escaped(address) not in newsletter.html:
        return [Finding("error", "no-address",
                        "the postal address is missing from the email — keep {{ site.address }} "
                        "in the template footer")]
    return []


def _subject(subject: str) -> list[Finding]:
    """Long subjects are cut off in inbox lists, Japanese ones at about half the characters."""
    width = display_width(subject)
    if not subject.strip():
        return [Finding("error", "subject-empty", "the subject is empty — give the post a title")]
    if width > SUBJECT_ERROR_COLUMNS:
        return [Finding("error", "subject-long",
                        f"the subject is {width} columns wide; keep it under "
                        f"{SUBJECT_WARN_COLUMNS}")]
    if wide := subject_too_wide(subject):
        return [Finding("warning", "subject-long", wide)]
    return []


def _escaped(text: str) -> str:
    """Text as autoescaping writes it into HTML."""
    return str(escape(text))
