"""The FAQ digest across posts: selection by date, merging of near-duplicates, ordering."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import pytest

from publisher.config.settings import FaqSettings
from publisher.edition.cross_digest.merge import build_cross_digest, select_posts
from publisher.edition.cross_digest.post import digest_post_markdown
from publisher.errors import InputError
from publisher.model import Article
from publisher.source.faq import build_faq_digest, jsonld_text, question_text
from publisher.source.read import parse_article, read_post
from tests.helpers.sample_posts import sample_posts

POSTS = Path(__file__).resolve().parents[1] / "posts"


def post(title: str, slug: str, faq: str, *, lang: str = "en") -> Article:
    """An article with an FAQ section written as sub-headings."""
    text = (
        f"---\ntitle: {title}\nlang: {lang}\nurl: https://example.com/{slug}\n"
        f"date: 2025-01-01\n---\nLead.\n\n## FAQ\n\n{faq}"
    )
    return parse_article(text, source=f"posts/{slug}.md")


FIRST = post("Rail news", "rail", "### Is it free?\n\nNo.\n\n### When does it open?\n\nIn May.\n")
SECOND = post(
    "Bus news", "bus",
    "### IS IT FREE!\n\nStill no.\n\n### Where is the stop?\n\nOutside.\n\n"
    "### When does it open\n\nJune.\n",
)
THIRD = post("Only repeats", "repeat", "### is it, free?\n\nNope.\n")


def test_merges_near_duplicates_into_the_first_occurrence() -> None:
    digest = build_cross_digest([FIRST, SECOND, THIRD], FaqSettings())
    assert [g.title for g in digest.groups] == ["Rail news", "Bus news"]
    assert [e.item.question for e in digest.groups[0].entries] == [
        "Is it free?", "When does it open?",
    ]
    assert [e.item.question for e in digest.groups[1].entries] == ["Where is the stop?"]
    free = digest.groups[0].entries[0]
    assert free.item.answer == "No."
    assert free.also_in == ("Bus news", "Only repeats")
    assert digest.groups[0].entries[1].also_in == ("Bus news",)
    assert [i.question for i in digest.items] == [
        "Is it free?", "When does it open?", "Where is the stop?",
    ]
    assert digest.short_answers == ("No.", "In May.", "Outside.")


def test_order_follows_the_given_articles() -> None:
    digest = build_cross_digest([SECOND, FIRST], FaqSettings())
    assert [g.title for g in digest.groups] == ["Bus news"]
    assert [i.question for i in digest.items] == [
        "IS IT FREE!", "Where is the stop?", "When does it open",
    ]


def test_width_folding_merges_japanese_questions() -> None:
    a = post("記事A", "a", "### ＩＣカードは使えますか？\n\n使えます。\n", lang="ja")
    b = post("記事B", "b", "### ICカードは使えますか?\n\nはい。\n", lang="ja")
    digest = build_cross_digest([a, b], FaqSettings())
    assert len(digest.items) == 1
    assert digest.groups[0].entries[0].also_in == ("記事B",)
    assert digest.lang == "ja"
    assert digest.markdown.startswith("# よくある質問ダイジェスト\n")


def test_outputs_are_grouped_with_links() -> None:
    digest = build_cross_digest([FIRST, SECOND], FaqSettings())
    assert digest.markdown.split("\n\n")[:4] == [
        "# FAQ digest", "## [Rail news](https://example.com/rail)", "### Is it free?", "No.",
    ]
    assert "*Also asked in: Bus news*" in digest.markdown
    assert '<h3><a href="https://example.com/rail" rel="noopener noreferrer">Rail news</a></h3>' \
        in digest.html
    assert digest.html.count("Read the article") == 2
    jsonld = digest.jsonld
    assert jsonld["@type"] == "FAQPage"
    assert [q["name"] for q in jsonld["mainEntity"]] == [
        "Is it free?", "When does it open?", "Where is the stop?",
    ]
    assert jsonld["mainEntity"][0]["acceptedAnswer"] == {"@type": "Answer", "text": "<p>No.</p>"}
    assert json.loads(json.dumps(jsonld)) == jsonld
    as_single = digest.as_faq_digest()
    assert as_single.items == digest.items and as_single.jsonld == jsonld


def test_titles_are_escaped_in_html() -> None:
    hostile = post("<script>x</script> & more", "h", "### Q?\n\nYes.\n")
    html = build_cross_digest([hostile], FaqSettings()).html
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_no_faq_anywhere_gives_an_empty_digest() -> None:
    plain = parse_article("---\ntitle: T\n---\nNo questions here.\n", source="t.md")
    digest = build_cross_digest([plain], FaqSettings())
    assert digest.groups == () and digest.items == () and digest.jsonld == {}


def test_sample_posts_digest() -> None:
    articles = [parse_article(read_post(p), source=str(p)) for p in sample_posts()]
    digest = build_cross_digest(articles, FaqSettings())
    assert len(digest.items) == sum(len(a.faq) for a in articles)
    assert len(digest.groups) == len(articles)


PATHS = [
    (Path("a.md"), "2025-01-05"),
    (Path("b.md"), date(2025, 2, 1)),
    (Path("c.md"), datetime(2025, 3, 1, 9, 0)),
    (Path("d.md"), None),
    (Path("e.md"), "2025-02-01T08:00:00+09:00"),
]


def test_select_all_oldest_first() -> None:
    assert select_posts(PATHS) == [Path(p) for p in ("d.md", "a.md", "b.md", "e.md", "c.md")]


def test_select_since() -> None:
    assert select_posts(PATHS, since=date(2025, 2, 1)) == [Path("b.md"), Path("e.md"), Path("c.md")]


def test_select_last() -> None:
    assert select_posts(PATHS, last=2) == [Path("e.md"), Path("c.md")]
    assert select_posts(PATHS, since=date(2025, 1, 1), last=10) == [
        Path("a.md"), Path("b.md"), Path("e.md"), Path("c.md"),
    ]


def test_select_rejects_bad_input() -> None:
    with pytest.raises(InputError, match="selects nothing"):
        select_posts(PATHS, last=0)
    with pytest.raises(InputError) as info:
        select_posts([(Path("x.md"), "soon")])
    assert info.value.where == "x.md"


def test_counts_tags_and_the_digest_post_read_back_as_the_same_faq() -> None:
    from publisher.edition.cross_digest.post import digest_lead, digest_post_markdown

    plain = parse_article("---\ntitle: T\ntags: [Rail]\n---\nNo questions here.\n", source="t.md")
    digest = build_cross_digest([FIRST, SECOND, THIRD, plain], FaqSettings())
    assert digest.posts == 3 and digest.without_faq == ("t.md",)
    assert digest_lead(digest) == "3 reader questions from 3 recent posts, in one place."
    text = digest_post_markdown(digest, date="2025-01-01", slug="faq-digest-2025-01-01",
                                url="https://example.com/faq")
    back = parse_article(text, source="digest.md")
    assert [i.question for i in back.faq] == [i.question for i in digest.items]
    assert [i.answer for i in back.faq] == [i.answer for i in digest.items]
    assert back.url == "https://example.com/faq" and back.slug == "faq-digest-2025-01-01"


def test_tags_most_used_first_and_languages_split() -> None:
    from dataclasses import replace

    from publisher.edition.cross_digest.merge import by_language

    a = replace(FIRST, tags=("parks", "Rail"))
    b = replace(SECOND, tags=("rail", "bus"), lang="en-GB")
    c = replace(THIRD, tags=("bus", "rail"), lang="ja")
    assert build_cross_digest([a, b, c], FaqSettings()).tags == ("Rail", "bus", "parks")
    assert {k: [x.title for x in v] for k, v in by_language([a, b, c]).items()} == {
        "en": ["Rail news", "Bus news"], "ja": ["Only repeats"],
    }


# --- outputs that others embed (issue 12) -----------------------------------------------------

HOSTILE_TITLE = '"<script>alert(1)</script> [x](javascript:alert(2)) *a* & `b`"'
HOSTILE_FAQ = ("### Why <img src=x onerror=alert(3)> now?\n\n"
               "Because </script><!-- <script>alert(4)</script> and `a<b` stays code.\n")


def rendered_elsewhere(markdown: str) -> str:
    """The Markdown as CommonMark renders it with raw HTML on (as most sites do)."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").render(markdown)


