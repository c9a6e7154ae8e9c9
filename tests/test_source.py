"""The article parser: front matter fields, body structure, bad input and hostile content."""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from publisher.config.settings import Config
from publisher.edition.build import build_edition
from publisher.edition.newsletter.render import load_templates
from publisher.errors import InputError
from publisher.source.blocks import heading_role
from publisher.source.lang import detect_lang
from publisher.source.read import parse_article, read_post
from tests.helpers.sample_posts import sample_posts

REPO = Path(__file__).resolve().parents[1]
POSTS = REPO / "posts"

ARTICLE = """---
title: "Trains: a primer"
author: Ann Example
date: 2025-03-01
lang: en
url: https://example.com/trains
image: https://example.com/train.webp
image_alt: A red train
tags: [rail, "regional rail", rail]
summary: All about trains.
slug: Trains Primer!
social:
  x: "Short post for X"
  bluesky: "Longer post for Bluesky"
  thread: true
---
First lead paragraph with a [link](https://example.com/a).

Second lead paragraph.

## Background

- one
- two **bold**

1. first
2. second

> a quote

```python
print("code")
```

| a | b |
|---|---|
| 1 | 2 |

---

### Detail

Detail text.

## Key takeaways

- takeaway

## Final thoughts

Bye.
"""


def parse(text: str, source: str = "posts/sample.md") -> object:
    """Parse with a fixed source name."""
    return parse_article(text, source=source)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    """A post file with exact bytes."""
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_front_matter_fields() -> None:
    article = parse_article(ARTICLE, source="posts/sample.md")
    assert article.title == "Trains: a primer"
    assert article.author == "Ann Example"
    assert article.date == "2025-03-01"
    assert article.lang == "en"
    assert article.url == "https://example.com/trains"
    assert article.image == "https://example.com/train.webp"
    assert article.image_alt == "A red train"
    assert article.tags == ("rail", "regional rail")
    assert article.summary == "All about trains."
    assert article.slug == "trains-primer"
    assert dict(article.social) == {"x": "Short post for X", "bluesky": "Longer post for Bluesky"}
    assert article.thread is True
    assert article.content_hash == hashlib.sha256(ARTICLE.encode()).hexdigest()
    assert article.warnings == ()


def test_lead_sections_roles_and_lines() -> None:
    article = parse_article(ARTICLE, source="posts/sample.md")
    assert [b.text for b in article.lead] == [
        "First lead paragraph with a link.", "Second lead paragraph.",
    ]
    assert article.lead[0].markdown == "First lead paragraph with a [link](https://example.com/a)."
    assert article.lead[0].line == 17
    assert [(s.heading, s.level, s.role, s.line) for s in article.sections] == [
        ("Background", 2, "body", 21),
        ("Detail", 3, "body", 41),
        ("Key takeaways", 2, "summary", 45),
        ("Final thoughts", 2, "closing", 49),
    ]
    background = article.sections[0]
    assert [b.kind for b in background.blocks] == [
        "bullet_list", "ordered_list", "blockquote", "code", "table", "hr",
    ]
    bullets, ordered = background.blocks[0], background.blocks[1]
    assert bullets.items == ("one", "two **bold**")
    assert bullets.markdown == "- one\n- two **bold**"
    assert bullets.text == "- one\n- two bold"
    assert bullets.line == 23
    assert ordered.items == ("first", "second")
    assert ordered.text == "1. first\n2. second"
    assert background.blocks[3].text == 'print("code")'
    assert article.section("summary") is article.sections[2]
    assert article.section("faq") is None


def test_body_markdown_excludes_front_matter() -> None:
    article = parse_article(ARTICLE, source="posts/sample.md")
    assert article.body_markdown.startswith("First lead paragraph")


