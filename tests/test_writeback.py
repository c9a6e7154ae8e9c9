"""`--write-back` changes only the `syndication:` key of the front matter."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from publisher.errors import InputError, SystemFault
from publisher.source import writeback
from publisher.source.writeback import with_syndication, write_back

URLS = ["https://x.com/i/web/status/1", "https://bsky.app/profile/a.example/post/3k2a"]
ARTICLE = """---
title: "中央アジアとG20"   # 見出し
date: 2024-11-25
tags: [外交, 経済]
---

本文です。

---

区切りの後も本文。
"""


def front(text: str) -> dict[str, object]:
    """The parsed front matter."""
    return yaml.safe_load(text.split("\n---\n", 1)[0].removeprefix("---\n"))  # type: ignore[no-any-return]


def test_inserts_the_key_and_keeps_every_other_byte() -> None:
    updated = with_syndication(ARTICLE, URLS)
    added = "syndication:\n  - https://x.com/i/web/status/1\n" \
            "  - https://bsky.app/profile/a.example/post/3k2a\n"
    assert updated == ARTICLE.replace("tags: [外交, 経済]\n", "tags: [外交, 経済]\n" + added)
    assert front(updated)["syndication"] == URLS


def test_replaces_a_block_list_and_keeps_earlier_entries() -> None:
    text = ARTICLE.replace("date: 2024-11-25\n", "date: 2024-11-25\nsyndication:\n"
                           "  - https://news.example/item?id=9\n\n  - https://x.com/i/web/status/1\n"
                           "lang: ja\n")
    updated = with_syndication(text, URLS)
    assert front(updated)["syndication"] == ["https://news.example/item?id=9", *URLS]
    assert front(updated)["lang"] == "ja"
    before, after = text.split("syndication:")[0], text.split("lang: ja")[1]
    assert updated.startswith(before) and updated.endswith("lang: ja" + after)


@pytest.mark.parametrize("value", ["[https://a.example/1]", "https://a.example/1", ""])
def test_replaces_inline_forms(value: str) -> None:
    text = ARTICLE.replace("date: 2024-11-25\n", f"date: 2024-11-25\nsyndication: {value}\n")
    expected = ["https://a.example/1"] if value else []
    assert front(with_syndication(text, URLS[:1]))["syndication"] == [*expected, URLS[0]]


def test_crlf_and_bom_are_kept() -> None:
    text = "\ufeff" + ARTICLE.replace("\n", "\r\n")
    updated = with_syndication(text, URLS)
    assert updated.startswith("\ufeff---\r\n")
    assert "\n" not in updated.replace("\r\n", "")
    assert updated.replace("syndication:\r\n  - " + URLS[0] + "\r\n  - " + URLS[1] + "\r\n",
                           "") == text


def test_adds_front_matter_when_there_is_none() -> None:
    updated = with_syndication("# Title\n\nBody\n", URLS[:1])
    assert updated == f"---\nsyndication:\n  - {URLS[0]}\n---\n# Title\n\nBody\n"


def test_running_twice_changes_nothing_more() -> None:
    once = with_syndication(ARTICLE, URLS)
    assert with_syndication(once, URLS) == once
    assert with_syndication(ARTICLE, []) == ARTICLE


def test_awkward_urls_are_quoted_so_yaml_reads_them_back() -> None:
    odd = ["https://a.example/p#frag", "https://a.example/x: y", "https://a.example/'q'"]
    assert front(with_syndication(ARTICLE, odd))["syndication"] == odd


def test_unclosed_front_matter_is_an_input_error() -> None:
    with pytest.raises(InputError, match="not closed"):
        with_syndication("---\ntitle: x\n", URLS)


def test_write_back_rewrites_the_file_atomically(tmp_path: Path) -> None:
    article = tmp_path / "post.md"
    article.write_bytes(ARTICLE.encode())
    assert write_back(article, URLS) is True
    assert front(article.read_text(encoding="utf-8"))["syndication"] == URLS
    assert write_back(article, URLS) is False
    assert [p.name for p in tmp_path.iterdir()] == ["post.md"]


def test_a_full_disk_is_a_system_fault_and_leaves_no_temporary_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    article = tmp_path / "post.md"
    article.write_bytes(ARTICLE.encode())

    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writeback.os, "replace", full)
    with pytest.raises(SystemFault, match="No space left on device") as info:
        write_back(article, URLS)
    assert info.value.exit_code == 3
    assert [p.name for p in tmp_path.iterdir()] == ["post.md"]
    assert article.read_bytes() == ARTICLE.encode()


safe_values = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=20)


@given(st.dictionaries(st.from_regex(r"[a-z]{1,8}", fullmatch=True).filter(
    lambda k: k != "syndication"), safe_values, min_size=1, max_size=5), st.lists(
    st.from_regex(r"https://[a-z]{1,10}\.example/[a-z0-9#:?=&'\-]{0,12}", fullmatch=True),
    max_size=4))
def test_other_keys_survive_any_front_matter(keys: dict[str, str], urls: list[str]) -> None:
    text = "---\n" + yaml.safe_dump(keys, allow_unicode=True) + "---\nbody\n"
    updated = with_syndication(text, urls)
    parsed = front(updated) or {}
    assert {k: v for k, v in parsed.items() if k != "syndication"} == keys
    assert parsed.get("syndication", []) == list(dict.fromkeys(urls))
    assert updated.endswith("---\nbody\n")


def test_written_back_links_do_not_make_a_new_edition() -> None:
    from publisher.source.read import parse_article

    text = "---\ntitle: Hello\ntags: [a]\n---\nBody text.\n"
    linked = with_syndication(text, ["https://mastodon.example/@me/1"])
    assert linked != text
    before, after = parse_article(text, source="a.md"), parse_article(linked, source="a.md")
    assert before.content_hash == after.content_hash
    assert after.warnings == ()
    edited = linked.replace("Body text.", "Body text, edited.")
    assert parse_article(edited, source="a.md").content_hash != before.content_hash
