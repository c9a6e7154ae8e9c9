"""The import's shortcuts against the work they skip: the per-domain address check against
`validated_email`, and the streamed reading against decoding the whole file."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from publisher.errors import InputError
from publisher.stores.addresses import AddressChecker, validated_email
from publisher.stores.sqlite import SqliteSubscriberStore
from publisher.stores.subscriber_csv import HEAD_BYTES, ImportReport, read_rows

LOCALS = ["ann", "Ann.Lee", "a+tag", "x_y-z", "o'neil", "Postmaster", "ABUSE", "用户", "ÄNNE",
          "e\u0301lise", "\u212bngstrom", "a..b", ".ann", "ann.", "", "a b", "a\tb", "a@b",
          '"quoted"', '"quo ted"@', '"a\\"b"', "x" * 64, "x" * 65, "ä" * 40, "Hans<b>",
          "名前.ＦＵＬＬ", "a\u200bb", "\u0301x", "x\u0000", "émoji😀", "ⅷ", "ﬁle"]
DOMAINS = ["example.com", "EXAMPLE.org", "xn--bcher-kva.example", "bücher.example", "例え.jp",
           "ＥＸＡＭＰＬＥ.com", "ex_ample.com", "-bad.com", "bad-.com", "localhost", "a.b",
           "example..com", "com", "[127.0.0.1]", "[IPv6:::1]", "xn--zz.com", "münchen.DE",
           "ß.de", "σ.gr", "test", "invalid", "x.local", "a" * 64 + ".com", "a" * 63 + ".com",
           ("a" * 60 + ".") * 4 + "com", "例え。jp", "ex ample.com", "ex\u200dample.com", ""]


def _generated() -> list[str]:
    """A seeded mix of valid and invalid addresses, each domain seen many times."""
    rng = random.Random(18)
    made = [f"{local}@{domain}" for local in LOCALS for domain in DOMAINS]
    made += [f"Name <{rng.choice(LOCALS)}@{rng.choice(DOMAINS)}>" for _ in range(200)]
    made += ["plain", "@example.com", "a@@example.com", "  ann@example.com  ", "a@b@c.com",
             "ann@example.com.", "ann@.example.com"]
    tricky = "ab.@-_+ \\()[],;:<>\"'~!#$%&*/=?^`{|}1\t"
    made += ["".join(rng.choice(tricky) for _ in range(rng.randint(1, 12))) + "@example.com"
             for _ in range(600)]
    rng.shuffle(made)
    return made


def _outcome(check: object, address: str) -> tuple[str, ...]:
    """What a checker says: the address and key, or the error's message and cause."""
    try:
        assert callable(check)
        email, key = check(address)
    except InputError as exc:
        return ("error", str(exc), str(exc.__cause__), type(exc.__cause__).__name__)
    return (email, key)


def test_the_per_domain_check_says_exactly_what_validated_email_says() -> None:
    check = AddressChecker()
    addresses = _generated()
    for address in addresses + addresses:  # the second round answers domains from the cache
        assert _outcome(check, address) == _outcome(validated_email, address), address
    valid = sum(_outcome(validated_email, a)[0] != "error" for a in addresses)
    assert 100 < valid < len(addresses) - 100  # the mix really has both kinds


def test_a_full_domain_cache_starts_over_and_stays_right() -> None:
    check = AddressChecker(max_domains=3)
    for address in _generated()[:300]:
        assert _outcome(check, address) == _outcome(validated_email, address), address


def test_a_file_larger_than_the_guessed_head_streams_and_counts_lines(tmp_path: Path) -> None:
    rows = HEAD_BYTES // 20 + 5000
    body = "".join(f"r{i}@例え.jp,読者 {i}\n" for i in range(rows))
    target = tmp_path / "big.csv"
    target.write_bytes(("email,name\n" + body + "r7@例え.jp,again\n").encode("cp932"))
    report = ImportReport()
    found = list(read_rows(target, report))  # the repeat too: the store names it
    assert len(found) == rows + 1 and found[-1].line == rows + 2 and found[3].name == "読者 3"
    assert report.problems == []
    imported = SqliteSubscriberStore(tmp_path / "subs.sqlite3").import_csv(target)
    assert imported.added == rows
    assert [(p.line, p.reason) for p in imported.problems] == [
        (rows + 2, "duplicate of line 9: not imported")]


def test_a_bad_byte_past_the_head_stops_before_any_row(tmp_path: Path) -> None:
    target = tmp_path / "late.csv"
    good = "".join(f"r{i}@example.com,Reader\n" for i in range(HEAD_BYTES // 20 + 10))
    target.write_bytes(("email,name\n" + good).encode() + b"x@example.com,\xff\n")
    with pytest.raises(InputError, match=r"not valid utf-8 at byte \d+"):
        next(read_rows(target, ImportReport()))


def test_the_plain_ascii_shortcut_says_exactly_what_validated_email_says() -> None:
    rng = random.Random(1818)
    atext = "abcxyzABCXYZ0189!#$%&'*+-/=?^_`{|}~"
    names = ["info", "Postmaster", "ABUSE", "noc", "WebMaster", "sales", "infos", "root"]
    domains = ["example.com", "EXAMPLE.org", "xn--bcher-kva.example", "Xn--Bcher-Kva.Example",
               "xn--r8jz45g.jp", "mail.example.co.uk", "a" * 63 + ".com",
               ".".join(["xn--bcher-kva"] * 16) + ".example",  # longer in UTF-8 than typed
               "bücher.example", "ex_ample.com", "localhost", "-bad.com"]
    made = []
    for _ in range(6000):
        size = rng.choice([1, 5, 20, 64, 65, 120, 200, 230, 240, 250])
        local = "".join(rng.choice(atext + "." * 3) for _ in range(size))
        if rng.random() < 0.15:
            local = rng.choice(names)
        made.append(f"{local}@{rng.choice(domains)}")
    check = AddressChecker()
    for address in made + made:  # the second round takes the shortcut wherever it applies
        assert _outcome(check, address) == _outcome(validated_email, address), address
    outcomes = [_outcome(validated_email, a) for a in made]
    too_long = sum("too long" in o[-2] for o in outcomes if o[0] == "error")
    assert too_long > 100 and sum(o[0] != "error" for o in outcomes) > 1000
