"""`publish preview`: the self-contained preview page, its safety, --out, --serve and --png."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from publisher.edition.social import bluesky_facets, highlights
from tests.helpers import run_publish

EN_POST = "posts/city-composting.md"
THREAD_POST = "posts/library-tool-lending.md"
HOSTILE = """---
title: "Hostile </title><script>alert('title')</script>"
url: https://example.org/news/hostile
image: "https://example.org/a.jpg?x=%22onerror=alert(1)"
image_alt: "\\" onload=\\"alert('alt')"
tags: [news]
summary: "Summary with <img src=x onerror=alert('summary')> and </iframe><script>alert(2)</script>"
social:
  x: "Post \\"><script>alert('x')</script> for @editor on example.org"
  bluesky: "Bluesky <b onmouseover=alert(3)>bold</b> for @editor"
faq:
  - q: "Q <script>alert('faq')</script>?"
    a: "A </pre><script>alert('jsonld')</script>"
---
Lead <script>alert('lead')</script> paragraph with a [link](javascript:alert(4)).
"""


def edition_of(workdir: Path, post: str, *args: str) -> dict[str, object]:
    """The edition as `publish --json --dry-run` prints it."""
    result = run_publish(post, "--json", "--dry-run", *args, cwd=workdir)
    assert result.returncode == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


def scripts_of(page: str) -> list[str]:
    """Every raw <script> element's body in the page."""
    return re.findall(r"<script\b[^>]*>(.*?)</script>", page, flags=re.DOTALL | re.IGNORECASE)


def test_preview_writes_one_self_contained_page_in_the_post_outbox(workdir: Path) -> None:
    result = run_publish("preview", EN_POST, cwd=workdir)
    assert result.returncode == 0, result.stderr
    folder = workdir / "outbox" / "city-composting"
    assert result.stdout.split() == [str(Path("outbox/city-composting") / name) for name in (
        "preview.html", "newsletter.html", "newsletter.txt")]
    page = (folder / "preview.html").read_text(encoding="utf-8")
    edition = edition_of(workdir, EN_POST)
    news = edition["newsletter"]
    assert isinstance(news, dict)
    # no CDN, no external script, style or font: everything is inline (the email's own font
    # import stays inside its frame, where the page's Content-Security-Policy blocks it)
    chrome = re.sub(r'srcdoc="[^"]*"', "", page)
    assert not re.search(r"<(?:script|link)\b[^>]*\b(?:src|href)=", chrome)
    assert "@import" not in chrome and "url(http" not in chrome
    assert "font-src" not in page and "style-src 'unsafe-inline';" in page
    # the newsletter twice (phone and desktop), as the subscriber gets it, in sandboxed frames
    frames = re.findall(r'<iframe class="mail" data-width="(\d+)"[^>]*sandbox="allow-same-origin"',
                        page)
    assert frames == ["375", "600"]
    assert str(escape_attr(news["html"])) in page
    assert escape_attr(news["subject"]) in page and escape_attr(news["preheader"]) in page
    assert re.search(r"\d+\.\d KB of 102 KB before Gmail clips", page)
    # every network's mock with each of its posts, and the FAQ and JSON-LD
    social = edition["social"]
    assert isinstance(social, dict)
    for network, posts in social.items():
        mock = re.search(rf'<article class="panel net mock" data-network="\w+" '
                         rf'data-output="{network}">(.*?)</article>', page, flags=re.DOTALL)
        assert mock, network
        assert mock.group(1).count('<div class="post') == len(posts)
        for post in posts:
            assert f'{post["length"]} / {post["limit"]}' in mock.group(1)
    assert "FAQPage" in page and 'class="j-key"' in page
    assert "When does the new schedule start?" in page
    # the subject warning, said once (the edition's warning and lint's are the same finding),
    # and on stderr as `publish` says it
    assert page.count("phones show about 60") == 1
    (warning,) = result.stderr.strip().splitlines()
    assert warning.startswith("warning: posts/city-composting.md: the subject is 62 columns")
    assert not (workdir / ".publisher").exists()  # a preview touches no ledger


def escape_attr(text: object) -> str:
    """Text as Jinja's autoescaping writes it (the same in an attribute and an element)."""
    from markupsafe import escape

    return str(escape(str(text)))


