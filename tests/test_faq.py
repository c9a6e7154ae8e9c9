"""FAQ extraction (one test per convention, mixes, warnings) and the single-article digest."""

from __future__ import annotations

import json
from pathlib import Path

import budoux
import pytest

from publisher.config.settings import FaqSettings
from publisher.model import Article
from publisher.source.condense import grapheme_length, short_answer
from publisher.source.faq import build_faq_digest, normalize_question
from publisher.source.read import parse_article, read_post

SAMPLES = Path(__file__).parent / "samples"


def article_with_faq(faq_body: str, *, heading: str = "FAQ", front: str = "") -> Article:
    """An article whose FAQ section holds `faq_body`."""
    text = f"---\ntitle: T\nurl: https://example.com/t\n{front}---\nLead.\n\n## {heading}\n\n"
    return parse_article(text + faq_body, source="posts/t.md")


def pairs(article: Article) -> list[tuple[str, str]]:
    """Questions and answers of an article."""
    return [(item.question, item.answer) for item in article.faq]


def test_subheadings_are_questions() -> None:
    article = article_with_faq(
        "### How long is the line?\n\nFourteen kilometres.\n\n- with a list\n\n"
        "### Fares\n\nFrom 170 yen.\n"
    )
    assert pairs(article) == [
        ("How long is the line?", "Fourteen kilometres.\n\n- with a list"),
        ("Fares", "From 170 yen."),
    ]
    assert article.faq[0].line == 9


def test_q_colon_a_colon() -> None:
    article = article_with_faq("Q: Is it free?\nA: Yes.\n\nQ: Where?\n\nA: Downtown.\n")
    assert pairs(article) == [("Is it free?", "Yes."), ("Where?", "Downtown.")]
    assert [i.line for i in article.faq] == [9, 12]


def test_q_dot_a_dot() -> None:
    article = article_with_faq("Q. Is it free?\nA. Yes, always.\n")
    assert pairs(article) == [("Is it free?", "Yes, always.")]


def test_bold_q_marker() -> None:
    article = article_with_faq(
        "**Q:** Is it *really* free?\nA: Yes.\n\n**Q: Bold all over?**\n**A:** Sure.\n"
    )
    assert pairs(article) == [("Is it *really* free?", "Yes."), ("Bold all over?", "Sure.")]


def test_full_width_markers() -> None:
    article = article_with_faq(
        "Ｑ．料金はかかりますか？\nＡ．かかりません。\n\nQ：場所は？\nA：駅前です。\n"
    )
    assert pairs(article) == [
        ("料金はかかりますか？", "かかりません。"), ("場所は？", "駅前です。"),
    ]


def test_details_summary_blocks() -> None:
    article = article_with_faq(
        "<details><summary>One line?</summary>Inline answer.</details>\n\n"
        "<details>\n<summary>Multi block?</summary>\n\nAnswer with a [link](https://example.com/x).\n\n"
        "</details>\n"
    )
    assert pairs(article) == [
        ("One line?", "Inline answer."),
        ("Multi block?", "Answer with a [link](https://example.com/x)."),
    ]


def test_wordpress_list_style_with_stray_caption() -> None:
    article = article_with_faq(
        "-3-1024x585.webp)\n- 開業はいつですか?\n-\n来年の春です。\n- 運賃は?\n-\n170円からです。\n"
    )
    assert pairs(article) == [
        ("開業はいつですか?", "来年の春です。"), ("運賃は?", "170円からです。"),
    ]
    assert [i.line for i in article.faq] == [10, 13]
    assert article.warnings == ()


def test_question_paragraph_then_answer_paragraphs() -> None:
    article = article_with_faq(
        "Can I bring a bike?\n\nYes, outside rush hour.\n\nFolded bikes are always fine.\n\n"
        "どこで乗れますか？\n\n全駅です。\n"
    )
    assert pairs(article) == [
        ("Can I bring a bike?", "Yes, outside rush hour.\n\nFolded bikes are always fine."),
        ("どこで乗れますか？", "全駅です。"),
    ]


def test_answer_ending_in_question_mark_stays_an_answer() -> None:
    article = article_with_faq("Is it late?\n\nIt is. But who minds?\n")
    assert pairs(article) == [("Is it late?", "It is. But who minds?")]


