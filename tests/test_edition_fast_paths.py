"""The edition's shortcuts give exactly what the slow ways give (issue 8 speed work).

Each shortcut is checked against the work it skips on generated inputs: tokens lent from the
body's parse vs parsing each text alone, libyaml vs PyYAML's parser, the tag replay vs
HTMLParser, URL runs vs twitter-text on the whole text, the reused nh3 Cleaner vs nh3.clean,
the plain text's one-pass tree vs markdown-it's SyntaxTreeNode.
"""

from __future__ import annotations

import html
import operator
import random
import re
from collections.abc import Callable, Sequence
from typing import Any

import nh3
import pytest
import yaml
from markdown_it.token import Token
from markdown_it.tree import SyntaxTreeNode

from publisher.edition import lede
from publisher.edition.newsletter import html as emailhtml
from publisher.edition.newsletter import plaintext
from publisher.networks import counting
from publisher.source import blocks, faq, frontmatter, markdown, sanitize
from publisher.text.cjk import drop_between, has_any

PIECES = [
    "para text", "日本語の文です。\n続きの行", "- a\n- b", "1. x\n2. y", "2. x", "> quote\nlazy",
    "# H1 *em* [l](http://x.y)", "Setext\n===", "Setext2\n---", "---", "* * *", "```\ncode\n```",
    "    indented", "<div>\nhtml\n</div>", "| a | b |\n|---|:-:|\n| 1 | 2 |",
    "- a\n\n  para in item\n\n- b", "- nested\n  - deeper\n    1. num",
    "text `code` [link](http://x.y) ![img](a.png)", "trailing  ", "  indented para",
    "1) paren", "+ plus", "* star\n* star2", "> - quote list\n> more", "line\\\nbreak",
    "<span>inline</span> html", "- item\n\n      code in item", "## 見出し｜まとめ",
    "[ref]: http://x.y", "see [ref]", "[x](javascript:alert(1))", "```\nunclosed",
    "<!-- c -->", "- - -", "1. a\n   > q", "| x |\n|---|\n| y |\nlazy row",
]


def _fields(token: Token) -> tuple[Any, ...]:
    """Every field of a token, children included."""
    children = [_fields(c) for c in token.children] if token.children is not None else None
    return (token.type, token.tag, token.nesting, token.attrs, token.map, token.level, children,
            token.content, token.markup, token.info, token.meta, token.block, token.hidden)


def _alone(text: str) -> list[tuple[Any, ...]]:
    """Tokens of parsing `text` by itself."""
    return [_fields(t) for t in markdown.markdown_parser().parse(text)]


def _documents(seed: int, count: int) -> list[str]:
    """Random documents of PIECES joined by one to three line breaks."""
    rng = random.Random(seed)
    return [
        "\n" * rng.randint(0, 2) + "".join(
            rng.choice(PIECES) + rng.choice(["\n", "\n\n", "\n\n\n"])
            for _ in range(rng.randint(1, 6))
        ).rstrip("\n")
        for _ in range(count)
    ]


def test_block_tokens_lent_from_the_body_equal_parsing_each_block_alone() -> None:
    lent_seen = 0
    for document in _documents(1, 600):
        markdown.clear_caches()
        blocks.parse_blocks(document)
        for text in list(markdown._lent_tokens):
            lent_seen += 1
            tokens = markdown.parse_tokens(text)  # a loan made into tokens on first use
            assert markdown._lent_tokens[text] is tokens
            assert [_fields(t) for t in tokens] == _alone(text), (document, text)
        for text in list(markdown._lent_inline_tokens):
            inline = markdown.parse_inline_tokens(text)
            assert markdown._lent_inline_tokens[text] is inline
            expected = [_fields(t) for t in markdown.markdown_parser().parseInline(text)]
            assert [_fields(t) for t in inline] == expected, (document, text)
    assert lent_seen > 1000  # the shortcut is actually taken


