"""Helpers for the email-channel tests: a newsletter with placeholders, recipients, a sender."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

from publisher.channels import BatchResult, EmailBatch
from publisher.channels.http import RetryPolicy, with_retries
from publisher.config.settings import Site
from publisher.edition.newsletter.placeholders import NAME, UNSUBSCRIBE_URL, marker
from publisher.model import Newsletter, Recipient
from publisher.stores.addresses import Subscriber
from publisher.unsubscribe.tokens import recipient_for

SECRET = "email-test-unsubscribe-secret-0123456789"
SITE = Site(
    name="テスト通信", url="https://news.example.jp", sender="テスト通信 <news@example.jp>",
    reply_to="editor@example.jp", unsubscribe_mailto="leave@example.jp",
)


@dataclass
class Sleeps:
    """Stands in for time.sleep: records each requested delay and returns at once."""

    delays: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def newsletter(subject: str = "今週のお知らせ") -> Newsletter:
    """A small rendered newsletter carrying both placeholders, as the renderer leaves them."""
    page = (
        f"<html><body><p>{marker(NAME, '読者の皆')}様</p><p>本文です。</p>"
        f'<a href="{marker(UNSUBSCRIBE_URL)}">配信停止</a></body></html>'
    )
    text = f"{marker(NAME, '読者の皆')}様\n\n本文です。\n\n配信停止: {marker(UNSUBSCRIBE_URL)}\n"
    return Newsletter(subject=subject, preheader="要約", html=page, text=text)


def recipients(count: int, *, start: int = 0, domain: str = "example.com") -> list[Recipient]:
    """Signed recipients user<i>@domain, with names for even i."""
    return [
        recipient_for(Subscriber(f"user{i}@{domain}", f"読者 {i} & Co" if i % 2 == 0 else "",
                                 uid=f"uid{i:08d}AAAAAAA"), SITE, SECRET)
        for i in range(start, start + count)
    ]


def batch(people: Sequence[Recipient], key: str = "ed1-b0", news: Newsletter | None = None
          ) -> EmailBatch:
    """An EmailBatch as deliver.py cuts it."""
    return EmailBatch(key=key, newsletter=news or newsletter(), recipients=tuple(people),
                      lang="ja")


def send_all(
    send: Callable[[EmailBatch], BatchResult], people: Sequence[Recipient], size: int,
    *, attempts: int = 12, sleeps: Sleeps | None = None,
) -> dict[str, str]:
    """Send every recipient in batches through the shared retry loop; accepted ids by address."""
    accepted: dict[str, str] = {}
    policy = RetryPolicy(attempts=attempts, base_delay=0.01, max_delay=0.02)
    for index in range(0, len(people), size):
        chunk = batch(people[index:index + size], key=f"ed1-b{index // size}")
        result = with_retries(partial(send, chunk), policy, sleep=sleeps or Sleeps())
        accepted.update(result.accepted)
    return accepted
