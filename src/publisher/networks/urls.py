"""URLs and emoji exactly where twitter-text finds them, from patterns of our own.

twitter-text-parser builds its URL pattern from ~20 smaller compiled patterns and reads its
emoji table with `pkg_resources` when its package imports, all before the first call (~0.2 s).
Here the same pattern sources are pasted together as plain strings and compiled once, when a
text with a "." is first scanned; the emoji table is read from the library's own data file
without importing the library. Most texts never need twitter-text's 1,574-way TLD alternation
compiled (~20 ms): a loose pattern takes any run of ASCII letters as the TLD, and when every TLD
it found is listed, its matches are exactly twitter-text's (see `_listed`).

Sources (Apache-2.0): twitter_text/regexp/*.py, extract_urls.py and regexp/emoji.py of
twitter-text-parser 3.0.0, the Python port of https://github.com/twitter/twitter-text
(js/src/regexp/). tests/test_urls.py checks both against the installed library and
twitter-text's conformance files.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from publisher.networks.tlds import CCTLDS, GTLDS
from publisher.text.casefold import ascii_folded

# regexp/invalid_chars_group.py, directional_markers_group.py, spaces_group.py, punct.py
INVALID_CHARS = r"\uFFFE\uFEFF\uFFFF"
DIRECTIONAL_MARKERS = r"\u202A-\u202E\u061C\u200E\u200F\u2066\u2067\u2068\u2069"
SPACES = r"\x09-\x0D\x20\x85\xA0\u1680\u180E\u2000-\u200A\u2028\u2029\u202F\u205F\u3000"
PUNCT = r"\!'#%&'\(\)*\+,\\\-\.\/:;<=>\?@\[\]\^_{|}~\$/"
# regexp/latin_accent_chars.py, cyrillic_letters_and_marks.py
LATIN_ACCENTS = (
    r"\xC0-\xD6\xD8-\xF6\xF8-\xFF\u0100-\u024F\u0253\u0254\u0256\u0257\u0259\u025B\u0263"
    r"\u0268\u026F\u0272\u0289\u028B\u02BB\u0300-\u036F\u1E00-\u1EFF"
)
CYRILLIC = r"\u0400-\u04FF"
# regexp/valid_url_preceding_chars.py
PRECEDING = rf"(?:[^A-Za-z0-9@＠$#＃{INVALID_CHARS}]|[{DIRECTIONAL_MARKERS}]|^)"
# regexp/valid_domain_chars.py, valid_subdomain.py, valid_domain_name.py
DOMAIN_CHAR = rf"[^{PUNCT}{SPACES}{INVALID_CHARS}{DIRECTIONAL_MARKERS}]"
SUBDOMAIN = rf"(?:(?:{DOMAIN_CHAR}(?:[_-]|{DOMAIN_CHAR})*)?{DOMAIN_CHAR}\.)"
DOMAIN_NAME = rf"(?:(?:{DOMAIN_CHAR}(?:-|{DOMAIN_CHAR})*)?{DOMAIN_CHAR}\.)"
# regexp/valid_gtld.py, valid_cctld.py, valid_punycode.py
TLD_END = r"(?=[^0-9a-zA-Z@+-]|$)"
GTLD = "(?:(?:" + "|".join(GTLDS) + ")" + TLD_END + ")"
CCTLD = "(?:(?:" + "|".join(CCTLDS) + ")" + TLD_END + ")"
PUNYCODE = r"(?:xn--[\-0-9a-z]+)"
TLD = f"(?:{GTLD}|{CCTLD}|{PUNYCODE})"
# The loose TLD: any run of letters twitter-text's TLDs are made of, or one of its non-ASCII
# TLDs (in its order), or punycode (`[a-z]` under IGNORECASE also takes İ ı ſ K: ascii_folded).
ASCII_TLDS = frozenset(tld for tld in (*GTLDS, *CCTLDS) if tld.isascii())
LOOSE_TLD = (
    f"(?:(?:[a-z]+{TLD_END})"
    f"|(?:(?:{'|'.join(tld for tld in GTLDS if not tld.isascii())}){TLD_END})"
    f"|(?:(?:{'|'.join(tld for tld in CCTLDS if not tld.isascii())}){TLD_END})|{PUNYCODE})"
)

# regexp/valid_general_url_path_chars.py, valid_url_balanced_parens.py,
# valid_url_path_ending_chars.py, valid_url_path.py
PATH_CHAR = rf"[a-z{CYRILLIC}0-9!\*';:=\+,\.\$\/%#\[\]\-\u2013_~@\|&{LATIN_ACCENTS}]"
BALANCED_PARENS = rf"\((?:{PATH_CHAR}+|(?:{PATH_CHAR}*\({PATH_CHAR}+\){PATH_CHAR}*))\)"
PATH_END = rf"[\+\-a-z{CYRILLIC}0-9=_#\/{LATIN_ACCENTS}]|(?:{BALANCED_PARENS})"
PATH = rf"(?:(?:{PATH_CHAR}*(?:{BALANCED_PARENS}{PATH_CHAR}*)*{PATH_END})|(?:@{PATH_CHAR}+/))"
# regexp/valid_url_query_chars.py, valid_url_query_ending_chars.py, valid_port_number.py
QUERY_CHAR = r"[a-z0-9!?*'@();:&=+$/%#\[\]\-_.,~|]"
QUERY_END = r"[a-z0-9\-_&=#/]"
PORT = r"[0-9]+"


# regexp/valid_domain.py, valid_ascii_domain.py
def _domain(tld: str) -> str:
    """valid_domain with the TLD pattern `tld`."""
    return rf"(?:{SUBDOMAIN}*{DOMAIN_NAME}{tld})"


def _ascii_domain(tld: str) -> str:
    """valid_ascii_domain with the TLD pattern `tld`."""
    return rf"(?:(?:[\-a-z0-9{LATIN_ACCENTS}]+)\.)+{tld}"


def _extract_url(domain: str) -> str:
    """regexp/extract_url.py: $2 preceding character, $3 URL, $4 protocol, $5 domain, $7 path."""
    return (
        rf"(({PRECEDING})((https?:\/\/)?({domain})(?::({PORT}))?(\/{PATH}*)?"
        rf"(\?{QUERY_CHAR}*{QUERY_END})?))"
    )


EXTRACT_URL = _extract_url(_domain(TLD))
ASCII_DOMAIN = _ascii_domain(TLD)
LOOSE_EXTRACT_URL = _extract_url(_domain(LOOSE_TLD))
LOOSE_ASCII_DOMAIN = _ascii_domain(LOOSE_TLD)
# regexp/valid_tco_url.py, invalid_url_without_protocol_preceding_chars.py
TCO_URL = rf"^https?:\/\/t\.co\/([a-z0-9]+)(?:\?{QUERY_CHAR}*{QUERY_END})?"
NO_PROTOCOL_AFTER_RE = re.compile(r"[-_./]$")
# extract_urls.py
DEFAULT_PROTOCOL = "https://"
MAX_URL_LENGTH = 4096
MAX_TCO_SLUG_LENGTH = 40
# regexp/emoji.py reads the Unicode emoji-test.txt shipped in the library from line 33 on.
EMOJI_DATA = ("regexp", "emoji-test.txt")
EMOJI_SKIPPED_LINES = 32


@dataclass(frozen=True)
class Url:
    """One URL twitter-text extracts: [start, end) in code points, and its text."""

    start: int
    end: int
    url: str


def extract_urls(text: str) -> list[Url]:
    """extract_urls_with_indices(text) of twitter-text, with or without a protocol."""
    if not text or "." not in text:
        return []
    urls: list[Url] = []
    for match in _matches(text, _loose_url_re, _extract_url_re, 5):
        before, url, protocol, domain, path = (match.group(i) for i in (2, 3, 4, 5, 7))
        end = match.end()
        start = end - len(url)
        if not _is_valid_url(url, protocol or DEFAULT_PROTOCOL, domain):
            continue
        if protocol is None:
            urls.extend(_ascii_domains(before, url, domain, path, start, end))
            continue
        tco = _tco_url_re().search(url)
        if tco:
            if tco.group(1) and len(tco.group(1)) > MAX_TCO_SLUG_LENGTH:
                continue
            url = tco.group(0)
            end = start + len(url)
        urls.append(Url(start, end, url))
    return urls


def _ascii_domains(before: str, url: str, domain: str, path: str | None,
                   start: int, end: int) -> list[Url]:
    """The ASCII-only domains of a URL without protocol; the last one keeps the path."""
    if NO_PROTOCOL_AFTER_RE.match(before):
        return []
    found = [Url(start + m.start(), start + m.end(), m.group(0))
             for m in _matches(domain, _loose_ascii_domain_re, _ascii_domain_re, 0)]
    if found and path:
        last = found[-1]
        found[-1] = Url(last.start, end, url.replace(domain, last.url))
    return found


def _matches(text: str, loose: Callable[[], re.Pattern[str]],
             exact: Callable[[], re.Pattern[str]], domain_group: int) -> list[re.Match[str]]:
    """The exact pattern's matches, from the loose one when every TLD it took is listed."""
    found = list(loose().finditer(text))
    if all(_listed(match.group(domain_group)) for match in found):
        return found
    return list(exact().finditer(text))


