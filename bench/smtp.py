"""SMTP throughput to a local aiosmtpd (the project's SmtpFake, in its own process).

Target (issue 18): at least 1,500 messages/s with 4 connections (issue 8 asked for 300). The
sink reports its own CPU time, so its ceiling (messages per second of its CPU) is printed beside
ours: when the two are close, the sink, not `publish`, is what was measured.
The send goes through the real delivery loop (`deliver`) with a real ledger, so every message is
recorded pending before and sent after, exactly as `publish` does it.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from _common import JAPANESE_SAMPLE, REPO, Result, load, report
from fanout_sendgrid import FakeProcess

sys.path.insert(0, str(REPO / "src"))

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

MESSAGES = 3000
TARGET_RATE = 1500.0
CONNECTIONS = (1, 4)


def send(port: int, connections: int, folder: Path, tag: str) -> float:
    """Messages per second for one whole send of MESSAGES recipients."""
    config = Config(newsletter=NewsletterSettings(transport="smtp"))
    article = parse_article(read_post(JAPANESE_SAMPLE), source=str(JAPANESE_SAMPLE))
    edition = build_edition(article, config, load_templates(None))
    plan = build_plan(edition, config)
    plan = type(plan)(plan.edition_id, plan.post, plan.steps[:1])  # the newsletter step only
    channel = SmtpChannel.from_config(context_for("smtp", {
        "host": "127.0.0.1", "port": port, "security": "none", "connections": connections,
    }, config.site))
    people = [Recipient(email=f"{tag}{i}@example.org", name="読者" if i % 2 else "",
                        unsubscribe_url=f"https://example.com/unsubscribe?t={tag}{i}")
              for i in range(MESSAGES)]
    ledger = SqliteLedger(folder / f"ledger-{tag}.sqlite3")
    try:
        start = time.perf_counter()
        outcome = deliver(Run(ledger=ledger, edition=edition, plan=plan,
                              channels=LiveChannels(email={"smtp": channel}),
                              recipients=lambda: people))[0]
        elapsed = time.perf_counter() - start
    finally:
        channel.close()
        ledger.close()
    if outcome.new != MESSAGES:
        raise SystemExit(f"only {outcome.new} of {MESSAGES} sent: {outcome.error}")
    return MESSAGES / elapsed


def main() -> None:
    """One send per connection count; the fake counts what arrived."""
    fake = FakeProcess("smtp")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rates, ceilings = {}, {}
            for n in CONNECTIONS:
                before = fake.stats()["cpu"]
                rates[n] = send(int(fake.address), n, Path(tmp), f"c{n}x")
                ceilings[n] = MESSAGES / max(fake.stats()["cpu"] - before, 1e-9)
        stats = fake.stats()
    finally:
        fake.stop()
    best = max(CONNECTIONS)
    report([Result(
        name="SMTP to local aiosmtpd",
        measured=f"{rates[best]:.0f} messages/s with {best} connections; the sink's own ceiling"
                 f" {ceilings[best]:.0f} messages/s of its CPU; load {load()}",
        target=f"≥ {TARGET_RATE:.0f} messages/s",
        met=rates[best] >= TARGET_RATE and stats["duplicates"] == 0,
        baseline=f"1 connection {rates[1]:.0f} messages/s (sink ceiling {ceilings[1]:.0f})",
        ratio=f"{rates[best] / rates[1]:.1f}×",
        notes=f"{MESSAGES} messages per run through deliver() with the ledger;"
              f" fake received {stats['deliveries']}, {stats['duplicates']} duplicates",
    )])


if __name__ == "__main__":
    main()