def test_numbered_questions() -> None:
    article = article_with_faq(
        "1. Is it fast?\n\n   Very fast.\n2. Is it cheap?\n\n   Quite cheap.\n\n"
        "3. Is it open late?\n\nUntil midnight.\n"
    )
    assert pairs(article) == [
        ("Is it fast?", "Very fast."),
        ("Is it cheap?", "Quite cheap."),
        ("Is it open late?", "Until midnight."),
    ]


def test_inline_links_and_emphasis_are_kept() -> None:
    article = article_with_faq(
        "### Is *this* [linked](https://example.com/q)?\n\nSee **[docs](https://example.com/d)**.\n"
    )
    assert pairs(article) == [
        ("Is *this* [linked](https://example.com/q)?", "See **[docs](https://example.com/d)**."),
    ]


def test_mixed_conventions_in_one_section() -> None:
    path = SAMPLES / "mixed_faq.md"
    article = parse_article(read_post(path), source=str(path))
    assert [q for q, _ in pairs(article)] == [
        "Is there a heading question?",
        "Does the plain Q/A style work?",
        "Does bold work?",
        "全角のマーカーは使えますか？",
        "全角コロンはどうですか？",
        "Does details work?",
        "Does the WordPress list work?",
        "Can a plain question paragraph be used?",
        "Do numbered questions work?",
        "Does a second numbered one work?",
    ]
    answers = dict(pairs(article))
    assert answers["Does the plain Q/A style work?"] == "It does, with a [link](https://example.com/qa)."
    assert answers["Does bold work?"] == "Bold works *too*."
    assert answers["Can a plain question paragraph be used?"] == (
        "Yes, the next paragraph answers it.\n\nAnd a second answer paragraph belongs to it."
    )
    assert article.warnings == ()


def test_seed_shaped_japanese_sample_has_ten_questions() -> None:
    path = SAMPLES / "seed_shaped_ja.md"
    article = parse_article(read_post(path), source=str(path))
    assert len(article.faq) == 10
    assert article.faq[0].question == "いつから新しいルールになりますか?"
    assert article.faq[0].answer == "来月の一日からです。移行期間は三か月あります。"
    assert article.faq[0].line == 15
    assert "[市のサイト](https://example.com/gomi)" in article.faq[7].answer
    assert article.warnings == ()


def test_front_matter_faq_comes_first_and_duplicates_drop() -> None:
    front = (
        "faq:\n  - q: From front matter?\n    a: Yes.\n"
        "  - question: Repeated?\n    answer: First.\n"
    )
    article = article_with_faq("### Repeated？\n\nSecond.\n\n### Body only?\n\nOK.\n", front=front)
    assert pairs(article) == [
        ("From front matter?", "Yes."), ("Repeated?", "First."), ("Body only?", "OK."),
    ]
    assert any("repeats" in w for w in article.warnings)


def test_faq_looking_section_without_pairs_warns_with_line() -> None:
    article = article_with_faq("We will answer your questions next week.\n", heading="よくある質問")
    assert article.faq == ()
    assert len(article.warnings) == 1
    assert article.warnings[0].startswith("posts/t.md:7: section 'よくある質問' looks like an FAQ")


def test_unanswered_question_warns() -> None:
    article = article_with_faq("### Answered?\n\nYes.\n\n### Forgotten?\n")
    assert pairs(article) == [("Answered?", "Yes.")]
    assert article.warnings == (
        "posts/t.md:13: question 'Forgotten?' has no answer — write the answer below it",
    )


def test_hostile_faq_is_sanitized_in_outputs() -> None:
    article = article_with_faq(
        "### <img src=x onerror=alert(1)>Safe?\n\n"
        "Yes <script>alert(1)</script>[click](javascript:alert(1)) {{ 7*7 }}\n"
    )
    digest = build_faq_digest(article, FaqSettings())
    item = article.faq[0]
    assert item.question == "Safe?"
    assert item.answer == "Yes click {{ 7*7 }}"
    for output in (digest.html, json.dumps(digest.jsonld), digest.short_answers[0],
                   digest.markdown):
        assert "<script" not in output and "onerror" not in output
        assert 'href="javascript' not in output
    assert "{{ 7*7 }}" in digest.html and "{{ 7*7 }}" in digest.markdown