def test_one_line_list_items_are_lent_their_paragraph() -> None:
    markdown.clear_caches()
    blocks.parse_blocks("- 所要時間は *半分*\n- two\n  lines\n- # heading\n\n1. [a](http://x.y)\n")
    assert {"所要時間は *半分*", "[a](http://x.y)"} <= set(markdown._lent_tokens)
    assert "two\nlines" not in markdown._lent_tokens and "# heading" not in markdown._lent_tokens
    assert [_fields(t) for t in markdown.parse_tokens("所要時間は *半分*")] == _alone(
        "所要時間は *半分*")


def test_joined_blocks_lent_tokens_equal_parsing_the_joined_text() -> None:
    rng = random.Random(2)
    lent_seen = 0
    for _ in range(3000):
        markdown.clear_caches()
        texts = [rng.choice(PIECES) for _ in range(rng.randint(1, 5))]
        joined = markdown.join_blocks(texts)
        assert joined == "\n\n".join(texts)
        if joined in markdown._lent_tokens:
            lent_seen += 1
            assert [_fields(t) for t in markdown._lent_tokens[joined]] == _alone(joined), texts
    assert lent_seen > 300


@pytest.mark.parametrize("document", _documents(3, 40))
def test_rendering_is_the_same_with_and_without_lent_tokens(document: str) -> None:
    markdown.clear_caches()
    parsed = blocks.parse_blocks(document)
    texts = [p.block.markdown for p in parsed]
    with_lent = [markdown.render_html(markdown.join_blocks(texts))]
    with_lent += [markdown.render_html(t) for t in texts]
    markdown.clear_caches()
    alone = [markdown.render_html("\n\n".join(texts))] + [markdown.render_html(t) for t in texts]
    assert with_lent == alone


def test_front_matter_fast_path_equals_the_pure_loader() -> None:
    rng = random.Random(3)
    keys = ["title", "date", "tags", "yes", "on", "x_y"]
    values = [
        "foo", "日本語のタイトル 空白あり", "2025-03-15", "2025-03-15 10:00:00", "1.5", "0x1F",
        "yes", "~", "null", '"quoted: x"', "'single ''x'''", '""', "https://example.com/a?b=c",
        "a:b", "[a, b]", '[鉄道, "regional rail", まちづくり]', "[]", "{x: 1}", "a #c", "-x",
        "? x", "a\tb", "!tag", "&a x", "*a", "|", ">", "[a, [b]]", "2024-13-45", "12:30:00",
        "-.inf", ".NaN", "[a,b,]", "'unclosed", "x:", "\u2028", "\x85",
    ]
    fast_seen = 0
    for _ in range(4000):
        lines: list[str] = []
        for _ in range(rng.randint(1, 5)):
            key = rng.choice(keys)
            if rng.random() < 0.2:
                lines += [f"{key}:"] + [f"  - {rng.choice(values)}" for _ in range(2)]
            else:
                lines.append(f"{key}: {rng.choice(values)}")
        text = "\n".join(lines) + "\n"
        fast = frontmatter._fast_load(text)
        if fast is None:
            continue
        fast_seen += 1
        slow = yaml.load(text, Loader=frontmatter.TextLoader)  # the pure path it stands in for
        assert repr(fast) == repr(slow), text
    assert fast_seen > 500


def test_the_libyaml_subset_admits_exactly_its_characters() -> None:
    admitted = re.compile(  # printable, LF; no tab, NEL, U+2028/9, BOM, U+FFFE/F or surrogate
        "[\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
    )
    for code in range(0x110000):
        char = chr(code)
        assert bool(frontmatter.SIMPLE_YAML_CHARS.fullmatch(char)) == bool(
            admitted.fullmatch(char)), hex(code)


