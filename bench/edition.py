"""Whole edition of the Japanese sample in-process, against Markdown parse plus one MJML render.

Target (issue 8): building the whole edition (parse the post, newsletter, social posts, FAQ
digest, plan) costs at most 4× parsing its Markdown plus one MJML render, measured in the same run.

Two methods, both printed (issue 15). "tight loops": the baseline's median over a loop of its
own, then the edition's (the baseline runs hot in the CPU caches, the edition's larger working
set does not). "interleaved": baseline and edition alternate run by run, each timed in thread
CPU time, so both see the same caches and the same machine noise. `--src DIR` measures the
`publisher` of another tree (DIR/src), e.g. a checkout of main, for before/after in one session.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import JAPANESE_SAMPLE, REPO, Result, median_seconds, report

# --src DIR: the tree whose `publisher` is measured, else this repository.
sys.path.insert(0, str(
    (Path(sys.argv[sys.argv.index("--src") + 1]).resolve() if "--src" in sys.argv else REPO)
    / "src"
))

import mjml

from publisher.config.settings import Config
from publisher.edition import lede
from publisher.edition.build import build_edition
from publisher.edition.newsletter.render import load_templates
from publisher.networks import counting
from publisher.plan import build_plan
from publisher.source import markdown, sanitize
from publisher.source.markdown import markdown_parser
from publisher.source.read import parse_article, read_post
from publisher.text import sentences

RUNS = 41
INTERLEAVED_RUNS = 151
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


def _source_tree() -> Path:
    """The tree whose `publisher` is measured: --src DIR, else this repository."""
    if "--src" in sys.argv:
        return Path(sys.argv[sys.argv.index("--src") + 1]).resolve()
    return REPO


def cpu_medians(call: Callable[[], Any], *, runs: int, warmup: int = 3) -> float:
    """Median thread CPU seconds of a call in a loop of its own (as median_seconds, in CPU)."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(runs):
        start = time.thread_time()
        call()
        samples.append(time.thread_time() - start)
    return statistics.median(samples)


def interleaved_medians(
    baseline: Callable[[], Any], whole: Callable[[], Any], *, runs: int, warmup: int = 5
) -> tuple[float, float]:
    """Median thread CPU seconds of each, the two alternated run by run."""
    for _ in range(warmup):
        baseline()
        whole()
    base: list[float] = []
    full: list[float] = []
    clock = time.thread_time
    for _ in range(runs):
        start = clock()
        baseline()
        middle = clock()
        whole()
        base.append(middle - start)
        full.append(clock() - middle)
    return statistics.median(base), statistics.median(full)


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
        if hasattr(lede, "clear_caches"):  # a tree from before lede memoized (--src)
            lede.clear_caches()
        article = parse_article(text, source=str(JAPANESE_SAMPLE))
        build_plan(build_edition(article, config, templates), config)

    base = median_seconds(baseline, runs=RUNS)
    full = median_seconds(whole, runs=RUNS)
    ratio = full / base
    cpu_base, cpu_full = cpu_medians(baseline, runs=RUNS), cpu_medians(whole, runs=RUNS)
    mixed_base, mixed_full = interleaved_medians(baseline, whole, runs=INTERLEAVED_RUNS)
    mixed_ratio = mixed_full / mixed_base
    tree = "" if _source_tree() == REPO else f", publisher of {_source_tree()}"
    report([
        Result(
            name="whole edition in-process (Japanese sample)",
            measured=f"{full * 1000:.2f} ms median",
            target=f"≤ {TARGET_RATIO:.0f}× baseline",
            met=ratio <= TARGET_RATIO,
            baseline=f"Markdown parse + one MJML render {base * 1000:.2f} ms",
            ratio=f"{ratio:.2f}×",
            notes=f"tight loops: {RUNS} runs of each after warm-up, wall time; the same loops"
                  f" in thread CPU time {cpu_full * 1000:.2f} / {cpu_base * 1000:.2f} ms ="
                  f" {cpu_full / cpu_base:.2f}×{tree}",
        ),
        Result(
            name="whole edition in-process (Japanese sample), interleaved",
            measured=f"{mixed_full * 1000:.2f} ms CPU median",
            target=f"≤ {TARGET_RATIO:.0f}× baseline",
            met=mixed_ratio <= TARGET_RATIO,
            baseline=f"Markdown parse + one MJML render {mixed_base * 1000:.2f} ms CPU",
            ratio=f"{mixed_ratio:.2f}×",
            notes=f"{INTERLEAVED_RUNS} alternated runs, thread CPU time{tree}",
        ),
    ])


if __name__ == "__main__":
    main()
