"""X counting without twitter-text's emoji scan must equal twitter-text's own parse_tweet; grapheme
counting without the cluster scan must equal `regex`'s `\\X`."""

from __future__ import annotations

import subprocess
import sys

import twitter_text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twitter_text.regexp import emoji as twitter_emoji

from publisher.networks import counting
from publisher.networks.counting import EMOJI_FREE_RE, measure, x_length
from publisher.text import graphemes


def _admitted(code_point: int) -> bool:
    """Whether the fast path's character class lets this code point through."""
    return EMOJI_FREE_RE.fullmatch(chr(code_point)) is not None


def test_no_admitted_code_point_is_an_emoji_on_its_own() -> None:
    emoji_re = twitter_emoji.emoji
    admitted = [cp for cp in range(0x110000) if _admitted(cp)]
    assert len(admitted) > 20000  # ASCII, Latin-1, kana and the CJK ideographs
    assert [hex(cp) for cp in admitted if emoji_re.search(chr(cp))] == []


def test_every_emoji_sequence_needs_a_code_point_outside_the_fast_path() -> None:
    emoji_list = twitter_emoji.emoji_list
    sequences = [e.emoji for e in emoji_list] + [
        "".join(chr(int(cp, 16)) for cp in e.codepoint.split()) for e in emoji_list
    ]
    assert len(sequences) > 3000
    assert [s for s in sequences if EMOJI_FREE_RE.fullmatch(s)] == []


PIECES = st.sampled_from([
    "駅", "新しい", "カタカナ", "。", "、", "「", "」", "〜", "〰", "〽", "ｱ", "！", "　",
    "a", "Z", "9", "#", "*", " ", "\n", "\r\n", "\r", ".", "/", ":", "-", "_", "?", "=",
    "é", "ß", "©", "®", "™", "‼", "⁉", "…", "—", "’", "•", "※", "Ω", "ж", "ǅ", "한", "ก",
    "😷", "👍🏽", "👨‍👩‍👧", "🇯🇵", "#️⃣", "1⃣", "❤", "❤️", "☺", "\u200d", "\ufe0f",
    "https://example.com/news", "http://t.co/abc", "example.jp", "www.example.com/a?b=c",
    "日本語.jp", "a.b", "e\u0301", "\ufeff", "\u202a",
])


@settings(max_examples=4000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(PIECES, max_size=60).map("".join))
def test_fast_path_equals_twitter_text(text: str) -> None:
    parsed = twitter_text.parse_tweet(text)
    assert x_length(text) == parsed.weightedLength
    result = measure("x", text)
    rejected = bool(text) and not parsed.valid  # as measure() read parse_tweet before
    assert result.fits == (parsed.weightedLength <= 280 and not rejected)


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=80))
def test_fast_path_equals_twitter_text_on_any_text(text: str) -> None:
    assert x_length(text) == twitter_text.parse_tweet(text).weightedLength


def test_counting_a_text_without_url_or_emoji_loads_no_url_patterns() -> None:
    code = (
        "import sys\n"
        "from publisher.networks.counting import measure\n"
        "assert measure('x', '新しい駅が開業します。Details at noon').length == 37\n"
        "print(sorted({'twitter_text', 'publisher.networks.urls', 'publisher.networks.tlds'}"
        " & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_single_cluster_character_breaks_on_both_sides_and_is_no_emoji() -> None:
    import regex

    admitted = [chr(cp) for cp in range(0x110000) if graphemes.single_clusters(chr(cp))]
    assert len(admitted) > 20000  # ASCII, kana, CJK ideographs, full-width forms
    # GB999 breaks between two characters of these classes: no rule of UAX #29 joins them.
    breaking = regex.compile(r"[\p{Grapheme_Cluster_Break=Other}\p{Grapheme_Cluster_Break=LF}"
                             r"\p{Grapheme_Cluster_Break=Control}]")
    assert [hex(ord(c)) for c in admitted if not breaking.fullmatch(c)] == []
    assert [c for c in admitted if c == "\r" or regex.match(r"\p{Extended_Pictographic}", c)] == []
    assert not graphemes.single_clusters("e\u0301") and not graphemes.single_clusters("\r\n")


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(PIECES | st.sampled_from(["\u3099", "\u302a", "\uff9e", "ｶ", "\t", "〜"]),
                max_size=40).map("".join))
def test_grapheme_counts_equal_the_cluster_scan(text: str) -> None:
    import regex

    clusters = regex.findall(r"\X", text)
    assert graphemes.grapheme_count(text) == len(clusters)
    assert counting.graphemes(text) == clusters
    emoji = regex.compile(r"\p{Extended_Pictographic}|\p{Regional_Indicator}|\u20e3")
    assert counting.threads_length(text) == sum(
        len(c.encode("utf-8")) if emoji.search(c) else 1 for c in clusters)
