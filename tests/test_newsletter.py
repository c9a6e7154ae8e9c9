"""Newsletter rendering: golden files, safety, templates, localization, accessibility, text part."""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path

import pytest

from publisher.channels.esp import subject_for
from publisher.config.load import config_from_mapping
from publisher.config.settings import Config, NewsletterSettings
from publisher.edition.newsletter import placeholders
from publisher.edition.newsletter.html import PALETTE
from publisher.edition.newsletter.render import (
    PLACEHOLDERS,
    load_templates,
    personalize,
    render_newsletter,
    templates_dir,
)
from publisher.errors import ConfigError
from publisher.model import Article, FaqDigest, FaqItem, Newsletter, Recipient
from publisher.source.faq import build_faq_digest
from publisher.source.read import parse_article
from tests.helpers.newsletter_samples import (
    blocks,
    digest,
    english_article,
    english_digest,
    japanese_article,
    japanese_digest,
    section,
)
from tests.helpers.sample_posts import sample_posts

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden" / "newsletter"
TEMPLATES = load_templates(None)
READER = Recipient("reader@example.org", "Bob & Co", "https://example.com/unsubscribe?t=abc&x=1")


def render(article: Article, faq: FaqDigest, config: Config | None = None) -> Newsletter:
    """Render with the built-in template."""
    return render_newsletter(article, faq, config or Config(), TEMPLATES)


def check_golden(name: str, content: str) -> None:
    """Compare with the stored file; UPDATE_GOLDEN=1 rewrites it."""
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    assert path.is_file(), f"missing {path}; run with UPDATE_GOLDEN=1"
    assert content == path.read_text(encoding="utf-8"), f"{name} changed; UPDATE_GOLDEN=1 to accept"


@pytest.mark.parametrize(
    ("name", "article", "faq"),
    [("en", english_article(), english_digest()), ("ja", japanese_article(), japanese_digest())],
)
def test_golden_samples(name: str, article: Article, faq: FaqDigest) -> None:
    news = render(article, faq)
    page, text = personalize(news, READER)
    check_golden(f"{name}.html", page)
    check_golden(f"{name}.txt", text)
    check_golden(f"{name}.subject.txt", f"{news.subject}\n{news.preheader}\n")


def post_paths() -> list[Path]:
    """The sample posts, when the article parser and posts exist."""
    return sample_posts()


@pytest.mark.parametrize("post", post_paths(), ids=lambda p: p.stem)
def test_golden_posts(post: Path) -> None:
    source = pytest.importorskip("publisher.source.read")
    faq = pytest.importorskip("publisher.source.faq")
    article = source.parse_article(post.read_text(encoding="utf-8"), source=str(post))
    news = render(article, faq.build_faq_digest(article, Config().faq))
    page, text = personalize(news, READER)
    check_golden(f"post-{post.stem}.html", page)
    check_golden(f"post-{post.stem}.txt", text)


def test_order_of_blocks_in_the_email() -> None:
    page = personalize(render(english_article(), english_digest()), READER)[0]
    page = page.split('class="nl-page"')[1]  # after the <title> and aria-label
    order = [
        "Publisher Demo", "One Markdown file, every channel", "By Ada Writer", "hero.jpg",
        "Hi Bob &amp; Co,", "Small teams ship", "Why one source", "Summary", "FAQ",
        "Read on the web", "You receive this email", "1 Example Street", "Unsubscribe",
    ]
    positions = [page.index(marker) for marker in order]
    assert positions == sorted(positions)


def test_markdown_becomes_styled_email_html_with_absolute_links() -> None:
    page = render(english_article(), english_digest()).html
    assert 'href="https://example.com/guide"' in page
    assert 'src="https://example.com/img/chart.png"' in page  # lone image → mj-image
    assert 'alt="A chart of open rates"' in page
    assert re.search(r'<blockquote style="[^"]*border-left', page)
    assert re.search(r'<ul style="[^"]*padding', page)
    assert re.search(r"<th style=\"[^\"]*\">Channel</th>", page)
    assert re.search(r'<pre style="[^"]*white-space:pre-wrap', page)
    assert "src=\"https://example.com/img/hero.jpg\"" in page
    assert 'alt="A desk with a notebook"' in page


def test_cta_and_web_links_carry_utm_parameters() -> None:
    config = replace(Config(), newsletter=NewsletterSettings(utm={"utm_source": "nl"}))
    page = render(english_article(), english_digest(), config).html
    assert 'href="https://example.com/posts/one-file?utm_source=nl&amp;utm_campaign=one-file"' in (
        page
    )


