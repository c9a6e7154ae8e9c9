"""Composing social posts: source preference, fitting, hashtags, links, facets, threads, goldens."""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from publisher.config.settings import Config, SocialSettings
from publisher.edition.social import (
    bluesky_facets,
    compose_faq_posts,
    compose_social,
    target_for,
    tracked_link,
)
from publisher.errors import InputError
from publisher.model import Article, Block, FaqDigest, FaqItem, Section, SocialPost
from publisher.networks.counting import find_urls, measure
from publisher.networks.hashtags import hashtag, hashtags
from tests.helpers.sample_posts import sample_posts

REPO = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden" / "social"
ALL = ("x", "bluesky", "mastodon", "threads", "linkedin")
EMPTY_DIGEST = FaqDigest(items=(), short_answers=(), jsonld={}, markdown="", html="")
UTM = {
    "x": {"utm_source": "x", "utm_medium": "social"},
    "bluesky": {"utm_source": "bluesky", "utm_medium": "social"},
    "mastodon": {"utm_source": "mastodon", "utm_medium": "social"},
}


def para(text: str) -> Block:
    return Block("paragraph", text, text)


def bullets(*items: str) -> Block:
    return Block("bullet_list", "\n".join(f"- {i}" for i in items), "\n".join(items), items=items)


