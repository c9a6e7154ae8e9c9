"""Fan-out through SendGrid personalizations to a local fake, via the real CLI, ledger included.

Target (issue 8): 100,000 subscribers in at most 10 s wall, in exactly ⌈N/1000⌉ mail/send requests.
`--subscribers N` changes the size; `--rss` reports peak RSS (the 1,000,000 case uses it).
The send runs as `publish POST` in a child process; its peak RSS comes from its own wait4().
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
    publish_exe,
    report,
    run_measured,
    seed_subscribers,
)

TARGET_SECONDS = 10.0
BATCH = 1000


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


def fan_out(count: int) -> dict[str, Any]:
    """Seed, send once through the CLI, and collect wall time, peak RSS and the fake's counts."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        seed_subscribers(folder / "subscribers.sqlite3", count)
        seeded = time.perf_counter() - started
        fake = FakeProcess("sendgrid")
        try:
            config = write_config(folder, fake.address)
            env = {**os.environ, "SENDGRID_API_KEY": "SG.bench-key",
                   "PUBLISHER_UNSUBSCRIBE_SECRET": "bench-secret-0123456789abcdef"}
            wall, peak, _, _ = run_measured(
                [publish_exe(), str(JAPANESE_SAMPLE), "--config", str(config)],
                cwd=folder, env=env,
            )
            stats = fake.stats()
        finally:
            fake.stop()
    return {"count": count, "seconds": wall, "rss": peak, "seeded": seeded, **stats}


def main() -> None:
    """Parse options, run one fan-out and report."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    run = fan_out(args.subscribers)
    requests = run["routes"].get("POST /v3/mail/send", 0)
    expected = math.ceil(args.subscribers / BATCH)
    exact = (requests == expected and run["distinct"] == args.subscribers
             and run["duplicates"] == 0)
    report([Result(
        name=f"fan-out {args.subscribers:,} subscribers to the SendGrid fake",
        measured=f"{run['seconds']:.1f} s wall, {requests} requests, "
                 f"{run['distinct']:,} delivered, {run['duplicates']} duplicates",
        target=f"≤ {TARGET_SECONDS:.0f} s, exactly {expected} requests",
        met=run["seconds"] <= TARGET_SECONDS and exact,
        notes=f"whole `publish` process incl. ledger writes; peak RSS {run['rss'] / 2**20:.0f} MB;"
              f" seeding took {run['seeded']:.1f} s (not counted)",
    )])


if __name__ == "__main__":
    main()
