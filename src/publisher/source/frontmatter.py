"""Validate a post's YAML front matter field by field, with errors that say how to fix them.

YAML comes from editors and sometimes from strangers, so it is size- and depth-capped and
loaded with `yaml.safe_load` (no object construction); every failure is an InputError.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

import yaml

from publisher.errors import InputError
from publisher.model import FaqItem
from publisher.networks import NAMES as NETWORKS
from publisher.source import faq
from publisher.text.controls import lone_surrogate, strip_controls

MAX_FRONT_MATTER_CHARS = 64_000
MAX_NODES = 5_000
MAX_DEPTH = 10
KNOWN_KEYS = (
    "title", "author", "date", "lang", "url", "image", "image_alt", "tags", "summary",
    "description", "social", "faq", "slug", "syndication",
)
LANG_TAG = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")
# Front matter in this plain subset of YAML (one `key: value` per line; values unquoted, simply
# quoted, a one-line [a, "b"] list, or `- item` lines) reads the same with libyaml's parser as
# with PyYAML's own (both feed the same SafeConstructor); libyaml is ~8× faster. Anything else
# (tabs, block scalars, nesting, escapes, comments, anchors) takes PyYAML's pure parser.
_QUOTED = r'(?:"[^"\\\n]*"|\'[^\'\n]*\')'
_PLAIN = r"[^\s\-?:,\[\]{}#&*!|>'\"%@`](?:[^#\n:]|:(?=[^\s]))*(?<![\s:])"
_FLOW_ITEM = rf"(?:{_QUOTED}|[^\s\-?:,\[\]{{}}#&*!|>'\"%@`][^,\[\]{{}}#:'\"\n]*?)"
_SIMPLE_VALUE = rf"(?:{_QUOTED}|{_PLAIN}|\[ *(?:{_FLOW_ITEM}(?: *, *{_FLOW_ITEM})*)? *\])"
SIMPLE_YAML = re.compile(
    rf"(?:(?:[A-Za-z_][A-Za-z0-9_]*:(?: {_SIMPLE_VALUE})?|  - (?:{_QUOTED}|{_PLAIN})|)\n)*"
)
# Printable characters and LF, not tab, NEL, U+2028/9, surrogates, BOM or U+FFFE/F: written as
# what is left out, since `re` compiles a class by visiting each of its BMP characters (~3 ms).
SIMPLE_YAML_CHARS = re.compile(
    "[^\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]*"
)


# YAML 1.1 reads `title: 0x1F` as 31, `1:20:30` as 4830 and `no` as false. Front matter
# fields are text (or dates), so plain scalars stay as written: only true/false are booleans,
# as in YAML 1.2's core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution); numbers
# stay text. The loaders are SafeLoader / CSafeLoader with those implicit resolvers.
BOOL_12 = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
COERCING_TAGS = frozenset({"tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
                           "tag:yaml.org,2002:bool"})


def _text_first(loader: type[Any]) -> type[Any]:
    """`loader` with int, float and YAML 1.1 bool resolution off, and YAML 1.2 bools on."""
    resolvers = {
        first: [(tag, rx) for tag, rx in pairs if tag not in COERCING_TAGS]
        for first, pairs in loader.yaml_implicit_resolvers.items()
    }
    for first in "tTfF":
        resolvers.setdefault(first, []).insert(0, ("tag:yaml.org,2002:bool", BOOL_12))
    return type(f"Text{loader.__name__}", (loader,), {"yaml_implicit_resolvers": resolvers})


TextLoader = _text_first(yaml.SafeLoader)
C_TEXT_LOADER = _text_first(yaml.CSafeLoader) if hasattr(yaml, "CSafeLoader") else None


@dataclass(frozen=True)
class FrontMatter:
    """The validated fields; empty strings for what the post leaves out."""

    title: str
    author: str = ""
    date: str = ""
    lang: str = ""
    url: str = ""
    image: str = ""
    image_alt: str = ""
    tags: tuple[str, ...] = ()
    summary: str = ""
    social: Mapping[str, str] = field(default_factory=dict)
    thread: bool = False
    faq: tuple[FaqItem, ...] = ()
    slug: str = ""
    warnings: tuple[str, ...] = ()


def read_front_matter(yaml_text: str, *, source: str) -> FrontMatter:
    """Parse and check the YAML between the fences (line 1 of the file is the opening fence)."""
    meta = _load(yaml_text, source)
    lines = yaml_text.split("\n")

    def where(key: str) -> str:
        return f"{source}:{_key_line(lines, key)}"

    title = _text(meta, "title", where)
    if not title:
        raise InputError(
            "the front matter has no title", where=f"{source}:1",
            fix='add a line such as  title: "My post"  between the --- fences',
        )
    summary = _text(meta, "summary", where) or _text(meta, "description", where)
    social, thread = _social(meta.get("social"), where("social"))
    warnings = tuple(
        f"{where(str(key))}: unknown front-matter key {key!r} is ignored"
        f" — use one of: {', '.join(KNOWN_KEYS)}"
        for key in meta if key not in KNOWN_KEYS
    )
    return FrontMatter(
        title=title,
        author=_text(meta, "author", where),
        date=_date(meta.get("date"), where("date")),
        lang=_lang(meta.get("lang"), where("lang")),
        url=_url(meta, "url", where("url"), relative_ok=False),
        image=_url(meta, "image", where("image"), relative_ok=True),
        image_alt=_text(meta, "image_alt", where),
        tags=_tags(meta.get("tags"), where("tags")),
        summary=summary,
        social=social,
        thread=thread,
        faq=faq.faq_from_front_matter(meta.get("faq"), where=where("faq")),
        slug=_slug(meta.get("slug"), where("slug")),
        warnings=warnings,
    )


def _load(yaml_text: str, source: str) -> dict[str, Any]:
    """safe_load with caps; the mapping of fields, or an InputError with the YAML line."""
    if not yaml_text.strip():
        return {}
    if len(yaml_text) > MAX_FRONT_MATTER_CHARS:
        raise InputError(
            "front matter is too large", where=f"{source}:1",
            fix=f"keep it under {MAX_FRONT_MATTER_CHARS} characters",
        )
    try:
        data = _fast_load(yaml_text)
        if data is None:
            data = yaml.load(yaml_text, Loader=TextLoader)  # a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 2 if mark else 1  # +1 for 1-based, +1 for the opening fence
        problem = exc.problem or exc.context or "invalid YAML"
        raise InputError(
            f"broken YAML in the front matter: {problem}", where=f"{source}:{line}",
            fix="fix the YAML on that line (quote values that contain ':' or '#')",
        ) from exc
    except (ValueError, TypeError, OverflowError) as exc:
        raise _unconstructed(yaml_text, source, exc) from exc
    except (yaml.YAMLError, RecursionError) as exc:
        raise InputError(
            f"unreadable front matter ({type(exc).__name__}: {exc})"[:300], where=f"{source}:1",
            fix="check the nesting of the YAML",
        ) from exc
    if not isinstance(data, dict):
        raise InputError(
            f"front matter must be a mapping of fields, not {_type_name(data)}",
            where=f"{source}:2", fix="write one  key: value  per line between the --- fences",
        )
    _check_shape(data, source)
    return _clean_strings(data, source)  # type: ignore[no-any-return]


def _unconstructed(yaml_text: str, source: str, exc: Exception) -> InputError:
    """The error naming the field whose value safe_load parsed but could not build: an
    impossible date such as 2024-13-45 raises ValueError with no line of its own."""
    loader = TextLoader(yaml_text)
    try:
        root = loader.get_single_node()
        for key, scalar in _scalars(root):
            try:
                loader.construct_object(scalar)
            except (ValueError, TypeError, OverflowError):
                return InputError(
                    f"{key} {scalar.value!r} cannot be read ({exc})"[:300],
                    where=f"{source}:{scalar.start_mark.line + 2}",
                    fix="write a real date such as 2025-04-01, or quote the value to keep text",
                )
    finally:
        loader.dispose()
    return InputError(f"unreadable front matter ({exc})"[:300], where=f"{source}:1",
                      fix="check the dates in the YAML")


def _scalars(root: yaml.Node | None) -> Iterator[tuple[str, yaml.ScalarNode]]:
    """Each scalar value under the top-level mapping, with the top-level key it belongs to
    (each node once: an alias shares its anchor's node)."""
    if not isinstance(root, yaml.MappingNode):
        return
    seen: set[int] = set()
    for key, value in root.value:
        stack = [value]
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, yaml.ScalarNode):
                yield str(key.value), node
            elif isinstance(node, yaml.MappingNode):
                stack.extend(n for pair in reversed(node.value) for n in reversed(pair))
            elif isinstance(node, yaml.SequenceNode):
                stack.extend(reversed(node.value))