def test_hostile_article_is_neutralised() -> None:
    evil = (
        "<script>alert(1)</script>\n\n"
        "<img src=x onerror=alert(2)>\n\n"
        "[click](javascript:alert(3)) and ![pixel](data:image/png;base64,AAAA)\n\n"
        '<iframe src="https://evil.example/"></iframe>\n\n'
        '<form action="https://evil.example/"><input name=a></form>\n\n'
        '<div style="position:fixed;top:0;left:0">overlay</div>\n\n'
        "<a href=\"#\" onclick=\"steal()\">x</a> {{ 7*7 }} {% if true %}jinja{% endif %}\n\n"
        "</mj-text><mj-raw><script>alert(4)</script></mj-raw>\n\n"
        f"forged {placeholders.marker(placeholders.UNSUBSCRIBE_URL)} marker"
    )
    article = replace(
        english_article(),
        title="<b>Title</b> {{ 7*7 }}",
        lead=blocks(evil),
        image="javascript:alert(5)",
    )
    faq = digest((FaqItem("<script>q()</script>Why?", "[a](javascript:x()) {{ 7*7 }}"),))
    news = render(article, faq)
    page, text = personalize(news, READER)
    lowered = page.lower()
    for banned in ("<script", "onerror=", "onclick=", '="javascript:', '="data:', "<iframe",
                   "<form", "<input", "position:fixed", "position: fixed", "<mj-raw"):
        assert banned not in lowered, banned
    assert not re.search(r'(href|src)="(?!https?://|mailto:)', page)
    assert "{{ 7*7 }}" in page and "{{ 7*7 }}" in text and "49" not in page
    assert "{% if true %}jinja{% endif %}" in page
    assert "&lt;b&gt;Title&lt;/b&gt;" in page
    # the forged marker is inert: the reader's URL appears only in the real footer link
    assert page.count("https://example.com/unsubscribe?t=abc&amp;x=1") == 1
    assert text.count("https://example.com/unsubscribe?t=abc&x=1") == 1


@pytest.mark.parametrize("link", [
    "[x](jav&#x61;script:alert(1))", "[x](&#106;avascript:alert(1))",
    "[x](javascript&colon;alert(1))", "[x](JAVA&#X53;CRIPT:alert(1))",
    "[x](data&#58;text/html,x)", "<a href=\"jav&#x61;script:alert(1)\">x</a>",
])
def test_a_scheme_spelled_with_character_references_leaves_no_trace(link: str) -> None:
    post = f"---\ntitle: T\nurl: https://example.com/t\n---\nBefore {link} after.\n"
    page, text = personalize(render(parse_article(post, source="t.md"), english_digest()), READER)
    for output in (page.lower(), text.lower()):
        assert "javascript" not in output and "data:text" not in output
    assert "Before x after." in text


def test_markers_forged_in_the_title_or_summary_stay_inert_in_subject_and_preheader() -> None:
    forged = f"{placeholders.START}unsubscribe_url{placeholders.END}"
    article = replace(english_article(), title=f"News {forged}", summary=f"Short {forged}.")
    news = render(article, english_digest())
    assert placeholders.START not in news.subject + news.preheader
    assert subject_for(news, READER) == "News unsubscribe_url"


def test_dark_mode_language_and_preheader() -> None:
    news = render(japanese_article(), japanese_digest())
    page = news.html
    assert '<html lang="ja"' in page
    assert '<meta name="color-scheme" content="light dark"' in page
    assert '<meta name="supported-color-schemes" content="light dark"' in page
    assert "@media (prefers-color-scheme: dark)" in page
    assert news.preheader.startswith("地域の存在感")  # from the summary section
    hidden = re.search(r'<div style="display:none;[^"]*">([^<]*)</div>', page)
    assert hidden and hidden.group(1) == news.preheader


def test_preheader_prefers_front_matter_summary_then_lead() -> None:
    assert render(english_article(), english_digest()).preheader.startswith("Why a single")
    bare = replace(japanese_article(), summary="", sections=japanese_article().sections[:2])
    assert render(bare, japanese_digest()).preheader.startswith("各国の首脳会議")


def test_every_image_has_alt_text() -> None:
    article = replace(english_article(), image_alt="")
    page = render(article, english_digest()).html
    images = re.findall(r"<img [^>]*>", page)
    assert images
    assert all(re.search(r'alt="[^"]+"', image) for image in images)


def contrast(foreground: str, background: str) -> float:
    """WCAG 2 contrast ratio of two #rrggbb colours."""

    def luminance(colour: str) -> float:
        channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("mode", ["", "dark_"])
def test_palette_keeps_wcag_aa_contrast(mode: str) -> None:
    c = {key.removeprefix(mode): value for key, value in PALETTE.items()
         if key.startswith(mode) and (mode or not key.startswith("dark_"))}
    for text in ("text", "muted", "link"):
        for background in ("card", "page", "code_bg"):
            assert contrast(c[text], c[background]) >= 4.5, (mode, text, background)
    assert contrast(c["button_text"], c["button"]) >= 4.5


