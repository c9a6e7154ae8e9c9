"""`publish digest`: FAQs across posts become files and a post that publishes like any other."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_publish


def test_digest_gathers_posts_and_is_publishable(workdir: Path) -> None:
    result = run_publish("digest", "posts", "--since", "2025-01-01", "--json", cwd=workdir)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert len(summary["posts"]) == 3 and summary["questions"] >= 19
    folder = Path(workdir / summary["files"][0]).parent
    jsonld = json.loads((folder / "faq.jsonld").read_text(encoding="utf-8"))
    assert jsonld["@type"] == "FAQPage" and len(jsonld["mainEntity"]) == summary["questions"]
    post = folder / "digest.md"
    published = run_publish(post.relative_to(workdir), cwd=workdir)
    assert published.returncode == 0, published.stderr
    html = (workdir / "outbox" / folder.name / "newsletter.html").read_text(encoding="utf-8")
    assert "The library now lends tools" in html


def test_digest_last_selects_the_newest(workdir: Path) -> None:
    result = run_publish("digest", "posts", "--last", "1", "--json", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["posts"] == ["posts/chuo-line-extension.md"]


def test_digest_of_a_missing_folder_is_a_clear_error(workdir: Path) -> None:
    result = run_publish("digest", "nowhere", cwd=workdir)
    assert result.returncode == 2 and "nowhere" in result.stderr
