"""Sentence splitting: Japanese and English ends, brackets, abbreviations, decimals and URLs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from publisher.text.sentences import split_sentences


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("今日は晴れ。明日は雨！本当か？", ["今日は晴れ。", "明日は雨！", "本当か？"]),
        (
            "彼は「関係は良好だ。今後も続く」と述べた。次の文。",
            ["彼は「関係は良好だ。今後も続く」と述べた。", "次の文。"],
        ),
        ("『本。題。』を読む。終わり。", ["『本。題。』を読む。", "終わり。"]),
        ("G20（主要国。地域）の会議だ。次。", ["G20（主要国。地域）の会議だ。", "次。"]),
        ("「よかった。」と言った。", ["「よかった。」と言った。"]),
        ("本当に？！そうだ。", ["本当に？！", "そうだ。"]),
        ("一行目\n二行目。三文目", ["一行目", "二行目。", "三文目"]),
        ("See e.g. the report. Next one.", ["See e.g. the report.", "Next one."]),
        ("The U.S. economy grew. Fine.", ["The U.S. economy grew.", "Fine."]),
        ("It grew 3.5% this year. Yes.", ["It grew 3.5% this year.", "Yes."]),
        ("Dr. Smith met J. Doe. Then left.", ["Dr. Smith met J. Doe.", "Then left."]),
        (
            "Read https://example.com/a.b?x=1. Then stop.",
            ["Read https://example.com/a.b?x=1.", "Then stop."],
        ),
        ('He said "Go home." She left.', ['He said "Go home."', "She left."]),
        ("Really?! Yes.", ["Really?!", "Yes."]),
        ("Wait... What happened?", ["Wait...", "What happened?"]),
        ("one... two", ["one... two"]),
        (
            "詳しくはhttps://example.com/記事?id=1を参照。次。",
            ["詳しくはhttps://example.com/記事?id=1を参照。", "次。"],
        ),
        ("", []),
        ("   \n  ", []),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_unclosed_bracket_does_not_swallow_the_line() -> None:
    pieces = split_sentences("括弧が閉じない（ここ。次の文。")
    assert pieces == ["括弧が閉じない（ここ。", "次の文。"]


def test_function_call_parens_are_not_quotes() -> None:
    assert split_sentences("Call f(x). Then g.") == ["Call f(x).", "Then g."]


ALPHABET = st.sampled_from([*"あいう漢字カナabc XYZ。！？!?.「」『』（）()\n123", "e.g.", "U.S."])


@given(st.lists(ALPHABET, max_size=80).map("".join))
def test_split_keeps_every_non_space_character_in_order(text: str) -> None:
    pieces = split_sentences(text)
    assert all(p and p == p.strip() for p in pieces)
    squeeze = lambda s: "".join(s.split())  # noqa: E731
    assert squeeze("".join(pieces)) == squeeze(text)