def test_japanese_chrome_and_english_chrome() -> None:
    ja = re.sub(r"<wbr\s*/?>", "", render(japanese_article(), japanese_digest()).html)
    for word in ("配信停止", "よくある質問", "まとめ", "Webで続きを読む", "ブラウザで表示"):
        assert word in ja
    en = render(english_article(), english_digest()).html
    for word in ("Unsubscribe", "FAQ", "Summary", "Read on the web", "View this email"):
        assert word in en


def test_strings_override_per_language_and_subject_prefix() -> None:
    config = config_from_mapping({"newsletter": {"strings": {
        "ja": {"unsubscribe": "配信を止める", "subject_prefix": "【週報】"},
    }}})
    news = render(japanese_article(), japanese_digest(), config)
    assert "配信を止める" in news.html and "配信停止" not in news.html
    assert news.subject == "【週報】中央アジアと新しい資源外交の行方"
    assert "Unsubscribe" in render(english_article(), english_digest(), config).html


def test_unknown_string_override_is_a_config_error() -> None:
    config = config_from_mapping({"newsletter": {"strings": {"en": {"unsubscrbe": "Leave"}}}})
    with pytest.raises(ConfigError, match="unsubscrbe"):
        render(english_article(), english_digest(), config)


def test_faq_is_limited_and_absent_when_empty() -> None:
    config = config_from_mapping({"faq": {"max_items": 1}})
    news = render(english_article(), english_digest(), config)
    assert "Does it work offline?" in news.html and "Can I change" not in news.html
    assert "Can I change" not in news.text
    empty = render(english_article(), digest(()))
    assert ">FAQ<" not in empty.html and "\nFAQ\n" not in empty.text


def test_plain_text_reads_on_its_own() -> None:
    _, text = personalize(render(english_article(), english_digest()), READER)
    assert text.startswith("Hi Bob & Co,\n\nOne Markdown file, every channel\n=====")
    assert "Why one source\n--------------" in text
    assert "See the guide [1] and the spec [2]." in text
    assert "[Image: A chart of open rates] [3]" in text
    assert "Summary\n-------\n\n- Fewer copies" in text  # the editor's heading
    assert "Q. Does it work offline?\nA. Yes. The outbox needs no account." in text
    assert "Unsubscribe: https://example.com/unsubscribe?t=abc&x=1" in text
    links = text.split("Links\n-----\n", 1)[1]
    assert links.splitlines()[:2] == ["[1] https://example.com/guide",
                                      "[2] https://spec.example.org/v1"]
    assert "<p" not in text and "style=" not in text


def test_japanese_text_part_marks_headings_by_display_width() -> None:
    _, text = personalize(render(japanese_article(), japanese_digest()), READER)
    assert "協議の主な内容\n" + "-" * 14 in text
    assert "わかりやすく[1]整理" in text  # no space before a link number after CJK


def test_personalize_escapes_and_falls_back() -> None:
    news = render(english_article(), english_digest())
    page, text = personalize(news, READER)
    assert "Hi Bob &amp; Co," in page and "Hi Bob & Co," in text
    anonymous, anon_text = personalize(news, Recipient("a@example.org", "", "https://u.example/"))
    assert "Hi there," in anonymous and anon_text.startswith("Hi there,")
    ja = personalize(render(japanese_article(), japanese_digest()), Recipient("a@b.jp"))[0]
    assert "読者の皆様" in ja
    assert not placeholders.MARKER_CHARS.search(page + text)


def test_newsletter_keeps_placeholders_for_esps() -> None:
    news = render(english_article(), english_digest())
    assert set(PLACEHOLDERS) == {"name", "unsubscribe_url"}
    tagged = placeholders.provider_template(news.html, lambda key, default: f"%recipient.{key}%")
    assert 'href="%recipient.unsubscribe_url%"' in tagged
    assert "Hi %recipient.name%," in tagged


