"""A WordPress post as the source: the HTML conversion (pure, golden) and the REST fetch (fake)."""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from publisher.config.settings import WordPressSettings
from publisher.errors import ConfigError, InputError
from publisher.source.read import is_wordpress_ref, parse_article
from publisher.source.wordpress.article import WpPost, article_from_post, post_markdown
from publisher.source.wordpress.fetch import fetch_post, parse_ref
from publisher.source.wordpress.html import html_to_markdown
from tests.fakes.server import FakeHTTPServer, Reply, Request
from tests.fakes.wordpress import FakeWordPress, post_json
from tests.helpers import REPO, run_publish

DATA = REPO / "tests" / "data" / "wordpress"
GOLDEN = REPO / "tests" / "golden" / "wordpress"
SITE = "https://news.example.jp"
POST_URL = f"{SITE}/2025/11/water-bus/"
TITLE = "港北市、運河の水上バスを来春から毎日運航へ"
EXCERPT = ("<p>港北市が運河の水上バスを来春から毎日運航します。航路と運賃、悪天候の日の扱いを"
           "整理しました。</p>\n")
IMAGE = f"{SITE}/wp-content/uploads/2025/11/water-bus-1024x585.webp"


def seed_shaped_site(wp: FakeWordPress) -> None:
    """The fake site holds the seed-shaped post, its author, terms and featured image."""
    wp.users[3] = {"id": 3, "name": "編集部 田中", "slug": "tanaka"}
    wp.add_term("categories", 5, "交通")
    wp.add_term("tags", 7, "港北市")
    wp.add_term("tags", 8, "水上バス")
    wp.media[99] = {"id": 99, "source_url": IMAGE, "alt_text": "運河を進む白い水上バス",
                    "media_type": "image", "mime_type": "image/webp"}
    wp.posts.append(post_json(
        42, "water-bus", title=TITLE, excerpt=EXCERPT, base=SITE,
        content=(DATA / "seed-shaped.html").read_text(encoding="utf-8"),
        categories=(5,), tags=(7, 8), featured_media=99))


@pytest.fixture
def wp() -> Iterator[FakeWordPress]:
    site = FakeWordPress()
    seed_shaped_site(site)
    yield site
    site.close()


def settings_for(wp: FakeWordPress, **others: Any) -> WordPressSettings:
    return WordPressSettings(sites={"news.example.jp": wp.url, "news": wp.url}, **others)


def write_config(workdir: Path, wp: FakeWordPress, user: str = "") -> None:
    (workdir / "publisher.toml").write_text(
        f'[wordpress]\nuser = "{user}"\nsites = {{ "news.example.jp" = "{wp.url}",'
        f' news = "{wp.url}" }}\n', encoding="utf-8")


# --- the HTML → Markdown conversion (pure) -------------------------------------------------


def test_the_conversion_of_every_wordpress_block_matches_its_golden_file() -> None:
    markdown, faq = html_to_markdown((DATA / "features.html").read_text(encoding="utf-8"))
    got = markdown + "".join(f"\nFAQ: {p.question} → {p.answer}" for p in faq) + "\n"
    golden = GOLDEN / "features.md"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(got, encoding="utf-8")
    assert got == golden.read_text(encoding="utf-8")


def test_plugin_chrome_scripts_and_forms_are_left_out() -> None:
    markdown, _ = html_to_markdown((DATA / "seed-shaped.html").read_text(encoding="utf-8"))
    for chrome in ("共有", "いいね", "関連", "もっと見る", "メールで受け取り", "購読", "share="):
        assert chrome not in markdown, chrome
    markdown, _ = html_to_markdown((DATA / "features.html").read_text(encoding="utf-8"))
    for chrome in ("tracker", "Jane writes", "Related posts", "Old news"):
        assert chrome not in markdown, chrome


