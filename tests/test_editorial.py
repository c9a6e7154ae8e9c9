"""Issue 14: texts an editor would send as they are — summaries, preview lines, FAQ, answers.

The two articles in tests/editorial/ are written for these tests and shaped unlike the samples:
a summary under "The bottom line", an FAQ under "Your questions, answered" with inline bold
questions, a Japanese lead that opens with a meta sentence, and a "まとめ|…" heading.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from publisher.config.settings import Config, SocialSettings
from publisher.edition.lede import (
    classify,
    is_meta,
    is_reaction,
    key_points,
    leans_on_previous,
    pyramid,
    summary_sentences,
)
from publisher.edition.newsletter.render import preheader_text
from publisher.edition.social import compose_social
from publisher.model import Article, Section
from publisher.source.faq import build_faq_digest
from publisher.source.read import parse_article

HERE = Path(__file__).parent / "editorial"
NETWORKS = ("x", "bluesky", "mastodon", "threads", "linkedin")


def load(name: str, *, drop: str = "") -> Article:
    """An editorial test article, optionally without the section whose heading starts `drop`."""
    text = (HERE / name).read_text(encoding="utf-8")
    if drop:
        text = re.sub(rf"\n## {re.escape(drop)}[^\n]*\n[\s\S]*?(?=\n## |\Z)", "\n", text)
    return parse_article(text, source=f"tests/editorial/{name}")


def posts(article: Article) -> dict[str, str]:
    """The single post per network."""
    digest = build_faq_digest(article, Config().faq)
    settings = SocialSettings(networks=NETWORKS)
    return {n: p[0].text for n, p in compose_social(article, digest, settings).items()}


# --- 1. the summary -------------------------------------------------------------------------


def test_a_bottom_line_section_is_the_summary_every_network_uses() -> None:
    art = load("harbor-ferry-fares.md")
    assert art.section("summary") is not None
    for text in posts(art).values():
        assert "From July 1 a single Harbor Line crossing costs $6" in text
        assert "tax on people" not in text


def test_without_a_summary_the_news_leads_and_the_reaction_never_replaces_it() -> None:
    art = load("harbor-ferry-fares.md", drop="The bottom line")
    assert art.section("summary") is None
    for network, text in posts(art).items():
        assert "fares will double on July 1" in text, network
        # The reaction may follow the fact, never open the post.
        assert not text.startswith(("Commuter groups", "The board said"))
    picked = summary_sentences(art)
    assert picked[0].startswith("Harbor Line ferry fares will double on July 1")


def test_a_japanese_lead_skips_the_meta_sentence_and_never_opens_with_a_leaning_one() -> None:
    art = load("minato-bus-cashless.md", drop="まとめ")
    picked = summary_sentences(art)
    assert picked[0].startswith("みなと市交通局は11月5日")
    for network, text in posts(art).items():
        assert "本記事では" not in text, network
        assert "解説していきます" not in text, network
        assert not text.startswith("今回の判断は"), network


@pytest.mark.parametrize(
    "sentence, kind",
    [
        ("本記事では、新しい制度をわかりやすく解説していきます。", "meta"),
        ("In this article we look at what the new fares mean.", "meta"),
        ("いかがでしたでしょうか。", "meta"),
        ("今回は、乗り換えのコツをご紹介しました。", "meta"),
        ("今回の判断は、費用がかさんだためです。", "leaning"),
        ("この制度は来年から始まります。", "leaning"),
        ("This doubles the cost of a daily commute.", "leaning"),
        ("It takes effect on Monday for every route.", "leaning"),
        ("The jump follows two years of flat fares.", "leaning"),
        ("Riders called the jump 'a tax on commuters' at the meeting.", "reaction"),
        ("利用者からは「使いにくい」との声も上がっています。", "reaction"),
        ("Will the evening boats keep running?", "question"),
        ("Harbor fares double on July 1 after a board vote.", "fact"),
        ("The plan to close the pier was dropped in May.", "fact"),
        ("県は4月から高校の授業料を無償にします。", "fact"),
    ],
)
def test_sentence_kinds(sentence: str, kind: str) -> None:
    assert classify(sentence) == kind


def test_the_rules_are_small_predicates() -> None:
    assert is_meta("Thanks for reading, and see you next week.")
    assert not is_meta("The council meets on Thursday.")
    assert leans_on_previous("同社は昨年も値上げしました。")
    assert not leans_on_previous("The Port Authority raised fares.")
    assert is_reaction('"We were not asked," said one rider.')
    assert not is_reaction("Fares rise by $3 on the first of the month.")


def test_a_byline_glued_to_the_first_sentence_is_not_the_story() -> None:
    from publisher.edition.lede import without_byline

    assert without_byline("HANAKO MORIみなと市は5日、新しい条例を可決しました。") == (
        "みなと市は5日、新しい条例を可決しました。"
    )
    attributed = "NHKによると、市は5日に発表しました。"
    assert without_byline(attributed) == attributed
    text = "---\ntitle: T\nlang: ja\n---\nKEN ODA県は4月から高校の授業料を無償にします。\n"
    assert summary_sentences(parse_article(text, source="t.md")) == [
        "県は4月から高校の授業料を無償にします。"
    ]


@pytest.mark.parametrize(
    "paragraph",
    ["**TL;DR:** Fares double on July 1.", "In short: Fares double on July 1.",
     "【まとめ】Fares double on July 1."],
)
def test_a_paragraph_labelled_as_a_summary_is_the_editors_summary(paragraph: str) -> None:
    text = f"---\ntitle: T\n---\nThe board met on Tuesday evening.\n\n{paragraph}\n"
    assert summary_sentences(parse_article(text, source="t.md")) == ["Fares double on July 1."]


def test_a_meta_paragraph_before_the_summary_list_is_skipped() -> None:
    from publisher.edition.lede import summary_points

    text = ("---\ntitle: T\nlang: ja\n---\n市は新制度を発表しました。\n\n## まとめ\n\n"
            "今回の記事のポイントをまとめます。\n\n- 4月から始まる\n- 申請は不要\n")
    art = parse_article(text, source="t.md")
    assert summary_points(art) == ["4月から始まる", "申請は不要"]
    assert key_points(art) == ["4月から始まる", "申請は不要"]


def test_pyramid_keeps_a_leaning_sentence_only_right_after_what_it_leans_on() -> None:
    fact = "The council approved a new bus lane on Main Street on Monday."
    meta = "In this post we explain what it means."
    leaning = "It opens in September."
    assert pyramid([fact, leaning]) == [fact, leaning]
    assert pyramid([fact, meta, leaning]) == [fact]
    assert pyramid([leaning, fact]) == [fact]
    assert pyramid(['"Nobody asked us," one driver said at the hearing.']) == []


def test_key_points_are_the_editors_or_each_sections_topic_not_random_sentences() -> None:
    english = load("harbor-ferry-fares.md")
    assert key_points(english) == [
        "From July 1 a single Harbor Line crossing costs $6, twice today's fare.",
        "Monthly passes bought before then keep their old price until they run out.",
    ]
    # Without a summary section: one topic sentence per body section, or no list at all.
    no_summary = load("harbor-ferry-fares.md", drop="The bottom line")
    assert key_points(no_summary) == []  # one body section is no list
    two = replace(no_summary, sections=(*no_summary.sections, Section(
        "Evening boats", 2, load("minato-bus-cashless.md").sections[0].blocks)))
    assert key_points(two) == [
        "Boats keep their current timetable through the summer.",
        "これまで回数券の利用者に付いていたポイントは、来年3月末でなくなります。",
    ]


def test_linkedin_key_points_come_from_the_summary_section() -> None:
    art = load("harbor-ferry-fares.md")
    linked = posts(replace(art, summary="Harbor Line fares double on July 1."))["linkedin"]
    assert "Key points:\n• From July 1 a single Harbor Line crossing costs $6" in linked
    assert "Commuter groups" not in linked


# --- 2. the preheader -----------------------------------------------------------------------


def test_preheader_is_whole_sentences_without_list_markers() -> None:
    text = "---\ntitle: 外交日程\nlang: ja\n---\n" + (
        "首相は来週、中央アジアの五か国を訪れます。\n\n"
        "- 平和構築\n- 貿易・経済連携\n- 重要鉱物の調達\n\nが主な議題です。\n"
    )
    line = preheader_text(parse_article(text, source="t.md"))
    assert line == "首相は来週、中央アジアの五か国を訪れます。"
    assert " - " not in line


def test_preheader_cuts_only_at_a_word_or_a_phrase() -> None:
    long_en = ("The county opens the first increment of its riverside trail network this weekend, "
               "with eleven kilometres of paved path, four new bridges and lighting along the "
               "whole route from the marina to the old mill.")
    art = parse_article(f"---\ntitle: Trail\n---\n{long_en}\n", source="t.md")
    line = preheader_text(art)
    assert line.endswith("…") and len(line) <= 140
    assert long_en.startswith(line[:-1])
    assert long_en[len(line) - 1] == " "  # the cut fell between two words
    long_ja = ("市の調査委員会は二日、旧市庁舎の解体に伴う費用が当初の見込みを大きく上回り、"
               "完成時期も二年ほど遅れる見通しであることを、週明けに開かれた市議会の特別委員会で"
               "委員長が示した資料と答弁の中で初めて明らかにし、議員からは説明の遅れを問う声が相次ぎました。")
    art = parse_article(f"---\ntitle: 庁舎\nlang: ja\n---\n{long_ja}\n", source="t.md")
    line = preheader_text(art)
    assert line.endswith("…") and len(line) <= 90
    import budoux

    phrases = budoux.load_default_japanese_parser().parse(long_ja)
    ends = {len("".join(phrases[:i])) for i in range(1, len(phrases) + 1)}
    assert len(line) - 1 in ends  # ends on a BudouX phrase boundary, not inside 明らかにし…


def test_preheader_has_no_ascii_space_after_a_japanese_full_stop() -> None:
    art = load("minato-bus-cashless.md")
    line = preheader_text(art)
    assert "。" in line and "。 " not in line
    assert posts(art)["x"].count("。 ") == 0


# --- 3. FAQ ---------------------------------------------------------------------------------


def test_inline_bold_questions_are_pairs_under_any_faq_heading() -> None:
    english = load("harbor-ferry-fares.md")
    assert [i.question for i in english.faq] == [
        "Will weekday hours change?",
        "Can I keep using my monthly pass?",
        "Where do I report a broken ticket machine?",
    ]
    assert english.faq[0].answer.startswith("No. Boats keep running")
    japanese = load("minato-bus-cashless.md")
    assert [i.question for i in japanese.faq] == [
        "専用のカードを買う必要はありますか？", "現金しか持っていない日はどうなりますか？",
    ]
    plain_faq = "---\ntitle: T\n---\nLead.\n\n## FAQ\n\n**Is it free?** Yes. Entry costs nothing.\n"
    assert len(parse_article(plain_faq, source="t.md").faq) == 1


@pytest.mark.parametrize(
    "heading, role",
    [
        ("The bottom line", "summary"), ("What it means for riders", "summary"),
        ("In short", "summary"), ("結論", "summary"), ("この記事のポイント", "summary"),
        ("まとめ|ポイントより先に確かめたいこと", "summary"), ("Reader Q&A", "faq"),
        ("ポイント付与が変わります", "body"), ("Ask the librarian", "body"),
        ("No easy answers", "body"), ("The question of funding", "body"),
        ("Why the board says fares must rise by half in a single step", "body"),
    ],
)
def test_headings_are_read_by_meaning(heading: str, role: str) -> None:
    from publisher.source.blocks import heading_role

    assert heading_role(heading) == role


@pytest.mark.parametrize(
    "heading",
    ["Your questions, answered", "Reader Q&A", "読者の質問", "質問コーナー", "Questions we got"],
)
def test_faq_headings_by_meaning_and_a_warning_when_they_hold_no_pair(heading: str) -> None:
    text = f"---\ntitle: T\n---\nLead sentence here.\n\n## {heading}\n\nWe read every letter.\n"
    art = parse_article(text, source="t.md")
    assert art.faq == ()
    assert any(f"{heading!r} looks like an FAQ" in w for w in art.warnings)
    # The editor's text under it is not lost: it is sent as an ordinary section.
    assert [s.role for s in art.sections] == ["body"]


def test_lint_repeats_the_faq_warning() -> None:
    from publisher.edition.newsletter.lint import lint_newsletter
    from publisher.edition.newsletter.render import load_templates, render_newsletter

    text = "---\ntitle: T\n---\nLead sentence here.\n\n## Your questions, answered\n\nNone yet.\n"
    art = parse_article(text, source="t.md")
    faq = build_faq_digest(art, Config().faq)
    news = render_newsletter(art, faq, Config(), load_templates(None))
    found = [f for f in lint_newsletter(news, art, Config()) if f.code == "post"]
    assert [f.level for f in found] == ["warning"]
    assert "'Your questions, answered' looks like an FAQ" in found[0].message


# --- 4. short answers -----------------------------------------------------------------------


def faq_posts(article: Article, networks: tuple[str, ...]) -> dict[str, list[str]]:
    """The FAQ posts per network, as text."""
    from publisher.edition.social import compose_faq_posts

    digest = build_faq_digest(article, Config().faq)
    composed = compose_faq_posts(article, digest, SocialSettings(networks=networks))
    return {n: [p.text for p in ps] for n, ps in composed.items()}


def test_a_qualifying_sentence_is_never_dropped_from_a_short_answer() -> None:
    from publisher.source.condense import short_answer

    art = load("minato-bus-cashless.md")
    answer = art.faq[0].answer
    short = short_answer(answer, 80, lang="ja")
    assert short.endswith("ただし、古い機種では読み取れないことがあります。")
    # The condition goes with the first sentence; with no room for both, nothing is shortened.
    condition = "ただし、古い機種では読み取れないことがあります。"
    assert short_answer(answer, 30, lang="ja") == "ありません。" + condition
    assert short_answer(answer, 20, lang="ja") == short
    conditional = "Yes. It is free. Unless you come after 9 p.m., then it costs $2."
    assert short_answer(conditional, 60) == "Yes. Unless you come after 9 p.m., then it costs $2."
    assert short_answer(conditional, 30) == conditional
    assert short_answer("Yes. Entry is free all week. Bring a bag.", 60) == (
        "Yes. Entry is free all week."
    )


def test_where_a_network_has_room_the_whole_answer_goes() -> None:
    art = load("minato-bus-cashless.md")
    for network, texts in faq_posts(art, ("bluesky", "mastodon", "x")).items():
        assert "ただし、古い機種では読み取れないことがあります。" in texts[0], network
    long = replace(art, faq=(replace(art.faq[0], answer=art.faq[0].answer + "詳しい対応機種は"
                                     "交通局の窓口で案内しています。" * 3),))
    first = faq_posts(long, ("mastodon",))["mastodon"][0]
    assert "窓口で案内しています。詳しい" in first  # Mastodon's 500 take it whole
    for text in faq_posts(long, ("bluesky",))["bluesky"]:
        assert "ただし" in text or "A." not in text  # the condition stays, or no answer at all


def test_links_in_answers_stay_links() -> None:
    from publisher.edition.social import bluesky_facets

    art = load("harbor-ferry-fares.md")
    texts = faq_posts(art, ("x", "bluesky"))
    for text in (texts["x"][2], texts["bluesky"][2]):
        assert "repair form (https://example.org/transit/repairs)" in text
    links = [f.value for f in bluesky_facets(texts["bluesky"][2]) if f.kind == "link"]
    assert "https://example.org/transit/repairs" in links
    digest = build_faq_digest(art, Config().faq)
    assert "(https://example.org/transit/repairs)" in digest.short_answers[2]


# --- 7. the email keeps the editor's headings and order -------------------------------------


def email(article: Article) -> tuple[str, str]:
    """The newsletter's HTML and text parts."""
    from publisher.edition.newsletter.render import load_templates, render_newsletter

    news = render_newsletter(
        article, build_faq_digest(article, Config().faq), Config(), load_templates(None)
    )
    return news.html, news.text