def test_style_replay_equals_html_parser() -> None:
    rng = random.Random(4)
    snippets = [
        *PIECES, "<img src=x alt='a\"b'>", "&nbsp;&copy;&#x1F600; & <",
        "<table><tr><td align=center>x</td></tr></table>", "<abbr title=\"A&B\">ab</abbr>",
        "<ol start=3><li>a</li></ol>",
    ]
    for _ in range(1500):
        source = "\n\n".join(rng.choice(snippets) for _ in range(rng.randint(1, 4)))
        sanitized = sanitize.clean_html(markdown.markdown_parser().render(source),
                                        base_url=rng.choice(["", "https://ex.com/a/"]))
        parser = emailhtml._StyleInliner()
        parser.feed(sanitized)
        parser.close()
        assert emailhtml.inline_styles(sanitized) == "".join(parser.out).strip()


def test_style_replay_declines_markup_beyond_nh3_output() -> None:
    for markup in ("<!-- c --><p>x</p>", "<p>a < b</p>", "</p x='1'>", "<br/ >"):
        assert not emailhtml._replay(markup, emailhtml._StyleInliner())


def test_url_runs_find_what_twitter_text_finds_in_the_whole_text() -> None:
    from twitter_text import extract_urls_with_indices as extract

    rng = random.Random(5)
    alphabet = [
        *"abcxyz019.:/?#@_-~%&=()[]'\"!*,;$+ \n\t\u3000\u00a0\u202aあ日。、．＠#💡",
        "https://a.co/", "b.com", "t.co/abc", "http://例え.jp/x", "example.com/a_b(c)",
    ]
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30)))
        counting.clear_caches()
        expected = [(e["indices"][0], e["indices"][1], e["url"]) for e in extract(text)]
        assert [(u.start, u.end, u.url) for u in counting.find_urls(text)] == expected, text


def test_reused_cleaner_equals_nh3_clean() -> None:
    rng = random.Random(6)
    for _ in range(300):
        source = "\n\n".join(rng.choice(PIECES) for _ in range(rng.randint(1, 4)))
        rendered = markdown.markdown_parser().render(source) + "<a href='/r' onclick=x>l</a>"
        for relative in ("deny", ("rewrite_with_base", "https://ex.com/a/")):
            expected = nh3.clean(rendered, **sanitize._options(relative))
            assert sanitize._clean(rendered, relative) == expected
    assert html.unescape(sanitize.clean_html("<script>x</script>&amp;")) == "&"


def test_shared_tokens_are_read_only_and_rendering_images_does_not_touch_them() -> None:
    markdown.clear_caches()
    text = "See ![a *map*](m.png) and [it](https://example.com)."
    tokens = markdown.parse_tokens(text)
    inline = next(t for t in tokens if t.type == "inline")
    image = next(c for c in inline.children or () if c.type == "image")
    for mutate in (lambda: setattr(inline, "content", "x"), lambda: image.attrSet("alt", "x"),
                   lambda: operator.setitem(image.meta, "x", 1)):
        with pytest.raises(TypeError):
            mutate()
    first = markdown.render_html(text)
    markdown.render_html.cache_clear()
    assert markdown.render_html(text) == first and 'alt="a map"' in first
    assert image.attrGet("alt") == ""
    assert markdown.parse_tokens(text) is tokens


def _node_fields(node: Any) -> tuple[Any, ...]:
    """What the plain-text renderer reads of a node, children included."""
    return (node.type, node.tag, dict(node.attrs), node.content,
            [_node_fields(c) for c in node.children])


def test_plain_text_tree_equals_syntax_tree_node() -> None:
    extra = ["**bold _em_** ~~del~~", "[**a** `c`](http://x.y 't')", "![alt *e*](i.png)",
             "<b>x</b> &amp; \\*", "a\\\nb  \nc"]
    documents = _documents(7, 400) + extra
    for document in documents:
        for tokens in (markdown.markdown_parser().parse(document),
                       markdown.markdown_parser().parseInline(document)):
            expected = [_node_fields(n) for n in SyntaxTreeNode(tokens).children]
            assert [_node_fields(n) for n in plaintext.tree(tokens)] == expected, document
    markdown.clear_caches()
    refs = plaintext.LinkRefs()
    render = plaintext.TextRenderer(refs=refs, base_url="https://ex.com/a/")
    assert render.blocks("See [a](b) and ![i](c.png).\n\n- x\n- [y](b)") == (
        "See a [1] and [Image: i] [2].\n\n- x\n- y [1]")


