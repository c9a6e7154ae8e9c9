"""The newsletter HTML in a real browser (headless Chromium): no overflow on phones, centred column.

Remote images are swapped for a local 1200 px wide PNG and DNS is disabled, so nothing leaves the
machine. Screenshots stay under the test's tmp_path as artifacts.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from publisher.config.settings import Config
from publisher.edition.newsletter.render import load_templates, personalize, render_newsletter
from publisher.model import Article, FaqDigest, Recipient
from tests.helpers.browser import FLAGS
from tests.helpers.newsletter_samples import (
    blocks,
    english_article,
    english_digest,
    japanese_article,
    japanese_digest,
)

# Headless Chromium will not make a window narrower than 500 px, so the email is laid out in a
# same-origin srcdoc iframe of the exact width, and measured from the parent once it has loaded.
FRAME = """<!doctype html><html><body style="margin:0">
<iframe id="mail" style="border:0;width:{width}px;height:900px" srcdoc="{srcdoc}"></iframe>
<script>
window.addEventListener('load', function () {{
  var doc = document.getElementById('mail').contentDocument;
  var card = doc.querySelector('.nl-card').getBoundingClientRect();
  var out = document.createElement('pre');
  out.id = 'measure';
  out.textContent = JSON.stringify({{
    viewport: doc.documentElement.clientWidth,
    scrollWidth: doc.documentElement.scrollWidth,
    widest: Math.max.apply(null, Array.from(doc.body.querySelectorAll('*')).map(
      function (e) {{ return Math.ceil(e.getBoundingClientRect().right); }})),
    left: card.left, right: card.right, width: card.width
  }});
  document.body.appendChild(out);
}});
</script></body></html>"""

pytestmark = pytest.mark.browser


def stress(article: Article) -> Article:
    """The article plus content that tends to overflow a phone: long URL text, long code."""
    extra = blocks(
        "https://example.com/a/very/long/path/" + "segment" * 20 + "\n\n"
        "```\n" + "x = " + "1234567890" * 15 + "\n```"
    )
    return replace(article, lead=article.lead + extra)


def page_for_browser(article: Article, faq: FaqDigest, folder: Path) -> Path:
    """The personalised HTML with its images made local."""
    news = render_newsletter(stress(article), faq, Config(), load_templates(None))
    html, _ = personalize(news, Recipient("r@example.com", "Reader", "https://example.com/u"))
    picture = folder / "picture.png"
    if not picture.exists():
        Image.new("RGB", (1200, 630), (70, 120, 170)).save(picture)
    html = re.sub(r'src="https?://[^"]+"', f'src="{picture.as_uri()}"', html)
    path = folder / f"{article.lang}.html"
    path.write_text(html, encoding="utf-8")
    return path


def run_chromium(binary: str, profile: Path, *args: str) -> str:
    """One headless run with its own profile; returns stdout."""
    done = subprocess.run(
        [binary, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=90, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def measure(binary: str, page: Path, width: int, profile: Path) -> dict[str, Any]:
    """Layout numbers of the email at an exact width, as the frame's script wrote them."""
    frame = page.with_name(f"{page.stem}-{width}-frame.html")
    srcdoc = html.escape(page.read_text(encoding="utf-8"), quote=True)
    frame.write_text(FRAME.format(width=width, srcdoc=srcdoc), encoding="utf-8")
    dom = run_chromium(binary, profile, "--window-size=1000,1000", "--virtual-time-budget=5000",
                       "--allow-file-access-from-files", "--dump-dom", frame.as_uri())
    found = re.search(r'<pre id="measure">(.*?)</pre>', dom)
    assert found, "the measuring script did not run"
    result: dict[str, Any] = json.loads(found.group(1).replace("&quot;", '"'))
    return result


SAMPLES = [("en", english_article(), english_digest()),
           ("ja", japanese_article(), japanese_digest())]


@pytest.mark.parametrize(("lang", "article", "faq"), SAMPLES, ids=[s[0] for s in SAMPLES])
def test_layout_on_phone_and_desktop(
    chromium: str, tmp_path: Path, lang: str, article: Article, faq: FaqDigest
) -> None:
    page = page_for_browser(article, faq, tmp_path)
    phone = measure(chromium, page, 375, tmp_path / "profile")
    assert phone["viewport"] == 375
    assert phone["scrollWidth"] <= phone["viewport"], f"horizontal overflow: {phone}"
    assert phone["widest"] <= phone["viewport"], f"an element sticks out: {phone}"
    desktop = measure(chromium, page, 800, tmp_path / "profile")
    assert desktop["width"] == pytest.approx(600, abs=1)
    assert desktop["left"] == pytest.approx(desktop["viewport"] - desktop["right"], abs=1)
    for width in (375, 800):
        shot = tmp_path / f"{lang}-{width}.png"
        run_chromium(chromium, tmp_path / "profile", f"--window-size={width},2200",
                     f"--screenshot={shot}", page.as_uri())
        with Image.open(shot) as image:
            assert image.size[0] == width


STYLE_FRAME = """<!doctype html><html><body style="margin:0">
<iframe id="mail" style="border:0;width:600px;height:900px" srcdoc="{srcdoc}"></iframe>
<script>
window.addEventListener('load', function () {{
  var doc = document.getElementById('mail').contentDocument;
  var look = function (selector, property) {{
    return getComputedStyle(doc.querySelector(selector))[property];
  }};
  var out = document.createElement('pre');
  out.id = 'measure';
  out.textContent = JSON.stringify({{
    siteName: look('.nl-muted a', 'color'), bodyLink: look('.nl-text a', 'color'),
    priceHeader: look('.nl-table table th[align=right]', 'textAlign'),
    noteCell: look('.nl-table table td[align=center]', 'textAlign')
  }});
  document.body.appendChild(out);
}});
</script></body></html>"""


def rgb(hex_color: str) -> str:
    """A #rrggbb palette colour as getComputedStyle reports it."""
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


def test_dark_mode_header_stays_muted_and_table_columns_keep_their_alignment(
    chromium: str, tmp_path: Path
) -> None:
    from publisher.edition.newsletter.html import PALETTE

    table = blocks("| Item | Price | Note |\n|:--|--:|:-:|\n| Drill | 0.00 | free |\n")
    article = replace(english_article(), lead=table + english_article().lead)
    page = page_for_browser(article, english_digest(), tmp_path)
    frame = tmp_path / "style-frame.html"
    frame.write_text(STYLE_FRAME.format(
        srcdoc=html.escape(page.read_text(encoding="utf-8"), quote=True)), encoding="utf-8")
    dom = run_chromium(chromium, tmp_path / "profile", "--window-size=700,1000",
                       "--blink-settings=preferredColorScheme=0",  # 0: dark
                       "--virtual-time-budget=5000", "--dump-dom", frame.as_uri())
    found = re.search(r'<pre id="measure">(.*?)</pre>', dom)
    assert found, "the style script did not run"
    seen = json.loads(found.group(1).replace("&quot;", '"'))
    assert seen["siteName"] == rgb(PALETTE["dark_muted"]), seen
    assert seen["bodyLink"] == rgb(PALETTE["dark_link"]), seen  # dark mode is really on
    assert (seen["priceHeader"], seen["noteCell"]) == ("right", "center")
    run_chromium(chromium, tmp_path / "profile", "--window-size=700,1400",
                 "--blink-settings=preferredColorScheme=0", f"--screenshot={tmp_path / 'dark.png'}",
                 page.as_uri())