def test_slug_from_file_name_and_datetime_date() -> None:
    text = "---\ntitle: T\ndate: 2025-03-01 09:30:00+09:00\n---\nBody.\n"
    article = parse_article(text, source="posts/2025 Spring Notes.md")
    assert article.slug == "2025-spring-notes"
    assert article.date == "2025-03-01T09:30:00+09:00"


def test_tags_from_comma_string_and_relative_image() -> None:
    text = "---\ntitle: T\ntags: \"rail, transit、 #city\"\nimage: img/a.png\n---\nBody.\n"
    article = parse_article(text, source="a.md")
    assert article.tags == ("rail", "transit", "city")
    assert article.image == "img/a.png"


def test_unknown_key_is_a_warning_with_its_line() -> None:
    article = parse_article("---\ntitle: T\ntitel: oops\n---\nBody.\n", source="a.md")
    assert len(article.warnings) == 1
    assert article.warnings[0].startswith("a.md:3: unknown front-matter key 'titel'")


def test_leading_title_heading_is_not_a_section() -> None:
    text = "---\ntitle: Hello\n---\n# Hello\n\nLead.\n\n## Part\n\nx\n"
    article = parse_article(text, source="a")
    assert [b.text for b in article.lead] == ["Lead."]
    assert [s.heading for s in article.sections] == ["Part"]


def test_no_front_matter_means_missing_title() -> None:
    with pytest.raises(InputError, match="no title"):
        parse_article("Just a body.\n", source="a.md")


@pytest.mark.parametrize(
    "heading, role",
    [
        ("よくある質問(FAQ)", "faq"), ("FAQ", "faq"), ("Q&A", "faq"), ("Ｑ＆Ａ", "faq"),
        ("質問と回答", "faq"), ("Frequently asked questions about fares", "faq"),
        ("まとめ|G20招待が示すもの", "summary"), ("Summary", "summary"), ("TL;DR", "summary"),
        ("Key takeaways", "summary"), ("In short", "summary"), ("要約", "summary"),
        ("ポイント", "summary"), ("今回のまとめ", "summary"),
        ("おわりに|これからの時代へ", "closing"), ("さいごに", "closing"), ("最後に", "closing"),
        ("Conclusion", "closing"), ("Closing thoughts", "closing"), ("Final thoughts", "closing"),
        ("ポイントカードの使い方", "body"), ("Closing the gap on transit", "body"),
        ("Background", "body"),
    ],
)
def test_heading_roles(heading: str, role: str) -> None:
    assert heading_role(heading) == role


def test_role_section_keeps_its_subheadings() -> None:
    text = "---\ntitle: T\n---\nLead.\n\n## Summary\n\n### Part one\n\n- a\n\n## Next\n\nx\n"
    article = parse_article(text, source="a.md")
    summary = article.sections[0]
    assert summary.role == "summary"
    assert [b.kind for b in summary.blocks] == ["heading", "bullet_list"]
    assert summary.blocks[0].text == "Part one"
    assert [s.heading for s in article.sections] == ["Summary", "Next"]


@pytest.mark.parametrize(
    "text, lang",
    [
        ("今日はいい天気ですね。電車に乗ります。", "ja"),
        ("東京駅からJRで行きます。", "ja"),
        ("这是一个关于铁路的文章。", "zh"),
        ("오늘은 날씨가 좋습니다.", "ko"),
        ("Это статья о железной дороге.", "ru"),
        ("An article about trains with one word 寿司 in it.", "en"),
        ("12345 !!!", "en"),
    ],
)
def test_lang_detection(text: str, lang: str) -> None:
    assert detect_lang(text) == lang


def test_lang_detected_when_absent() -> None:
    article = parse_article("---\ntitle: T\n---\n駅の話をします。\n", source="a.md")
    assert article.lang == "ja"


