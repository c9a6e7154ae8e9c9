"""X counting without twitter-text's emoji scan must equal twitter-text's own parse_tweet."""

from __future__ import annotations

import subprocess
import sys

import twitter_text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twitter_text.regexp import emoji as twitter_emoji

from publisher.networks.counting import EMOJI_FREE_RE, measure, x_length


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
