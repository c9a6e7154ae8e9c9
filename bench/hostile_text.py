"""Whole process: `publish POST --dry-run --json` on each hostile body of issue 12.

Target (issue 12): the worst of them within 2 s wall and 200 MB peak RSS. The bodies are the
ones tests/test_fuzz.py composes under a generous bound (the six shapes of the issue's table,
plus dotted runs that made twitter-text's URL pattern backtrack); each is written into a post
with a title and a URL, and the real CLI runs on each (median of RUNS) from its folder. The
verdict reads CPU time (user + system of the child), which a machine busy with other jobs
barely moves; wall time is reported beside it. Peak RSS is the largest of all the children.
"""

from __future__ import annotations

import resource
import statistics
import sys
import tempfile
from pathlib import Path

from _common import TESTS, Result, child_ms, publish_exe, report

sys.path.insert(0, str(TESTS))

from test_fuzz import HOSTILE_BODIES

TARGET_S = 2.0
TARGET_MB = 200
RUNS = 3


def main() -> None:
    """Dry runs of each body; the worst median CPU time and the peak RSS against the target."""
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as folder:
        for name, body in HOSTILE_BODIES.items():
            post = Path(folder) / f"{name}.md"
            post.write_text(f"---\ntitle: Hostile\nurl: https://news.example/h\n---\n{body}\n",
                            encoding="utf-8")
            argv = [publish_exe(), str(post), "--dry-run", "--json"]
            runs = [child_ms(argv, cwd=Path(folder)) for _ in range(RUNS)]
            rows.append((name, statistics.median(w for w, _ in runs) / 1000,
                         statistics.median(c for _, c in runs) / 1000))
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
    name, wall, cpu = max(rows, key=lambda row: row[2])
    report([Result(
        name="hostile text: publish POST --dry-run --json, worst body",
        measured=f"{cpu:.2f} s CPU ({wall:.2f} s wall), {name}; peak RSS {peak_mb} MB",
        target=f"≤ {TARGET_S:.0f} s and ≤ {TARGET_MB} MB",
        met=cpu <= TARGET_S and peak_mb <= TARGET_MB,
        notes=f"median of {RUNS} per body, CPU (wall): "
              + "; ".join(f"{n} {c:.2f} s ({w:.2f} s)" for n, w, c in rows),
    )])


if __name__ == "__main__":
    main()
