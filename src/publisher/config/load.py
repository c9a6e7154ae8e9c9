"""Reading publisher.toml: every key, type, range and name checked, secrets refused.

Names are checked against the registries (networks, channels), so this is the one config module
that reads them; the settings themselves (config/settings.py) stay pure values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import MISSING, fields, replace
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from publisher.config.settings import (
    CONFIG_NAME,
    Config,
    FaqSettings,
    FeedSettings,
    ImageSettings,
    NewsletterSettings,
    Site,
    SocialSettings,
    WordPressSettings,
)
from publisher.errors import ConfigError
from publisher.networks import NAMES as NETWORKS

SECRET_WORDS = ("password", "secret", "token", "api_key", "apikey", "passwd", "passphrase",
                "credential")
SECRET_NAME_WORDS = frozenset({"key", "pass", "pwd"})  # as the last word: smtp_pass, not key_points
URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# (section, key) → the inclusive range a number must fall in
RANGES: Mapping[tuple[str, str], tuple[int, int]] = {
    ("", "max_attempts"): (1, 100),
    ("faq", "max_items"): (0, 100),
    ("feed", "max_bytes"): (1_000, 1_000_000_000),
    ("faq", "short_answer_chars"): (20, 2000),
    ("social", "hashtags"): (0, 30),
    ("social", "mastodon_limit"): (1, 100_000),
    ("social", "mastodon_url_length"): (1, 100),
}


def load_config(path: Path | None = None, *, cwd: Path | None = None) -> Config:
    """Read publisher.toml (explicit path, else the working directory's), else the defaults."""
    if path is None:
        candidate = (cwd or Path.cwd()) / CONFIG_NAME
        if not candidate.is_file():
            return Config()
        path = candidate
    if not path.is_file():
        raise ConfigError(
            "config file not found", where=str(path), fix="check the --config path"
        )
    import tomllib  # only when there is a file: the embedded defaults need no parser

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"invalid TOML ({exc})", where=str(path), fix="fix the syntax") from exc
    return config_from_mapping(data, source=str(path))


def config_from_mapping(data: Mapping[str, Any], *, source: str = "") -> Config:
    """Build a Config from parsed TOML, rejecting unknown keys and inline secrets."""
    _reject_secrets(data, source)
    where = source or CONFIG_NAME
    base = Config(source=source)
    known = {f.name for f in fields(Config)} - {"source"}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(
            f"unknown key {sorted(unknown)[0]!r}",
            where=where,
            fix=f"use one of: {', '.join(sorted(known))}",
        )
    sections: dict[str, Any] = {}
    for name, kind in (
        ("site", Site), ("newsletter", NewsletterSettings),
        ("social", SocialSettings), ("faq", FaqSettings), ("images", ImageSettings),
        ("wordpress", WordPressSettings), ("feed", FeedSettings),
    ):
        if name in data:
            sections[name] = _section(kind, data[name], f"{where} [{name}]", name)
    scalars = {k: data[k] for k in ("outbox", "ledger", "subscribers", "max_attempts", "channels")
               if k in data}
    hints = get_type_hints(Config)
    for key, value in scalars.items():
        _check_value(key, value, hints[key], where, "")
    _check_choices(sections, scalars.get("channels", {}), where)
    return replace(base, **sections, **scalars)


def _section(kind: type[Any], raw: Any, where: str, name: str) -> Any:
    """One table of the file as its dataclass, with clear errors on unknown keys and types."""
    if not isinstance(raw, Mapping):
        raise ConfigError("must be a table", where=where, fix="write it as [section] with keys")
    allowed = {f.name: f for f in fields(kind)}
    renamed = {("sender" if k == "from" else k): v for k, v in raw.items()}
    hints = get_type_hints(kind)
    for key, value in renamed.items():
        if key not in allowed:
            raise ConfigError(
                f"unknown key {key!r}", where=where, fix=f"use one of: {', '.join(allowed)}"
            )
        _check_value("from" if key == "sender" else key, value, hints[key], where, name)
    renamed = {k: tuple(v) if isinstance(v, list) else v for k, v in renamed.items()}
    if kind in (ImageSettings, FeedSettings):
        _check_images(renamed, where)
    if kind is WordPressSettings:
        _check_timeout(renamed, where)
    return kind(**renamed)


def _check_images(raw: Mapping[str, Any], where: str) -> None:
    """[images] and [feed]: a positive timeout, allow_private entries that are networks."""
    import ipaddress

    _check_timeout(raw, where)
    for entry in raw.get("allow_private", ()):
        try:
            ipaddress.ip_network(str(entry), strict=False)
        except ValueError as exc:
            raise ConfigError(f"allow_private: {entry!r} is not an address or network",
                              where=where, fix='e.g. allow_private = ["10.0.0.0/8"]') from exc


def _check_timeout(raw: Mapping[str, Any], where: str) -> None:
    """A table's `timeout`, when given, is a positive number of seconds."""
    timeout = raw.get("timeout", 1)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ConfigError(f"timeout must be a number of seconds > 0, not {timeout!r}",
                          where=where, fix="e.g. timeout = 20")


