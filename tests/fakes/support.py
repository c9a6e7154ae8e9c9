"""Test helpers shared by the social-channel tests: a sleep recorder and a thread sender."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from publisher.channels import Receipt
from publisher.channels.http import RetryPolicy, with_retries
from publisher.model import Facet, LinkCard, SocialPost


@dataclass
class Sleeps:
    """Stands in for time.sleep: records each requested delay and returns at once."""

    delays: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def thread_posts(
    network: str, texts: Sequence[str], *, lang: str = "ja", card: LinkCard | None = None,
    facets: Sequence[Sequence[Facet]] = (),
) -> list[SocialPost]:
    """SocialPosts for a thread, as the composer would hand them over."""
    count = len(texts)
    return [
        SocialPost(network=network, text=text, length=len(text), limit=0, lang=lang,
                   facets=tuple(facets[i]) if i < len(facets) else (),
                   card=card if i == 0 else None, position=i + 1, of=count)
        for i, text in enumerate(texts)
    ]


def send_thread(
    channel: Any, posts: Sequence[SocialPost], *, key_prefix: str = "ed1",
    sleep: Sleeps | None = None, policy: RetryPolicy | None = None,
    receipts: list[Receipt] | None = None, attempted: set[str] | None = None,
) -> list[Receipt]:
    """Send posts as deliver.py does: each inside with_retries, replying to the previous one.

    `receipts` carries a resumed thread's earlier receipts (as the ledger would) and
    `attempted` the keys the ledger saw as pending before this run.
    """
    done = list(receipts or [])
    for post in posts[len(done):]:
        key = f"{key_prefix}-{post.network}-{post.position}"
        reply_to = done[-1] if done else None
        root = done[0] if done else None
        receipt = with_retries(
            partial(channel.send_post, post, key=key, reply_to=reply_to, root=root,
                    attempted_before=key in (attempted or set())),
            policy or RetryPolicy(attempts=8),
            sleep=sleep or Sleeps(),
        )
        done.append(receipt)
    return done