def article(**fields: object) -> Article:
    base = Article(
        source="posts/test.md",
        title="新路線が来春開業へ",
        body_markdown="",
        lead=(para("港町と住宅地を結ぶ新しい鉄道路線が来春に開業します。通勤時間は半分になります。"),),
        sections=(),
        lang="ja",
        url="https://example.com/posts/new-line",
        tags=("鉄道", "regional rail"),
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def social_settings(**fields: object) -> SocialSettings:
    return replace(SocialSettings(networks=ALL, utm=UTM), **fields)  # type: ignore[arg-type]


# --- where the words come from ------------------------------------------------------------


def test_editor_text_wins_and_keeps_its_words() -> None:
    art = article(social={"x": "編集者が書いた文です。"}, summary="要約です。")
    post = compose_social(art, EMPTY_DIGEST, social_settings())["x"][0]
    assert post.text.startswith("編集者が書いた文です。\n\n")
    assert "utm_source=x" in post.text


def test_editor_text_too_long_names_file_field_length_and_limit() -> None:
    art = article(social={"x": "あ" * 200})
    with pytest.raises(InputError) as info:
        compose_social(art, EMPTY_DIGEST, social_settings())
    message = str(info.value)
    assert message.startswith("posts/test.md:")
    assert "social.x" in message
    assert "425 weighted characters" in message  # 400 + "\n\n" + 23 for the link
    assert "280" in message


def test_front_matter_summary_comes_before_summary_section() -> None:
    art = article(
        summary="前書きの要約です。",
        sections=(Section("まとめ", 2, (para("まとめの段落です。"),), role="summary"),),
    )
    post = compose_social(art, EMPTY_DIGEST, social_settings())["mastodon"][0]
    assert post.text.startswith("前書きの要約です。")


def test_summary_section_paragraph_then_key_points() -> None:
    with_paragraph = article(
        sections=(Section("まとめ", 2, (para("まとめの段落です。"),), role="summary"),)
    )
    text = compose_social(with_paragraph, EMPTY_DIGEST, social_settings())["x"][0].text
    assert text.startswith("まとめの段落です。")
    with_list = article(
        sections=(Section("まとめ", 2, (bullets("要点その一", "要点その二"),), role="summary"),)
    )
    text = compose_social(with_list, EMPTY_DIGEST, social_settings())["x"][0].text
    assert text.startswith("新路線が来春開業へ\n・要点その一\n・要点その二\n\n")


def test_lead_extract_is_the_fallback() -> None:
    text = compose_social(article(), EMPTY_DIGEST, social_settings())["bluesky"][0].text
    assert text.startswith("港町と住宅地を結ぶ新しい鉄道路線が来春に開業します。")


# --- fitting ------------------------------------------------------------------------------


LONG_JA = (
    "市は二十三日、港町と内陸の住宅地を結ぶ新しい鉄道路線について、来年の春に開業する見通しと"
    "なったことを明らかにし、運賃の水準や路線バスの再編、駅前広場の整備計画などについても、"
    "夏から秋にかけて沿線の各地区で開く住民説明会で、模型や資料を使いながら詳しく説明していく"
    "考えを示しました。"
)
LONG_EN = (
    "The city said on Tuesday that the new rail line linking the harbor district with the inland "
    "suburbs would open next spring, and that fares, bus connections and the redesign of the "
    "station squares would be explained in detail at a series of public meetings this summer."
)


@pytest.mark.parametrize("network", ["x", "bluesky", "mastodon"])
def test_long_japanese_sentence_is_cut_at_a_phrase_with_ellipsis(network: str) -> None:
    very_long = LONG_JA[:-1] + "、" + LONG_JA  # one sentence of 270 characters
    art = article(summary=very_long, tags=())
    post = compose_social(art, EMPTY_DIGEST, social_settings(mastodon_limit=120))[network][0]
    body = post.text.split("\n\n")[0]
    assert body.endswith("…")
    assert very_long.startswith(body[:-1])
    assert post.length <= post.limit


def test_long_english_sentence_is_cut_between_words() -> None:
    art = article(summary=LONG_EN, lang="en", tags=())
    post = compose_social(art, EMPTY_DIGEST, social_settings())["x"][0]
    body = post.text.split("\n\n")[0]
    assert body.endswith("…")
    kept = body[:-1]
    assert LONG_EN.startswith(kept)
    assert LONG_EN[len(kept)] in " ,"  # the cut falls between words
    assert kept.split()[-1].lower() not in {"the", "a", "of", "and", "to"}


def test_whole_sentences_only_when_the_second_does_not_fit() -> None:
    first = "新しい鉄道路線が来春に開業します。"
    art = article(summary=first + LONG_JA, tags=())
    body = compose_social(art, EMPTY_DIGEST, social_settings())["x"][0].text.split("\n\n")[0]
    assert body == first


def test_hashtags_are_added_only_while_they_fit() -> None:
    art = article(summary="あ" * 120 + "。", tags=("鉄道", "regional rail", "まちづくり"))
    post = compose_social(art, EMPTY_DIGEST, social_settings())["x"][0]
    assert post.length <= 280
    assert "#鉄道" in post.text  # 120 + 1 + 23 + separators leaves room for one short tag
    assert "#まちづくり" not in post.text


def test_hashtag_count_follows_settings_and_threads_gets_one() -> None:
    art = article(tags=("鉄道", "地域交通", "regional rail", "まちづくり"))
    posts = compose_social(art, EMPTY_DIGEST, social_settings(hashtags=2))
    assert re.findall(r"#\w+", posts["mastodon"][0].text) == ["#鉄道", "#地域交通"]
    assert re.findall(r"#\w+", posts["threads"][0].text) == ["#鉄道"]


def test_mastodon_limit_and_url_length_come_from_settings() -> None:
    art = article(summary=LONG_JA, tags=())
    post = compose_social(
        art, EMPTY_DIGEST, social_settings(mastodon_limit=80, mastodon_url_length=30)
    )["mastodon"][0]
    assert post.limit == 80
    assert measure("mastodon", post.text, url_length=30).length == post.length <= 80


def test_link_alone_too_long_is_an_input_error_not_an_over_limit_post() -> None:
    art = article(url="https://example.com/" + "a" * 400)
    with pytest.raises(InputError, match="bluesky post cannot fit"):
        compose_social(art, EMPTY_DIGEST, social_settings(networks=("bluesky",)))


def test_no_url_means_no_link_and_no_card() -> None:
    posts = compose_social(article(url=""), EMPTY_DIGEST, social_settings())
    assert all("http" not in p.text for net in posts.values() for p in net)
    assert posts["bluesky"][0].card is None


def test_unknown_network_in_settings() -> None:
    with pytest.raises(InputError, match="myspace"):
        target_for("myspace", SocialSettings())


# --- links, hashtags, facets --------------------------------------------------------------


def test_tracked_link_sets_utm_and_percent_encodes() -> None:
    link = tracked_link(
        "https://例え.jp/記事/新路線?ref=top&utm_source=old#見出し",
        {"utm_source": "x", "utm_medium": "social"},
    )
    assert link == (
        "https://xn--r8jz45g.jp/%E8%A8%98%E4%BA%8B/%E6%96%B0%E8%B7%AF%E7%B7%9A"
        "?ref=top&utm_source=x&utm_medium=social#%E8%A6%8B%E5%87%BA%E3%81%97"
    )
    assert [u.url for u in find_urls(f"記事 {link} です")] == [link]
    assert tracked_link("https://example.com/a", {}) == "https://example.com/a"
    assert tracked_link("", {"utm_source": "x"}) == ""


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("critical minerals", "CriticalMinerals"),
        ("ウズベキスタン", "ウズベキスタン"),
        ("rare-earth", "RareEarth"),
        ("中央アジア・外交", "中央アジア外交"),
        ("ＡＩ", "AI"),
        ("iPhone news", "iPhoneNews"),
        ("2024", None),
        ("!!!", None),
    ],
)
def test_hashtag_normalization(tag: str, expected: str | None) -> None:
    assert hashtag(tag) == expected


