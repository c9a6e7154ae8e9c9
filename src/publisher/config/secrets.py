"""Secrets come from the environment, a .env file or the system keyring; never from config.

Precedence (highest first): the process environment, `.env` in the working directory, the
keyring service ``publisher``. A value is stripped of surrounding whitespace (secrets read from
files end in a newline); one with a control character inside is refused. Every value handed out
is remembered, with the encodings a server may echo it in (base64 at any alignment, as in SMTP
`AUTH PLAIN`; percent-encoding; JSON escapes), so `mask` hides it wherever text is printed or
stored.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from urllib.parse import quote, quote_plus

from publisher.errors import ConfigError

KEYRING_SERVICE = "publisher"
MIN_LENGTH = 4  # shorter values are not worth masking (they would hit ordinary text)
MIN_ENCODED = 8  # an encoded fragment shorter than this is too common to mask
_forms: dict[str, str] = {}  # a text to hide → what is shown instead


def get_secret(name: str, *, required: bool = True, purpose: str = "") -> str:
    """The secret called NAME, or a ConfigError that says how to provide it."""
    raw = os.environ.get(name) or _dotenv().get(name) or _keyring_get(name)
    value = clean_secret(name, raw) if raw else ""
    if value:
        return value
    if not required:
        return ""
    why = f" (needed for {purpose})" if purpose else ""
    raise ConfigError(
        f"secret {name} is not set{why}",
        where="environment",
        fix=f"export {name}=… or run `publish keys set {name}`",
    )


def secret_source(name: str) -> str:
    """Where the secret NAME is read from: "environment", ".env", "keyring", or "" (unset)."""
    if os.environ.get(name):
        return "environment"
    if _dotenv().get(name):
        return ".env"
    return "keyring" if _keyring_get(name) else ""


def replace_secret(name: str, value: str) -> str:
    """Store a new value where NAME is read from now (.env or the keyring); say where."""
    source = secret_source(name)
    if source == ".env":
        from dotenv import set_key

        set_key(".env", name, clean_secret(name, value), quote_mode="never")
        return ".env"
    set_secret(name, value)
    return "keyring"


def clean_secret(name: str, raw: str) -> str:
    """The value without surrounding whitespace; a line break or control inside is refused."""
    remember(raw)
    value = raw.strip()
    remember(value)
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ConfigError(
            f"secret {name} has a line break or control character inside it",
            where="environment",
            fix=f"store {name} again as one line (e.g. `publish keys set {name}`)",
        )
    return value


def set_secret(name: str, value: str) -> None:
    """Store a secret in the system keyring (`publish keys set`)."""
    import keyring
    import keyring.errors

    value = clean_secret(name, value)
    try:
        keyring.set_password(KEYRING_SERVICE, name, value)
    except keyring.errors.KeyringError as exc:
        raise ConfigError(
            f"no usable keyring ({exc.__class__.__name__})",
            where="keyring",
            fix=f"set {name} in the environment or a .env file instead",
        ) from exc


def remember(value: str) -> None:
    """Register a value, and the forms a server may echo it in, to be masked from now on."""
    if len(value) < MIN_LENGTH or value in _forms:
        return
    _forms[value] = masked(value)
    for form in _encoded_forms(value):
        if len(form) >= MIN_ENCODED and form not in _forms:
            _forms[form] = "****"


def mask(text: str) -> str:
    """Text with every known secret, plain or encoded, replaced by a short masked form."""
    for form in sorted(_forms, key=len, reverse=True):
        if form in text:
            text = text.replace(form, _forms[form])
    return text


def masked_excerpt(text: str, limit: int) -> str:
    """At most LIMIT characters of TEXT on one line, masked BEFORE the cut.

    Cutting first could keep the start of a secret that crosses the cut, where mask no longer
    recognises it; so the window masked reaches a whole secret's length past the cut.
    """
    window = limit + max(map(len, _forms), default=0)
    return " ".join(mask(text[:window]).split())[:limit]


def masked(value: str) -> str:
    """How a secret is shown: its first two characters and stars, never more."""
    return value[:2] + "****" if len(value) > 8 else "****"


def _encoded_forms(value: str) -> list[str]:
    """How a secret may appear inside other text: escaped, or base64 inside a longer blob.

    Base64 turns each 3 bytes into 4 characters, so a secret inside a blob (as in SMTP
    `AUTH PLAIN` of NUL user NUL password, RFC 4616) is encoded differently at each of the three
    alignments; the characters of the groups lying wholly inside the secret are the same in
    any blob, and those are what is masked.
    """
    data = value.encode("utf-8")
    forms = [quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]]
    for skip in range(3):
        whole = data[skip:]
        whole = whole[: len(whole) - len(whole) % 3]
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            forms.append(encode(whole).decode("ascii"))
    forms.append(base64.b64encode(data).decode("ascii").rstrip("="))
    return [form for form in forms if form != value]


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
