"""`publish subscribers import` of a generated CSV, as a user runs it (issue 18).

Target: at most 1.5 s of our own time per 100,000 rows; 1,000,000 rows in at most 15 s with peak
RSS ≤ 100 MB. Our own time is the CPU time (user + system) of the `publish` child from its own
wait4(); the CSV (email, name, status; every third name Japanese) is written before and not
counted. `--rows N` changes the size; `--shuffled` writes the addresses in random order instead of
address order; `--src DIR` runs the CLI from another source tree.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import tempfile
from collections.abc import Sequence
from pathlib import Path

from _common import Result, load, publish_argv, report, run_usage

TARGET_SECONDS_PER_100K = 1.5
TARGET_MB = 100.0


def write_csv(path: Path, rows: int, *, shuffled: bool = False) -> None:
    """A subscriber CSV with a header and `rows` distinct addresses (in address order, or in a
    seeded random order as an export sorted by sign-up date comes)."""
    order: Sequence[int] = range(rows)
    if shuffled:
        order = list(order)
        random.Random(18).shuffle(order)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("email,name,status\n")
        out.writelines(f"reader{i:07d}@example.org,{'読者 ' if i % 3 == 0 else 'Reader '}{i},"
                       "subscribed\n" for i in order)


def main() -> None:
    """Write the CSV, import it once through the CLI, check every row arrived, report."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--src", default="")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--shuffled", action="store_true",
                        help="rows not in address order (each insert lands on another page)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_csv(folder / "list.csv", args.rows, shuffled=args.shuffled)
        (folder / "publisher.toml").write_text(
            f'subscribers = "{folder / "subscribers.sqlite3"}"\n', encoding="utf-8")
        used = run_usage([*publish_argv(args.src), "subscribers", "import",
                          str(folder / "list.csv"), "--config", str(folder / "publisher.toml")],
                         cwd=folder, env=dict(os.environ))
        with sqlite3.connect(folder / "subscribers.sqlite3") as db:
            stored = db.execute("SELECT COUNT(*) FROM subscribers").fetchone()[0]
    target = TARGET_SECONDS_PER_100K * args.rows / 100_000
    mb = used.rss / 2**20
    big = args.rows >= 1_000_000
    report([Result(
        name=f"publish subscribers import, {args.rows:,} rows"
             + (" in random order" if args.shuffled else ""),
        measured=f"{used.cpu:.2f} s own CPU ({used.cpu / args.rows * 1e6:.1f} µs per row),"
                 f" wall {used.wall:.1f} s, {stored:,} stored, peak RSS {mb:.0f} MB,"
                 f" load {load()}",
        target=f"≤ {target:.1f} s own CPU" + (f", ≤ {TARGET_MB:.0f} MB" if big else ""),
        met=used.cpu <= target and stored == args.rows and (mb <= TARGET_MB or not big),
        notes="CPU (user + system) of the `publish` child from its wait4(); CSV written first,"
              " not counted",
    )])


if __name__ == "__main__":
    main()