def test_bluesky_tags_over_64_graphemes_are_dropped() -> None:
    assert hashtag("あ" * 65, "bluesky") is None
    assert hashtag("あ" * 64, "bluesky") == "あ" * 64
    assert hashtags(["G20", "g20", "2024", "鉄道"], "x", limit=3) == ["#G20", "#鉄道"]


def test_bluesky_facets_use_utf8_byte_offsets() -> None:
    text = "日本語 #鉄道 と https://example.com/a?b=1 #RegionalRail。"
    facets = bluesky_facets(text)
    raw = text.encode("utf-8")
    got = [(f.kind, f.value, raw[f.byte_start : f.byte_end].decode()) for f in facets]
    assert got == [
        ("tag", "鉄道", "#鉄道"),
        ("link", "https://example.com/a?b=1", "https://example.com/a?b=1"),
        ("tag", "RegionalRail", "#RegionalRail"),
    ]
    assert facets[0].as_json()["index"] == {"byteStart": 10, "byteEnd": 17}


def test_bluesky_post_has_lang_facets_and_card() -> None:
    art = article(image="https://example.com/i.jpg", summary="要約です。")
    post = compose_social(art, EMPTY_DIGEST, social_settings())["bluesky"][0]
    assert post.lang == "ja"
    assert {f.kind for f in post.facets} == {"link", "tag"}
    assert post.card is not None
    assert post.card.uri == tracked_link(art.url, UTM["bluesky"])
    assert (post.card.title, post.card.description, post.card.thumb) == (
        art.title, "要約です。", art.image,
    )


def test_x_and_mastodon_carry_the_hero_image_and_alt_on_the_first_post_only() -> None:
    art = article(image="images/hero.jpg", image_alt="高架を走る車両", summary="要約です。")
    composed = compose_social(art, EMPTY_DIGEST, social_settings(), thread=True)
    for network in ("x", "mastodon"):
        first, *rest = composed[network]
        assert first.card is not None and (first.card.thumb, first.card.alt) == (
            "images/hero.jpg", "高架を走る車両")
        assert all(post.card is None for post in rest)
    for network in ("threads", "linkedin"):  # a link card (link_attachment, article) instead
        cards = [p.card for p in composed[network] if p.card is not None]
        assert cards and {c.uri for c in cards} == {composed[network][0].card.uri}  # type: ignore[union-attr]
    plain = compose_social(replace(art, image=""), EMPTY_DIGEST, social_settings())
    assert plain["x"][0].card is None and plain["mastodon"][0].card is None


# --- threads and FAQ posts ------------------------------------------------------------------


