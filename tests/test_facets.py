"""Bluesky facets as atproto's detectFacets finds them: its own test cases, then what was seen."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from publisher.edition.social import bluesky_facets
from publisher.networks.facets import detect_facets, is_valid_domain

VECTORS = json.loads(
    (Path(__file__).parent / "data" / "atproto_rich_text.json").read_text(encoding="utf-8")
)


def covered(text: str, start: int, end: int) -> str:
    """The text a facet's byte range covers."""
    return text.encode("utf-8")[start:end].decode("utf-8")


@pytest.mark.parametrize("case", VECTORS["links"], ids=lambda c: repr(c["text"])[:60])
def test_atproto_link_cases(case: dict[str, Any]) -> None:
    text = case["text"]
    links = [f for f in detect_facets(text) if f.kind == "link"]
    found = [{"covered": covered(text, f.byte_start, f.byte_end), "uri": f.value} for f in links]
    assert found == case["links"]


@pytest.mark.parametrize(
    "case", VECTORS["tags"] + VECTORS["cashtags"], ids=lambda c: repr(c["text"])[:60]
)
def test_atproto_tag_and_cashtag_cases(case: dict[str, Any]) -> None:
    facets = [f for f in detect_facets(case["text"]) if f.kind == "tag"]
    assert [f.value for f in facets] == case["tags"]
    assert [[f.byte_start, f.byte_end] for f in facets] == case["indices"]


# --- what was seen (issue 14) --------------------------------------------------------------


def test_a_schemed_url_links_whatever_its_tld() -> None:
    text = "詳しくは https://uzbgateway.example/news/2025?id=1 へ"
    (facet,) = bluesky_facets(text)
    assert facet.kind == "link" and facet.value == "https://uzbgateway.example/news/2025?id=1"
    assert covered(text, facet.byte_start, facet.byte_end) == facet.value


def test_bare_domains_link_only_with_a_known_tld() -> None:
    (facet,) = bluesky_facets("read example.com/path today")
    assert facet.value == "https://example.com/path"
    assert bluesky_facets("read notes.example/path today") == ()
    assert is_valid_domain("bsky.app") and is_valid_domain("a.b.co.uk")
    assert not is_valid_domain("website.com.jpg") and not is_valid_domain("localhost")


def test_trailing_punctuation_and_an_unbalanced_bracket_are_not_linked() -> None:
    text = "(see https://example.com/a), then example.org/b."
    assert [f.value for f in bluesky_facets(text)] == [
        "https://example.com/a", "https://example.org/b"
    ]


def test_full_width_hash_is_a_tag() -> None:
    text = "開業は来春 ＃鉄道 ＃まちづくり。"
    facets = bluesky_facets(text)
    assert [f.value for f in facets] == ["鉄道", "まちづくり"]
    assert [covered(text, f.byte_start, f.byte_end) for f in facets] == ["＃鉄道", "＃まちづくり"]


def test_cashtags_are_tag_facets_in_capitals() -> None:
    text = "Shares of $aapl and ($MSFT) rose."
    facets = bluesky_facets(text)
    assert [(f.kind, f.value) for f in facets] == [("tag", "$AAPL"), ("tag", "$MSFT")]
    assert [f.as_json()["features"][0]["tag"] for f in facets] == ["$AAPL", "$MSFT"]


def test_tag_limit_is_64_graphemes_not_code_units() -> None:
    flag = "\U0001F1EF\U0001F1F5"  # one grapheme, two code points, four UTF-16 units
    assert [f.value for f in bluesky_facets("#" + flag * 64)] == [flag * 64]
    assert bluesky_facets("#" + flag * 65) == ()
    # A zero-width joiner ends a tag (util.ts), so a ZWJ family emoji keeps only its first part.
    assert [f.value for f in bluesky_facets("#\U0001F468\u200d\U0001F469")] == ["\U0001F468"]


def test_zero_width_characters_end_a_tag_and_keycaps_are_not_tags() -> None:
    assert [f.value for f in bluesky_facets("#ab\u200bcd #x\u00ady")] == ["ab", "x"]
    assert bluesky_facets("#\ufe0f\u20e3 only") == ()


def test_uppercase_scheme_is_not_linked_as_in_the_app() -> None:
    assert bluesky_facets("HTTPS://EXAMPLE.COM") == ()


def test_hostile_input_is_read_in_one_pass() -> None:
    assert detect_facets("(" * 20000) == ()
    assert detect_facets("#" + "1" * 20000 + "!") == ()
    assert len(detect_facets("a." * 10000)) == 0
    assert len(detect_facets(" #a" * 7000)) == 7000
    assert len(detect_facets("$A " * 7000)) == 7000
