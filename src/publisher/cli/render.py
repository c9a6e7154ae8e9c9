"""What every verb prints through: a rich console, escaped dynamic text, secrets masked."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


def console(stderr: bool = False) -> Console:
    """A rich console, imported only when something is printed."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def escape(text: str) -> str:
    """Dynamic text shown through rich: brackets in titles or errors are not markup."""
    from rich.markup import escape as escape_markup

    return escape_markup(text)


def mask(text: str) -> str:
    """Text with every secret handed out so far hidden (secrets.py is light to import)."""
    from publisher.config.secrets import mask as mask_secrets

    return mask_secrets(text)


def safe(text: str) -> str:
    """Dynamic text that may quote a provider or the user: secrets masked, then escaped."""
    return escape(mask(text))