def test_the_email_keeps_the_editors_summary_heading_in_its_place() -> None:
    page, text = email(load("minato-bus-cashless.md"))
    plain_page = re.sub(r"<wbr\s*/?>", "", page)
    heading = "まとめ|ポイントより先に確かめたいこと"
    assert heading in plain_page and heading in text
    assert ">要点<" not in plain_page and "\n要点\n" not in text
    # The article's order: the reader questions come first, the まとめ after them.
    assert plain_page.index("読者の質問") < plain_page.index(heading)
    assert text.index("読者の質問") < text.index(heading)
    english, english_text = email(load("harbor-ferry-fares.md"))
    assert english.index("Your questions, answered") < english.index("The bottom line")
    assert "Key points" not in english and "The bottom line\n---" in english_text


def test_japanese_headlines_break_only_between_phrases() -> None:
    import budoux

    page, _ = email(load("minato-bus-cashless.md"))
    assert "ポイント付与が<wbr />変わります" in page
    assert "ポイント付<wbr" not in page
    parser = budoux.load_default_japanese_parser()
    for match in re.finditer(r"<h[12][^>]*>(?:<span style=\"([^\"]*)\">)?([\s\S]*?)</h[12]>", page):
        style, inner = match.groups()
        pieces = re.split(r"<wbr\s*/?>", re.sub(r"<(?!wbr)[^>]*>", "", inner))
        if not re.search(r"[ぁ-んァ-ン一-龥]", inner):
            continue
        assert style is not None and "word-break:keep-all" in style
        assert pieces == parser.parse("".join(pieces))
    # English headlines are left alone.
    english, _ = email(load("harbor-ferry-fares.md"))
    assert "<wbr" not in english and "keep-all" not in english


def test_publish_and_lint_both_print_the_faq_warning(tmp_path: Path) -> None:
    from tests.helpers import run_publish

    post = tmp_path / "notes.md"
    post.write_text(
        "---\ntitle: Reading room notes\nurl: https://example.org/notes\n---\n"
        "The reading room reopens on Monday after a month of repairs.\n\n"
        "## Your questions, answered\n\nWe will add them once readers write in.\n",
        encoding="utf-8",
    )
    expected = "'Your questions, answered' looks like an FAQ"
    dry = run_publish(post, "--dry-run", cwd=tmp_path)
    assert expected in dry.stderr, dry.stderr
    lint = run_publish("lint", post, cwd=tmp_path)
    assert f"warning post: {post}:7: section {expected}" in " ".join(lint.stdout.split())