def test_the_page_runs_only_its_own_script_whatever_the_post_contains(workdir: Path) -> None:
    (workdir / "posts" / "hostile.md").write_text(HOSTILE, encoding="utf-8")
    result = run_publish("preview", "posts/hostile.md", cwd=workdir)
    assert result.returncode == 0, result.stderr
    page = (workdir / "outbox" / "hostile" / "preview.html").read_text(encoding="utf-8")
    (own,) = scripts_of(page)  # exactly one script: the page's own
    assert "alert" not in own
    digest = base64.b64encode(hashlib.sha256(own.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in page  # nothing else may run, even if injected
    assert "default-src 'none'" in page
    assert attributes_named(page, "on") == []  # no event handler attribute anywhere
    assert "javascript:" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page  # shown, as text
    for srcdoc in re.findall(r'srcdoc="([^"]*)"', page):
        assert "<" not in srcdoc and '"' not in srcdoc  # the email cannot leave its attribute


def attributes_named(page: str, prefix: str) -> list[str]:
    """Every attribute name in the page that starts with prefix, as a browser parses it."""
    from html.parser import HTMLParser

    found: list[str] = []

    class Collector(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.extend(f"{tag}.{name}" for name, _ in attrs if name.startswith(prefix))

    Collector().feed(page)
    return found


def test_each_network_linkifies_as_it_does_itself(workdir: Path) -> None:
    text = "Ask @editor about example.org/a or https://example.org/b #Compost #Recycle"
    seen = {network: [(text[h.start:h.end], h.kind) for h in highlights(network, text)]
            for network in ("x", "bluesky", "mastodon", "threads", "linkedin")}
    assert seen["x"] == [("@editor", "mention"), ("example.org/a", "link"),
                         ("https://example.org/b", "link"), ("#Compost", "tag"),
                         ("#Recycle", "tag")]
    # Bluesky links exactly the facets we send (as its app detects them): no mention facet
    assert seen["bluesky"] == [("example.org/a", "link"), ("https://example.org/b", "link"),
                               ("#Compost", "tag"), ("#Recycle", "tag")]
    facets = bluesky_facets(text)
    assert [(f.kind, f.value) for f in facets] == [(h.kind, h.value) for h in
                                                   highlights("bluesky", text)]
    assert ("example.org/a", "link") not in seen["mastodon"]  # Mastodon needs the scheme
    assert [s for s in seen["threads"] if s[1] == "tag"] == [("#Compost", "tag")]  # one topic
    assert ("@editor", "mention") not in seen["linkedin"]

    (workdir / "posts" / "hostile.md").write_text(HOSTILE, encoding="utf-8")
    assert run_publish("preview", "posts/hostile.md", cwd=workdir).returncode == 0
    page = (workdir / "outbox" / "hostile" / "preview.html").read_text(encoding="utf-8")
    x_mock = page.split('data-output="x">')[1].split("</article>")[0]
    bluesky_mock = page.split('data-output="bluesky">')[1].split("</article>")[0]
    assert '<span class="mention">@editor</span>' in x_mock
    assert '<span class="mention">' not in bluesky_mock
    assert re.search(r'<a class="lk" href="https://example.org"[^>]*>example.org</a>', x_mock)


def test_a_thread_is_numbered_and_the_local_image_travels_with_the_page(workdir: Path) -> None:
    assert run_publish("preview", THREAD_POST, cwd=workdir).returncode == 0
    page = (workdir / "outbox" / "library-tool-lending" / "preview.html").read_text("utf-8")
    x_mock = page.split('data-output="x">')[1].split("</article>")[0]
    count = x_mock.count('<div class="post threaded"')
    assert count > 1 and f"thread of {count}" in x_mock
    for position in range(1, count + 1):
        assert f"post {position} of {count}" in x_mock
    assert 'src="data:image/jpeg;base64,' in page  # images/tool-library.jpg, no file:// link
    assert "file://" not in page


def test_an_image_outside_the_post_folder_is_not_embedded_in_the_preview(workdir: Path) -> None:
    secret = workdir / "ci-secret.png"  # a file of the CI machine, outside posts/
    secret.write_bytes(b"\x89PNG\r\n\x1a\n" + b"machine-secret-bytes")
    os.mkfifo(workdir / "posts" / "pipe.png")
    for image in (str(secret), "../ci-secret.png", "pipe.png"):
        post = workdir / "posts" / "leak.md"
        post.write_text(f"---\ntitle: Leak\nimage: {image}\n---\nBody text here.\n",
                        encoding="utf-8")
        result = run_publish("preview", "posts/leak.md", cwd=workdir, timeout=60)
        assert result.returncode == 0, result.stderr
        page = (workdir / "outbox" / "leak" / "preview.html").read_text("utf-8")
        encoded = base64.b64encode(secret.read_bytes()).decode("ascii")
        assert encoded not in page and "data:image/png;base64," not in page


def test_out_keeps_the_old_files_and_writes_nowhere_else(workdir: Path) -> None:
    result = run_publish("preview", EN_POST, "--out", "elsewhere", cwd=workdir)
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in (workdir / "elsewhere").iterdir())
    assert names == ["newsletter.html", "newsletter.txt", "preview.html"]
    text = (workdir / "elsewhere" / "newsletter.txt").read_text(encoding="utf-8")
    assert "Riverton will replace" in text
    assert not (workdir / "outbox").exists()


def test_png_without_chromium_says_how_to_install_it_in_one_line(workdir: Path) -> None:
    empty = workdir / "no-browsers"
    empty.mkdir()
    result = run_publish("preview", EN_POST, "--png", cwd=workdir, env={"PATH": str(empty)})
    assert result.returncode == 3
    (line,) = [x for x in result.stderr.strip().splitlines() if not x.startswith("warning:")]
    assert line.startswith("error: ") and "apt-get install chromium" in line
    assert "Traceback" not in result.stderr
    assert (workdir / "outbox" / "city-composting" / "preview.html").is_file()  # still written


def test_serve_answers_on_localhost_with_the_page(workdir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    env.update({"PUBLISHER_NO_KEYRING": "1", "NO_COLOR": "1"})
    server = subprocess.Popen(
        [sys.executable, "-m", "publisher", "preview", EN_POST, "--serve", "--port", "0"],
        cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert server.stderr is not None
        line = server.stderr.readline()
        while line.startswith("warning:"):  # the edition's warnings come first
            line = server.stderr.readline()
        found = re.search(r"serving (http://127\.0\.0\.1:\d+/preview\.html)", line)
        assert found, line
        with urllib.request.urlopen(found.group(1), timeout=10) as response:
            body = response.read()
        assert body == (workdir / "outbox" / "city-composting" / "preview.html").read_bytes()
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_serve_on_a_busy_port_is_one_line_and_exit_2(workdir: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_publish("preview", EN_POST, "--serve", "--port", str(port), cwd=workdir)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: --port: cannot listen on")


@pytest.mark.parametrize("post", [EN_POST, THREAD_POST])
def test_preview_and_run_agree_on_the_newsletter(workdir: Path, post: str) -> None:
    assert run_publish("preview", post, cwd=workdir).returncode == 0
    slug = Path(post).stem
    previewed = (workdir / "outbox" / slug / "newsletter.html").read_bytes()
    assert run_publish(post, cwd=workdir).returncode == 0
    assert (workdir / "outbox" / slug / "newsletter.html").read_bytes() == previewed


HERO_POST = """---
title: Tram line opens
url: https://example.org/news/tram
image: https://example.org/tram.jpg
image_alt: The new tram at its first stop
tags: [transport]
---
A new tram line opens in spring. It halves the trip downtown.
"""


def preview_mocks(channels: dict[str, dict[str, object]]) -> dict[str, str]:
    """Each network's column of the preview page, for a post with a hero image."""
    from publisher.config.settings import Config, Site
    from publisher.edition.build import build_edition
    from publisher.edition.newsletter.render import load_templates
    from publisher.edition.preview import render_preview
    from publisher.networks import NAMES
    from publisher.source.read import parse_article

    config = Config(site=Site(name="City News"), channels=channels)
    edition = build_edition(parse_article(HERO_POST, source="posts/tram.md"), config,
                            load_templates(None))
    page = render_preview(edition, config, html=edition.newsletter.html)
    return {name: page.split(f'data-output="{name}">')[1].split("</article>")[0]
            for name in NAMES}


def test_the_preview_shows_each_account_and_image_as_the_network_declares() -> None:
    mocks = preview_mocks({})
    shown = {name: re.findall(r'class="byline"><b>City News</b><span>([^<]*)</span>', mock)
             for name, mock in mocks.items()}
    assert shown == {"x": ["@citynews"], "bluesky": ["@citynews.bsky.social"],
                     "mastodon": ["@citynews@mastodon.social"], "threads": ["@citynews"],
                     "linkedin": ["Newsletter"]}
    # Mastodon attaches the hero image unless told not to; X leaves the link to its own card
    assert '<div class="media">' in mocks["mastodon"]
    assert '<div class="media">' not in mocks["x"]

    mocks = preview_mocks({"mastodon": {"instance_url": "https://social.example.net",
                                        "attach_image": False},
                           "bluesky": {"handle": "news.example.org"},
                           "x": {"attach_image": True}})
    assert "<span>@citynews@social.example.net</span>" in mocks["mastodon"]
    assert "<span>@news.example.org</span>" in mocks["bluesky"]
    assert '<div class="media">' not in mocks["mastodon"]
    assert '<div class="media">' in mocks["x"]
