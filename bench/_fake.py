"""Run a project fake (tests/fakes) in its own process for benchmarks, with lean bookkeeping.

`python bench/_fake.py sendgrid|smtp` prints the URL (or SMTP port), then answers "stats" lines on
stdin with one JSON line: requests per route, deliveries, distinct addresses, duplicates and the
fake's own CPU seconds so far (all its threads), so a benchmark can tell our time from the
fake's. The fakes keep every request and message in memory for tests; here only counts and a set
of addresses are kept, so a million recipients fit.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from typing import Any

from _common import TESTS

sys.path.insert(0, str(TESTS))

from fakes.sendgrid import SendGridFake  # type: ignore[import-not-found]
from fakes.smtp import SmtpFake  # type: ignore[import-not-found]

API_KEY = "SG.bench-key"


class CountingLog:
    """Stands in for a fake's request/message list: counts instead of keeping."""

    def __init__(self) -> None:
        self.routes: Counter[str] = Counter()
        self.lock = threading.Lock()

    def append(self, item: Any) -> None:
        """Count a request by method and path (or a received message as 'message')."""
        key = f"{item.method} {item.path}" if hasattr(item, "method") else "message"
        with self.lock:
            self.routes[key] += 1


class LeanDeliveries:
    """Stands in for `Deliveries`: total, distinct addresses and how many were repeats."""

    def __init__(self) -> None:
        self.total = 0
        self.seen: set[str] = set()
        self.duplicates = 0
        self.lock = threading.Lock()

    def record(self, email: str, provider_id: str, **detail: Any) -> None:
        """Count one delivered message."""
        key = email.lower()
        with self.lock:
            self.total += 1
            if key in self.seen:
                self.duplicates += 1
            self.seen.add(key)


def main() -> None:
    """Start the fake, print where it listens, answer stats requests until stdin closes."""
    kind = sys.argv[1]
    log, deliveries = CountingLog(), LeanDeliveries()
    if kind == "sendgrid":
        fake: Any = SendGridFake(api_key=API_KEY, keep_bodies=False)
        fake.server.requests = log
        fake.deliveries = deliveries
        fake.server.start()
        print(fake.url, flush=True)
    else:
        fake = SmtpFake()
        fake.received = log
        fake.deliveries = deliveries
        fake.controller.start()
        print(fake.port, flush=True)
    for line in sys.stdin:
        if line.strip() == "stats":
            with deliveries.lock, log.lock:
                stats = {"routes": dict(log.routes), "deliveries": deliveries.total,
                         "distinct": len(deliveries.seen), "duplicates": deliveries.duplicates,
                         "cpu": time.process_time()}
            print(json.dumps(stats), flush=True)


if __name__ == "__main__":
    main()
