"""Counting exactly as each network does: twitter-text conformance plus Japanese cases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from publisher.errors import InputError
from publisher.networks import NAMES, NETWORKS
from publisher.networks.counting import (
    bluesky_bytes,
    bluesky_length,
    find_urls,
    linkedin_length,
    mastodon_length,
    measure,
    threads_length,
    x_length,
)

CONFORMANCE = Path(__file__).resolve().parents[1] / ".." / "shared" / "conformance" / "twitter-text"
V3_SECTIONS = (
    "WeightedTweetsWithDiscountedEmojiCounterTest",
    "UnicodeDirectionalMarkerCounterTest",
)
URL_SECTIONS = ("urls", "urls_with_indices", "urls_with_directional_markers")


def _cases(filename: str, sections: tuple[str, ...]) -> list[Any]:
    """Conformance cases from the shared folder, or one skip marker when it is absent."""
    path = CONFORMANCE / filename
    if not path.is_file():
        return [pytest.param(None, None, marks=pytest.mark.skip(reason=f"{path} not present"))]
    tests = yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]
    return [
        pytest.param(section, case, id=f"{section}: {case['description']}")
        for section in sections
        for case in tests[section]
    ]


@pytest.mark.parametrize(("section", "case"), _cases("validate.yml", V3_SECTIONS))
def test_x_weighted_length_matches_twitter_text_v3(section: str, case: dict[str, Any]) -> None:
    expected = case["expected"]
    assert x_length(case["text"]) == expected["weightedLength"]
    assert measure("x", case["text"]).fits == expected["valid"]


@pytest.mark.parametrize(("section", "case"), _cases("extract.yml", URL_SECTIONS))
def test_url_detection_matches_twitter_text(section: str, case: dict[str, Any]) -> None:
    spans = find_urls(case["text"])
    if section == "urls":
        assert [s.url for s in spans] == case["expected"]
    else:
        got = [{"url": s.url, "indices": [s.start, s.end]} for s in spans]
        assert got == case["expected"]


@pytest.mark.parametrize(
    ("text", "weighted"),
    [
        ("日本語", 6),
        ("日本語 abc", 10),
        ("あ" * 140, 280),
        ("、。「」", 8),
        ("ｱｲｳ", 6),  # half-width katakana is outside the light ranges
        ("…", 2),  # U+2026 is outside 8208–8223: an ellipsis costs 2
        ("—", 1),  # U+2014 is inside 8208–8223
        ("か\u3099", 2),  # NFC composes to が, one heavy character
        ("👨‍👩‍👧", 2),
        ("詳しくは https://example.com/a?utm_source=x", 8 + 1 + 23),
        # twitter-text ends a URL before a non-ASCII path: the Japanese path counts as text.
        ("https://example.com/記事", 23 + 4),
        ("https://example.com/%E8%A8%98%E4%BA%8B", 23),
        ("ウズベキスタン example.com", 14 + 1 + 23),
    ],
)
def test_x_japanese_cases(text: str, weighted: int) -> None:
    assert x_length(text) == weighted


def test_x_limit_is_140_japanese_characters() -> None:
    assert measure("x", "あ" * 140).fits
    over = measure("x", "あ" * 141)
    assert (over.length, over.limit, over.fits) == (282, 280, False)
    assert over.unit == "weighted characters"


@pytest.mark.parametrize(
    ("text", "graphemes", "size"),
    [
        ("日本語", 3, 9),
        ("👨‍👩‍👧", 1, 18),
        ("が", 1, 3),
        ("か\u3099", 1, 6),  # Bluesky does not normalize: a decomposed が is one cluster, 6 bytes
        ("🇯🇵", 1, 8),
        ("https://example.com/記事", 22, 26),  # no URL shortening on Bluesky
    ],
)
def test_bluesky_counts_graphemes_and_bytes(text: str, graphemes: int, size: int) -> None:
    assert bluesky_length(text) == graphemes
    assert bluesky_bytes(text) == size


def test_bluesky_byte_limit_applies_even_under_300_graphemes() -> None:
    text = "👨‍👩‍👧" * 200
    result = measure("bluesky", text)
    assert result.length == 200
    assert not result.fits
    assert "3600 UTF-8 bytes" in result.detail
    assert measure("bluesky", "日" * 300).fits
    assert not measure("bluesky", "日" * 301).fits


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("日本語", 3),
        ("https://example.com/a/very/long/path/that/goes/on?and=on", 23),
        ("記事 https://example.com/記事", 3 + 23 + 2),
        ("example.com", 11),  # no protocol: Mastodon does not shorten it
        ("@alice@mastodon.social さん", 6 + 3),
        ("@bob こんにちは", 10),
        ("mail a@b.com", 12),  # an e-mail address is not a mention
        ("👨‍👩‍👧", 1),
        # Mastodon's Extractor drops a remote mention whose domain is over 253 characters:
        # it is counted in full, not as "@alice" (issue 14).
        ("@alice@" + "d" * 496 + ".com", 7 + 500),
        ("@alice@" + "d" * 249 + ".com", 6),  # 253 characters: still a mention
        ("@alice@example.com@evil", 23),  # followed by "@": not a mention
        ("@noël@example.com", 17),  # a Latin accent after "@no": not a mention
        ("@alice@example.com://x", 22),  # followed by "://": not a mention
        ("https://example.com/@bob@ex.org", 23),  # inside a URL: the URL wins
        ("＠bob", 4),  # only ASCII @ starts a mention
    ],
)
def test_mastodon_length(text: str, length: int) -> None:
    assert mastodon_length(text) == length


def test_mastodon_url_length_is_configurable() -> None:
    assert mastodon_length("https://example.com", url_length=30) == 30
    assert measure("mastodon", "https://example.com", url_length=30, limit=29).fits is False


def test_threads_counts_emoji_as_utf8_bytes() -> None:
    assert threads_length("日本語") == 3
    assert threads_length("👍") == 4
    assert threads_length("👨‍👩‍👧") == 18


def test_linkedin_counts_utf16_units() -> None:
    assert linkedin_length("日本語") == 3
    assert linkedin_length("👍") == 2


def test_limits_and_explicit_limit() -> None:
    limits = {name: network.limit for name, network in NETWORKS.items()}
    assert limits == {"x": 280, "bluesky": 300, "mastodon": 500, "threads": 500, "linkedin": 3000}
    assert measure("mastodon", "a" * 501).fits is False
    assert measure("mastodon", "a" * 501, limit=1000).fits is True


def test_unknown_network_lists_the_known_ones() -> None:
    with pytest.raises(InputError) as info:
        measure("myspace", "hi")
    message = str(info.value)
    assert "myspace" in message
    assert all(name in message for name in NAMES)
