"""Personalization per subscriber: `personalize()` against the floor of a pre-split join.

Target (issue 8): at most 20 µs per subscriber. The floor in the same run is the newsletter's
pre-split HTML and text pieces joined with one subscriber's raw values (no escaping, no lookups).
"""

from __future__ import annotations

import sys
import time

from _common import JAPANESE_SAMPLE, REPO, Result, report

sys.path.insert(0, str(REPO / "src"))

from publisher.config.settings import Config
from publisher.edition.build import build_edition
from publisher.edition.newsletter import placeholders
from publisher.edition.newsletter.render import load_templates, personalize
from publisher.model import Recipient
from publisher.source.read import parse_article, read_post

SUBSCRIBERS = 20_000
ROUNDS = 7
TARGET_US = 20.0


def recipients() -> list[Recipient]:
    """Distinct readers, a third with Japanese names (escaped in HTML), all with signed links."""
    return [
        Recipient(
            email=f"reader{i}@example.org",
            name=f"読者 {i} <&>" if i % 3 == 0 else "",
            unsubscribe_url=f"https://example.com/unsubscribe?t=cmVhZGVy{i:08d}.abcdefghijklmnop",
        )
        for i in range(SUBSCRIBERS)
    ]


def per_subscriber_us(call: object, readers: list[Recipient]) -> float:
    """Median over rounds of the mean µs per subscriber."""
    samples = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for reader in readers:
            call(reader)  # type: ignore[operator]
        samples.append((time.perf_counter() - start) / len(readers) * 1e6)
    return sorted(samples)[len(samples) // 2]


def main() -> None:
    """Personalize the Japanese sample's newsletter for many readers."""
    article = parse_article(read_post(JAPANESE_SAMPLE), source=str(JAPANESE_SAMPLE))
    news = build_edition(article, Config(), load_templates(None)).newsletter
    html_pieces, text_pieces = placeholders.split(news.html), placeholders.split(news.text)
    readers = recipients()

    def floor(reader: Recipient) -> None:
        for literals, slots in (html_pieces, text_pieces):
            values = [reader.name if key == placeholders.NAME else reader.unsubscribe_url
                      for key, _ in slots]
            out = [literals[0]]
            for value, literal in zip(values, literals[1:], strict=True):
                out.append(value)
                out.append(literal)
            "".join(out)

    base = per_subscriber_us(floor, readers)
    full = per_subscriber_us(lambda r: personalize(news, r), readers)
    report([Result(
        name="personalization per subscriber",
        measured=f"{full:.1f} µs",
        target=f"≤ {TARGET_US:.0f} µs",
        met=full <= TARGET_US,
        baseline=f"pre-split join {base:.1f} µs",
        ratio=f"{full / base:.1f}×",
        notes=f"{SUBSCRIBERS} readers, {len(news.html.encode()) // 1024} KB HTML,"
              f" {len(html_pieces[1]) + len(text_pieces[1])} slots",
    )])


if __name__ == "__main__":
    main()
