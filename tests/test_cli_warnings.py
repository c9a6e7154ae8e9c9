"""Warnings before harm (`publish` warns itself, `--strict` stops CI) and the outbox reach."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import run_publish

CLEAN = """---
title: Short and clear
url: https://example.org/news/clear
tags: [news]
summary: A short post that needs no warning at all.
---
The lead paragraph says what happened, plainly.

## Details

More about it.
"""


def write_post(workdir: Path, text: str, name: str = "post.md") -> str:
    """A post in the working directory; returns its path as the editor types it."""
    (workdir / "posts").mkdir(exist_ok=True)
    (workdir / "posts" / name).write_text(text, encoding="utf-8")
    return f"posts/{name}"


def warnings_of(stderr: str) -> list[str]:
    """The warning lines `publish` printed."""
    return [line for line in stderr.splitlines() if line.startswith("warning:")]


def test_a_clean_post_warns_nothing_and_strict_lets_it_through(workdir: Path) -> None:
    post = write_post(workdir, CLEAN)
    result = run_publish(post, "--strict", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert warnings_of(result.stderr) == []
    assert (workdir / "outbox" / "post" / "newsletter.eml").is_file()


def test_every_warning_is_printed_before_sending_and_strict_exits_2(workdir: Path) -> None:
    post = write_post(workdir, CLEAN.replace(
        "title: Short and clear",
        "title: A title far too long to fit on the single inbox line of a phone screen\n"
        "image: images/missing.jpg",
    ).replace("url: https://example.org/news/clear\n", "").replace(
        "## Details\n\nMore about it.",
        "## FAQ\n\nWe will answer your questions here soon.",
    ))
    result = run_publish(post, "--dry-run", cwd=workdir)
    assert result.returncode == 0, result.stderr
    found = "\n".join(warnings_of(result.stderr))
    assert "subject is 70 columns wide; phones show about 60" in found
    assert "no url, so the social posts carry no link" in found
    assert "posts/images/missing.jpg does not exist" in found
    assert "section 'FAQ' looks like an FAQ but no question/answer pair" in found

    strict = run_publish(post, "--strict", cwd=workdir)
    assert strict.returncode == 2
    last = strict.stderr.strip().splitlines()[-1]
    count = len(warnings_of(result.stderr))
    assert last.startswith(f"error: posts/post.md: {count} warnings and --strict: nothing was sent")
    assert warnings_of(strict.stderr) == warnings_of(result.stderr)
    assert not (workdir / "outbox").exists()
    assert not (workdir / ".publisher").exists()


def test_tracking_parameters_are_stripped_from_what_is_posted(workdir: Path) -> None:
    post = write_post(workdir, CLEAN.replace(
        "url: https://example.org/news/clear",
        "url: https://example.org/news/clear?id=7&utm_source=feed&ref=hn&fbclid=AbC",
    ))
    result = run_publish(post, "--json", "--dry-run", cwd=workdir)
    assert result.returncode == 0, result.stderr
    (note,) = warnings_of(result.stderr)
    assert "tracking parameters (utm_source, ref, fbclid); they were stripped" in note
    edition = json.loads(result.stdout)
    assert edition["article"]["url"] == "https://example.org/news/clear?id=7"
    texts = [p["text"] for posts in edition["social"].values() for p in posts]
    assert texts and all("https://example.org/news/clear?id=7" in t for t in texts)
    everything = json.dumps(edition["social"]) + edition["newsletter"]["html"]
    for param in ("utm_source=feed", "ref=hn", "fbclid"):
        assert param not in everything
    assert run_publish(post, "--strict", "--dry-run", cwd=workdir).returncode == 2


def test_the_outbox_says_how_many_subscribers_a_real_transport_would_reach(
    workdir: Path,
) -> None:
    post = write_post(workdir, CLEAN)
    without_list = run_publish(post, "--dry-run", cwd=workdir)
    assert "would reach" not in without_list.stdout
    (workdir / "list.csv").write_text(
        "email,name,status\na@example.org,A,subscribed\nb@example.org,B,subscribed\n"
        "c@example.org,C,subscribed\ngone@example.org,G,unsubscribed\n", encoding="utf-8")
    assert run_publish("subscribers", "import", "list.csv", cwd=workdir).returncode == 0

    plan = run_publish(post, "--dry-run", cwd=workdir)
    assert plan.returncode == 0, plan.stderr
    assert "1 sample (3 subscribers)" in plan.stdout
    assert "a real transport would reach 3 subscribers" in plan.stdout

    sent = run_publish(post, cwd=workdir)
    assert sent.returncode == 0, sent.stderr
    assert "wrote the sample newsletter.eml; a real transport would reach 3 subscribers" in (
        sent.stdout)
    emls = sorted(p.name for p in (workdir / "outbox" / "post").glob("*.eml"))
    assert emls == ["newsletter.eml"]  # the outbox still writes one sample, not a copy each