def _inert_by_code_scan(text: str) -> str:
    """faq.inert_html without its guard: tags outside code shown as text."""
    out: list[str] = []
    last = 0
    for code in faq.CODE_RE.finditer(text):
        out += [faq.TAG_OPEN_RE.sub("&lt;", text[last : code.start()]), code.group()]
        last = code.end()
    return "".join([*out, faq.TAG_OPEN_RE.sub("&lt;", text[last:])])


# The lookaround patterns the CJK joins replaced (text/cjk.py), kept here as the reference.
OLD_CJK_AROUND_BREAK = re.compile("(?<=[\u3000-\u30ff\u3400-\u9fff\uff00-\uffef])\x00"
                                  "(?=[\u3000-\u30ff\u3400-\u9fff\uff00-\uffef])")
OLD_CJK = "\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff01-\uff60"
OLD_CJK_SOFT_BREAK = re.compile(f"(?<=[{OLD_CJK}])\n(?=[{OLD_CJK}])")
OLD_CJK_HEADLINE = re.compile("[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]")
OLD_GLUED_BYLINE = re.compile(
    r"^[A-Z][A-Z.'-]+(?: [A-Z][A-Z.'-]+){1,3}(?=[\u3040-\u30ff\u3400-\u9fff])")


# Every BMP code point (the CJK ranges all lie there) and a stride of the astral planes.
CODE_POINTS = [*range(0x10000), *range(0x10000, 0x110000, 97)]


@pytest.mark.parametrize(("join", "old", "sep"), [
    (blocks._join_soft_breaks,
     lambda text: OLD_CJK_AROUND_BREAK.sub("", text).replace(blocks.SOFT_BREAK, " "),
     blocks.SOFT_BREAK),
    (lambda text: drop_between(text, "\n", emailhtml.CJK_RANGES),
     lambda text: OLD_CJK_SOFT_BREAK.sub("", text), "\n"),
], ids=["markdown soft breaks", "newsletter html"])
def test_cjk_joins_equal_the_lookaround_patterns_on_every_code_point(
    join: Callable[[str], str], old: Callable[[str], str], sep: str
) -> None:
    for code in CODE_POINTS:
        char = chr(code)
        for text in (f"{char}{sep}漢", f"漢{sep}{char}", f"{char}{sep}{char}",
                     f"漢{sep}{sep}{char}"):
            assert join(text) == old(text), hex(code)


def test_a_headline_is_phrased_when_the_old_cjk_class_finds_a_character_in_it() -> None:
    for code in CODE_POINTS:
        for text in (chr(code), f"Tokyo {chr(code)}!"):
            found = OLD_CJK_HEADLINE.search(text) is not None
            assert has_any(text, emailhtml.PHRASE_RANGES) == found, hex(code)


def test_a_glued_byline_is_cut_where_the_old_lookahead_cut_it() -> None:
    rng = random.Random(13)
    pieces = ["TARO YAMADA", "TARO", " YAMADA", "A", "B.", "O'", "-", " ", "市", "あ", "ア", "x",
              "1", "\u4dc0", "\u3040", "\u30ff", "\u2fff", "\ua000", "。"]
    cut = 0
    for _ in range(20000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 9)))
        expected = OLD_GLUED_BYLINE.sub("", text, count=1) or text
        assert lede.without_byline(text) == expected, text
        cut += expected != text
    assert cut > 500