def write_template(folder: Path, body: str) -> Path:
    """A user template folder holding one newsletter template."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "newsletter.mjml.j2").write_text(body, encoding="utf-8")
    return folder


def test_user_template_with_missing_variable_is_a_clear_config_error(tmp_path: Path) -> None:
    folder = write_template(
        tmp_path / "tpl",
        "<mjml><mj-body><mj-section><mj-column><mj-text>{{ article.subtitle }}"
        "</mj-text></mj-column></mj-section></mj-body></mjml>",
    )
    with pytest.raises(ConfigError) as caught:
        render_newsletter(english_article(), english_digest(), Config(), load_templates(folder))
    message = caught.value.one_line()
    assert str(folder / "newsletter.mjml.j2") in message
    assert "'subtitle'" in message and "use one of" in message


def test_user_template_overrides_builtin(tmp_path: Path) -> None:
    folder = write_template(
        tmp_path / "tpl",
        "<mjml lang=\"{{ lang }}\"><mj-body><mj-section><mj-column><mj-text>CUSTOM {{ subject }}"
        "<a href=\"{{ unsubscribe_url }}\">x</a></mj-text></mj-column></mj-section></mj-body>"
        "</mjml>",
    )
    news = render_newsletter(english_article(), english_digest(), Config(), load_templates(folder))
    page, _ = personalize(news, READER)
    assert "CUSTOM One Markdown file" in page
    assert 'href="https://example.com/unsubscribe?t=abc&amp;x=1"' in page


def test_template_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no newsletter\.mjml\.j2"):
        load_templates(tmp_path)
    write_template(tmp_path, "{% if %}")
    with pytest.raises(ConfigError, match=r"newsletter.mjml.j2:1"):
        load_templates(tmp_path)


def test_builtin_templates_dir_holds_the_template() -> None:
    assert (templates_dir() / "newsletter.mjml.j2").is_file()


def test_sections_roles_in_the_email() -> None:
    article = replace(english_article(), sections=(
        section("Body part", "Body text."),
        section("Asked", "Q text.", role="faq"),
        section("Wrap up", "Closing text.", role="closing"),
    ))
    news = render(article, english_digest())
    assert "Body text." in news.html and "Closing text." in news.html
    assert "Q text." not in news.html  # the digest renders the FAQ, not the raw section
    assert news.html.index("Does it work offline?") < news.html.index("Closing text.")


def test_japanese_line_breaks_inside_a_paragraph_do_not_become_spaces() -> None:
    lead = blocks("見通しとなりました。\nこれまでの話\nand English\nok")
    article = replace(japanese_article(), lead=lead)
    page = render(article, japanese_digest()).html
    assert "見通しとなりました。これまでの話\nand English\nok" in page


def test_table_column_alignment_survives_and_no_other_cell_style_does() -> None:
    table = (
        "| Item | Price | Note |\n|:-----|------:|:----:|\n| Drill | 0 | free |\n\n"
        '<table><tr><td style="text-align:right;position:fixed">a</td>'
        '<td style="text-align:expression(alert(1))" align="middle">b</td></tr></table>\n'
    )
    page = render(replace(english_article(), lead=blocks(table)), english_digest()).html
    header = re.search(r'<th align="right" style="([^"]*)">Price</th>', page)
    assert header and header.group(1).endswith("text-align:right;")  # after our left default
    assert re.search(r'<td align="center" style="[^"]*text-align:center;">free</td>', page)
    assert re.search(r'<td align="left" style="[^"]*text-align:left;">Drill</td>', page)
    lowered = page.lower()
    assert "position:fixed" not in lowered and "expression(" not in lowered
    assert re.search(r'<td style="[^"]*">a</td>', page)  # no align: not a safe text-align
    assert re.search(r'<td style="[^"]*">b</td>', page)  # no align: "middle" is no keyword


def test_dark_mode_keeps_header_and_footer_links_muted() -> None:
    page = render(english_article(), english_digest()).html
    dark = page.split("@media (prefers-color-scheme: dark)", 1)[1].split("</style>", 1)[0]
    rules = dict(re.findall(r"([^{}]+)\{\s*color:\s*(#[0-9a-f]{6})\s*!important;\s*\}", dark))
    by_selector = {sel.strip(): color for sels, color in rules.items() for sel in sels.split(",")}
    assert by_selector[".nl-muted a"] == PALETTE["dark_muted"]  # the site name in the header
    assert by_selector[".nl-footer a"] == PALETTE["dark_muted"]
    assert by_selector[".nl-text a"] == PALETTE["dark_link"]


def test_a_relative_hero_image_resolves_next_to_the_article_url() -> None:
    article = replace(english_article(), image="images/hero.jpg",
                      url="https://example.com/posts/one-file")
    page = render(article, english_digest()).html
    assert 'src="https://example.com/posts/images/hero.jpg"' in page


def test_a_post_of_question_headings_is_sent_once_as_its_faq_block() -> None:
    article = parse_article(
        "---\ntitle: 営業のお知らせ\nlang: ja\n---\nお知らせです。\n\n"
        "## 何時から開いていますか？\n\n朝10時からです。\n",
        source="posts/hours.md",
    )
    page, text = personalize(render(article, build_faq_digest(article, Config().faq)), READER)
    assert text.count("何時から開いていますか？") == 1 and text.count("朝10時からです。") == 1
    assert "よくある質問\n------------\n\nQ. 何時から開いていますか？\nA. 朝10時からです。" in text
    assert page.count("何時から開いていますか？") == 1
    assert "よく<wbr />ある<wbr />質問</span></h2>" in page
