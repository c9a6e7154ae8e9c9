"""Run every benchmark and print the Markdown table for bench/README.md.

`python bench/run_all.py` runs them one after another (each in its own process, so one bench's
imports and caches never help another) and prints one row per result. `--quick` runs the
fan-outs at 20,000 and 100,000 instead of 100,000 and 1,000,000 (the `--join` one at 100,000).

This machine's cores are shared with other machines': the same CPU-bound loop takes from 180 to
over 300 ms of CPU within a minute. So before each script a probe times a fixed loop, and the
table's first line prints how the probe moved during the run, to tell a slow moment from a slow
change.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import machine

HERE = Path(__file__).resolve().parent
SCRIPTS = [
    ["cold_start.py"],
    ["edition.py"],
    ["dry_run.py"],
    ["hostile_text.py"],
    ["personalize.py"],
    ["mime.py"],
    ["fanout_sendgrid.py"],
    ["fanout_memory.py"],
    ["fanout_join.py"],
    ["smtp.py"],
    ["subscribers_import.py"],
    ["subscribers_import.py", "--rows", "1000000"],
    ["feed.py"],
]
QUICK = {"fanout_sendgrid.py": ["--subscribers", "20000"],
         "fanout_memory.py": ["--subscribers", "100000"],
         "fanout_join.py": ["--rows", "100000"],
         "subscribers_import.py": ["--rows", "20000"]}


def probe_ms() -> float:
    """CPU milliseconds of a fixed 3,000,000-step loop: how fast the machine is right now."""
    started = time.process_time()
    total = 0
    for step in range(3_000_000):
        total += step
    return (time.process_time() - started) * 1000


def run(script: list[str], quick: bool) -> list[dict[str, Any]]:
    """One script's JSON results, with progress on stderr."""
    argv = [sys.executable, str(HERE / script[0]), *script[1:], "--json"]
    if quick:
        argv += QUICK.get(script[0], [])
    print(f"running {script[0]} …", file=sys.stderr, flush=True)
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, cwd=HERE)
    print(f"  {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    if done.returncode != 0:
        return [{"name": script[0], "measured": "failed", "target": "", "met": False,
                 "baseline": "", "ratio": "", "notes": done.stderr.strip()[-300:]}]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def main() -> None:
    """Print the table."""
    quick = "--quick" in sys.argv
    rows, probes = [], []
    for script in SCRIPTS:
        probes.append(probe_ms())
        rows += run(script, quick)
    probes.append(probe_ms())
    spread = " / ".join(f"{ms:.0f}" for ms in probes)
    print(f"Machine: {machine()}. Medians; baselines measured in the same run. Probe loop"
          f" (fixed CPU work) before each script and at the end: {spread} ms.\n")
    print("| what | measured | target | baseline (same run) | ratio | met |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        cells = [row["name"], row["measured"], row["target"], row["baseline"] or "—",
                 row["ratio"] or "—", "yes" if row["met"] else "**no**"]
        print("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    print()
    for row in rows:
        if row.get("notes"):
            print(f"- {row['name']}: {row['notes']}")


if __name__ == "__main__":
    main()