def test_raw_html_in_answers_keeps_only_plain_formatting() -> None:
    article = article_with_faq(
        "### Formatting?\n\nA <b>bold</b> <span style='x'>word</span>, `<script>` in code,"
        " <iframe src=https://example.org/x>inner</iframe> done.\n"
    )
    assert article.faq[0].answer == "A <b>bold</b> word, `<script>` in code,  done."


def test_article_without_faq_has_empty_digest() -> None:
    article = parse_article("---\ntitle: T\n---\nJust text.\n\n## Part\n\nMore.\n", source="a.md")
    digest = build_faq_digest(article, FaqSettings())
    assert digest.items == () and digest.short_answers == ()
    assert digest.jsonld == {} and digest.markdown == "" and digest.html == ""


def test_jsonld_structure() -> None:
    article = article_with_faq(
        "### Is *it* [free](https://example.com/f)?\n\nYes. **Always** free.\n\n"
        "### Where?\n\nHere.\n"
    )
    jsonld = build_faq_digest(article, FaqSettings()).jsonld
    assert json.loads(json.dumps(jsonld)) == jsonld
    assert jsonld["@context"] == "https://schema.org"
    assert jsonld["@type"] == "FAQPage"
    entities = jsonld["mainEntity"]
    assert [e["@type"] for e in entities] == ["Question", "Question"]
    assert entities[0]["name"] == "Is it free?"
    assert entities[0]["acceptedAnswer"]["@type"] == "Answer"
    assert entities[0]["acceptedAnswer"]["text"] == "<p>Yes. <strong>Always</strong> free.</p>"
    assert entities[1]["acceptedAnswer"]["text"] == "<p>Here.</p>"


def test_digest_markdown_and_html() -> None:
    path = SAMPLES / "seed_shaped_ja.md"
    article = parse_article(read_post(path), source=str(path))
    digest = build_faq_digest(article, FaqSettings())
    assert digest.markdown.startswith("# よくある質問: 市の新しいごみ分別ルール\n")
    assert digest.markdown.count("\n## ") == 10
    assert "## いつから新しいルールになりますか?\n\n来月の一日からです。" in digest.markdown
    assert digest.html.count("<h3>") == 10
    link = '<a href="https://example.com/gomi" rel="noopener noreferrer">市のサイト</a>'
    assert link in digest.html
    assert len(digest.short_answers) == 10


def test_short_answer_keeps_whole_sentences() -> None:
    answer = "First sentence here. Second one. Third sentence is never included."
    assert short_answer(answer, 140) == "First sentence here. Second one."
    assert short_answer(answer, 25) == "First sentence here."
    assert short_answer("一文目です。二文目です。三文目です。", 100) == "一文目です。二文目です。"


def test_short_answer_cuts_long_sentence_at_a_word() -> None:
    answer = "This single sentence is considerably longer than the limit allows for it."
    short = short_answer(answer, 30)
    assert short == "This single sentence is…"
    assert grapheme_length(short) <= 30


def test_short_answer_cuts_japanese_at_a_phrase() -> None:
    answer = (
        "新しい路線は港町と内陸の住宅地を結び、"
        "通勤や通学の時間を大幅に短くすることが期待されています。"
    )
    short = short_answer(answer, 20)
    assert short.endswith("…") and grapheme_length(short) <= 20
    assert answer.startswith(short[:-1])
    phrases = budoux.load_default_japanese_parser().parse(answer)
    prefixes = {"".join(phrases[:n]).rstrip("、") for n in range(1, len(phrases))}
    assert short[:-1] in prefixes


def test_short_answer_length_setting_applies() -> None:
    article = article_with_faq("### Q?\n\nOne two three four five six seven eight nine ten.\n")
    digest = build_faq_digest(article, FaqSettings(short_answer_chars=20))
    assert digest.short_answers == ("One two three four…",)
    assert digest.items[0].answer == "One two three four five six seven eight nine ten."