def test_hostile_content_stays_content() -> None:
    body = (
        "<script>alert(1)</script>\n\n"
        'Click <a href="javascript:alert(1)" onclick="x()">here</a> {{ 7*7 }} {% if x %}\n'
    )
    article = parse_article(f"---\ntitle: T\n---\n{body}", source="a.md")
    html_block, paragraph = article.lead
    assert html_block.kind == "html"
    assert html_block.markdown == "<script>alert(1)</script>"
    assert html_block.text == ""
    assert "{{ 7*7 }}" in paragraph.markdown and "{{ 7*7 }}" in paragraph.text
    assert "{% if x %}" in paragraph.text
    assert "javascript:alert(1)" in paragraph.markdown  # kept as source; outputs sanitize it


def test_refused_links_lose_their_target_everywhere() -> None:
    body = (
        "[click](javascript:alert(3)) [data](data:text/html;base64,AAAA) <vbscript:x>\n\n"
        "- [item](JavaScript:void(0))\n\n## [Head](javascript:x)\n\n"
        "```\n[code](javascript:kept)\n```\n"
    )
    article = parse_article(f"---\ntitle: T\n---\n{body}", source="a.md")
    paragraph, listing = article.lead
    assert paragraph.markdown == "click data " and paragraph.text == "click data"
    assert listing.items == ("item",)
    assert article.sections[0].heading == "Head"
    assert article.sections[0].blocks[0].text == "[code](javascript:kept)"


def test_read_post_strips_bom_and_crlf(tmp_path: Path) -> None:
    path = write(tmp_path, "p.md", "\ufeff---\r\ntitle: T\r\n---\r\nBody.\r\n".encode())
    text = read_post(path)
    assert text == "---\ntitle: T\n---\nBody.\n"
    assert parse_article(text, source=str(path)).lead[0].line == 4


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        read_post(tmp_path / "nope.md")
    assert info.value.where.endswith("nope.md")
    assert "not found" in info.value.problem and info.value.fix


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory"):
        read_post(tmp_path)


def test_not_utf8_names_the_byte_offset(tmp_path: Path) -> None:
    path = write(tmp_path, "p.md", b"---\ntitle: T\n---\n" + "駅".encode("shift_jis"))
    with pytest.raises(InputError) as info:
        read_post(path)
    assert "not UTF-8" in info.value.problem
    assert "byte offset 17" in info.value.problem
    assert info.value.exit_code == 2


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="empty"):
        read_post(write(tmp_path, "p.md", b"  \n"))


def test_too_large_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="too large"):
        read_post(write(tmp_path, "p.md", b"a" * 2_000_001))


def test_broken_yaml_names_the_file_line() -> None:
    text = "---\ntitle: ok\nauthor: [unclosed\ndate: 2025-01-01\n---\nBody\n"
    with pytest.raises(InputError) as info:
        parse_article(text, source="posts/bad.md")
    assert info.value.where in {"posts/bad.md:4", "posts/bad.md:5"}
    assert "broken YAML" in info.value.problem


def test_broken_yaml_bad_indent_line() -> None:
    text = "---\ntitle: ok\n  author: x\n---\nBody\n"
    with pytest.raises(InputError) as info:
        parse_article(text, source="b.md")
    assert info.value.where == "b.md:3"


def test_unclosed_front_matter() -> None:
    with pytest.raises(InputError, match="never closed"):
        parse_article("---\ntitle: T\nBody\n", source="a.md")


def test_front_matter_must_be_a_mapping() -> None:
    with pytest.raises(InputError, match="mapping"):
        parse_article("---\n- a\n- b\n---\nBody\n", source="a.md")


@pytest.mark.parametrize("title", ['""', "'   '", "null"])
def test_blank_title(title: str) -> None:
    with pytest.raises(InputError, match="no title"):
        parse_article(f"---\ntitle: {title}\n---\nBody\n", source="a.md")


def test_empty_body_names_the_line() -> None:
    with pytest.raises(InputError) as info:
        parse_article("---\ntitle: T\n---\n\n  \n", source="a.md")
    assert "no body" in info.value.problem
    assert info.value.where == "a.md:4"


