"""Connecting to PostgreSQL from a `ledger`/`subscribers` setting, keeping the password hidden.

A setting is a URL `postgresql://user@host:port/db`, a libpq key/value string
`host=… dbname=… user=…` (https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING),
or `secret:NAME`, which reads the whole URL, password included, from the secret NAME
(environment, .env or keyring), e.g. `secret:PUBLISHER_DATABASE_URL`. Without a secret, libpq takes
the password from PGPASSWORD, ~/.pgpass or the other libpq environment variables
(https://www.postgresql.org/docs/current/libpq-envars.html). A password written into
publisher.toml itself, as userinfo, as `?password=` or as `password=`, is refused.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

from publisher.config.secrets import get_secret, mask, remember
from publisher.errors import ConfigError
from publisher.stores.database import Value
from publisher.stores.setting import KEYWORD_VALUE, URL_SCHEMES

if TYPE_CHECKING:  # psycopg is the optional `postgres` extra: imported when a database opens
    import psycopg

ValueRow = dict[str, Value]  # a result row by column name, as the stores read it (a Record)

PASSWORD_KEYS = ("password", "sslpassword")  # the libpq parameters that carry a secret
_PASSWORD_IN_URL = re.compile(r"(://[^/@\s:]*:)([^/@\s]*)(@)")
_PASSWORD_PARAM = re.compile(r"(?i)(\b(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|[^&\s]*)")


def masked_url(url: str) -> str:
    """The URL or key/value string with any password replaced by ***, safe for messages."""
    return mask(_PASSWORD_PARAM.sub(r"\1***", _PASSWORD_IN_URL.sub(r"\1***\3", url)))


def passwords_in(setting: str) -> list[str]:
    """Every password a URL (userinfo or query) or a libpq key/value string carries."""
    if setting.startswith(URL_SCHEMES):
        parts = urlsplit(setting)
        found = [parts.password or ""]
        found += [v for k, v in parse_qsl(parts.query) if k.lower() in PASSWORD_KEYS]
    else:
        found = [_unquote(v) for k, v in KEYWORD_VALUE.findall(setting)
                 if k in PASSWORD_KEYS]
    return [value for value in found if value]


def refuse_password(setting: str, *, key: str) -> None:
    """A ConfigError when the setting itself carries a password (it belongs in a secret)."""
    if passwords_in(setting):
        raise ConfigError(
            "a database password is written in the config",
            where=f"{key} = {masked_url(setting)!r}",
            fix="remove it; set PGPASSWORD, use ~/.pgpass, or put the whole URL in the secret "
                "PUBLISHER_DATABASE_URL and write `secret:PUBLISHER_DATABASE_URL`",
        )


def resolve_url(setting: str, *, key: str) -> str:
    """The URL to connect to: the setting itself (no password allowed) or a secret's value."""
    if setting.startswith("secret:"):
        name = setting.removeprefix("secret:").strip() or "PUBLISHER_DATABASE_URL"
        url = get_secret(name, purpose=f"the `{key}` database")
        for password in passwords_in(url):
            remember(password)
        return url
    refuse_password(setting, key=key)
    return setting


def check_setting(setting: str, *, key: str) -> None:
    """Before anything opens: no password in the config, and the driver installed."""
    if not setting.startswith("secret:"):
        refuse_password(setting, key=key)
    require_driver(key)


def require_driver(key: str) -> None:
    """A ConfigError naming the extra to install when psycopg is missing."""
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            "PostgreSQL support is not installed", where=key,
            fix="pip install 'publisher[postgres]' (psycopg 3)",
        ) from exc


def connect(setting: str, *, key: str) -> psycopg.Connection[ValueRow]:
    """An autocommit psycopg connection, or a ConfigError that never shows the password."""
    require_driver(key)
    import psycopg
    from psycopg.rows import RowFactory, dict_row

    rows: RowFactory[ValueRow] = dict_row  # psycopg's dict rows: values as the driver gives them
    url = resolve_url(setting, key=key)
    try:
        # No server-side prepared statements: after 5 executions PostgreSQL may plan one once,
        # generically, and `item IN ($1, …, $500)` then scans the whole table on every call
        # (https://www.postgresql.org/docs/current/sql-prepare.html#SQL-PREPARE-NOTES,
        # https://www.psycopg.org/psycopg3/docs/advanced/prepare.html).
        return psycopg.Connection.connect(url, autocommit=True, connect_timeout=15,
                                          row_factory=rows, prepare_threshold=None)
    except psycopg.Error as exc:
        problem = masked_url(str(exc).strip().splitlines()[0] if str(exc).strip() else "error")
        raise ConfigError(
            f"cannot connect to the {key} database ({problem})", where=masked_url(url),
            fix="check the URL, that the server is up, and PGPASSWORD or the secret",
        ) from None  # the driver's exception text may repeat the URL: do not chain it


def _unquote(value: str) -> str:
    """A libpq value without its single quotes and backslash escapes."""
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value
