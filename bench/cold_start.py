"""Cold start: `publish --help` and `publish measure …` against bare `python -c pass`.

Target (issue 8): each at most 120 ms above the bare interpreter, medians of interleaved runs.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from _common import Result, interleaved_timings, publish_exe, report

RUNS = 21
TARGET_MS = 120.0
TEXT = "新しい駅が開業します。詳しくは https://example.com/news を見てください"
TEXT_WITHOUT_URL = "新しい駅が開業します。来年の春から運行を始めます"


def main() -> None:
    """Run the commands round-robin from an empty folder (no publisher.toml) and compare."""
    exe = publish_exe()
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "publish --help": [exe, "--help"],
        "publish measure (x)": [exe, "measure", TEXT, "--network", "x"],
        "publish measure (x, no URL)": [exe, "measure", TEXT_WITHOUT_URL, "--network", "x"],
        "publish measure (bluesky)": [exe, "measure", TEXT, "--network", "bluesky"],
    }
    with tempfile.TemporaryDirectory() as empty:
        timings = interleaved_timings(commands, RUNS, cwd=Path(empty))
    bare, bare_cpu = timings.pop("python -c pass")
    report([
        Result(
            name=f"cold start: {name}",
            measured=f"{ms:.0f} ms median, +{ms - bare:.0f} ms over bare",
            target=f"≤ +{TARGET_MS:.0f} ms",
            met=ms - bare <= TARGET_MS,
            baseline=f"python -c pass {bare:.0f} ms",
            ratio=f"{ms / bare:.1f}×",
            notes=f"{RUNS} interleaved runs; CPU {cpu:.0f} ms, +{cpu - bare_cpu:.0f} ms over bare",
        )
        for name, (ms, cpu) in timings.items()
    ])


if __name__ == "__main__":
    main()