def test_substring_guards_skip_only_scans_that_would_find_nothing() -> None:
    from publisher.edition.newsletter import placeholders

    rng = random.Random(8)
    alphabet = [*PIECES, "javascript", "JavaScript", "jav&#x61;script", "&colon;", "&#58;",
                "&#x3a;", ":", "&", " ", "\n", "\x00", "data", "ſ", "K", "(", ")", "[x]",
                "日本", "語", "\ue000", "\ue001", "\ue002", "vbscript\t:", "file", "`",
                "```\n", "~~~", "<b>", "<", "java", "\u017fcript", "scr\u0130pt", "f\u0131le",
                "LiveScript", "DATA", "\u212a"]
    assert all(":" in form or "&" in form for form in blocks._spelled(":")[3:-1].split("|"))
    unsafe_scheme = re.compile(blocks.UNSAFE_SCHEME, re.IGNORECASE)
    link, autolink, definition = blocks._unsafe_link_res()
    for _ in range(4000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        slow = definition.sub("", autolink.sub("", link.sub(r"\1", text)))
        assert blocks.defuse_unsafe_links(text) == slow, text
        assert blocks._may_name_unsafe_scheme(text) or not unsafe_scheme.search(text), text
        assert blocks._join_soft_breaks(text) == OLD_CJK_AROUND_BREAK.sub("", text).replace(
            blocks.SOFT_BREAK, " ")
        assert placeholders.neutralize(text) == placeholders.MARKER_CHARS.sub("", text)
        assert faq.inert_html(text) == _inert_by_code_scan(text)
        inliner = emailhtml._StyleInliner()
        inliner.handle_data(text)
        assert inliner.out == [html.escape(OLD_CJK_SOFT_BREAK.sub("", text), quote=False)]


def test_plain_text_of_joined_blocks_equals_rendering_the_joined_text() -> None:
    rng = random.Random(9)
    pieces = [*PIECES, "[a](http://x.y) and [b](/rel)", "![img](p.png)", "- [l](http://x.y)"]
    read_apart = 0
    for _ in range(1500):
        texts = [rng.choice(pieces) for _ in range(rng.randint(0, 5))]
        markdown.clear_caches()
        read_apart += markdown.joined_parts(texts) is not None
        fast = plaintext.TextRenderer(refs=plaintext.LinkRefs(), base_url="https://ex.com/a/")
        got = fast.joined_blocks(texts)
        markdown.clear_caches()
        slow = plaintext.TextRenderer(refs=plaintext.LinkRefs(), base_url="https://ex.com/a/")
        assert got == slow.blocks("\n\n".join(texts)), texts
        assert fast.refs.urls == slow.refs.urls
    assert read_apart > 300


def _span_end_by_levels(tokens: Sequence[Token], start: int) -> int:
    """The closing token as found by scanning for the next closing token at the same level."""
    token = tokens[start]
    if token.nesting != 1:
        return start
    for j in range(start + 1, len(tokens)):
        if tokens[j].level == token.level and tokens[j].nesting == -1:
            return j
    return len(tokens) - 1


def test_span_ends_equal_scanning_for_the_closing_token() -> None:
    for document in _documents(10, 500):
        tokens = markdown.markdown_parser().parse(document)
        expected = [_span_end_by_levels(tokens, i) for i in range(len(tokens))]
        assert blocks.span_ends(tokens) == expected, document


def test_a_key_line_is_found_where_the_old_pattern_found_it() -> None:
    rng = random.Random(21)
    pieces = ["title", "tags", "tag", "'", '"', ":", " ", "\t", "\u3000", "\xa0", "x", "- ", "\n"]
    found = 0
    for _ in range(20000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        lines = text.split("\n")
        for key in ("title", "tags"):
            old = re.compile(rf"^['\"]?{re.escape(key)}['\"]?\s*:")
            line = next((i + 2 for i, line in enumerate(lines) if old.match(line)), 1)
            assert frontmatter._key_line(lines, key) == line, text
            found += line > 1
    assert found > 300
