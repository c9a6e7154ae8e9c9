"""`publish feed`: reading a long feed, and a cron run on a feed that has not changed.

Targets (issue 16, a feed polled from cron or CI):
- reading a 500-item feed with full HTML (content:encoded) and choosing the new items costs
  ≤ 1 ms per item in-process; building each item's Article (the WordPress HTML path, shared with
  `publish URL`) is measured beside it as the baseline;
- a whole `publish feed URL` process on an unchanged feed (the server answers 304) costs no more
  CPU than `publish POST --dry-run --json` of the Japanese sample, measured in the same
  interleaved runs (CPU, because wall time follows the machine's load): polling every few
  minutes costs less than one dry run.
The feed is the test fake (tests/fakes/feed.py) on 127.0.0.1.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import (
    JAPANESE_SAMPLE,
    TESTS,
    Result,
    interleaved_timings,
    median_seconds,
    publish_exe,
    report,
)

sys.path.insert(0, str(TESTS))

from fakes.feed import FakeFeed, make_items  # type: ignore[import-not-found]

from publisher.source.feed.choose import Limits, choose
from publisher.source.feed.parse import item_article, item_slug, parse_feed

ITEMS = 500
RUNS = 15
PER_ITEM_MS = 1.0
URL = "https://weekly.example/feed.xml"


def read_and_choose(body: bytes) -> list[object]:
    """Parse the feed and choose a first --all run's items."""
    feed = parse_feed(body, url=URL)
    return list(choose(feed.items, {}, Limits(everything=True), resend=False).publish)


def build_articles(items: list[object]) -> None:
    """Every chosen item's Article."""
    for item in items:
        item_article(item, slug=item_slug(item), feed_url=URL)  # type: ignore[arg-type]


def main() -> None:
    """Measure both targets."""
    server = FakeFeed(items=make_items(ITEMS))
    try:
        body = server.rss()
        items = read_and_choose(body)
        assert len(items) == ITEMS
        reading = median_seconds(lambda: read_and_choose(body), runs=5, warmup=1) * 1000 / ITEMS
        building = median_seconds(lambda: build_articles(items), runs=3, warmup=1) * 1000 / ITEMS
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            (root / "publisher.toml").write_text('[feed]\nallow_private = ["127.0.0.1"]\n',
                                                 encoding="utf-8")
            url = f"{server.url}/feed.xml"
            env = {**os.environ, "PUBLISHER_NO_KEYRING": "1"}
            subprocess.run([publish_exe(), "feed", url, "--latest", "1"], cwd=root, env=env,
                           check=True, capture_output=True)
            before = server.answers(304)
            timings = interleaved_timings({
                "python -c pass": [sys.executable, "-c", "pass"],
                "unchanged": [publish_exe(), "feed", url],
                "dry run": [publish_exe(), str(JAPANESE_SAMPLE), "--dry-run", "--json"],
            }, RUNS, cwd=root)
            unchanged_304 = server.answers(304) - before
    finally:
        server.close()
    bare, _ = timings["python -c pass"]
    wall, cpu = timings["unchanged"]
    dry_wall, dry_cpu = timings["dry run"]
    report([
        Result(name=f"feed: read and choose {ITEMS} items in-process (feedparser)",
               measured=f"{reading:.2f} ms per item", target=f"≤ {PER_ITEM_MS:g} ms per item",
               met=reading <= PER_ITEM_MS,
               baseline=f"building each item's Article {building:.2f} ms per item",
               ratio=f"{reading / building:.2f}×",
               notes=f"medians, {len(body) // 1024} KB of RSS with content:encoded"),
        Result(name="feed: whole process, publish feed URL on an unchanged feed (304)",
               measured=f"{cpu:.0f} ms CPU median ({wall:.0f} ms wall)",
               target="≤ the dry run's CPU", met=cpu <= dry_cpu,
               baseline=f"publish POST --dry-run --json {dry_cpu:.0f} ms CPU ({dry_wall:.0f} ms"
                        f" wall); python -c pass {bare:.0f} ms",
               ratio=f"{cpu / dry_cpu:.2f}×",
               notes=f"{RUNS} interleaved runs; {unchanged_304} answers were 304"),
    ])


if __name__ == "__main__":
    main()