DIGEST = FaqDigest(
    items=(
        FaqItem("いつ開業しますか？", "来年の春です。正式な日付は後日発表されます。"),
        FaqItem("運賃はいくらですか？", "初乗りは**170円**です。"),
        FaqItem("三つ目の質問ですか？", "三つ目の答えです。"),
    ),
    short_answers=("来年の春です。", "初乗りは170円です。", "三つ目の答えです。"),
    jsonld={},
    markdown="",
    html="",
)
SUMMARY_LIST = (
    Section("まとめ", 2, (bullets("所要時間が半分に", "乗り継ぎ割引"),), role="summary"),
)


def test_thread_has_lead_key_points_faq_and_link_numbered() -> None:
    art = article(summary="新路線が来春開業します。", sections=SUMMARY_LIST, thread=True)
    posts = compose_social(art, DIGEST, social_settings())
    x = posts["x"]
    assert [p.position for p in x] == [1, 2, 3, 4, 5]
    assert all(p.of == 5 and p.text.endswith(f"\n\n{p.position}/5") for p in x)
    assert x[0].text.startswith("新路線が来春開業へ\n\n新路線が来春開業します。")
    assert x[1].text.startswith("【要点】\n・所要時間が半分に\n・乗り継ぎ割引")
    assert x[2].text.startswith("Q. いつ開業しますか？\nA. 来年の春です。")
    assert x[3].text.startswith("Q. 運賃はいくらですか？\nA. 初乗りは170円です。")
    assert "utm_source=x" in x[4].text and "#鉄道" in x[4].text
    assert all(p.length == measure("x", p.text).length <= 280 for p in x)
    assert len(posts["threads"]) == 5 and len(posts["linkedin"]) == 1  # Threads threads too


def test_thread_argument_overrides_front_matter() -> None:
    art = article(thread=True)
    assert len(compose_social(art, DIGEST, social_settings(), thread=False)["x"]) == 1
    assert len(compose_social(article(), DIGEST, social_settings(), thread=True)["x"]) > 1
    assert len(compose_social(article(), DIGEST, social_settings(thread=True))["x"]) > 1


def test_faq_posts_one_question_each_with_link() -> None:
    posts = compose_faq_posts(article(), DIGEST, social_settings())
    for network, items in posts.items():
        assert len(items) == 3
        for post, item in zip(items, DIGEST.items, strict=True):
            assert post.text.startswith(f"Q. {item.question}\nA. ")
            assert "example.com/posts/new-line" in post.text
            assert "**" not in post.text
            assert post.length <= post.limit, network


def test_faq_post_answer_is_shortened_to_fit() -> None:
    items = tuple(replace(i, answer=LONG_JA) for i in DIGEST.items)
    digest = replace(DIGEST, items=items, short_answers=(LONG_JA, LONG_JA, LONG_JA))
    posts = compose_faq_posts(article(), digest, social_settings(networks=("x",)))["x"]
    assert all(p.length <= 280 and "…" in p.text for p in posts)


# --- properties ---------------------------------------------------------------------------


JA_WORDS = st.sampled_from(
    ["鉄道", "新しい", "路線が", "開業します", "「駅前」", "（仮称）", "東京", "ウズベキスタン",
     "重要鉱物", "、", "。", "？", "👨‍👩‍👧", "が", "1,200円"]
)
EN_WORDS = st.sampled_from(
    ["the", "city", "rail", "line", "opens", "next", "spring,", "e.g.", "U.S.", "3.5%", "(new)",
     "fares.", "Why?", "https://example.org/a?b=1", "minerals", "—", "🚆"]
)
WORD = st.one_of(JA_WORDS, EN_WORDS)


@st.composite
def text_of(draw: st.DrawFn, min_words: int, max_words: int) -> str:
    words = draw(st.lists(WORD, min_size=min_words, max_size=max_words))
    return " ".join(words) if draw(st.booleans()) else "".join(words)