def test_text_that_looks_like_markup_stays_text() -> None:
    html = "<p>&lt;img src=x onerror=alert(1)&gt; *not bold* [x](javascript:alert(1))</p>"
    article = article_from_post(_post(html))
    text = article.lead[0].text
    assert "<img src=x onerror=alert(1)>" in text and "*not bold*" in text
    assert "javascript" not in "".join(str(b.items) for b in article.lead)


def test_relative_links_and_images_resolve_against_the_permalink() -> None:
    html = '<p><a href="/about/">About</a> <img src="../img/a.jpg" alt="A"></p>'
    markdown, _ = html_to_markdown(html, base="https://site.example/2025/11/post/")
    assert markdown == ("[About](https://site.example/about/)"
                        " ![A](https://site.example/2025/11/img/a.jpg)\n")


def test_faq_blocks_give_questions_wherever_they_stand() -> None:
    article = article_from_post(_post((DATA / "features.html").read_text(encoding="utf-8")))
    questions = {item.question for item in article.faq}
    assert questions == {"When do the branches open?", "Is a card needed?", "Who pays?",
                         "Can I donate books?"}
    assert len(article.faq) == 4
    answers = {item.question: item.answer for item in article.faq}
    assert answers["When do the branches open?"] == "The first opens in **March**."


def test_faq_under_headings_is_read_as_in_markdown() -> None:
    html = ("<p>Lead.</p><h2>FAQ</h2><h3>Is it free?</h3><p>Yes, it is free.</p>"
            "<h3>Who runs it?</h3><p>The city runs it.</p>")
    twin = "---\ntitle: T\n---\nLead.\n\n## FAQ\n\n### Is it free?\n\nYes, it is free.\n\n" \
           "### Who runs it?\n\nThe city runs it.\n"
    assert _no_lines(article_from_post(_post(html)).faq) == _no_lines(
        parse_article(twin, source="t.md").faq)
    assert len(parse_article(twin, source="t.md").faq) == 2


def test_a_wordpress_post_gives_the_article_of_its_markdown_twin() -> None:
    post = WpPost(link=POST_URL, slug="water-bus", title=TITLE, date="2025-11-20",
                  author="編集部 田中", excerpt=_excerpt_text(),
                  terms=("交通", "港北市", "水上バス"),
                  content_html=(DATA / "seed-shaped.html").read_text(encoding="utf-8"),
                  image=IMAGE, image_alt="運河を進む白い水上バス")
    from_wp = article_from_post(post)
    twin = parse_article((DATA / "seed-shaped.md").read_text(encoding="utf-8"), source="t.md")
    assert len(twin.faq) == 4
    for field in fields(twin):
        if field.name in ("source", "body_markdown", "content_hash"):
            continue
        got, want = getattr(from_wp, field.name), getattr(twin, field.name)
        assert _no_lines(got) == _no_lines(want), field.name


def test_the_generated_post_text_is_stable() -> None:
    post = _post("<p>One.</p>")
    assert post_markdown(post) == post_markdown(post)
    assert article_from_post(post).content_hash == article_from_post(post).content_hash


# --- references ------------------------------------------------------------------------------


@pytest.mark.parametrize(("given", "api", "slug", "post_id"), [
    ("https://site.example/2025/11/some-post/", "https://site.example/wp-json", "some-post", 0),
    ("https:/site.example/2025/11/some-post", "https://site.example/wp-json", "some-post", 0),
    ("https://site.example/?p=12", "https://site.example/wp-json", "", 12),
    ("https://site.example/2025/11/%E6%B0%B4/", "https://site.example/wp-json", "水", 0),
    ("wp:site.example:77", "https://site.example/wp-json", "", 77),
    ("wp:news:5", "http://127.0.0.1:9/wp-json", "", 5),
])
def test_post_references(given: str, api: str, slug: str, post_id: int) -> None:
    ref = parse_ref(given, WordPressSettings(sites={"news": "http://127.0.0.1:9"}))
    assert (ref.api, ref.slug, ref.post_id) == (api, slug, post_id)
    assert is_wordpress_ref(given)


