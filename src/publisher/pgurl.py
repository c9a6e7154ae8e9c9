"""Connecting to PostgreSQL from a `ledger`/`subscribers` setting, keeping the password hidden.

A setting is either `postgresql://user@host:port/db` (libpq then takes the password from
PGPASSWORD, ~/.pgpass or the other libpq environment variables:
https://www.postgresql.org/docs/current/libpq-envars.html) or `secret:NAME`, which reads the whole
URL, password included, from the secret NAME (environment, .env or keyring), e.g.
`secret:PUBLISHER_DATABASE_URL`. A password written into publisher.toml itself is refused.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from publisher.errors import ConfigError
from publisher.secrets import get_secret, mask, remember

_PASSWORD_IN_URL = re.compile(r"(://[^/@\s:]*:)([^/@\s]*)(@)")


def is_database_url(target: str | Path) -> bool:
    """Whether a `ledger`/`subscribers` setting names a PostgreSQL database, not a file."""
    return str(target).startswith(("postgresql:", "postgres:", "secret:"))


def masked_url(url: str) -> str:
    """The URL with any password replaced by ***, safe for messages."""
    return mask(_PASSWORD_IN_URL.sub(r"\1***\3", url))


def resolve_url(setting: str, *, key: str) -> str:
    """The URL to connect to: the setting itself (no password allowed) or a secret's value."""
    if setting.startswith("secret:"):
        name = setting.removeprefix("secret:").strip() or "PUBLISHER_DATABASE_URL"
        url = get_secret(name, purpose=f"the `{key}` database")
        password = urlsplit(url).password
        if password:
            remember(password)
        return url
    if urlsplit(setting).password:
        raise ConfigError(
            "a database password is written in the config",
            where=f"{key} = {masked_url(setting)!r}",
            fix="remove it; set PGPASSWORD, use ~/.pgpass, or put the whole URL in the secret "
                "PUBLISHER_DATABASE_URL and write `secret:PUBLISHER_DATABASE_URL`",
        )
    return setting


def connect(setting: str, *, key: str) -> Any:
    """An autocommit psycopg connection, or a ConfigError that never shows the password."""
    try:
        import psycopg
    except ImportError as exc:
        raise ConfigError(
            "PostgreSQL support is not installed", where=key,
            fix="pip install 'publisher[postgres]' (psycopg 3)",
        ) from exc
    url = resolve_url(setting, key=key)
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=15)
    except psycopg.Error as exc:
        problem = masked_url(str(exc).strip().splitlines()[0] if str(exc).strip() else "error")
        raise ConfigError(
            f"cannot connect to the {key} database ({problem})", where=masked_url(url),
            fix="check the URL, that the server is up, and PGPASSWORD or the secret",
        ) from None  # the driver's exception text may repeat the URL: do not chain it