def _check_value(key: str, value: Any, hint: Any, where: str, section: str) -> None:
    """A value of the declared type (and range), or a ConfigError naming the key and a fix."""
    if not _has_type(value, hint):
        raise ConfigError(
            f"{key} must be {_describe(hint)}, not {value!r}", where=where,
            fix=f"e.g. {key} = {_example(key, section)}",
        )
    low, high = RANGES.get((section, key), (None, None))
    if low is not None and high is not None and not low <= value <= high:
        raise ConfigError(f"{key} must be between {low} and {high}, not {value!r}",
                          where=where, fix=f"e.g. {key} = {_example(key, section)}")


def _has_type(value: Any, hint: Any) -> bool:
    """Whether a TOML value fits a field's type: str, int, bool, a list of strings, a table."""
    origin = get_origin(hint)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is tuple:
        return isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
    if origin is Mapping:
        inner = get_args(hint)[1] if get_args(hint) else Any
        return isinstance(value, Mapping) and all(
            inner is Any or _has_type(v, inner) for v in value.values())
    return True


def _describe(hint: Any) -> str:
    """A type as the file's author thinks of it."""
    origin = get_origin(hint)
    if hint is bool:
        return "true or false"
    if hint is int:
        return "a whole number"
    if hint is str:
        return "a string"
    if origin is tuple:
        return "a list of strings"
    return "a table"


def _example(key: str, section: str) -> str:
    """The embedded default of a key, written as TOML."""
    kinds: Mapping[str, type[Any]] = {"site": Site, "newsletter": NewsletterSettings,
                                      "social": SocialSettings, "faq": FaqSettings}
    kind = kinds.get(section, Config)
    name = "sender" if key == "from" else key
    found = next((f for f in fields(kind) if f.name == name), None)
    if found is None or found.default is MISSING:
        return "…"
    value = found.default
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    return f'"{value}"'


def _check_choices(sections: Mapping[str, Any], channels: Mapping[str, Any], where: str) -> None:
    """Transports, networks and channel tables must be ones publisher knows."""
    from publisher.channels import registry  # the one list of channels

    transports = registry.transports()
    newsletter = sections.get("newsletter")
    if newsletter is not None and newsletter.transport not in transports:
        raise ConfigError(f"unknown transport {newsletter.transport!r}",
                          where=f"{where} [newsletter]", fix=f"use one of: {', '.join(transports)}")
    social = sections.get("social")
    for network in social.networks if social is not None else ():
        if network not in NETWORKS:
            raise ConfigError(f"unknown network {network!r}", where=f"{where} [social]",
                              fix=f"networks may hold: {', '.join(NETWORKS)}")
    for name, table in channels.items():
        if name not in registry.names():
            raise ConfigError(f"unknown channel table [channels.{name}]", where=where,
                              fix=f"use one of: {', '.join(registry.names())}")
        if not isinstance(table, Mapping):
            raise ConfigError(f"channels.{name} must be a table", where=where,
                              fix=f"write it as [channels.{name}] with keys")


def _reject_secrets(data: Any, where: str, path: str = "") -> None:
    """Secrets belong in the environment or keyring; refuse them in the file.

    Tables, arrays of tables and inline tables are searched alike. A key is refused when its name
    says it holds a secret; a string value when it is a URL carrying credentials.
    """
    items = data.items() if isinstance(data, Mapping) else (
        (f"[{n}]", v) for n, v in enumerate(data))
    for key, value in items:
        dotted = f"{path}.{key}" if path and not key.startswith("[") else f"{path}{key}"
        if isinstance(value, Mapping | list):
            _reject_secrets(value, where, dotted)
            continue
        if isinstance(value, str) and _is_database_setting(value):
            from publisher.stores.pgurl import refuse_password

            refuse_password(value, key=f"{where or CONFIG_NAME}: {dotted}")
            continue
        if isinstance(data, Mapping) and is_secret_name(key):
            problem = f"{dotted} looks like a secret"
        elif isinstance(value, str) and (found := credentials_in_url(value)):
            problem = f"{dotted} carries {found} in its URL"
        else:
            continue
        raise ConfigError(
            problem,
            where=where or CONFIG_NAME,
            fix="remove it and set it in the environment or with `publish keys set`"
                " (a key ending in _env names the variable that holds it)",
        )


def is_secret_name(key: str) -> bool:
    """Whether a config key (or URL query parameter) names a secret; `…_env` names a variable."""
    lowered = key.lower()
    if lowered.endswith(("_env", "public_key")):  # a public key (SendGrid's webhook) is no secret
        return False
    words = re.split(r"[^a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", key).lower())
    return any(word in lowered for word in SECRET_WORDS) or words[-1] in SECRET_NAME_WORDS


def credentials_in_url(value: str) -> str:
    """What secret a URL carries (userinfo, a password, a key in the query), or ""."""
    if not URL_SCHEME.match(value):
        return ""
    from urllib.parse import parse_qsl, urlsplit

    try:
        parts = urlsplit(value)
        user, password = parts.username, parts.password
    except ValueError:
        return ""
    if password or user:
        return "a user name or password"
    secret_params = [k for k, _ in parse_qsl(parts.query, keep_blank_values=True)
                     if is_secret_name(k)]
    return f"a ?{secret_params[0]}= parameter" if secret_params else ""


def _is_database_setting(value: str) -> bool:
    """A PostgreSQL URL or libpq string (its user is no secret; its password is)."""
    from publisher.stores.setting import is_database_url

    return is_database_url(value) and not value.startswith("secret:")
