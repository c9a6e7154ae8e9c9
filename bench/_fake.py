"""Run a project fake (tests/fakes) in its own process for benchmarks, with lean bookkeeping.

`python bench/_fake.py sendgrid|sendgrid-lean|smtp` prints the URL (or SMTP port), then answers
"stats" lines on stdin with one JSON line: requests per route, deliveries, distinct addresses,
duplicates and the fake's own CPU seconds so far (all its threads), so a benchmark can tell our
time from the fake's. The fakes keep every request and message in memory for tests; here only
counts and a set of addresses are kept, so a million recipients fit.

`sendgrid` is the contract fake of the tests (it validates every field of every request and
renders every personalization's substitutions, ≈ 47 ms of its own CPU per 1,000 recipients).
`sendgrid-lean` is for the fan-out benches, where that cost would be the bottleneck: it still
enforces the Bearer key, the route and the body's shape as far as counting needs it (a JSON
object, 1..1000 personalizations, each with a non-empty `to` list of addresses, at most 1000
recipients per call and each once), counts every recipient and every duplicate exactly, and
answers 202 with an `X-Message-Id` as SendGrid does; it renders nothing.
"""

from __future__ import annotations

import gc
import json
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from typing import Any

from _common import TESTS

sys.path.insert(0, str(TESTS))

from fakes.sendgrid import SendGridFake, errors  # type: ignore[import-not-found]
from fakes.server import FakeHTTPServer, Reply, Request  # type: ignore[import-not-found]
from fakes.smtp import SmtpFake  # type: ignore[import-not-found]

API_KEY = "SG.bench-key"
MAX_RECIPIENTS = 1000  # per mail/send call, as SendGrid limits it


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
        self.record_all([email])

    def record_all(self, emails: Iterable[str]) -> None:
        """Count the recipients of one call: each is a delivery, a repeat is a duplicate."""
        keys = [email.lower() for email in emails]
        with self.lock:
            before = len(self.seen)
            self.seen.update(keys)
            self.total += len(keys)
            self.duplicates += len(keys) - (len(self.seen) - before)


class LeanSendGrid:
    """mail/send checked only as far as exact counting needs, answered as SendGrid answers."""

    def __init__(self, deliveries: LeanDeliveries) -> None:
        self.deliveries = deliveries
        self.server = FakeHTTPServer(self.handle)

    def handle(self, request: Request) -> Reply:
        """Auth, then the one route a send uses (and the scopes a preflight reads)."""
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return errors(401, "The provided authorization grant is invalid, expired, or revoked")
        if request.method == "GET" and request.path == "/v3/scopes":
            return Reply(200, {"scopes": ["mail.send"]})
        if request.method != "POST" or request.path != "/v3/mail/send":
            return errors(404, f"no route {request.method} {request.path}")
        try:
            emails = recipients(json.loads(request.body))
        except ValueError as exc:
            return errors(400, str(exc) or "Bad Request", "personalizations")
        self.deliveries.record_all(emails)
        return Reply(202, None, {"X-Message-Id": uuid.uuid4().hex[:22]})


def recipients(body: Any) -> list[str]:
    """Every `to` address of a mail/send body; ValueError where SendGrid would answer 400."""
    personalizations = body.get("personalizations") if isinstance(body, dict) else None
    if not isinstance(personalizations, list) or not 1 <= len(personalizations) <= MAX_RECIPIENTS:
        raise ValueError("1 to 1000 personalizations are required")
    emails: list[str] = []
    for personalization in personalizations:
        to = personalization.get("to") if isinstance(personalization, dict) else None
        if not isinstance(to, list) or not to:
            raise ValueError("The to array is required for all personalization objects.")
        for party in to:
            email = party.get("email") if isinstance(party, dict) else None
            if not isinstance(email, str) or "@" not in email:
                raise ValueError("Each to object must at least have an email address.")
            emails.append(email)
    if len(emails) > MAX_RECIPIENTS:
        raise ValueError("There is a limit of 1000 total recipients per request.")
    if len({email.lower() for email in emails}) != len(emails):
        raise ValueError("Each unique email address in the personalizations array should only"
                         " be included once.")
    return emails


def main() -> None:
    """Start the fake, print where it listens, answer stats requests until stdin closes."""
    kind = sys.argv[1]
    if kind == "sendgrid-lean":  # a request's JSON holds no cycles: reference counting frees it,
        gc.disable()  # and the collector's passes over its ~8,000 new containers cost ~1 ms
    log, deliveries = CountingLog(), LeanDeliveries()
    if kind in ("sendgrid", "sendgrid-lean"):
        fake: Any = (LeanSendGrid(deliveries) if kind == "sendgrid-lean"
                     else SendGridFake(api_key=API_KEY, keep_bodies=False))
        fake.server.requests = log
        fake.deliveries = deliveries
        fake.server.start()
        print(fake.server.url, flush=True)
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
