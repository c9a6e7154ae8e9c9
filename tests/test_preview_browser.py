"""The preview page in headless Chromium: every network's mock is there and fits, the email frames
have their exact widths without overflow, the dark switch reaches into the email, and
`publish preview --png` writes the screenshots (kept under tmp_path as artifacts).

The page is loaded inside a measuring page of our own, so the checks do not rely on the preview's
script; its Content-Security-Policy applies to it alone.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.helpers import run_publish
from tests.helpers.browser import FLAGS

POSTS = ["posts/library-tool-lending.md", "posts/city-composting.md",
         "posts/chuo-line-extension.md"]
MEASURE = """<!doctype html><html><body style="margin:0">
<iframe id="page" style="border:0;width:{width}px;height:1200px" src="{src}"></iframe>
<script>
var frame = document.getElementById('page');
frame.addEventListener('load', function () {{ setTimeout(function () {{
  var doc = frame.contentDocument, view = frame.contentWindow;
  if ({dark}) {{ doc.querySelector('[data-theme-choice=dark]').click(); }}
  var mocks = Array.from(doc.querySelectorAll('.mock')).map(function (mock) {{
    var box = mock.getBoundingClientRect();
    var parts = Array.from(mock.querySelectorAll('*'));
    return {{
      output: mock.getAttribute('data-output'),
      posts: mock.querySelectorAll('.post').length,
      width: box.width,
      overflowX: mock.scrollWidth - mock.clientWidth,
      stickOut: Math.max.apply(null, parts.map(function (e) {{
        return Math.ceil(e.getBoundingClientRect().right - box.right); }})),
      texts: Array.from(mock.querySelectorAll('.text')).map(function (t) {{
        return t.scrollWidth - t.clientWidth; }}),
      links: mock.querySelectorAll('.text .lk').length,
      tags: mock.querySelectorAll('.text .tag').length,
      cards: mock.querySelectorAll('.card').length,
      visible: box.height > 0
    }};
  }});
  var mails = Array.from(doc.querySelectorAll('iframe.mail')).map(function (mail) {{
    var inner = mail.contentDocument;
    var link = inner.querySelector('.nl-text a');
    return {{
      width: mail.getBoundingClientRect().width,
      viewport: inner.documentElement.clientWidth,
      scrollWidth: inner.documentElement.scrollWidth,
      link: link ? view.getComputedStyle(link).color : ''
    }};
  }});
  var out = document.createElement('pre');
  out.id = 'measure';
  out.textContent = JSON.stringify({{
    mocks: mocks, mails: mails,
    pageOverflow: doc.documentElement.scrollWidth - doc.documentElement.clientWidth,
    ownScriptRan: doc.documentElement.hasAttribute('data-height'),
    theme: doc.documentElement.getAttribute('data-theme')
  }});
  document.body.appendChild(out);
}}, 50); }});
</script></body></html>"""

pytestmark = pytest.mark.browser


def measure(binary: str, page: Path, width: int, profile: Path, *, dark: bool = False
            ) -> dict[str, Any]:
    """Layout numbers of the preview page at a window width, from our own measuring page."""
    probe = page.with_name(f"measure-{width}-{'dark' if dark else 'light'}.html")
    probe.write_text(MEASURE.format(width=width, src=page.name, dark=str(dark).lower()),
                     encoding="utf-8")
    done = subprocess.run(
        [binary, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width + 40},1200",
         "--allow-file-access-from-files", "--virtual-time-budget=8000", "--dump-dom",
         probe.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="measure">(.*?)</pre>', done.stdout, flags=re.DOTALL)
    assert found, "the measuring script did not run"
    result: dict[str, Any] = json.loads(found.group(1).replace("&quot;", '"'))
    return result


def social_of(workdir: Path, post: str) -> dict[str, list[dict[str, Any]]]:
    """Each network's posts in the edition, as the JSON contract gives them."""
    result = run_publish(post, "--json", "--dry-run", "--thread", cwd=workdir)
    assert result.returncode == 0, result.stderr
    social: dict[str, list[dict[str, Any]]] = json.loads(result.stdout)["social"]
    return social


@pytest.mark.parametrize("post", POSTS, ids=[Path(p).stem for p in POSTS])
def test_every_network_mock_is_there_and_fits(
    chromium: str, workdir: Path, tmp_path: Path, post: str
) -> None:
    result = run_publish("preview", post, "--thread", cwd=workdir)
    assert result.returncode == 0, result.stderr
    page = workdir / result.stdout.split()[0]
    social = social_of(workdir, post)
    for width in (1360, 760):  # a desktop window, and a narrow one (one column of mocks)
        seen = measure(chromium, page, width, tmp_path / "profile")
        assert seen["ownScriptRan"], "the page's own script was blocked"
        assert seen["pageOverflow"] <= 0, seen
        mocks = {m["output"]: m for m in seen["mocks"]}
        assert set(mocks) == {n for n, posts in social.items() if posts}
        for network, posts in social.items():
            mock = mocks[network]
            assert mock["visible"] and mock["posts"] == len(posts), mock
            assert mock["overflowX"] <= 0 and mock["stickOut"] <= 1, mock
            assert all(extra <= 0 for extra in mock["texts"]), mock
            assert mock["links"] >= 1 and mock["cards"] >= 1, mock  # the link and its card
        phone, desktop = seen["mails"]
        assert (phone["width"], desktop["width"]) == (375, 600)
        for mail in (phone, desktop):
            assert mail["viewport"] == mail["width"] and mail["scrollWidth"] <= mail["width"]


def test_the_dark_switch_reaches_into_the_email(
    chromium: str, workdir: Path, tmp_path: Path
) -> None:
    from publisher.edition.newsletter.html import PALETTE

    result = run_publish("preview", POSTS[1], cwd=workdir)
    assert result.returncode == 0, result.stderr
    page = workdir / result.stdout.split()[0]
    light = measure(chromium, page, 1360, tmp_path / "profile")
    dark = measure(chromium, page, 1360, tmp_path / "profile", dark=True)
    assert light["theme"] == "light" and dark["theme"] == "dark"
    r, g, b = (int(PALETTE["dark_link"][i:i + 2], 16) for i in (1, 3, 5))
    assert {m["link"] for m in dark["mails"]} == {f"rgb({r}, {g}, {b})"}
    assert {m["link"] for m in light["mails"]} != {f"rgb({r}, {g}, {b})"}


def test_png_writes_the_screenshots(chromium: str, workdir: Path, tmp_path: Path
                                    ) -> None:
    result = run_publish("preview", POSTS[0], "--thread", "--png", cwd=workdir, timeout=300)
    assert result.returncode == 0, result.stderr
    folder = workdir / "outbox" / "library-tool-lending"
    widths = {"newsletter-375.png": 375, "newsletter-600.png": 600, "social.png": 1280,
              "preview.png": 1360}
    for name, width in widths.items():
        with Image.open(folder / name) as image:
            assert image.size[0] == width, name
            assert image.size[1] > 600, name  # the whole email / page, not one window
            assert len(image.convert("RGB").getcolors(1 << 24) or []) > 16, name  # not blank
        shutil.copy(folder / name, tmp_path / name)  # artifacts
    assert str(Path("outbox/library-tool-lending/social.png")) in result.stdout.split()
