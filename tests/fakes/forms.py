"""Request-body helpers the social fakes share: forms, multipart parts, persisted state."""

from __future__ import annotations

import json
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from .server import Request


def header(request: Request, name: str) -> str:
    """A request header ('' when absent)."""
    return request.headers.get(name.lower(), "")


def query(request: Request) -> dict[str, str]:
    """Query parameters, last value wins."""
    return {k: v[-1] for k, v in request.query.items()}


def json_body(request: Request) -> Any:
    """The body as JSON, or None when it is not JSON."""
    try:
        return request.json()
    except ValueError:
        return None


def multipart(request: Request) -> dict[str, tuple[bytes, str]]:
    """Parts of a multipart/form-data body: field name → (bytes, filename)."""
    head = f"Content-Type: {header(request, 'content-type')}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + request.body)
    parts: dict[str, tuple[bytes, str]] = {}
    if not message.is_multipart():
        return parts
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            parts[name] = (payload, part.get_filename() or "")
    return parts


def fields(request: Request) -> dict[str, Any]:
    """Text fields from whichever body encoding the client chose, over the query string."""
    kind = header(request, "content-type")
    found: dict[str, Any]
    if kind.startswith("multipart/"):
        found = {k: v.decode("utf-8", "replace")
                 for k, (v, filename) in multipart(request).items() if not filename}
    elif kind.startswith("application/json"):
        data = json_body(request)
        found = dict(data) if isinstance(data, dict) else {}
    else:
        parsed = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
        found = {k: v[-1] for k, v in parsed.items()}
    return {**query(request), **found}


def load_state(path: Path | None) -> dict[str, Any] | None:
    """A fake's persisted state, if a state file was given and exists."""
    if path is None or not path.exists():
        return None
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def save_state(path: Path | None, state: dict[str, Any]) -> None:
    """Persist a fake's state atomically so a restarted fake sees the same network."""
    if path is None:
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state), encoding="utf-8")
    tmp.replace(path)