def _listed(domain: str) -> bool:
    """Whether the loose TLD of `domain` is one twitter-text's alternation would have taken.

    The loose and the exact pattern backtrack alike up to the TLD, and the loose TLD matches
    wherever a listed one does: a run of letters followed by TLD_END is the whole run, and at
    most one listed ASCII TLD can be that run. So when the run found is listed, the exact pattern
    matched the same text at the same place; its other choices (non-ASCII TLDs in order,
    punycode) are twitter-text's own. A non-ASCII TLD that begins with letters (vermögensberatung)
    begins with no listed one, so its "verm" is not listed and the exact pattern decides.
    tests/test_urls.py checks these facts and compares both patterns on every text it tries.
    """
    tld = ascii_folded(domain.rpartition(".")[2])
    return not (tld.isascii() and tld.isalpha()) or tld in ASCII_TLDS


def _is_valid_url(url: str, protocol: str, domain: str) -> bool:
    """extract_urls.is_valid_url: the domain has a punycode form and the URL is not too long."""
    try:
        puny = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return bool(puny) and len(protocol) + len(url) + len(puny) - len(domain) <= MAX_URL_LENGTH


def emoji_pattern() -> re.Pattern[str]:
    """regexp/emoji.py's `emoji`: every multi-code-point sequence, then single code points."""
    return _emoji_re()


