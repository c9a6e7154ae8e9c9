"""`publish digest`: FAQs across posts become files and a post that publishes like any other."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from tests.helpers import run_publish

FAQ_FILES = ("faq.md", "faq.html", "faq.jsonld")


def write_post(folder: Path, slug: str, *, lang: str, date: str, faq: str = "",
               tags: str = "") -> None:
    """A small post with an FAQ section of sub-heading questions (or none)."""
    folder.mkdir(parents=True, exist_ok=True)
    section = f"\n## {'よくある質問' if lang == 'ja' else 'FAQ'}\n\n{faq}" if faq else ""
    (folder / f"{slug}.md").write_text(
        f"---\ntitle: Post {slug}\nlang: {lang}\ndate: {date}\nurl: https://news.example.org/"
        f"{slug}\ntags: [{tags}]\n---\nThe lead of {slug} says what happened.\n{section}",
        encoding="utf-8",
    )


def mixed_folder(root: Path) -> Path:
    """Four English posts (one without FAQ) and two Japanese ones."""
    posts = root / "posts"
    write_post(posts, "rail", lang="en", date="2025-03-01", tags="transit, rail",
               faq="### Is it free?\n\nNo, a ticket is needed.\n\n### When?\n\nIn May.\n")
    write_post(posts, "bus", lang="en", date="2025-03-02", tags="transit",
               faq="### Where is the stop?\n\nOutside the station.\n")
    write_post(posts, "park", lang="en", date="2025-03-03", tags="parks",
               faq="### IS IT FREE!\n\nStill no.\n")  # merged into rail's question
    write_post(posts, "notes", lang="en", date="2025-03-04", tags="transit")  # no FAQ
    write_post(posts, "eki", lang="ja", date="2025-03-05", tags="鉄道",
               faq="### 料金は？\n\n無料です。\n")
    write_post(posts, "basu", lang="ja", date="2025-03-06", tags="鉄道, バス",
               faq="### 停留所は？\n\n駅前です。\n")
    return posts


def digest_json(root: Path, *args: str) -> list[dict[str, Any]]:
    """The digests `publish digest --json` reports."""
    result = run_publish("digest", "posts", "--json", *args, cwd=root)
    assert result.returncode == 0, result.stderr
    digests: list[dict[str, Any]] = json.loads(result.stdout)["digests"]
    return digests


def test_a_mixed_folder_gives_one_digest_per_language(tmp_path: Path) -> None:
    mixed_folder(tmp_path)
    digests = {d["lang"]: d for d in digest_json(tmp_path)}
    assert set(digests) == {"en", "ja"}
    assert digests["en"]["questions"] == 3 and digests["ja"]["questions"] == 2
    assert Path(digests["en"]["files"][0]).parent.name == "faq-digest-2025-03-04-en"
    assert Path(digests["ja"]["files"][0]).parent.name == "faq-digest-2025-03-06-ja"
    ja_post = (tmp_path / digests["ja"]["files"][0]).read_text(encoding="utf-8")
    assert 'lang: "ja"' in ja_post and "よくある質問まとめ" in ja_post


def test_lang_selects_one_language_and_last_counts_within_it(tmp_path: Path) -> None:
    mixed_folder(tmp_path)
    (only,) = digest_json(tmp_path, "--lang", "ja", "--last", "1")
    assert only["lang"] == "ja" and only["posts"] == ["posts/basu.md"]
    missing = run_publish("digest", "posts", "--lang", "fr", cwd=tmp_path)
    assert missing.returncode == 2 and "no post in 'fr'" in missing.stderr, missing.stderr


def test_the_cli_and_the_digest_give_the_same_counts(tmp_path: Path) -> None:
    mixed_folder(tmp_path)
    result = run_publish("digest", "posts", "--lang", "en", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    said = re.search(r"en: (\d+) questions from (\d+) posts", result.stdout)
    assert said is not None, result.stdout
    assert said.groups() == ("3", "3")  # notes.md has no FAQ: three posts brought questions
    assert "no FAQ in 1 more selected: posts/notes.md" in result.stdout
    post = next((tmp_path / "outbox").glob("faq-digest-*-en/digest.md")).read_text("utf-8")
    assert "3 reader questions from 3 recent posts" in post


def test_publishing_the_digest_keeps_its_faq_files_and_posts_link_and_tags(
    tmp_path: Path,
) -> None:
    mixed_folder(tmp_path)
    (digest,) = digest_json(tmp_path, "--lang", "en", "--url",
                            "https://news.example.org/faq/{slug}/")
    folder = tmp_path / Path(digest["files"][0]).parent
    before = {name: (folder / name).read_bytes() for name in FAQ_FILES}
    assert all(before.values())
    published = run_publish(folder.relative_to(tmp_path) / "digest.md", cwd=tmp_path)
    assert published.returncode == 0, published.stderr
    assert {name: (folder / name).read_bytes() for name in FAQ_FILES} == before
    edition = json.loads((folder / "edition.json").read_text(encoding="utf-8"))
    assert len(edition["faq"]["items"]) == digest["questions"]
    link = "https://news.example.org/faq/faq-digest-2025-03-04-en/"
    for network, posts in edition["social"].items():
        assert link in posts[0]["text"], network
    assert "#transit" in edition["social"]["x"][0]["text"]  # the most used tag comes first
    html = (folder / "newsletter.html").read_text(encoding="utf-8")
    assert "Outside the station." in html


def test_the_digest_published_elsewhere_still_has_its_questions(tmp_path: Path) -> None:
    mixed_folder(tmp_path)
    (digest,) = digest_json(tmp_path, "--lang", "ja")
    post = tmp_path / digest["files"][0]
    published = run_publish(post.relative_to(tmp_path), "--out", "elsewhere", cwd=tmp_path)
    assert published.returncode == 0, published.stderr
    jsonld = json.loads(next((tmp_path / "elsewhere").glob("*/faq.jsonld")).read_text("utf-8"))
    assert [q["name"] for q in jsonld["mainEntity"]] == ["料金は？", "停留所は？"]


def test_without_a_url_the_cli_warns_that_posts_carry_no_link(tmp_path: Path) -> None:
    mixed_folder(tmp_path)
    result = run_publish("digest", "posts", "--lang", "en", cwd=tmp_path)
    assert "its posts carry no link" in result.stdout
    (tmp_path / "publisher.toml").write_text(
        '[site]\nurl = "https://news.example.org"\n', encoding="utf-8")
    (digest,) = digest_json(tmp_path, "--lang", "en")
    assert digest["url"] == "https://news.example.org"


def test_digest_of_the_sample_posts_is_publishable(workdir: Path) -> None:
    digests = digest_json(workdir, "--since", "2025-01-01")
    assert {d["lang"] for d in digests} >= {"en", "ja"}
    folder = workdir / Path(next(d for d in digests if d["lang"] == "en")["files"][0]).parent
    published = run_publish((folder / "digest.md").relative_to(workdir), cwd=workdir)
    assert published.returncode == 0, published.stderr
    html = (folder / "newsletter.html").read_text(encoding="utf-8")
    assert "The library now lends tools" in html


def test_digest_of_a_missing_folder_is_a_clear_error(workdir: Path) -> None:
    result = run_publish("digest", "nowhere", cwd=workdir)
    assert result.returncode == 2 and "nowhere" in result.stderr


def test_a_fifo_in_the_folder_is_one_clear_error_not_a_hang(tmp_path: Path) -> None:
    folder = mixed_folder(tmp_path)
    os.mkfifo(folder / "stray.md")
    result = run_publish("digest", folder, "--out", tmp_path / "out", cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().endswith("give the path of one .md file")
    assert "stray.md: not a regular file" in result.stderr and "Traceback" not in result.stderr
