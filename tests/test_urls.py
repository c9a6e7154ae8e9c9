"""Our own twitter-text patterns: the library's, character for character, without importing it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from publisher.networks import urls
from publisher.networks.tlds import CCTLDS, GTLDS

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


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(PIECES, max_size=40).map("".join))
def test_extract_urls_equals_twitter_text(text: str) -> None:
    from twitter_text import extract_urls_with_indices

    found = extract_urls_with_indices(text)
    expected = [(e["indices"][0], e["indices"][1], e["url"]) for e in found]
    assert [(u.start, u.end, u.url) for u in urls.extract_urls(text)] == expected


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
