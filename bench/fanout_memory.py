"""Fan-out of 1,000,000 subscribers: ≤ 15 s of our own time and peak RSS ≤ 100 MB (issue 18).

Subscribers stream from the SQLite store in keyset pages and go out 1000 per SendGrid call, so
memory does not grow with the list. Same harness as fanout_sendgrid.py (lean fake; `--fake full`
for the contract fake, `--bytecode source`, `--runs K`); `--subscribers` changes N.
"""

from __future__ import annotations

from _common import Result, report
from fanout_sendgrid import TARGET_SECONDS_PER_100K, median_run, options, verdict

TARGET_MB = 100.0


def main() -> None:
    """Run the big send and report our CPU time and peak RSS (the counts must still be exact)."""
    args = options(1_000_000, 1)
    run, spread = median_run(args)
    target = TARGET_SECONDS_PER_100K * args.subscribers / 100_000
    met, measured, baseline = verdict(run, target)
    report([Result(
        name=f"fan-out {args.subscribers:,} subscribers: own time and peak RSS",
        measured=measured,
        target=f"≤ {target:.0f} s own CPU, ≤ {TARGET_MB:.0f} MB",
        met=met and run["rss"] / 2**20 <= TARGET_MB, baseline=baseline,
        notes=f"RSS of the `publish` child from wait4(); {spread};"
              f" seeding {run['seeded']:.0f} s not counted",
    )])


if __name__ == "__main__":
    main()