def test_faq_markdown_shows_the_titles_and_questions_as_text() -> None:
    hostile = post(HOSTILE_TITLE, "h", HOSTILE_FAQ)
    digest = build_cross_digest([hostile], FaqSettings())
    article_md = build_faq_digest(hostile, FaqSettings()).markdown
    posted_md = digest_post_markdown(digest, date="2025-01-01", slug="d")
    for markdown in (digest.markdown, article_md, posted_md):
        html = rendered_elsewhere(markdown)
        for live in ("<script", "<img", "<!--", 'href="javascript:', "<em>a</em>"):
            assert live not in html, (live, markdown)
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the title, as text
        assert "<code>a&lt;b</code>" in html  # code is left as written


def test_the_digest_post_still_reads_back_as_the_same_faq() -> None:
    hostile = post(HOSTILE_TITLE, "h", HOSTILE_FAQ)
    digest = build_cross_digest([hostile], FaqSettings())
    text = digest_post_markdown(digest, date="2025-01-01", slug="d")
    again = parse_article(text, source="d.md")
    def questions(article: Article) -> list[str]:
        return [" ".join(question_text(item.question).split()) for item in article.faq]

    assert questions(again) == questions(hostile)


def test_json_ld_is_safe_inside_a_script_element() -> None:
    hostile = post(HOSTILE_TITLE, "h", HOSTILE_FAQ)
    for jsonld in (build_cross_digest([hostile], FaqSettings()).jsonld,
                   build_faq_digest(hostile, FaqSettings()).jsonld):
        text = jsonld_text(jsonld)
        assert not {"<", ">", "&"} & set(text), text
        assert json.loads(text) == jsonld and "<code>" in json.dumps(jsonld)
