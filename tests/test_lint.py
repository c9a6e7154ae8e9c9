"""`publish lint` checks and the `publish preview` files."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from publisher.config.settings import Config
from publisher.edition.newsletter.lint import (
    Finding,
    lint_newsletter,
    preview_files,
    raise_on_errors,
)
from publisher.edition.newsletter.placeholders import MARKER_CHARS
from publisher.edition.newsletter.render import load_templates, render_newsletter
from publisher.errors import LintFailed
from publisher.model import Article, Newsletter, Recipient
from tests.helpers.newsletter_samples import (
    blocks,
    english_article,
    english_digest,
    japanese_article,
    japanese_digest,
)

TEMPLATES = load_templates(None)


def lint(article: Article, config: Config | None = None,
         news: Newsletter | None = None) -> list[Finding]:
    """Render (unless given) and lint."""
    config = config or Config()
    news = news or render_newsletter(article, english_digest(), config, TEMPLATES)
    return lint_newsletter(news, article, config)


def codes(findings: list[Finding]) -> dict[str, str]:
    """code → level."""
    return {f.code: f.level for f in findings}


def test_clean_samples_have_no_findings() -> None:
    assert lint(english_article()) == []
    ja = japanese_article()
    news = render_newsletter(ja, japanese_digest(), Config(), TEMPLATES)
    assert lint_newsletter(news, ja, Config()) == []


def test_gmail_clipping_size() -> None:
    article = english_article()
    news = render_newsletter(article, english_digest(), Config(), TEMPLATES)
    near = replace(news, html=news.html + " " * 80_000, html_bytes=0)
    assert codes(lint(article, news=near)) == {"gmail-clip-near": "warning"}
    big = replace(news, html_bytes=103 * 1024)
    assert codes(lint(article, news=big)) == {"gmail-clip": "error"}


def test_images_without_alt_and_hero_without_image_alt() -> None:
    base = english_article()
    body = replace(base.sections[0], blocks=base.sections[0].blocks[:1])
    article = replace(base, image_alt="", lead=blocks("![](https://example.com/a.png)"),
                      sections=(body,))
    found = codes(lint(article))
    assert found == {"image-alt": "warning", "hero-alt": "warning"}


def test_non_https_links() -> None:
    article = replace(english_article(), lead=blocks("[old](http://insecure.example.com/x)"))
    findings = lint(article)
    assert codes(findings) == {"insecure-link": "warning"}
    assert "http://insecure.example.com/x" in findings[0].message


def test_missing_address_and_unsubscribe(tmp_path: Path) -> None:
    config = replace(Config(), site=replace(Config().site, address=""))
    assert codes(lint(english_article(), config)) == {"no-address": "error"}
    folder = tmp_path / "tpl"
    folder.mkdir()
    (folder / "newsletter.mjml.j2").write_text(
        "<mjml><mj-body><mj-section><mj-column><mj-text>{{ subject }}</mj-text>"
        "</mj-column></mj-section></mj-body></mjml>", encoding="utf-8")
    article = english_article()
    news = render_newsletter(article, english_digest(), Config(), load_templates(folder))
    assert codes(lint_newsletter(news, article, Config())) == {
        "no-unsubscribe": "error", "no-address": "error",
    }


def test_subject_length_by_display_width() -> None:
    assert codes(lint(replace(english_article(), title="A" * 61))) == {"subject-long": "warning"}
    assert lint(replace(english_article(), title="A" * 60)) == []
    assert codes(lint(replace(english_article(), title="字" * 31))) == {"subject-long": "warning"}
    assert codes(lint(replace(english_article(), title="B" * 151))) == {"subject-long": "error"}


def test_raise_on_errors_only_for_errors() -> None:
    raise_on_errors([Finding("warning", "x", "y")], where="posts/a.md")
    with pytest.raises(LintFailed) as caught:
        raise_on_errors([Finding("error", "no-address", "missing")], where="posts/a.md")
    assert caught.value.exit_code == 6 and "no-address" in caught.value.one_line()


def test_preview_files_are_personalised() -> None:
    news = render_newsletter(english_article(), english_digest(), Config(), TEMPLATES)
    files = preview_files(news)
    assert set(files) == {"newsletter.html", "newsletter.txt"}
    assert not MARKER_CHARS.search(files["newsletter.html"] + files["newsletter.txt"])
    assert "Hi there," in files["newsletter.txt"]
    named = preview_files(news, Recipient("e@example.com", "Eve", "https://example.com/u/e"))
    assert 'href="https://example.com/u/e"' in named["newsletter.html"]