@pytest.mark.parametrize(
    "a, b", [("Is it free?", "is it FREE"), ("ＩＣカードは使えますか？", "ICカードは使えますか?"),
             ("Where, exactly?", "where exactly")],
)
def test_normalize_question(a: str, b: str) -> None:
    assert normalize_question(a) == normalize_question(b)


def test_unclosed_details_flood_is_handled_linearly() -> None:
    # Quadratic scanning would make this take minutes; linear handling finishes at once.
    article = article_with_faq("<details><summary>" * 10000 + "\n")  # under the body cap
    assert article.faq == ()
    assert any("looks like an FAQ" in w for w in article.warnings)


def post(body: str, *, lang: str) -> Article:
    """An article with a lead and `body`, without any FAQ section heading."""
    return parse_article(f"---\ntitle: T\nlang: {lang}\n---\nLead.\n\n{body}", source="posts/t.md")


@pytest.mark.parametrize(
    "body, lang, expected",
    [
        ("## 何時から開いていますか？\n\n朝10時からです。\n\n土日は9時からです。\n", "ja",
         [("何時から開いていますか？", "朝10時からです。\n\n土日は9時からです。")]),
        ("## When does it open?\n\nAt ten.\n\n- weekends at nine\n", "en",
         [("When does it open?", "At ten.\n\n- weekends at nine")]),
        ("## 駐車場はありますか?\n\nありません。\n\n## 犬を連れて行けますか？\n\n"
         "小型犬なら入れます。\n\n## まとめ\n\nお待ちしています。\n", "ja",
         [("駐車場はありますか?", "ありません。"),
          ("犬を連れて行けますか？", "小型犬なら入れます。")]),
        ("## Can I bring my bike?\n\nYes.\n\n### How much does it cost?\n\nNothing.\n", "en",
         [("Can I bring my bike?", "Yes."), ("How much does it cost?", "Nothing.")]),
    ],
)
def test_post_of_question_headings_is_an_faq(
    body: str, lang: str, expected: list[tuple[str, str]]
) -> None:
    article = post(body, lang=lang)
    assert pairs(article) == expected
    assert article.faq[0].line == 7
    assert article.warnings == ()
    assert [s.role for s in article.sections if s.role != "summary"] == ["faq"] * len(expected)
    assert len(build_faq_digest(article, FaqSettings()).jsonld["mainEntity"]) == len(expected)


@pytest.mark.parametrize(
    "body, lang",
    [
        # Headline and guiding forms in Japanese are the article's rhetoric, not a reader asking.
        ("## 所要時間はどれくらい短くなる?\n\n半分になります。\n", "ja"),
        ("## なぜ値上げするのか？\n\n燃料費です。\n\n## 新料金とは？\n\n来月からです。\n", "ja"),
        ("## どうして分別が必要なのでしょうか？\n\n埋立地が足りないからです。\n", "ja"),
        # Stock rhetorical headlines in English.
        ("## Why does it matter?\n\nBecause.\n\n## What's next?\n\nMore work.\n", "en"),
        ("## What does this mean for riders?\n\nShorter trips.\n", "en"),
        # A reader's question among statement headings is the article's structure.
        ("## The plan\n\nA line.\n\n## When does it open?\n\nIn spring.\n", "en"),
        ("## 概要と経緯\n\n説明。\n\n## 何時から開いていますか？\n\n朝10時です。\n", "ja"),
        # A question without an answer below it, or a statement that merely ends in ?.
        ("## When does it open?\n\n## Who runs it?\n\nThe city.\n", "en"),
        ("## Fares?\n\nFrom 170 yen.\n", "en"),
    ],
)
def test_rhetorical_or_mixed_question_headings_stay_the_article(body: str, lang: str) -> None:
    article = post(body, lang=lang)
    assert article.faq == ()
    assert all(s.role == "body" for s in article.sections)
    assert all(s.heading for s in article.sections)


def test_question_headings_beside_an_faq_section_stay_the_article() -> None:
    article = post(
        "## Can I bring my bike?\n\nYes.\n\n## FAQ\n\n### Is it free?\n\nYes.\n", lang="en"
    )
    assert pairs(article) == [("Is it free?", "Yes.")]
    assert article.sections[0].role == "body"
