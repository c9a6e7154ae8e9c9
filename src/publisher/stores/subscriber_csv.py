"""Reading and writing subscriber CSV files the way other tools and spreadsheets produce them.

Import reads UTF-8 with or without a BOM, UTF-16 and UTF-32 (by their BOM), and otherwise asks
charset-normalizer, preferring among its cleanest readings the most coherent one; Shift_JIS is read
as CP932, the superset Japanese Excel writes. The guess reads the first MiB; the whole file is
then checked to decode before any row is imported, and read as a stream (memory stays bounded).
`--encoding` overrides the guess. Headers of the common exports are understood: Mailchimp (`Email
Address`, `First Name`, `Last Name`), Substack (`email`, `name`), Buttondown (`email`,
`subscriber_type`), ConvertKit/Kit (`email_address` or `email`, `first_name`, `last_name`,
`state`) and listmonk (`email`, `name`, `status`), plus an explicit `--map email=…,name=…`.
A file without a header is read as email[,name][,status].

Export guards against spreadsheet formula injection as OWASP recommends
(https://owasp.org/www-community/attacks/CSV_Injection): a cell starting with `=`, `+`, `-`,
`@`, tab or carriage return gets a leading `'`, which import takes off again.
"""

from __future__ import annotations

import codecs
import csv
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from publisher.errors import InputError
from publisher.stores.addresses import AddressChecker

if TYPE_CHECKING:
    from _csv import Reader as CsvReader

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
FIELDS = ("email", "name", "first", "last", "status")
HEADER_ALIASES: Mapping[str, str] = {
    **dict.fromkeys(("email", "e-mail", "email address", "email_address", "emailaddress",
                     "e-mail address", "address", "mail"), "email"),
    **dict.fromkeys(("name", "full name", "full_name", "fullname", "display name"), "name"),
    **dict.fromkeys(("first name", "first_name", "firstname", "fname"), "first"),
    **dict.fromkeys(("last name", "last_name", "lastname", "lname"), "last"),
    **dict.fromkeys(("status", "state", "subscriber_type", "subscription status"), "status"),
}
STATUS_ALIASES: Mapping[str, str] = {
    **dict.fromkeys(("subscribed", "active", "confirmed", "regular", "premium", "enabled",
                     "paid", "free", "comp", "gift"), "subscribed"),
    **dict.fromkeys(("unsubscribed", "cancelled", "canceled", "inactive", "blocklisted",
                     "disabled"), "unsubscribed"),
    **dict.fromkeys(("bounced", "cleaned", "undeliverable"), "bounced"),
    **dict.fromkeys(("complained", "spam", "spam_reported"), "complained"),
}
HEAD_BYTES = 1 << 20  # encoding guessed from the first MiB; the file is read a MiB at a time
NOT_OPTED_IN = frozenset({"unconfirmed", "unactivated", "pending", "cold"})
BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"))


@dataclass(frozen=True)
class RowProblem:
    """A CSV row that was not imported, and why."""

    line: int
    value: str
    reason: str