def test_every_network_takes_the_editors_text() -> None:
    from publisher.networks import NAMES as NETWORKS

    lines = "".join(f"  {n}: \"Text for {n}.\"\n" for n in NETWORKS)
    art = parse(f"---\ntitle: T\nsocial:\n{lines}---\nBody\n")
    assert dict(art.social) == {n: f"Text for {n}." for n in NETWORKS}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "line, field",
    [
        ("title: [a, b]", "title"),
        ("author: {name: x}", "author"),
        ("date: yesterday", "date"),
        ("date: 2025-13-45", "date '2025-13-45'"),
        ("lang: 日本語", "lang"),
        ("url: javascript:alert(1)", "url"),
        ("url: /relative/path", "url"),
        ("image: data:image/png;base64,AAAA", "image"),
        ("tags: {a: b}", "tags"),
        ("tags: [[nested]]", "tags"),
        ("social: hello", "social"),
        ("social: {facebook: hi}", "facebook"),
        ("social: {x: [3]}", "social.x"),
        ("url: https://x.example:99999/", "port"),
        ("social: {thread: maybe}", "thread"),
        ("faq: yes", "faq"),
        ("faq: [{q: only a question}]", "faq item 1"),
        ("slug: '!!!'", "slug"),
    ],
)
def test_wrong_types_name_the_field(line: str, field: str) -> None:
    text = f"---\ntitle: T\n{line}\n---\nBody\n"
    with pytest.raises(InputError) as info:
        parse_article(text, source="a.md")
    assert field in info.value.problem
    assert info.value.fix
    assert info.value.where.startswith("a.md:")


def test_alias_bomb_is_refused_quickly() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}]" for i in range(1, 12)]
    text = "---\ntitle: T\n" + "\n".join(lines) + "\n---\nBody\n"
    with pytest.raises(InputError, match="nested or too large"):
        parse_article(text, source="a.md")


def test_deep_nesting_is_refused() -> None:
    text = "---\ntitle: T\nx: " + "[" * 5000 + "]" * 5000 + "\n---\nBody\n"
    with pytest.raises(InputError):
        parse_article(text, source="a.md")


def test_sample_posts_parse() -> None:
    posts = sample_posts()
    assert len(posts) >= 2
    for path in posts:
        article = parse_article(read_post(path), source=str(path))
        assert article.title and article.lead and article.sections
        assert article.section("summary") is not None
        assert article.faq
        assert article.warnings == ()


def test_japanese_sample_shape() -> None:
    path = POSTS / "chuo-line-extension.md"
    article = parse_article(read_post(path), source=str(path))
    assert article.lang == "ja"
    assert len(article.lead) >= 2
    assert any(" " in tag for tag in article.tags)
    roles = [s.role for s in article.sections]
    assert roles[-3:] == ["faq", "summary", "closing"]
    assert len(article.faq) == 10


FRONT_MATTER_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20) | st.dates(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_random_text_raises_only_input_error(text: str) -> None:
    with contextlib.suppress(InputError):
        parse_article(text, source="fuzz.md")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(["title", "date", "lang", "url", "image", "tags", "social", "faq",
                         "slug", "summary", "author", "other"]),
        FRONT_MATTER_VALUES,
        max_size=6,
    ),
    st.text(max_size=120),
)
def test_random_front_matter_raises_only_input_error(meta: dict[str, object], body: str) -> None:
    import yaml

    text = "---\n" + yaml.safe_dump(meta, allow_unicode=True) + "---\n" + body
    with contextlib.suppress(InputError):
        parse_article(text, source="fuzz.md")


