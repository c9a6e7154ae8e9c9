"""Extractive summaries: central sentences, original order, no questions, Japanese and English."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from publisher.sentences import split_sentences
from publisher.summarize import summarize

JA = (
    "政府は新しい鉱物資源戦略を発表しました。"
    "なぜ今なのでしょうか？"
    "今日の東京は晴れて気温が上がりました。"
    "鉱物資源戦略は供給網の多様化と資源戦略の強化を柱としています。"
    "昼食にはラーメンを食べました。"
    "専門家は鉱物資源戦略と供給網の強化を評価しています。"
)
EN = (
    "The government announced a new critical minerals strategy on Monday. "
    "Why does it matter? "
    "The weather in Tokyo was sunny and warm. "
    "The critical minerals strategy aims to diversify supply chains for minerals. "
    "Lunch was ramen at a small shop. "
    "Experts praised the minerals strategy and its supply chains focus."
)


def test_japanese_summary_picks_the_topic_sentences_in_order() -> None:
    picked = summarize(JA, max_sentences=2)
    assert len(picked) == 2
    assert all("鉱物資源戦略" in s for s in picked)
    sentences = split_sentences(JA)
    assert [sentences.index(s) for s in picked] == sorted(sentences.index(s) for s in picked)


def test_english_summary_picks_the_topic_sentences() -> None:
    picked = summarize(EN, max_sentences=2)
    assert all("strategy" in s for s in picked)
    assert not any("ramen" in s or "weather" in s for s in picked)


def test_questions_are_not_summaries() -> None:
    assert not any(s.endswith(("?", "？")) for s in summarize(JA, max_sentences=4))
    assert not any(s.endswith("?") for s in summarize(EN, max_sentences=4))


def test_short_text_comes_back_whole() -> None:
    assert summarize("一文だけです。", max_sentences=2) == ["一文だけです。"]
    assert summarize("", max_sentences=2) == []


@given(
    st.lists(
        st.sampled_from(
            [
                "鉱物の供給網が注目されています。",
                "中央アジアとの貿易が拡大しています。",
                "Trade with Central Asia is growing fast.",
                "Critical minerals drive the new policy.",
                "本当ですか？",
                "短い。",
            ]
        ),
        max_size=12,
    ).map("".join),
    st.integers(min_value=1, max_value=4),
)
def test_summary_is_an_ordered_subset(text: str, count: int) -> None:
    sentences = split_sentences(text)
    picked = summarize(text, max_sentences=count)
    assert len(picked) <= count
    positions = []
    cursor = 0
    for sentence in picked:
        cursor = sentences.index(sentence, cursor)
        positions.append(cursor)
        cursor += 1
    assert positions == sorted(positions)
    assert summarize(text, max_sentences=count) == picked  # deterministic
