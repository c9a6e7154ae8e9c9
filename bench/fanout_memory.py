"""Fan-out of 1,000,000 subscribers: ≤ 15 s of our own time and peak RSS ≤ 100 MB (issue 18).

Subscribers stream from the SQLite store in keyset pages and go out 1000 per SendGrid call, so
memory does not grow with the list. Same harness as fanout_sendgrid.py (lean fake; `--fake full`
for the contract fake); `--subscribers` changes N.
"""

from __future__ import annotations

import argparse

from _common import Result, report
from fanout_sendgrid import FAKES, TARGET_SECONDS_PER_100K, fan_out, verdict

TARGET_MB = 100.0


def main() -> None:
    """Run the big send and report our CPU time and peak RSS (the counts must still be exact)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--src", default="")
    parser.add_argument("--fake", choices=FAKES, default="lean")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    run = fan_out(args.subscribers, args.src, FAKES[args.fake])
    target = TARGET_SECONDS_PER_100K * args.subscribers / 100_000
    met, measured, baseline = verdict(run, target)
    report([Result(
        name=f"fan-out {args.subscribers:,} subscribers: own time and peak RSS",
        measured=measured,
        target=f"≤ {target:.0f} s own CPU, ≤ {TARGET_MB:.0f} MB",
        met=met and run["rss"] / 2**20 <= TARGET_MB, baseline=baseline,
        notes=f"RSS of the `publish` child from wait4(); seeding {run['seeded']:.0f} s not counted",
    )])


if __name__ == "__main__":
    main()