@st.composite
def random_article(draw: st.DrawFn) -> Article:
    lead_text = draw(text_of(1, 120))
    summary_items = tuple(draw(st.lists(text_of(1, 20), max_size=4)))
    sections = (
        (Section("Summary", 2, (bullets(*summary_items),), role="summary"),)
        if summary_items and draw(st.booleans())
        else ()
    )
    tags = draw(
        st.lists(st.one_of(text_of(1, 3), st.text(min_size=0, max_size=70)), max_size=5)
    )
    return Article(
        source="posts/random.md",
        title=draw(text_of(1, 30)),
        body_markdown="",
        lead=(para(lead_text),),
        sections=sections,
        lang=draw(st.sampled_from(["ja", "en"])),
        url=draw(
            st.sampled_from(
                ["https://example.com/p/1", "https://example.com/記事/新路線", "", "http://ex.jp"]
            )
        ),
        tags=tuple(tags),
        summary=draw(st.one_of(st.just(""), text_of(1, 80))),
    )


@st.composite
def random_digest(draw: st.DrawFn) -> FaqDigest:
    pairs = draw(st.lists(st.tuples(text_of(1, 30), text_of(1, 60)), max_size=3))
    items = tuple(FaqItem(q, a) for q, a in pairs)
    return FaqDigest(items, tuple(a for _, a in pairs), {}, "", "")


def _source_urls(art: Article, digest: FaqDigest) -> set[str]:
    """Every URL twitter-text finds in what the posts are made from."""
    parts = [art.title, art.summary, *(b.text for b in art.lead)]
    parts += [i for s in art.sections for b in s.blocks for i in (b.text, *b.items)]
    parts += [t for item in digest.items for t in (item.question, item.answer)]
    parts += list(digest.short_answers)
    return {u.url for part in parts for line in part.splitlines() for u in find_urls(line)}


def _check_post(post: SocialPost, link: str, source_urls: set[str]) -> None:
    """Every invariant a composed post must hold."""
    result = measure(post.network, post.text, limit=post.limit)
    assert result.fits and result.length == post.length <= post.limit
    if link:
        assert link in post.text.split("\n") or post.of > 1  # the link has its own line
    for url in find_urls(post.text):
        # No post ends inside a URL: each URL is whole (the link, or as the article wrote it)
        # and no cut lands right after one.
        assert url.url == link or url.url in source_urls, (post.text, url)
        assert not post.text[url.end :].lstrip(" ").startswith("…"), post.text
    if post.network == "bluesky":
        raw = post.text.encode("utf-8")
        for facet in post.facets:
            piece = raw[facet.byte_start : facet.byte_end].decode("utf-8")
            if facet.kind == "link":
                # A bare domain is linked with https:// added, as atproto's detectFacets does.
                assert facet.value in (piece, f"https://{piece}"), (piece, facet.value)
            else:  # '#tag' / '＃タグ' carry the tag; '$aapl' carries '$AAPL'
                assert facet.value in (piece[1:], piece.upper()), (piece, facet.value)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_article(), random_digest(), st.booleans(), st.integers(min_value=60, max_value=600))
def test_every_composed_post_fits(
    art: Article, digest: FaqDigest, thread: bool, mastodon_limit: int
) -> None:
    conf = social_settings(mastodon_limit=mastodon_limit)
    urls = _source_urls(art, digest)
    composed = compose_social(art, digest, conf, thread=thread)
    for network, posts in composed.items():
        link = tracked_link(art.url, UTM.get(network, {}))
        for post in posts:
            _check_post(post, link, urls)
        if link:
            assert any(link in p.text for p in posts)  # every network carries the link
    for network, posts in compose_faq_posts(art, digest, conf).items():
        for post in posts:
            _check_post(post, tracked_link(art.url, UTM.get(network, {})), urls)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(WORD, st.sampled_from(["#鉄道", "#RegionalRail", "#2024", "\n"]))))
def test_bluesky_facets_decode_to_their_text(words: list[str]) -> None:
    text = " ".join(words)
    raw = text.encode("utf-8")
    for facet in bluesky_facets(text):
        piece = raw[facet.byte_start : facet.byte_end].decode("utf-8")
        assert piece == (facet.value if facet.kind == "link" else f"#{facet.value}")