@dataclass
class ImportReport:
    """What an import did; bad rows are listed, never fatal."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    kept_suppressed: int = 0  # rows that would have re-subscribed an opted-out address
    resubscribed: list[str] = field(default_factory=list)  # only with resubscribe=True
    problems: list[RowProblem] = field(default_factory=list)


class ImportRow(NamedTuple):
    """One valid CSV row: its line, the normalized address, its match key, name and status."""

    line: int
    email: str
    key: str
    name: str
    status: str


@dataclass(frozen=True)
class Columns:
    """Which column holds which field (indexes into a row)."""

    email: int
    name: int | None = None
    first: int | None = None
    last: int | None = None
    status: int | None = None


def parse_mapping(text: str) -> dict[str, str]:
    """`--map email=Col,name=Col` as {field: column header}; InputError naming a bad part."""
    mapping: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        field, sep, column = part.partition("=")
        field = field.strip().lower()
        if not sep or field not in FIELDS or not column.strip():
            raise InputError(f"cannot read {part!r}", where="--map",
                             fix=f"write field=column pairs; fields: {', '.join(FIELDS)}")
        mapping[field] = column.strip()
    if "email" not in mapping:
        raise InputError("no email column", where="--map", fix="add email=<column header>")
    return mapping


def read_rows(path: Path, report: ImportReport, *, encoding: str | None = None,
              mapping: Mapping[str, str] | None = None) -> Iterator[ImportRow]:
    """Valid rows of a CSV, streamed; bad rows go into the report.

    A row repeating an earlier row's address is yielded too: the store finds such duplicates
    (the first line of every address is kept in the database, not here, so memory stays flat).
    """
    name = file_encoding(path, encoding)
    check = AddressChecker()
    with path.open(encoding=name, newline="") as text:
        reader = csv.reader(text)
        try:
            columns = _header(reader, mapping, path)
            if columns is None:
                return
            first, row = columns
            if row is not None:
                found = _row(reader.line_num, [unescape_cell(c.strip()) for c in row], first,
                             report, check)
                if found is not None:
                    yield found
            yield from _data_rows(reader, first, report, check)
        except csv.Error as exc:
            raise InputError(f"unreadable CSV at line {reader.line_num} ({exc})", where=str(path),
                             fix="save it again as CSV from the spreadsheet") from exc


def _header(reader: Iterator[list[str]], mapping: Mapping[str, str] | None, path: Path
            ) -> tuple[Columns, list[str] | None] | None:
    """The columns and, in a file without a header, its first data row (None: no rows at all).

    Blank rows and `#` comment rows before the first row are skipped.
    """
    for row in reader:
        cells = [unescape_cell(c.strip()) for c in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        columns = _columns(cells, mapping, path)
        if columns is not None:
            return columns, None  # that was the header row
        return Columns(0, 1, status=2), row
    return None


def _data_rows(reader: CsvReader, columns: Columns, report: ImportReport,
               check: AddressChecker) -> Iterator[ImportRow]:
    """The rows after the header, validated; only the cells the columns name are read.

    Same result as `_row` on every cell stripped and unescaped: a row is blank (skipped) when
    every cell is whitespace, which the email cell being non-empty already rules out.
    """
    email, name, first, last, status = (columns.email, columns.name, columns.first,
                                        columns.last, columns.status)
    wanted = max(i for i in (email, name, first, last, status) if i is not None)
    for row in reader:
        if len(row) <= wanted:
            cells = [unescape_cell(c.strip()) for c in row]
            if any(cells):
                found = _row(reader.line_num, cells, columns, report, check)
                if found is not None:
                    yield found
            continue
        raw = row[email].strip()
        if not raw:
            if any(c.strip() for c in row):
                found = _row(reader.line_num, [unescape_cell(c.strip()) for c in row], columns,
                             report, check)
                if found is not None:
                    yield found
            continue
        if raw[0] == "'":
            raw = unescape_cell(raw)
        given = row[status].strip().lower() if status is not None else ""
        if given:
            known = STATUS_ALIASES.get(given)  # no alias starts with a quote: nothing to unescape
            if known is None:
                found = _row(reader.line_num, [unescape_cell(c.strip()) for c in row], columns,
                             report, check)
                if found is not None:
                    yield found
                continue
            given = known
        try:
            address, key = check(raw)
        except InputError as exc:
            reason = str(exc.__cause__) if exc.__cause__ else exc.problem
            report.problems.append(RowProblem(reader.line_num, raw, reason))
            continue
        who = row[name].strip() if name is not None else ""
        if who[:1] == "'":
            who = unescape_cell(who)
        if not who and (first is not None or last is not None):
            who = " ".join(filter(None, (_cell(row, first), _cell(row, last))))
        yield ImportRow(reader.line_num, address, key, who, given)


def _cell(row: Sequence[str], index: int | None) -> str:
    """One cell stripped and unescaped ('' when the column is not there)."""
    return unescape_cell(row[index].strip()) if index is not None and index < len(row) else ""


def file_encoding(path: Path, encoding: str | None) -> str:
    """The given encoding, a BOM's, UTF-8, or charset-normalizer's guess from the file's start.

    The whole file is then checked to decode, a block at a time, so a bad byte stops the import
    before anything is written.
    """
    head = _read_head(path)
    if encoding:
        return _checked(path, encoding, fix="check --encoding")
    for bom, name in BOMS:
        if head.startswith(bom):
            return _checked(path, name, fix="pass --encoding")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) < HEAD_BYTES)
        return _checked(path, "utf-8", fix="pass --encoding")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = list(from_bytes(head))
    if not matches:
        raise InputError("cannot tell the text encoding", where=str(path),
                         fix="pass --encoding (e.g. --encoding cp932 for Japanese Excel)")
    # Short files fool the ranking (a CP932 list of names reads as "Korean" with no coherence):
    # among the nearly-as-clean readings, take the one that reads most like a language.
    calm = [m for m in matches if m.chaos <= matches[0].chaos + 0.1]
    guessed = max(calm, key=lambda m: (m.coherence, -m.chaos)).encoding
    if guessed.replace("-", "_").lower() in ("shift_jis", "cp932", "sjis", "ms932"):
        guessed = "cp932"  # what Japanese Excel writes; Shift_JIS is its subset
    return _checked(path, guessed, fix="pass --encoding")


def spreadsheet_safe(cell: str) -> str:
    """A cell a spreadsheet will not run as a formula (OWASP: prefix with a single quote)."""
    return f"'{cell}" if cell.startswith(FORMULA_STARTS) else cell


def unescape_cell(cell: str) -> str:
    """Undo `spreadsheet_safe` on import."""
    if cell.startswith("'") and cell[1:].startswith(FORMULA_STARTS):
        return cell[1:]
    return cell


def _read_head(path: Path) -> bytes:
    """The file's first HEAD_BYTES, or one InputError (missing, a folder, a FIFO, unreadable)."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise InputError("not a regular file", where=str(path), fix="point at a CSV file")
        with path.open("rb") as data:
            return data.read(HEAD_BYTES)
    except OSError as exc:
        raise InputError(f"cannot read the file ({exc.strerror or exc})", where=str(path),
                         fix="check the path and its permissions") from exc


