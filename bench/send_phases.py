"""Per-phase CPU time of the send path for N recipients, each phase alone, in one process.

Phases: reading the store, unsubscribe tokens and links, SendGrid bodies, the HTTP client
(posting the bodies to the bench fake, which runs in its own process and is not counted), and
the start-up of a real send (the `publish` child with one subscriber, CPU from its wait4()).
`--src DIR` imports `publisher` from another tree, so before and after run in one session.
Not a target row of run_all.py: it explains where the fan-out row's time goes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import JAPANESE_SAMPLE, load, publish_argv, run_usage, seed_subscribers

BATCH = 1000
SECRET = "bench-secret-0123456789abcdef"


def cpu(call: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """The least CPU seconds of `runs` calls (the least is the least disturbed), and a result."""
    best, result = float("inf"), None
    for _ in range(runs):
        start = time.process_time()
        result = call()
        best = min(best, time.process_time() - start)
    return best, result


def phases(folder: Path, count: int, runs: int, src: str) -> dict[str, float]:
    """Each phase of a send of `count` recipients alone, in CPU seconds."""
    from fanout_sendgrid import FakeProcess, write_config

    from publisher.channels import EmailBatch
    from publisher.channels.http import HttpClient
    from publisher.channels.sendgrid import SendGridChannel
    from publisher.config.load import load_config
    from publisher.stores.sqlite import SqliteSubscriberStore
    from publisher.unsubscribe import tokens

    fake = FakeProcess("sendgrid")
    try:
        config = load_config(write_config(folder, fake.address))
        store = SqliteSubscriberStore(folder / "subscribers.sqlite3")
        pages = getattr(store, "active_pages", None)
        signed = getattr(tokens, "recipients_of", tokens.recipients_for)
        read: Callable[[], list[Any]] = (
            (lambda: list(pages())) if pages is not None else (lambda: list(store.iter_active())))
        took: dict[str, float] = {}
        took["reading the store"], readers = cpu(read, runs)
        took["tokens and links"], recipients = cpu(
            lambda: list(signed(iter(readers), config.site, SECRET)), runs)
        from publisher.delivery.pipeline import load_article
        from publisher.edition.build import build_edition
        from publisher.edition.newsletter.render import load_templates

        newsletter = build_edition(load_article(JAPANESE_SAMPLE, config), config,
                                   load_templates(None)).newsletter
        channel = SendGridChannel(HttpClient("sendgrid", fake.address,
                                             headers={"Authorization": "Bearer SG.bench-key"}),
                                  config.site)
        batches = [EmailBatch(f"k{i}", newsletter, tuple(recipients[i:i + BATCH]))
                   for i in range(0, len(recipients), BATCH)]
        took["SendGrid bodies"], bodies = cpu(
            lambda: [channel.encoded_body(b) for b in batches], runs)
        http = channel.http

        def post() -> None:
            for body in bodies:
                http.request("POST", "/v3/mail/send", data=body,
                             headers={"Content-Type": "application/json"}, ok=(200, 202))
        took["HTTP client (100 requests)"], _ = cpu(post, 1)
        store.close()
    finally:
        fake.stop()
    return took


def start_up(src: str) -> float:
    """CPU seconds of a whole `publish` child sending to one subscriber (imports, edition, …),
    bytecode cached as in the fan-out rows it explains."""
    from fanout_sendgrid import FakeProcess, write_config

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        seed_subscribers(folder / "subscribers.sqlite3", 1)
        fake = FakeProcess("sendgrid")
        try:
            config = write_config(folder, fake.address)
            env = {**os.environ, "SENDGRID_API_KEY": "SG.bench-key",
                   "PUBLISHER_UNSUBSCRIBE_SECRET": SECRET}
            argv = [*publish_argv(src, cached=True), str(JAPANESE_SAMPLE), "--config", str(config)]
            return min(run_usage(argv, cwd=folder, env=env).cpu for _ in range(3))
        finally:
            fake.stop()


def main() -> None:
    """Seed N subscribers, time each phase in a child importing --src, print one line each."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--src", default="")
    parser.add_argument("--in-folder", default="")  # the child: seeded already, time the phases
    args = parser.parse_args()
    if args.in_folder:
        if args.src:
            sys.path.insert(0, args.src)
        print(json.dumps(phases(Path(args.in_folder), args.subscribers, args.runs, args.src)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        seed_subscribers(folder / "subscribers.sqlite3", args.subscribers)
        child = subprocess.run(
            [sys.executable, __file__, "--in-folder", str(folder), "--src", args.src,
             "--subscribers", str(args.subscribers), "--runs", str(args.runs)],
            check=True, capture_output=True, text=True)
        took: dict[str, float] = json.loads(child.stdout.splitlines()[-1])
    took["start-up (publish, 1 subscriber)"] = start_up(args.src)
    for name, seconds in took.items():
        print(f"{name}: {seconds:.3f} s CPU ({seconds / args.subscribers * 1e6:.2f} µs per"
              f" recipient); load {load()}")


if __name__ == "__main__":
    main()
