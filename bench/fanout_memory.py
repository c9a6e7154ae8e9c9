"""Fan-out of 1,000,000 subscribers: peak RSS of the `publish` process stays under 200 MB.

Subscribers stream from the SQLite store in keyset pages and go out 1000 per SendGrid call, so
memory does not grow with the list. Same harness as fanout_sendgrid.py; `--subscribers` changes N.
"""

from __future__ import annotations

import argparse
import math

from _common import Result, report
from fanout_sendgrid import BATCH, fan_out

TARGET_MB = 200.0


def main() -> None:
    """Run the big send and report peak RSS (and the counts, which must still be exact)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    run = fan_out(args.subscribers)
    peak_mb = run["rss"] / 2**20
    requests = run["routes"].get("POST /v3/mail/send", 0)
    exact = (requests == math.ceil(args.subscribers / BATCH)
             and run["distinct"] == args.subscribers and run["duplicates"] == 0)
    report([Result(
        name=f"fan-out {args.subscribers:,} subscribers: peak RSS",
        measured=f"{peak_mb:.0f} MB peak RSS, {run['seconds']:.0f} s wall, {requests} requests,"
                 f" {run['duplicates']} duplicates",
        target=f"≤ {TARGET_MB:.0f} MB",
        met=peak_mb <= TARGET_MB and exact,
        notes=f"RSS of the `publish` child from wait4(); seeding {run['seeded']:.0f} s not counted",
    )])


if __name__ == "__main__":
    main()