def test_wrapped_lines_are_one_sentence_in_plain_text() -> None:
    from publisher.text.sentences import split_sentences

    text = (
        "---\ntitle: Wrapped\n---\n"
        "The line opens in April. The port authority says the\nnew run will cut times.\n\n"
        "会談後、記者団に\n「非常に良かった」\nと語りました。\n"
    )
    article = parse_article(text, source="wrapped.md")
    english, japanese = (block.text for block in article.lead)
    assert split_sentences(english) == [
        "The line opens in April.", "The port authority says the new run will cut times.",
    ]
    assert japanese == "会談後、記者団に「非常に良かった」と語りました。"


# --- text as written, and characters no output can carry (issue 12) --------------------------


@pytest.mark.parametrize(("line", "field", "value"), [
    ("title: 0x1F", "title", "0x1F"),
    ("title: 1:20:30", "title", "1:20:30"),
    ("title: 010", "title", "010"),
    ("title: 1e3", "title", "1e3"),
    ("title: no", "title", "no"),
    ("summary: 1_000", "summary", "1_000"),
    ("tags: [2024, off, 0o17]", "tags", ("2024", "off", "0o17")),
])
def test_plain_scalars_stay_as_written(line: str, field: str, value: object) -> None:
    front = line if field == "title" else f"title: T\n{line}"
    article = parse_article(f"---\n{front}\n---\nBody\n", source="p.md")
    assert getattr(article, field) == value


def test_true_and_false_are_still_booleans() -> None:
    article = parse_article("---\ntitle: T\nsocial: {thread: true}\n---\nBody\n", source="p.md")
    assert article.thread is True


@pytest.mark.parametrize("front", ['title: "\\ud800x"', 'title: T\nsummary: "a\\udfffb"'])
def test_a_lone_surrogate_in_the_front_matter_is_an_input_error(front: str) -> None:
    with pytest.raises(InputError, match="lone surrogate") as info:
        parse_article(f"---\n{front}\n---\nBody\n", source="p.md")
    assert info.value.exit_code == 2 and info.value.where.startswith("p.md")


def test_a_lone_surrogate_in_the_body_is_an_input_error() -> None:
    with pytest.raises(InputError, match="lone surrogate"):
        parse_article("---\ntitle: T\n---\nBody \udc80 here\n", source="p.md")


def test_control_characters_are_replaced_or_dropped_and_the_edition_renders() -> None:
    body = "Pasted\x0bfrom a\x0cword processor\x01 with \ufffe odd\uffff bytes\x1f.\n"
    article = parse_article(f'---\ntitle: "T\\x07itle"\n---\n{body}', source="p.md")
    assert article.lead[0].text == "Pasted from a word processor with  odd bytes."
    assert article.title == "Title"
    assert any("6 control character(s) removed" in w for w in article.warnings)
    edition = build_edition(article, Config(), load_templates(None))  # mjml-python parses it
    assert "word processor" in edition.newsletter.html


# --- only regular files, read capped (issue 12) -----------------------------------------------


def test_a_device_is_refused_at_once_whatever_its_size_says() -> None:
    with pytest.raises(InputError, match="not a regular file") as info:
        read_post(Path("/dev/zero"))  # st_size 0: trusting it read 3.8 GB, then MemoryError
    assert info.value.exit_code == 2


def test_a_fifo_post_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "post.md"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        read_post(fifo)



@pytest.mark.parametrize(("front", "line", "field"), [
    ("title: T\ndate: 2025-13-45\n", 3, "date '2025-13-45'"),
    ("title: T\nfaq:\n  - q: When?\n    a: Soon.\n    asked: 2025-02-30\n", 6,
     "faq '2025-02-30'"),
    ("title: T\nx: &d 2024-00-01\ny: [*d, *d]\n", 3, "x '2024-00-01'"),
])
def test_an_impossible_date_names_its_field_and_line(front: str, line: int, field: str) -> None:
    with pytest.raises(InputError) as info:
        parse_article(f"---\n{front}---\nBody\n", source="a.md")
    assert info.value.problem.startswith(f"{field} cannot be read")
    assert info.value.where == f"a.md:{line}"
    assert "2025-04-01" in info.value.fix
