"""Run every benchmark and print the Markdown table for bench/README.md.

`python bench/run_all.py` runs them one after another (each in its own process, so one bench's
imports and caches never help another) and prints one row per result. `--quick` runs the
fan-outs at 20,000 and 100,000 instead of 100,000 and 1,000,000 (the `--join` one at 100,000).
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
    rows = [result for script in SCRIPTS for result in run(script, quick)]
    print(f"Machine: {machine()}. Medians; baselines measured in the same run.\n")
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
