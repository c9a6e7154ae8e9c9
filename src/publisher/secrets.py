"""Secrets come from the environment, a .env file or the system keyring; never from config.

Precedence (highest first): the process environment, `.env` in the working directory, the
keyring service ``publisher``. Every value handed out is remembered so `mask` can hide it
wherever text is printed or written.
"""

from __future__ import annotations

import os
from pathlib import Path

from publisher.errors import ConfigError

KEYRING_SERVICE = "publisher"
_seen: set[str] = set()


def get_secret(name: str, *, required: bool = True, purpose: str = "") -> str:
    """The secret called NAME, or a ConfigError that says how to provide it."""
    value = os.environ.get(name) or _dotenv().get(name) or _keyring_get(name)
    if value:
        remember(value)
        return value
    if not required:
        return ""
    why = f" (needed for {purpose})" if purpose else ""
    raise ConfigError(
        f"secret {name} is not set{why}",
        where="environment",
        fix=f"export {name}=… or run `publish keys set {name}`",
    )


def set_secret(name: str, value: str) -> None:
    """Store a secret in the system keyring (`publish keys set`)."""
    import keyring
    import keyring.errors

    try:
        keyring.set_password(KEYRING_SERVICE, name, value)
    except keyring.errors.KeyringError as exc:
        raise ConfigError(
            f"no usable keyring ({exc.__class__.__name__})",
            where="keyring",
            fix=f"set {name} in the environment or a .env file instead",
        ) from exc


def remember(value: str) -> None:
    """Register a value to be masked from now on."""
    if len(value) >= 4:
        _seen.add(value)


def mask(text: str) -> str:
    """Text with every known secret replaced by a short masked form."""
    for value in sorted(_seen, key=len, reverse=True):
        if value in text:
            text = text.replace(value, masked(value))
    return text


def masked(value: str) -> str:
    """How a secret is shown: its first two characters and stars, never more."""
    return value[:2] + "****" if len(value) > 8 else "****"


def _dotenv() -> dict[str, str]:
    """Values from ./.env without touching os.environ."""
    path = Path(".env")
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v}


def _keyring_get(name: str) -> str:
    """A keyring lookup that treats a missing or broken backend as 'not set'."""
    if os.environ.get("PUBLISHER_NO_KEYRING"):
        return ""
    try:
        import keyring

        return keyring.get_password(KEYRING_SERVICE, name) or ""
    except Exception:  # any backend failure means "not stored here"
        return ""
