"""Fan-out through SendGrid personalizations to a local fake, via the real CLI, ledger included.

Target (issue 18): 100,000 subscribers in at most 1.5 s of our own time, in exactly ⌈N/1000⌉
mail/send requests. Our own time is the CPU time (user + system) of the `publish` child from its
own wait4(); the fake runs in its own process and reports its own CPU time, printed beside ours
(and subtracted from the wall time) so the two are never mixed. `--subscribers N` changes the
size; `--src DIR` runs the CLI from another source tree (before/after in one session). The fake
is `_fake.py sendgrid-lean` (exact counts, next to no CPU of its own); `--fake full` runs the
tests' contract fake instead, which validates and renders every personalization.

The CLI runs as installed: from a copy of the tree with its bytecode compiled, as `pip install`
leaves it (`--bytecode source` compiles every module from source on each run, as an editable
checkout does under PYTHONDONTWRITEBYTECODE). One run of 100,000 moves by ±20% on a shared
machine, so `--runs K` (5 here) sends K times, each into a fresh store and fake, and reports the
run of median CPU with the range beside it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    JAPANESE_SAMPLE,
    Result,
    load,
    publish_argv,
    report,
    run_usage,
    seed_subscribers,
)

TARGET_SECONDS_PER_100K = 1.5  # our own CPU time per 100,000 recipients
BATCH = 1000
FAKES = {"lean": "sendgrid-lean", "full": "sendgrid"}  # `_fake.py` kinds: counting or contract


class FakeProcess:
    """The SendGrid fake in its own process, so its work does not share our interpreter."""

    def __init__(self, kind: str) -> None:
        self.child = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("_fake.py")), kind],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.child.stdout is not None
        self.address = self.child.stdout.readline().strip()

    def stats(self) -> dict[str, Any]:
        """Counts so far."""
        assert self.child.stdin is not None and self.child.stdout is not None
        self.child.stdin.write("stats\n")
        self.child.stdin.flush()
        return dict(json.loads(self.child.stdout.readline()))

    def stop(self) -> None:
        """Close stdin and wait for it to leave."""
        assert self.child.stdin is not None
        self.child.stdin.close()
        self.child.terminate()
        self.child.wait()


def write_config(folder: Path, url: str) -> Path:
    """A publisher.toml sending the newsletter through SendGrid at the fake; socials to outbox."""
    config = folder / "publisher.toml"
    config.write_text(
        f'ledger = "{folder / "ledger.sqlite3"}"\n'
        f'subscribers = "{folder / "subscribers.sqlite3"}"\n'
        f'outbox = "{folder / "outbox"}"\n'
        '[site]\nname = "Bench News"\nurl = "https://news.bench.example"\n'
        'address = "3 Bench Road, Springfield 00000"\nfrom = "Bench News <news@bench.example>"\n'
        '[newsletter]\ntransport = "sendgrid"\n'
        f'[channels.sendgrid]\nbase_url = "{url}"\n',
        encoding="utf-8",
    )
    return config


def fan_out(count: int, src: str = "", fake_kind: str = "sendgrid-lean", *,
            cached: bool = True) -> dict[str, Any]:
    """Seed, send once through the CLI; our wall/CPU/RSS, the fake's counts and its own CPU."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        seed_subscribers(folder / "subscribers.sqlite3", count)
        seeded = time.perf_counter() - started
        fake = FakeProcess(fake_kind)
        try:
            config = write_config(folder, fake.address)
            env = {**os.environ, "SENDGRID_API_KEY": "SG.bench-key",
                   "PUBLISHER_UNSUBSCRIBE_SECRET": "bench-secret-0123456789abcdef"}
            fake_before = fake.stats()["cpu"]
            used = run_usage(
                [*publish_argv(src, cached=cached), str(JAPANESE_SAMPLE), "--config", str(config)],
                cwd=folder, env=env,
            )
            stats = fake.stats()
        finally:
            fake.stop()
    fake_cpu = stats.pop("cpu") - fake_before  # the fake's own, not to be mixed with ours
    return {"count": count, "seconds": used.wall, "cpu": used.cpu, "rss": used.rss,
            "seeded": seeded, **stats, "fake_cpu": fake_cpu, "load": load()}


def verdict(run: dict[str, Any], target: float) -> tuple[bool, str, str]:
    """(met, measured, baseline) of a fan-out run: our CPU, exact counts, the fake's own time."""
    count = run["count"]
    requests = run["routes"].get("POST /v3/mail/send", 0)
    exact = (requests == math.ceil(count / BATCH) and run["distinct"] == count
             and run["duplicates"] == 0)
    own_wall = run["seconds"] - run["fake_cpu"]
    measured = (f"{run['cpu']:.2f} s own CPU ({run['cpu'] / count * 1e6:.1f} µs per recipient);"
                f" wall {run['seconds']:.1f} s − fake {run['fake_cpu']:.1f} s = {own_wall:.1f} s;"
                f" {requests} requests, {run['distinct']:,} delivered, {run['duplicates']}"
                f" duplicates; peak RSS {run['rss'] / 2**20:.0f} MB; load {run['load']}")
    baseline = (f"the fake's own CPU {run['fake_cpu']:.2f} s"
                f" ({run['fake_cpu'] / max(requests, 1) * 1000:.1f} ms per request)")
    return run["cpu"] <= target and exact, measured, baseline


def options(subscribers: int, runs: int) -> argparse.Namespace:
    """The options the fan-out benches share."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=subscribers)
    parser.add_argument("--runs", type=int, default=runs)
    parser.add_argument("--src", default="")
    parser.add_argument("--fake", choices=FAKES, default="lean")
    parser.add_argument("--bytecode", choices=("cached", "source"), default="cached")
    parser.add_argument("--json", action="store_true")
    return parser.parse_args()


def median_run(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """`args.runs` sends; the one of median CPU, and how the runs spread, for the notes."""
    runs = sorted((fan_out(args.subscribers, args.src, FAKES[args.fake],
                           cached=args.bytecode == "cached") for _ in range(args.runs)),
                  key=lambda run: float(run["cpu"]))
    spread = " / ".join(f"{run['cpu']:.2f}" for run in runs)
    how = "bytecode cached, as installed" if args.bytecode == "cached" else "compiled from source"
    return runs[len(runs) // 2], f"{how}; {len(runs)} run(s), own CPU {spread} s"


def main() -> None:
    """Parse options, run the fan-outs and report the median one."""
    args = options(100_000, 5)
    run, spread = median_run(args)
    target = TARGET_SECONDS_PER_100K * args.subscribers / 100_000
    met, measured, baseline = verdict(run, target)
    report([Result(
        name=f"fan-out {args.subscribers:,} subscribers to the SendGrid fake, our own time",
        measured=measured,
        target=f"≤ {target:.1f} s own CPU, exactly {math.ceil(args.subscribers / BATCH)} requests",
        met=met, baseline=baseline,
        notes="whole `publish` process incl. ledger writes; CPU (user + system) from its wait4();"
              f" the {args.fake} fake in its own process; {spread};"
              f" seeding took {run['seeded']:.1f} s (not counted)",
    )])


if __name__ == "__main__":
    main()
