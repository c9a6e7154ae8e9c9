"""The preview page in a browser: served on 127.0.0.1, or screenshotted by headless Chromium.

Screenshots let a pull request show the edition: `newsletter-375.png` and `newsletter-600.png`
(the email alone at a phone's and a desktop client's width), `social.png` (every network's mock)
and `preview.png` (the whole page). Chromium runs with its own throwaway profile, no network
(every host resolves to nothing) and no GPU.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from publisher.errors import ConfigError, InputError

if TYPE_CHECKING:
    import http.server

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = ("install it (Debian/Ubuntu: sudo apt-get install chromium; macOS: brew install "
                "--cask chromium) or point PUBLISHER_CHROMIUM at the browser")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--host-resolver-rules=MAP * ~NOTFOUND", "--force-device-scale-factor=1",
    "--allow-file-access-from-files", "--virtual-time-budget=5000",
)
PAGE_WIDTH = 1360
SOCIAL_WIDTH = 1280
MAX_HEIGHT = 16000  # Chromium cannot capture taller surfaces in one screenshot
HEIGHT_RE = re.compile(r'data-height="(\d+)"')
def find_chromium() -> str:
    """The Chromium binary, or a ConfigError saying in one line how to install it."""
    chosen = os.environ.get("PUBLISHER_CHROMIUM", "")
    if chosen:
        if not Path(chosen).is_file():
            raise ConfigError("PUBLISHER_CHROMIUM names no file", where=chosen, fix=INSTALL_HINT)
        return chosen
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise ConfigError("--png needs headless Chromium, which is not installed", where="chromium",
                      fix=INSTALL_HINT)


def take_screenshots(page: Path) -> list[Path]:
    """newsletter-375.png, newsletter-600.png, social.png and preview.png beside the page.

    Each is the preview page itself in one of its views (#only-mail-375, #only-mail-600,
    #only-social, everything), so a screenshot shows exactly what the page shows. Headless
    Chromium lays a window out at least 500 px wide, but the email sits in a frame of the exact
    width at the top left, and a 375 px capture holds just that frame.
    """
    binary = find_chromium()
    uri = page.resolve().as_uri()
    views = [(f"{uri}#only-mail-{width}", width, f"newsletter-{width}.png") for width in (375, 600)]
    views += [(f"{uri}#only-social", SOCIAL_WIDTH, "social.png"), (uri, PAGE_WIDTH, "preview.png")]
    with tempfile.TemporaryDirectory(prefix="publisher-shots-") as scratch:
        return [_shoot(binary, Path(scratch), view, width, page.parent / name)
                for view, width, name in views]


def _shoot(binary: str, work: Path, uri: str, width: int, target: Path) -> Path:
    """Measure the page's height at this width, then capture it whole as a compact PNG."""
    dom = _run(binary, work, f"--window-size={width},1000", "--dump-dom", uri)
    found = HEIGHT_RE.search(dom)
    height = min(int(found.group(1)) if found else 2000, MAX_HEIGHT)
    raw = work / target.name
    _run(binary, work, f"--window-size={width},{height}", f"--screenshot={raw}", uri)
    _compact(raw, target)
    return target


def _run(binary: str, work: Path, *args: str) -> str:
    """One headless Chromium run with a throwaway profile; its stdout."""
    try:
        done = subprocess.run(
            [binary, *FLAGS, f"--user-data-dir={work / 'profile'}", *args],
            capture_output=True, text=True, timeout=120, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"Chromium did not run ({exc})", where=binary,
                          fix=INSTALL_HINT) from exc
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ConfigError(f"Chromium failed: {last}", where=binary, fix=INSTALL_HINT)
    return done.stdout


def _compact(raw: Path, target: Path) -> None:
    """Write the screenshot as a 256-colour PNG: a fraction of the size, fine for a UI."""
    from PIL import Image

    with Image.open(raw) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE)
        target.parent.mkdir(parents=True, exist_ok=True)
        small.save(target, optimize=True)


def serve_folder(
    page: Path, *, port: int, open_browser: bool, announce: Callable[[str], None]
) -> None:
    """Serve the page's folder on 127.0.0.1 until interrupted; optionally open the page."""
    import functools
    import http.server

    handler = functools.partial(_quiet_handler(), directory=str(page.parent))
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as exc:
        raise InputError(f"cannot listen on 127.0.0.1:{port} ({exc.strerror})", where="--port",
                         fix="choose another --port, or 0 for any free one") from exc
    with server:
        url = f"http://127.0.0.1:{server.server_address[1]}/{page.name}"
        announce(url)
        if open_browser:
            import webbrowser

            webbrowser.open(url)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            return


def _quiet_handler() -> type[http.server.SimpleHTTPRequestHandler]:
    """A static-file handler that logs nothing (no paths from the editor's disk on the terminal)."""
    import http.server

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        """Serves one folder, silently."""

        def log_message(self, format: str, *args: Any) -> None:
            """Log nothing."""

    return QuietHandler
