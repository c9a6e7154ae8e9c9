"""Whole edition of the Japanese sample in-process, against Markdown parse plus one MJML render.

Target (issue 8): building the whole edition (parse the post, newsletter, social posts, FAQ
digest, plan) costs at most 4× parsing its Markdown plus one MJML render, measured in the same run.
"""

from __future__ import annotations

import sys
from typing import Any

from _common import JAPANESE_SAMPLE, REPO, Result, median_seconds, report

sys.path.insert(0, str(REPO / "src"))

import mjml

from publisher.config.settings import Config
from publisher.edition.build import build_edition
from publisher.edition.newsletter.render import load_templates
from publisher.networks import counting
from publisher.plan import build_plan
from publisher.source import markdown, sanitize
from publisher.source.markdown import markdown_parser
from publisher.source.read import parse_article, read_post
from publisher.text import sentences

RUNS = 41
TARGET_RATIO = 4.0


def mjml_source_of(text: str, config: Config) -> str:
    """The MJML the newsletter renderer hands to mjml-python for this post (captured once)."""
    captured: list[str] = []
    original = mjml.mjml2html

    def capture(source: str, **kwargs: Any) -> Any:
        captured.append(source)
        return original(source, **kwargs)

    mjml.mjml2html = capture  # type: ignore[assignment]  # newsletter.py calls mjml.mjml2html
    try:
        build_edition(parse_article(text, source="bench"), config, load_templates(None))
    finally:
        mjml.mjml2html = original
    return captured[0]


def main() -> None:
    """Median of each, after warm-up (imports, regex builds and template compile excluded)."""
    config = Config()
    templates = load_templates(None)
    text = read_post(JAPANESE_SAMPLE)
    body = text.split("\n---\n", 1)[1]  # the Markdown after the YAML front matter
    source = mjml_source_of(text, config)

    def baseline() -> None:
        markdown_parser().parse(body)
        mjml.mjml2html(source, disable_comments=False)

    def whole() -> None:
        markdown.clear_caches()  # one process builds one edition: parses, renders,
        counting.clear_caches()  # measurements, URL scans and the sanitizer's
        sanitize.clear_caches()  # Cleaners all start cold in every run
        sentences.clear_caches()
        article = parse_article(text, source=str(JAPANESE_SAMPLE))
        build_plan(build_edition(article, config, templates), config)

    base = median_seconds(baseline, runs=RUNS)
    full = median_seconds(whole, runs=RUNS)
    ratio = full / base
    report([Result(
        name="whole edition in-process (Japanese sample)",
        measured=f"{full * 1000:.1f} ms median",
        target=f"≤ {TARGET_RATIO:.0f}× baseline",
        met=ratio <= TARGET_RATIO,
        baseline=f"Markdown parse + one MJML render {base * 1000:.1f} ms",
        ratio=f"{ratio:.1f}×",
        notes=f"{RUNS} runs after warm-up",
    )])


if __name__ == "__main__":
    main()