@cache
def _extract_url_re() -> re.Pattern[str]:
    """regexp/extract_url.py (a 13 KB pattern: compiled only for a text the loose one misreads)."""
    return re.compile(EXTRACT_URL, re.IGNORECASE)


@cache
def _loose_url_re() -> re.Pattern[str]:
    """EXTRACT_URL with the loose TLD (~25 ms less to compile)."""
    return re.compile(LOOSE_EXTRACT_URL, re.IGNORECASE)


@cache
def _loose_ascii_domain_re() -> re.Pattern[str]:
    """ASCII_DOMAIN with the loose TLD."""
    return re.compile(LOOSE_ASCII_DOMAIN, re.IGNORECASE)


@cache
def _ascii_domain_re() -> re.Pattern[str]:
    """regexp/valid_ascii_domain.py."""
    return re.compile(ASCII_DOMAIN, re.IGNORECASE)


@cache
def _tco_url_re() -> re.Pattern[str]:
    """regexp/valid_tco_url.py."""
    return re.compile(TCO_URL, re.IGNORECASE)


@cache
def _emoji_re() -> re.Pattern[str]:
    """The emoji table as twitter-text builds it, from the data file it ships."""
    singles: list[int] = []
    sequences: list[str] = []
    for codes in _emoji_code_points(_emoji_data().read_text(encoding="utf-8")):
        if len(codes) > 1:
            sequences.append("".join(rf"\U{code.zfill(8)}" for code in codes))
        else:
            singles.append(int(codes[0], 16))
    sequences.sort(key=len, reverse=True)  # longest first, as emoji.py sorts them (stable)
    ranges = "".join(
        rf"\U{low:08x}" if low == high else rf"\U{low:08x}-\U{high:08x}"
        for low, high in _ranges(singles)
    )
    return re.compile("|".join(sequences) + "|[" + ranges + "]")


def _emoji_data() -> Path:
    """emoji-test.txt inside the installed twitter_text package, found without importing it."""
    spec = importlib.util.find_spec("twitter_text")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("twitter_text (twitter-text-parser) is not installed")
    return Path(next(iter(spec.submodule_search_locations)), *EMOJI_DATA)


def _emoji_code_points(text: str) -> list[list[str]]:
    """emoji.py's parse_emoji_list: the code points of each emoji outside group Component."""
    found: list[list[str]] = []
    group = ""
    for line in text.splitlines()[EMOJI_SKIPPED_LINES:]:
        if line == "# Status Counts":
            break
        if not line or "subtotal:" in line:
            continue
        if line.startswith("#") and "# group:" in line:
            group = line.split(":")[-1].strip()
        if group != "Component" and re.match("[0-9A-F]{3,}", line):
            found.append(line.split(";")[0].split())
    return found


def _ranges(numbers: list[int]) -> list[tuple[int, int]]:
    """emoji.py's get_ranges: runs of consecutive code points as (low, high)."""
    nums = sorted(numbers)
    lows, highs = [nums[0]], []
    if nums[1] - nums[0] > 1:
        highs.append(nums[0])
    for i in range(1, len(nums) - 1):
        if nums[i] - nums[i - 1] > 1:
            lows.append(nums[i])
        if nums[i + 1] - nums[i] > 1:
            highs.append(nums[i])
    highs.append(nums[-1])
    if len(highs) > len(lows):
        lows.append(highs[-1])
    return list(zip(lows, highs, strict=False))