def _clean_strings(value: Any, source: str) -> Any:
    """Strings as text can carry them: escapes such as "\\x0b" lose their control characters,
    and a lone surrogate ("\\ud800", which UTF-8 cannot encode) is refused."""
    if isinstance(value, str):
        surrogate = lone_surrogate(value)
        if surrogate:
            raise InputError(
                f"the front matter holds a lone surrogate ({surrogate} of {value[:40]!r})",
                where=f"{source}:1", fix="write the character itself, or a \\U00XXXXXX escape",
            )
        return strip_controls(value)[0]
    if isinstance(value, dict):
        return {_clean_strings(k, source): _clean_strings(v, source) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_strings(item, source) for item in value]
    return value


def _fast_load(yaml_text: str) -> Any:
    """safe_load through libyaml for front matter in the plain subset; None for the rest."""
    loader = C_TEXT_LOADER
    text = yaml_text if yaml_text.endswith("\n") else yaml_text + "\n"
    if loader is None or not SIMPLE_YAML_CHARS.fullmatch(text) or not SIMPLE_YAML.fullmatch(text):
        return None
    try:
        data = yaml.load(yaml_text, Loader=loader)  # CSafeLoader: safe_load's constructor
    except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError):
        return None  # PyYAML's parser says what is wrong, with its line
    return data if isinstance(data, dict) else None


