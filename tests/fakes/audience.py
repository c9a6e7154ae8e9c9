"""What the newsletter-platform fakes share: a list the platform owns, and what each send did.

Buttondown, listmonk, Ghost and Mailchimp keep the subscribers themselves: publisher hands over one
campaign and the platform mails everyone on the list. `Audience.send` records one delivery per
subscriber (so a test counts copies per reader) and `sends` counts how often each campaign went.
A test send goes to `proofs`, never to the subscribers' tally.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .server import Deliveries


class Audience:
    """A platform's own list of subscribers and the campaigns it sent them."""

    def __init__(self, provider: str, emails: Iterable[str], *,
                 deliveries_path: Path | None = None) -> None:
        self.emails = list(emails)
        self.deliveries = Deliveries(provider, deliveries_path)
        self.sends: Counter[str] = Counter()
        self.proofs: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def send(self, campaign_id: str, subject: str, html: str) -> None:
        """Mail the campaign to every subscriber on the list."""
        with self.lock:
            self.sends[campaign_id] += 1
        for email in self.emails:
            self.deliveries.record(email, campaign_id, subject=subject, html=html)

    def proof(self, campaign_id: str, to: Iterable[str], subject: str, html: str) -> None:
        """A test send of the campaign to the given addresses only."""
        with self.lock:
            self.proofs.extend({"campaign": campaign_id, "email": email, "subject": subject,
                                "html": html} for email in to)

    def copies(self) -> Counter[str]:
        """How many copies each subscriber got."""
        return Counter(self.deliveries.emails())
