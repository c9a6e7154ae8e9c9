"""`--write-back`: record where a post was syndicated, in its own front matter.

IndieWeb convention (https://indieweb.org/syndication): the article lists the copies of itself
on other sites under `syndication:`. Only that key's lines change; every other byte of the file
(comments, key order, quoting, line endings, BOM, the body) stays exactly as the editor wrote it.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from publisher.errors import InputError, os_fault

KEY = "syndication"
KEY_LINE = re.compile(rf"^{KEY}\s*:(.*)$")
BOM = "\ufeff"


def with_syndication(text: str, urls: Sequence[str], remove: Sequence[str] = ()) -> str:
    """The file text with `syndication:` listing its earlier entries plus `urls`.

    remove drops entries (the URLs of posts `publish retract` deleted).
    """
    bom = BOM if text.startswith(BOM) else ""
    body = text[len(bom):]
    newline = "\r\n" if "\r\n" in body.split("\n", 1)[0] + "\n" else "\n"
    lines = body.splitlines(keepends=True)
    if not lines or lines[0].rstrip("\r\n") != "---":
        if not urls:
            return text
        return bom + "---" + newline + _block([], urls, newline) + "---" + newline + body
    close = _closing_line(lines)
    start = next((i for i in range(1, close) if KEY_LINE.match(lines[i].rstrip("\r\n"))), None)
    if start is None:
        if not urls:
            return text
        return bom + "".join(lines[:close]) + _block([], urls, newline) + "".join(lines[close:])
    end = _block_end(lines, start, close)
    existing = [u for u in _existing_urls("".join(lines[start:end])) if u not in remove]
    merged = _block(existing, urls, newline)
    return bom + "".join(lines[:start]) + merged + "".join(lines[end:])


def without_syndication(text: str) -> str:
    """The text minus its `syndication:` block, so writing URLs back never changes an edition."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].removeprefix(BOM).rstrip("\r\n") != "---":
        return text
    close = next((i for i in range(1, len(lines)) if lines[i].rstrip("\r\n") in ("---", "...")),
                 None)
    if close is None:
        return text
    start = next((i for i in range(1, close) if KEY_LINE.match(lines[i].rstrip("\r\n"))), None)
    if start is None:
        return text
    return "".join(lines[:start] + lines[_block_end(lines, start, close):])


def write_back(path: Path, urls: Sequence[str], remove: Sequence[str] = ()) -> bool:
    """Rewrite the article atomically with its syndication URLs; False when nothing changed."""
    try:
        original = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read for --write-back ({exc})", where=str(path),
                         fix="check the file is UTF-8 and readable") from exc
    updated = with_syndication(original, urls, remove)
    if updated == original:
        return False
    temporary = ""
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(handle, "wb") as out:
            out.write(updated.encode("utf-8"))
        os.chmod(temporary, path.stat().st_mode & 0o7777)
        os.replace(temporary, path)
    except OSError as exc:  # a full or read-only disk: a fault of the machine, not of the post
        if temporary:
            Path(temporary).unlink(missing_ok=True)
        raise os_fault(exc, doing="write the syndication URLs", where=str(path),
                       fix="free disk space or make the file writable, then run again") from exc
    return True


def _closing_line(lines: list[str]) -> int:
    """Index of the line that ends the front matter (`---` or `...`)."""
    for index in range(1, len(lines)):
        if lines[index].rstrip("\r\n") in ("---", "..."):
            return index
    raise InputError("front matter is not closed", where="front matter",
                     fix="end it with a line of three dashes")


def _block_end(lines: list[str], start: int, close: int) -> int:
    """One past the last line of the key's value: indented lines, `- ` items, inner blanks."""
    end = start + 1
    probe = end
    while probe < close:
        content = lines[probe].rstrip("\r\n")
        if content.startswith((" ", "\t", "-")):
            end = probe = probe + 1
        elif not content.strip():
            probe += 1  # a blank line belongs to the value only if the value continues
        else:
            break
    return end


def _existing_urls(block: str) -> list[str]:
    """The URLs already listed under the key (a list or a single string)."""
    import yaml

    try:
        value = (yaml.safe_load(block) or {}).get(KEY)
    except yaml.YAMLError as exc:
        raise InputError(f"cannot read the existing {KEY}: value ({exc})", where="front matter",
                         fix=f"make {KEY}: a list of URLs") from exc
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise InputError(f"{KEY}: is neither a URL nor a list of URLs", where="front matter",
                     fix=f"make {KEY}: a list of URLs")


def _block(existing: Sequence[str], urls: Sequence[str], newline: str) -> str:
    """The key as a block list: earlier entries first, then new URLs not already there."""
    merged = list(dict.fromkeys([*existing, *urls]))
    if not merged:
        return f"{KEY}: []{newline}"
    return f"{KEY}:{newline}" + "".join(f"  - {_scalar(url)}{newline}" for url in merged)


def _scalar(url: str) -> str:
    """A URL as YAML: plain when YAML reads it back unchanged, else double-quoted."""
    import yaml

    try:
        if url == url.strip() and yaml.safe_load(f"- {url}") == [url]:
            return url
    except yaml.YAMLError:
        pass
    return json.dumps(url, ensure_ascii=False)
