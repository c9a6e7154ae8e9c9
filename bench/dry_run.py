"""Whole process: `publish posts/chuo-line-extension.md --dry-run --json`, median wall time.

Target (issue 8): at most 350 ms for the whole process (start, parse, render, plan, JSON out).

Measured twice, interleaved: as this checkout runs (an editable install; with
PYTHONDONTWRITEBYTECODE set, every publisher module is compiled from source on each run), and
with publisher's bytecode cached, as after `pip install` (pip compiles a wheel's modules).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from _common import (
    JAPANESE_SAMPLE,
    REPO,
    Result,
    compiled_copy,
    interleaved_timings,
    publish_exe,
    report,
)

RUNS = 15
TARGET_MS = 350.0
ARGS = [str(JAPANESE_SAMPLE), "--dry-run", "--json"]


def cached_command(folder: Path) -> list[str]:
    """What the `publish` console script runs, importing publisher from the compiled copy."""
    code = (f"import sys; sys.path.insert(0, {str(folder)!r}); "
            "from publisher.cli.app import main; sys.exit(main())")
    return [sys.executable, "-c", code, *ARGS]


def main() -> None:
    """Run the dry run (both ways) and the bare interpreter round-robin from an empty folder."""
    with tempfile.TemporaryDirectory() as empty, tempfile.TemporaryDirectory() as copy:
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "dry run": [publish_exe(), *ARGS],
            "dry run (bytecode cached)": cached_command(compiled_copy(REPO / "src", Path(copy))),
        }
        timings = interleaved_timings(commands, RUNS, cwd=Path(empty))
    bare, _ = timings["python -c pass"]
    report([
        Result(
            name=f"whole process: publish POST --dry-run --json{suffix}",
            measured=f"{ms:.0f} ms median",
            target=f"≤ {TARGET_MS:.0f} ms",
            met=ms <= TARGET_MS,
            baseline=f"python -c pass {bare:.0f} ms",
            ratio=f"{ms / bare:.1f}×",
            notes=f"{RUNS} interleaved runs, Japanese sample; CPU {cpu:.0f} ms",
        )
        for suffix, (ms, cpu) in (
            ("", timings["dry run"]),
            (", bytecode cached (as installed)", timings["dry run (bytecode cached)"]),
        )
    ])


if __name__ == "__main__":
    main()
