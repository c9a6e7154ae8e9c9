"""Whole process: `publish posts/chuo-line-extension.md --dry-run --json`, median wall time.

Target (issue 8): at most 350 ms for the whole process (start, parse, render, plan, JSON out).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from _common import JAPANESE_SAMPLE, Result, interleaved_timings, publish_exe, report

RUNS = 15
TARGET_MS = 350.0


def main() -> None:
    """Run the dry run and the bare interpreter round-robin from an empty folder."""
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "dry run": [publish_exe(), str(JAPANESE_SAMPLE), "--dry-run", "--json"],
    }
    with tempfile.TemporaryDirectory() as empty:
        timings = interleaved_timings(commands, RUNS, cwd=Path(empty))
    (ms, cpu), (bare, _) = timings["dry run"], timings["python -c pass"]
    report([Result(
        name="whole process: publish POST --dry-run --json",
        measured=f"{ms:.0f} ms median",
        target=f"≤ {TARGET_MS:.0f} ms",
        met=ms <= TARGET_MS,
        baseline=f"python -c pass {bare:.0f} ms",
        ratio=f"{ms / bare:.1f}×",
        notes=f"{RUNS} interleaved runs, Japanese sample; CPU {cpu:.0f} ms",
    )])


if __name__ == "__main__":
    main()