# --- goldens for the sample posts -----------------------------------------------------------


SAMPLE_POSTS = sample_posts()


def render_golden(path: Path) -> str:
    """Every post the sample becomes, as an editor would read it."""
    from publisher.source.faq import build_faq_digest
    from publisher.source.read import parse_article

    art = parse_article(path.read_text(encoding="utf-8"), source=f"posts/{path.name}")
    digest = build_faq_digest(art, Config().faq)
    conf = social_settings()
    faq_posts = compose_faq_posts(art, digest, conf)
    out: list[str] = []
    for label, composed in (
        ("single", compose_social(art, digest, conf, thread=False)),
        ("thread", compose_social(art, digest, conf, thread=True)),
        ("faq", {n: faq_posts[n] for n in ("x", "bluesky")}),
    ):
        for network, posts in composed.items():
            if label == "thread" and len(posts) == 1:
                continue  # Threads and LinkedIn never thread: same as their single post
            for post in posts:
                unit = measure(network, post.text, limit=post.limit).unit
                block = [
                    f"## {label} · {network} · {post.position}/{post.of} · "
                    f"{post.length}/{post.limit} {unit}",
                    post.text,
                ]
                block += [f"  facet {f.kind} [{f.byte_start}, {f.byte_end})" for f in post.facets]
                if post.card is not None:
                    block.append(f"  card {post.card.title} | {post.card.thumb} | "
                                 f"alt: {post.card.alt}")
                out.append("\n".join(block) + "\n")
    return "\n".join(out)


@pytest.mark.skipif(not SAMPLE_POSTS, reason="no sample posts yet")
@pytest.mark.parametrize("path", SAMPLE_POSTS, ids=lambda p: p.stem)
def test_sample_posts_match_goldens(path: Path) -> None:
    """Regenerate with UPDATE_GOLDEN=1 and read the diff by eye before committing."""
    golden = GOLDEN / f"{path.stem}.txt"
    rendered = render_golden(path)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(rendered, encoding="utf-8")
    assert golden.is_file(), f"missing {golden}; run UPDATE_GOLDEN=1 pytest {__file__}"
    assert rendered == golden.read_text(encoding="utf-8")


def test_a_cut_never_ends_on_text_a_network_would_linkify() -> None:
    from publisher.edition.layout import cut

    assert cut("The answer is e.g.city") == "The answer is…"
    assert cut("Visit example.com") == "Visit…"
    assert cut("A plain ending") == "A plain ending…"


# --- overrides for every network and the hashtag count (issue 14, item 6) --------------------


@pytest.mark.parametrize("network", ["threads", "linkedin"])
def test_front_matter_override_for_threads_and_linkedin_is_posted_verbatim(network: str) -> None:
    from publisher.source.read import parse_article

    text = (
        f"---\ntitle: T\nurl: https://example.com/a\nsocial:\n  {network}: \"Our own words "
        f"for {network}.\"\n---\nBody text.\n"
    )
    art = parse_article(text, source="posts/a.md")
    post = compose_social(art, EMPTY_DIGEST, social_settings())[network][0]
    assert post.text.startswith(f"Our own words for {network}.\n\n")
    assert "https://example.com/a" in post.text


def test_hashtags_zero_means_no_hashtag_anywhere() -> None:
    art = article(tags=("鉄道", "regional rail"))
    posts = compose_social(art, EMPTY_DIGEST, social_settings(hashtags=0))
    assert all("#" not in p.text for net in posts.values() for p in net)
    assert hashtags(["鉄道"], "threads", limit=0) == []
    assert hashtags(["鉄道", "港"], "x", limit=1) == ["#鉄道"]


def test_hashtags_setting_must_be_a_count() -> None:
    from publisher.config.load import config_from_mapping
    from publisher.errors import ConfigError

    assert config_from_mapping({"social": {"hashtags": 0}}).social.hashtags == 0
    for bad in (-1, "3", True):
        with pytest.raises(ConfigError, match="hashtags"):
            config_from_mapping({"social": {"hashtags": bad}})