def _check_shape(data: Any, source: str) -> None:
    """Refuse deeply nested or alias-exploded YAML before anything walks it."""
    budget = MAX_NODES
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        budget -= 1
        if budget < 0 or depth > MAX_DEPTH:
            raise InputError(
                "front matter is too deeply nested or too large", where=f"{source}:1",
                fix="use plain fields; anchors/aliases and deep nesting are not needed",
            )
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for kv in value.items() for v in kv)
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def _key_line(lines: list[str], key: str) -> int:
    """1-based file line of a top-level key (the opening fence is line 1).

    Every field's check asks for its line before it knows of an error, so this is a plain scan
    for `key:`, `"key" :` or `'key':` at the start of a line, not a pattern compiled per key.
    """
    for index, line in enumerate(lines):
        name = _unquoted(line)
        if name.startswith(key) and _unquoted(name[len(key):]).lstrip().startswith(":"):
            return index + 2
    return 1


def _unquoted(text: str) -> str:
    """`text` without one opening quote (single or double)."""
    return text[1:] if text[:1] in ("'", '"') else text


def _text(meta: Mapping[str, Any], key: str, where: Any) -> str:
    """A one-line text field; numbers are accepted as written, lists and maps are not."""
    value = meta.get(key)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InputError(
            f"{key} must be text, not {_type_name(value)}", where=where(key),
            fix=f'write it as  {key}: "…"',
        )
    return " ".join(str(value).split())


def _date(value: Any, where: str) -> str:
    """An ISO 8601 date or datetime string."""
    if value is None or value == "":
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, str):
        text = value.strip()
        try:
            datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            return text
    raise InputError(
        f"date {value!r} is not an ISO 8601 date"[:200], where=where,
        fix="write it as  date: 2025-04-01  (or 2025-04-01T09:00:00+09:00)",
    )


