"""SMTP throughput to a local sink that is not the bottleneck, with the sink's ceiling beside it.

Target (issue 18): at least 1,500 messages/s with 4 connections (issue 8 asked for 300). The
sink (`_smtp_sink.py`, its own process) is one asyncio loop that offers PIPELINING and discards
DATA. First our channel sends through the real delivery loop (`deliver`) with a real ledger, so
every message is recorded pending before and sent after, exactly as `publish` does it, with 1
and 4 connections; then a minimal client blasts messages of the same average size at the sink,
50 whole transactions per write, over 4 connections: that rate is the sink's ceiling (the
client's own work included, on the same cores). Our own CPU per message (this process: the
channel, the delivery loop and the ledger; the sink runs in its own process) and the sink's CPU
per message are printed too. `--src DIR` sends with another source tree's `publisher`, so
before and after can be alternated in one session.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import JAPANESE_SAMPLE, REPO, Result, load, report

sys.path.insert(0, sys.argv[sys.argv.index("--src") + 1] if "--src" in sys.argv
                else str(REPO / "src"))

from publisher.channels import LiveChannels, context_for
from publisher.channels.smtp import SmtpChannel
from publisher.config.settings import Config, NewsletterSettings
from publisher.delivery.send import Run, deliver
from publisher.edition.build import build_edition
from publisher.edition.newsletter.render import load_templates
from publisher.model import Recipient
from publisher.plan import build_plan
from publisher.source.read import parse_article, read_post
from publisher.stores.sqlite import SqliteLedger

SRC = sys.path[0]  # the source tree under test
MESSAGES = 3000
TARGET_RATE = 1500.0
CONNECTIONS = (1, 4)
WINDOW = 50  # transactions per write of the ceiling client
SENDER = "news@bench.example"


class SinkProcess:
    """The fast sink in its own process, so its work does not share our interpreter."""

    def __init__(self) -> None:
        self.child = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("_smtp_sink.py"))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.child.stdout is not None
        self.port = int(self.child.stdout.readline())

    def stats(self) -> dict[str, float]:
        """Counts so far."""
        assert self.child.stdin is not None and self.child.stdout is not None
        self.child.stdin.write("stats\n")
        self.child.stdin.flush()
        return dict(json.loads(self.child.stdout.readline()))

    def stop(self) -> None:
        """Close stdin and wait for it to leave."""
        assert self.child.stdin is not None
        self.child.stdin.close()
        self.child.wait(10)


def blast(port: int, connections: int, size: int, tag: str) -> float:
    """Messages per second of a minimal pipelining client: the sink's ceiling."""
    line = b"x" * 76 + b"\r\n"
    body = line * max(1, size // len(line)) + b".\r\n"
    per = MESSAGES // connections
    errors: list[str] = []

    def one(worker: int) -> None:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            reader = sock.makefile("rb")
            reader.readline()
            sock.sendall(b"EHLO bench\r\n")
            while not reader.readline().startswith(b"250 "):
                pass
            for first in range(0, per, WINDOW):
                count = min(WINDOW, per - first)
                sock.sendall(b"".join(
                    b"MAIL FROM:<%s>\r\nRCPT TO:<%s%d.%d@example.org>\r\nDATA\r\n%s"
                    % (SENDER.encode(), tag.encode(), worker, first + i, body)
                    for i in range(count)))
                replies = [reader.readline() for _ in range(4 * count)]
                if sum(r.startswith(b"250 2.0.0") for r in replies) != count:
                    errors.append(f"worker {worker}: {replies[:4]!r}")
                    return
            sock.sendall(b"QUIT\r\n")
            reader.readline()

    threads = [threading.Thread(target=one, args=(w,)) for w in range(connections)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise SystemExit(f"ceiling client refused: {errors[0]}")
    return per * connections / elapsed


def send(port: int, connections: int, folder: Path, tag: str) -> tuple[float, float]:
    """Messages per second for one whole send of MESSAGES recipients, and our CPU µs each."""
    config = Config(newsletter=NewsletterSettings(transport="smtp"))
    article = parse_article(read_post(JAPANESE_SAMPLE), source=str(JAPANESE_SAMPLE))
    edition = build_edition(article, config, load_templates(None))
    plan = build_plan(edition, config)
    plan = dataclasses.replace(plan, steps=plan.steps[:1])  # the newsletter step only
    channel = SmtpChannel.from_config(context_for("smtp", {
        "host": "127.0.0.1", "port": port, "security": "none", "connections": connections,
    }, config.site))
    people = [Recipient(email=f"{tag}{i}@example.org", name="読者" if i % 2 else "",
                        unsubscribe_url=f"https://example.com/unsubscribe?t={tag}{i}")
              for i in range(MESSAGES)]
    ledger = SqliteLedger(folder / f"ledger-{tag}.sqlite3")
    try:
        start, cpu = time.perf_counter(), os.times()
        outcome = deliver(Run(ledger=ledger, edition=edition, plan=plan,
                              channels=LiveChannels(email={"smtp": channel}),
                              recipients=lambda: people))[0]
        elapsed, after = time.perf_counter() - start, os.times()
    finally:
        channel.close()
        ledger.close()
    if outcome.new != MESSAGES:
        raise SystemExit(f"only {outcome.new} of {MESSAGES} sent: {outcome.error}")
    own = (after.user - cpu.user) + (after.system - cpu.system)
    return MESSAGES / elapsed, own / MESSAGES * 1e6


def main() -> None:
    """Our channel with 1 and 4 connections, then the sink's ceiling, all against one sink."""
    sink = SinkProcess()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rates, own_cpu, sink_cpu = {}, {}, {}
            for n in CONNECTIONS:
                before = sink.stats()
                rates[n], own_cpu[n] = send(sink.port, n, Path(tmp), f"c{n}x")
                after = sink.stats()
                sink_cpu[n] = (after["cpu"] - before["cpu"]) / MESSAGES * 1e6
            size = int(after["bytes"] // after["messages"])
            before = sink.stats()
            ceiling = blast(sink.port, max(CONNECTIONS), size, "ceiling")
            after = sink.stats()
            ceiling_cpu = (after["cpu"] - before["cpu"]) / MESSAGES * 1e6
        stats = sink.stats()
    finally:
        sink.stop()
    best = max(CONNECTIONS)
    expected = MESSAGES * (len(CONNECTIONS) + 1)
    exact = stats["messages"] == stats["recipients"] == stats["distinct"] == expected
    report([Result(
        name="SMTP to a local fast sink",
        measured=f"{rates[best]:.0f} messages/s with {best} connections; the sink's ceiling"
                 f" {ceiling:.0f} messages/s ({best} connections, pipelined); load {load()}",
        target=f"≥ {TARGET_RATE:.0f} messages/s",
        met=rates[best] >= TARGET_RATE and exact and stats["duplicates"] == 0,
        baseline=f"1 connection {rates[1]:.0f} messages/s",
        ratio=f"{rates[best] / rates[1]:.1f}×",
        notes=f"{MESSAGES} messages of {size / 1000:.0f} KB per run through deliver() with the"
              f" ledger; our own CPU per message {own_cpu[1]:.0f} µs (1 connection),"
              f" {own_cpu[best]:.0f} µs ({best}); sources {SRC};"
              f" sink CPU per message: ours {sink_cpu[1]:.0f} µs (1 connection),"
              f" {sink_cpu[best]:.0f} µs ({best}), ceiling client {ceiling_cpu:.0f} µs;"
              f" sink received {stats['messages']:.0f} messages,"
              f" {stats['recipients']:.0f} recipients, {stats['duplicates']:.0f} duplicates",
    )])


if __name__ == "__main__":
    main()
