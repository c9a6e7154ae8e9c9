"""Our own twitter-text patterns: the library's, character for character, without importing it."""

from __future__ import annotations

import re
import string
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from publisher.networks import urls
from publisher.networks.tlds import CCTLDS, GTLDS
from publisher.text.casefold import ascii_folded

TLD_LIB = (Path(__file__).resolve().parents[1] / ".." / "shared" / "conformance" / "twitter-text"
           / "tld_lib.yml")


def test_the_patterns_are_twitter_texts_own() -> None:
    from twitter_text.regexp.emoji import emoji
    from twitter_text.regexp.extract_url import extract_url
    from twitter_text.regexp.valid_ascii_domain import valid_ascii_domain
    from twitter_text.regexp.valid_tco_url import valid_tco_url

    for ours, theirs in ((urls._extract_url_re(), extract_url),
                         (urls._ascii_domain_re(), valid_ascii_domain),
                         (urls._tco_url_re(), valid_tco_url), (urls.emoji_pattern(), emoji)):
        assert (ours.pattern, ours.flags) == (theirs.pattern, theirs.flags)


def test_the_tlds_are_twitter_texts_in_its_order() -> None:
    from twitter_text.regexp.valid_cctld import valid_cctld
    from twitter_text.regexp.valid_gtld import valid_gtld

    assert valid_gtld.pattern == urls.GTLD
    assert valid_cctld.pattern == urls.CCTLD


def test_the_tlds_are_those_of_the_conformance_list() -> None:
    if not TLD_LIB.is_file():
        pytest.skip(f"{TLD_LIB} not present")
    listed = yaml.safe_load(TLD_LIB.read_text(encoding="utf-8"))
    assert set(listed["generic"]) == set(GTLDS)
    assert set(listed["country"]) == set(CCTLDS)


PIECES = st.sampled_from([
    "a", "Z", "0", ".", "/", ":", "?", "#", "@", "-", "_", "(", ")", "=", "&", " ", "\n", "。",
    "日本", "é", "ж", "\u202a", "\ufeff", "https://", "http://", "t.co/", "com", "jp", "co.uk",
    "xn--p1ai", "例え", "テスト", "www.", "example", "😷", "＠", "$",
])
# Pieces where the loose TLD and the exact alternation could part: runs of letters that are
# and are not TLDs, letters IGNORECASE folds into ASCII, non-ASCII TLDs and their prefixes.
TLD_PIECES = st.sampled_from([
    ".", "a", "example", "COM", "com", "comx", "co", "jp", "e.g", "txt", "zzz", "x", "-", "@",
    "\u212aim", "ſhop", "İt", "ıt", "みんな", "みん", "コム", "中国", "中國", "中文网", "рф",
    "xn--p1ai", "vermögensberatung", "verm", "ö", "https://", "/", " ", "。", "日本", "1", "+",
])


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(PIECES, max_size=40).map("".join))
def test_extract_urls_equals_twitter_text(text: str) -> None:
    from twitter_text import extract_urls_with_indices

    found = extract_urls_with_indices(text)
    expected = [(e["indices"][0], e["indices"][1], e["url"]) for e in found]
    assert [(u.start, u.end, u.url) for u in urls.extract_urls(text)] == expected


@settings(max_examples=3000, deadline=None)
@given(st.lists(TLD_PIECES, max_size=30).map("".join))
def test_the_loose_tld_matches_exactly_or_hands_over(text: str) -> None:
    for loose, exact, group in ((urls._loose_url_re, urls._extract_url_re, 5),
                                (urls._loose_ascii_domain_re, urls._ascii_domain_re, 0)):
        matches = urls._matches(text, loose, exact, group)
        assert [(*m.groups(), m.span()) for m in matches] == [
            (*m.groups(), m.span()) for m in exact().finditer(text)]


def test_the_letters_the_loose_tld_takes_are_those_ignorecase_folds_to_ascii() -> None:
    letter = re.compile("[a-z]", re.IGNORECASE)
    taken = [chr(code) for code in range(0x110000) if letter.fullmatch(chr(code))]
    assert sorted(taken) == sorted([*string.ascii_letters, *"\u0130\u0131\u017f\u212a"])
    assert {ascii_folded(char) for char in taken} == set(string.ascii_lowercase)
    assert all(tld.isascii() and tld.isalpha() and tld.islower() for tld in urls.ASCII_TLDS)
    # A non-ASCII TLD (vermögensberatung) may begin with letters, but never with a listed TLD
    # that TLD_END would end there: else that one could be taken where the alternation takes it.
    leading = re.compile("[a-z]*", re.IGNORECASE)
    for tld in (*GTLDS, *CCTLDS):
        if not tld.isascii():
            run = leading.match(tld)
            assert run is not None and run.group() not in urls.ASCII_TLDS


def test_a_text_with_listed_tlds_never_compiles_the_exact_pattern() -> None:
    urls._extract_url_re.cache_clear()
    found = urls.extract_urls("新駅は https://example.com/a と www.city.example.jp で。")
    assert [u.url for u in found] == ["https://example.com/a", "www.city.example.jp"]
    assert urls._extract_url_re.cache_info().currsize == 0
    assert [u.url for u in urls.extract_urls("e.g. see example.com")] == ["example.com"]
    assert urls._extract_url_re.cache_info().currsize == 1  # "e.g": g is no TLD, so exactly


def test_counting_never_imports_twitter_text_or_pkg_resources() -> None:
    code = (
        "import re, sys\n"
        "compile_before = re.compile\n"
        "from publisher.networks.counting import find_urls, measure\n"
        "assert measure('x', '新駅 https://example.com/news 😷').length == 31\n"
        "assert [u.url for u in find_urls('see example.jp/a.')] == ['example.jp/a']\n"
        "heavy = ('twitter_text', 'pkg_resources')\n"
        "loaded = [n for n in sys.modules if n.split('.')[0] in heavy]\n"
        "print(re.compile is compile_before, loaded == [])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True"]