def _lang(value: Any, where: str) -> str:
    """A BCP 47 language tag such as ja, en or pt-BR."""
    if value is None or value == "":
        return ""
    if isinstance(value, str) and LANG_TAG.match(value.strip()):
        return value.strip().replace("_", "-")
    raise InputError(
        f"lang {value!r} is not a language code"[:200], where=where,
        fix="write a code such as  lang: ja  or  lang: en, or leave it out to detect it",
    )


def _url(meta: Mapping[str, Any], key: str, where: str, *, relative_ok: bool) -> str:
    """An http(s) URL (or, for images, a relative path); never javascript: or data:."""
    value = meta.get(key)
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        text = value.strip()
        try:
            parts = urlsplit(text)
        except ValueError:
            parts = None
        if parts and parts.scheme in {"http", "https"} and parts.netloc and " " not in text:
            try:
                parts.port  # noqa: B018 (urlsplit checks the port only when it is read)
            except ValueError as exc:
                raise InputError(
                    f"{key} has an invalid port ({exc})"[:200], where=where,
                    fix="use a port from 1 to 65535, or none",
                ) from exc
            return text
        if parts and relative_ok and not parts.scheme and not parts.netloc and text:
            return text
    kind = "an http(s) URL or a relative path" if relative_ok else "an absolute http(s) URL"
    raise InputError(
        f"{key} must be {kind}, got {value!r}"[:200],
        where=where, fix=f"write it as  {key}: https://example.com/…",
    )


def _tags(value: Any, where: str) -> tuple[str, ...]:
    """Tags from a YAML list or a comma-separated string, de-duplicated in order."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        raw: list[Any] = re.split(r"[,、，]", value)
    elif isinstance(value, list):
        raw = value
    else:
        raw = [None]
    tags: list[str] = []
    for item in raw:
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise InputError(
                f"tags must be a list of words, found {_type_name(item)}", where=where,
                fix='write  tags: [rail, "regional transport"]  or  tags: rail, transport',
            )
        tag = " ".join(str(item).split()).lstrip("#")
        if tag and tag not in tags:
            tags.append(tag)
    return tuple(tags)


def _social(value: Any, where: str) -> tuple[dict[str, str], bool]:
    """Per-network text overrides and the thread switch."""
    if value is None:
        return {}, False
    if not isinstance(value, dict):
        raise InputError(
            f"social must be a mapping, not {_type_name(value)}", where=where,
            fix='write  social: {x: "…", bluesky: "…"}',
        )
    overrides: dict[str, str] = {}
    thread = False
    for key, text in value.items():
        if key == "thread":
            if not isinstance(text, bool):
                raise InputError(
                    "social.thread must be true or false", where=where,
                    fix="write  thread: true",
                )
            thread = text
        elif key not in NETWORKS:
            raise InputError(
                f"unknown network social.{key}", where=where,
                fix=f"use one of: {', '.join(NETWORKS)}, thread",
            )
        elif not isinstance(text, str) or not text.strip():
            raise InputError(
                f"social.{key} must be the post text", where=where,
                fix=f'write  {key}: "…"',
            )
        else:
            overrides[key] = text.strip()
    return overrides, thread


def _slug(value: Any, where: str) -> str:
    """An explicit slug, made safe for file names and URLs."""
    if value is None or value == "":
        return ""
    if isinstance(value, str | int) and not isinstance(value, bool):
        slug = slugify(str(value))
        if slug != "post" or str(value).strip().casefold() == "post":
            return slug
    raise InputError(
        f"slug {value!r} has no usable characters"[:200], where=where,
        fix="write it as  slug: my-post",
    )


def slugify(name: str) -> str:
    """A file-system and URL safe slug: lower case, word characters and single hyphens."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    slug = re.sub(r"[^\w]+|_+", "-", folded).strip("-")
    return slug[:80].strip("-") or "post"


def _type_name(value: Any) -> str:
    """A YAML-ish name for a Python value, for messages."""
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "true/false"
    return {dict: "a mapping", list: "a list", str: "text", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)