def _checked(path: Path, encoding: str, *, fix: str) -> str:
    """The encoding once the whole file decodes strictly in it; else InputError naming the byte."""
    try:
        decoder = codecs.getincrementaldecoder(encoding)()
    except LookupError as exc:
        raise InputError(f"unknown encoding {encoding!r}", where=str(path),
                         fix="use a Python codec name such as utf-8, utf-16, cp932") from exc
    done = 0
    try:
        with path.open("rb") as data:
            while block := data.read(HEAD_BYTES):
                decoder.decode(block)
                done += len(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise InputError(f"not valid {encoding} at byte {done + exc.start}", where=str(path),
                         fix=fix) from exc
    except OSError as exc:
        raise InputError(f"cannot read the file ({exc.strerror or exc})", where=str(path),
                         fix="check the path and its permissions") from exc
    return encoding


def _columns(cells: Sequence[str], mapping: Mapping[str, str] | None, path: Path
             ) -> Columns | None:
    """The header row's columns, or None when the first row is already data."""
    lowered = [c.lower() for c in cells]
    if mapping:
        index: dict[str, int] = {}
        for field, header in mapping.items():
            if header.lower() not in lowered:
                raise InputError(f"no column {header!r} (for {field})", where=str(path),
                                 fix=f"the header row has: {', '.join(cells)}")
            index[field] = lowered.index(header.lower())
        return Columns(**index)
    fields = {HEADER_ALIASES[c]: i for i, c in reversed(list(enumerate(lowered)))
              if c in HEADER_ALIASES}
    if "email" not in fields:
        if any("@" not in c and c and not c.startswith("#") for c in cells[:1]):
            raise InputError("no email column in the header row", where=str(path),
                             fix="name it email (or Email Address), or pass --map email=<column>")
        return None
    return Columns(**fields)


def _row(line: int, cells: Sequence[str], columns: Columns, report: ImportReport,
         check: AddressChecker) -> ImportRow | None:
    """One data row validated, or None with the problem reported."""
    def cell(index: int | None) -> str:
        return cells[index] if index is not None and index < len(cells) else ""

    raw = cell(columns.email)
    given = cell(columns.status).lower()
    if given in NOT_OPTED_IN:
        report.problems.append(RowProblem(line, raw, f"status {given!r} has not opted in"))
        return None
    status = STATUS_ALIASES.get(given, given)
    if status and status not in STATUS_ALIASES.values():
        report.problems.append(RowProblem(line, raw, f"unknown status {given!r}"))
        return None
    try:
        email, key = check(raw)
    except InputError as exc:
        reason = str(exc.__cause__) if exc.__cause__ else exc.problem
        report.problems.append(RowProblem(line, raw, reason))
        return None
    name = cell(columns.name) or " ".join(filter(None, (cell(columns.first), cell(columns.last))))
    return ImportRow(line, email, key, name, status)