@pytest.mark.parametrize("given", ["wp:site.example", "wp::12", "https://site.example/"])
def test_a_reference_without_a_post_is_refused(given: str) -> None:
    with pytest.raises(InputError):
        parse_ref(given, WordPressSettings())


def test_a_markdown_path_is_no_wordpress_reference() -> None:
    assert not is_wordpress_ref("posts/wp-notes.md")


# --- the fetch, against the fake site -----------------------------------------------------


def test_the_fetch_reads_title_author_terms_image_and_content(wp: FakeWordPress) -> None:
    post = fetch_post(parse_ref(POST_URL, settings_for(wp)), settings_for(wp))
    assert (post.title, post.author, post.date, post.link) == (TITLE, "編集部 田中",
                                                               "2025-11-20", POST_URL)
    assert post.terms == ("交通", "港北市", "水上バス")
    assert (post.image, post.image_alt) == (IMAGE, "運河を進む白い水上バス")
    assert post.excerpt == _excerpt_text()
    by_id = fetch_post(parse_ref("wp:news:42", settings_for(wp)), settings_for(wp))
    assert by_id == post


def test_every_page_of_terms_is_read(wp: FakeWordPress) -> None:
    for number in range(1, 131):
        wp.add_term("tags", 1000 + number, f"tag {number} & co")
    wp.posts[0]["tags"] = [1000 + n for n in range(1, 131)]
    post = fetch_post(parse_ref(POST_URL, settings_for(wp)), settings_for(wp))
    assert post.terms == ("交通", *(f"tag {n} & co" for n in range(1, 131)))
    pages = [r.query.get("page") for r in wp.http.requests if r.path == "/wp-json/wp/v2/tags"]
    assert pages == [["1"], ["2"]]


def test_a_site_that_hides_its_users_still_gives_the_post(wp: FakeWordPress) -> None:
    wp.hide_users = True
    post = fetch_post(parse_ref(POST_URL, settings_for(wp)), settings_for(wp))
    assert post.author == "" and post.title == TITLE


def test_a_draft_needs_the_application_password(
    wp: FakeWordPress, monkeypatch: pytest.MonkeyPatch
) -> None:
    wp.posts[0]["status"] = "draft"
    monkeypatch.setenv("PUBLISHER_NO_KEYRING", "1")
    monkeypatch.delenv("WORDPRESS_APP_PASSWORD", raising=False)
    with pytest.raises(InputError, match="WORDPRESS_APP_PASSWORD"):
        fetch_post(parse_ref(POST_URL, settings_for(wp)), settings_for(wp))
    with pytest.raises(ConfigError, match="not public"):
        fetch_post(parse_ref("wp:news:42", settings_for(wp)), settings_for(wp))
    monkeypatch.setenv("WORDPRESS_APP_PASSWORD", wp.app_password)
    settings = settings_for(wp, user=wp.user)
    post = fetch_post(parse_ref(POST_URL, settings), settings)
    assert post.status == "draft"
    assert any("not published" in w for w in article_from_post(post).warnings)
    monkeypatch.setenv("WORDPRESS_APP_PASSWORD", "wrong pass word")
    with pytest.raises(ConfigError, match="refused the Application Password"):
        fetch_post(parse_ref(POST_URL, settings), settings)


# --- the command, end to end ---------------------------------------------------------------


def test_the_wordpress_post_and_its_twin_publish_the_same_edition(
    workdir: Path, wp: FakeWordPress
) -> None:
    write_config(workdir, wp)
    twin = workdir / "water-bus.md"
    twin.write_text((DATA / "seed-shaped.md").read_text(encoding="utf-8"), encoding="utf-8")
    from_wp = run_publish(POST_URL, "--json", "--dry-run", cwd=workdir)
    from_md = run_publish(twin, "--json", "--dry-run", cwd=workdir)
    assert from_wp.returncode == 0, from_wp.stderr
    assert from_md.returncode == 0, from_md.stderr
    wp_edition, md_edition = json.loads(from_wp.stdout), json.loads(from_md.stdout)
    for edition in (wp_edition, md_edition):
        del edition["article"]["content_hash"]
    assert len(md_edition["faq"]["items"]) == 4
    assert wp_edition == md_edition


