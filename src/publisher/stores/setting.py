"""Whether a `ledger`/`subscribers` setting names PostgreSQL or a SQLite file.

Kept apart from pgurl and postgres so that deciding costs a SQLite run neither import.
"""

from __future__ import annotations

import re
from pathlib import Path

URL_SCHEMES = ("postgresql:", "postgres:")
# https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-PARAMKEYWORDS
LIBPQ_KEYWORDS = frozenset({
    "host", "hostaddr", "port", "dbname", "user", "password", "passfile", "service", "options",
    "sslmode", "sslcert", "sslkey", "sslpassword", "sslrootcert", "connect_timeout",
    "application_name", "target_session_attrs", "channel_binding", "require_auth", "gssencmode",
})
KEYWORD_VALUE = re.compile(r"\s*([a-z_]+)\s*=\s*('(?:[^'\\]|\\.)*'|\S*)")


def is_database_url(target: str | Path) -> bool:
    """Whether a `ledger`/`subscribers` setting names PostgreSQL (URL, libpq string) or a file."""
    setting = str(target)
    if setting.startswith((*URL_SCHEMES, "secret:")):
        return True
    first = KEYWORD_VALUE.match(setting)
    return first is not None and first.group(1) in LIBPQ_KEYWORDS