def test_a_wordpress_post_publishes_once(workdir: Path, wp: FakeWordPress) -> None:
    write_config(workdir, wp)
    first = run_publish(POST_URL, cwd=workdir)
    assert first.returncode == 0, first.stderr
    assert (workdir / "outbox" / "water-bus" / "newsletter.eml").is_file()
    second = run_publish(POST_URL, cwd=workdir)
    assert second.returncode == 0, second.stderr
    assert "Nothing new to send" in second.stdout


@pytest.mark.parametrize(("post", "code", "message"), [
    (f"{SITE}/2025/11/no-such-post/", 2, "no post with the slug 'no-such-post'"),
    ("wp:news:4040", 2, "no such post (404 (rest_post_invalid_id"),
    ("wp:news:43", 3, "the post is not public"),
])
def test_a_post_that_cannot_be_read_stops_the_run(
    workdir: Path, wp: FakeWordPress, post: str, code: int, message: str
) -> None:
    wp.posts.append(post_json(43, "draft-one", title="Draft", content="<p>x</p>", excerpt="",
                              base=SITE, status="draft"))
    write_config(workdir, wp)
    result = run_publish(post, cwd=workdir)
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (workdir / "outbox").exists()


def test_write_back_is_refused_for_a_wordpress_post(workdir: Path) -> None:
    result = run_publish("wp:blog.example:1", "--write-back", cwd=workdir)
    assert result.returncode == 2, result.stderr
    assert "--write-back" in result.stderr and not (workdir / "outbox").exists()


def test_a_site_that_is_not_wordpress_stops_the_run(workdir: Path) -> None:
    def handle(request: Request) -> Reply:
        if request.path.startswith("/wp-json"):
            return Reply(200, b"<html><body>Welcome</body></html>",
                         {"Content-Type": "text/html"})
        return Reply(404, b"<html>not found</html>", {"Content-Type": "text/html"})

    for answer in (handle, lambda request: Reply(404, b"<html>nope</html>")):
        server = FakeHTTPServer(answer).start()
        try:
            (workdir / "publisher.toml").write_text(
                f'[wordpress]\nsites = {{ "blog.example" = "{server.url}" }}\n', encoding="utf-8")
            result = run_publish("https://blog.example/2025/11/a-post/", cwd=workdir)
        finally:
            server.stop()
        assert result.returncode == 2, result.stderr
        assert "not a WordPress REST API" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert not (workdir / "outbox").exists()


def test_an_unreachable_site_stops_the_run(workdir: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (workdir / "publisher.toml").write_text(
        f'[wordpress]\nsites = {{ "blog.example" = "http://127.0.0.1:{port}" }}\n',
        encoding="utf-8")
    result = run_publish("https://blog.example/2025/11/a-post/", cwd=workdir)
    assert result.returncode == 3, result.stderr
    assert "cannot reach the WordPress site" in result.stderr
    assert not (workdir / "outbox").exists()


def _post(html: str) -> WpPost:
    return WpPost(link="https://site.example/p/", slug="p", title="T", date="", author="",
                  excerpt="", content_html=html, terms=())


def _excerpt_text() -> str:
    return re.sub(r"<[^>]+>", "", EXCERPT).strip()


def _no_lines(value: object) -> str:
    """A value's repr without source line numbers (the twin's front matter is longer)."""
    return re.sub(r"line=\d+", "line=_", repr(value))


def test_a_markdown_post_loads_no_wordpress_code(tmp_path: Path) -> None:
    from tests.helpers import REPO, modules_after

    ja_post = REPO / "posts" / "chuo-line-extension.md"
    loaded = modules_after([str(ja_post), "--dry-run", "--json"], tmp_path)
    assert "publisher.edition.build" in loaded
    wordpress = {"publisher.source.wordpress.html", "publisher.source.wordpress.fetch"}
    assert not {"bs4", *wordpress} & loaded
