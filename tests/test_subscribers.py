"""The subscriber store: idempotent CSV import reporting bad rows, streaming, status filtering."""

from __future__ import annotations

import hmac
from pathlib import Path

import pytest

from publisher.config.settings import Site
from publisher.errors import InputError
from publisher.stores.addresses import Subscriber, new_uid
from publisher.stores.sqlite import SqliteSubscriberStore
from publisher.stores.subscribers import SubscriberStore
from publisher.unsubscribe.tokens import (
    PURPOSE_ID,
    Signer,
    _b64,
    make_address_token,
    make_token,
    recipient_for,
    recipient_pages,
    recipients_for,
    recipients_of,
    unsubscribe_url,
    verify_token,
)

SECRET = "test-unsubscribe-secret-0123456789"


@pytest.fixture
def store(tmp_path: Path) -> SubscriberStore:
    return SqliteSubscriberStore(tmp_path / "subs.sqlite3")


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_import_is_idempotent_and_reports_bad_rows_with_line_numbers(
    store: SubscriberStore, tmp_path: Path
) -> None:
    csv_file = write_csv(tmp_path / "list.csv", (
        "email,name,status\n"
        "hanako@example.jp,山田花子,\n"
        "not-an-address,Bad,\n"
        "Taro@Example.JP,太郎,subscribed\n"
        "x@example.com,X,sleeping\n"
        "\n"
        "gone@example.com,,unsubscribed\n"
    ))
    first = store.import_csv(csv_file)
    assert (first.added, first.updated, first.unchanged) == (3, 0, 0)
    assert [(p.line, p.value) for p in first.problems] == [
        (3, "not-an-address"), (5, "x@example.com"),
    ]
    assert "sleeping" in first.problems[1].reason
    second = store.import_csv(csv_file)
    assert (second.added, second.updated, second.unchanged) == (0, 0, 3)
    assert store.count_active() == 2
    assert store.get("taro@example.jp") is not None  # case-insensitive lookup


def test_import_never_resubscribes_an_opted_out_address(
    store: SubscriberStore, tmp_path: Path
) -> None:
    store.add("reader@example.com", "Reader")
    store.remove("reader@example.com")
    csv_file = write_csv(tmp_path / "a.csv", "reader@example.com,Reader,subscribed\n")
    report = store.import_csv(csv_file)
    assert report.kept_suppressed == 1
    assert store.get("reader@example.com").status == "unsubscribed"  # type: ignore[union-attr]
    assert list(store.iter_active()) == []
    with pytest.raises(InputError, match="is unsubscribed"):
        store.add("reader@example.com")  # not even `add`, unless told to
    store.add("reader@example.com", resubscribe=True)
    assert store.count_active() == 1


def test_headerless_csv_with_only_addresses(store: SubscriberStore, tmp_path: Path) -> None:
    report = store.import_csv(write_csv(tmp_path / "b.csv", "a@example.com\nb@example.com\n"))
    assert report.added == 2
    assert [s.email for s in store.iter_active()] == ["a@example.com", "b@example.com"]


def test_iter_active_streams_in_chunks_and_filters_every_suppressed_status(
    store: SubscriberStore,
) -> None:
    for i in range(25):
        store.add(f"user{i:02d}@example.com", f"User {i}")
    store.set_status("user03@example.com", "unsubscribed")
    store.set_status("user07@example.com", "bounced")
    store.set_status("user11@example.com", "complained")
    stream = store.iter_active(chunk=4)
    first = next(stream)
    assert first.email == "user00@example.com"
    store.set_status("user20@example.com", "unsubscribed")  # an opt-out mid-send is honoured
    rest = [s.email for s in stream]
    suppressed = {"user03@example.com", "user07@example.com", "user11@example.com",
                  "user20@example.com"}
    assert not suppressed & set(rest)
    assert len(rest) == 25 - 1 - 4
    assert store.count_active() == 21
    assert store.counts() == {"subscribed": 21, "unsubscribed": 2, "bounced": 1, "complained": 1}


def test_active_pages_are_the_active_subscribers_in_columns(store: SubscriberStore) -> None:
    for i in range(25):
        store.add(f"user{i:02d}@example.com", f"User {i}" if i % 2 else "")
    store.set_status("user03@example.com", "unsubscribed")
    active = list(store.iter_active())
    pages = store.active_pages(chunk=4)
    first = next(pages)
    assert first.emails == tuple(s.email for s in active[:4]) and len(first) == 4
    assert first.names == tuple(s.name for s in active[:4])
    assert first.uids == tuple(s.uid for s in active[:4])
    assert first.ids == tuple(s.id for s in active[:4])
    store.set_status("user20@example.com", "unsubscribed")  # an opt-out mid-send is honoured
    rest = [email for page in pages for email in page.emails]
    assert rest == [s.email for s in active[4:] if s.email != "user20@example.com"]
    ids = [s.id for s in active]
    between = store.active_pages(chunk=2, after=ids[2] - 1, through=ids[6])
    assert [e for page in between for e in page.emails] == [s.email for s in active[2:7]]
    readers = list(store.active_pages(chunk=3))
    site = Site(url="https://news.example.jp/", unsubscribe_mailto="leave@example.jp")
    assert list(recipients_of(readers, site, SECRET)) == [
        recipient_for(s, site, SECRET) for s in store.iter_active()]
    for each in (site, Site(url="https://news.example.jp/", unsubscribe_url="https://u.jp/?a=1")):
        pages = list(recipient_pages(readers, each, SECRET))  # columns: the same recipients
        assert [len(page) for page in pages] == [len(page) for page in readers]
        assert [r for page in pages for r in page] == [
            recipient_for(s, each, SECRET) for s in store.iter_active()]


def test_set_status_rejects_unknown_status_and_address(store: SubscriberStore) -> None:
    store.add("a@example.com")
    with pytest.raises(InputError, match="unknown status"):
        store.set_status("a@example.com", "paused")
    with pytest.raises(InputError, match="not on the list"):
        store.set_status("nobody@example.com", "bounced")
    with pytest.raises(InputError, match="invalid address"):
        store.add("no at sign")


def test_export_round_trips_through_import(store: SubscriberStore, tmp_path: Path) -> None:
    store.add("a@example.com", "Ann")
    store.add("b@example.com", "Bo, Jr.")
    store.set_status("b@example.com", "bounced")
    out = tmp_path / "out.csv"
    assert store.export_csv(out) == 2
    other = SqliteSubscriberStore(tmp_path / "other.sqlite3")
    report = other.import_csv(out)
    assert report.added == 2 and not report.problems
    copied = other.get("b@example.com")
    assert copied is not None
    assert (copied.email, copied.name, copied.status) == ("b@example.com", "Bo, Jr.", "bounced")


def test_forget_deletes(store: SubscriberStore) -> None:
    store.add("a@example.com")
    assert store.forget("a@example.com") is True
    assert store.get("a@example.com") is None


def test_tokens_verify_and_resist_forgery() -> None:
    uid, other = "AbCdEfGhIjKlMnOp", "QrStUvWxYz012345"
    token = make_token(uid, SECRET)
    assert verify_token(token, SECRET).uid == uid
    head, _, tag = token.partition("~")
    forged = make_token(other, SECRET).split("~")[0] + "~" + tag
    for bad in (forged, token + "x", head, "", "!!~??", token.replace("~", ""), token + "~"):
        with pytest.raises(InputError):
            verify_token(bad, SECRET)
    with pytest.raises(InputError):
        verify_token(token, "another-secret")
    with pytest.raises(ValueError):
        make_token("hanako@example.jp", SECRET)  # an address is never a token id
    legacy = make_address_token("Hanako@Example.jp", SECRET)
    assert verify_token(legacy, SECRET).email == "Hanako@Example.jp"
    with pytest.raises(InputError):
        verify_token(make_address_token("other@example.jp", SECRET).split(".")[0] + "."
                     + legacy.split(".")[1], SECRET)


def test_tokens_keep_their_format_in_bulk() -> None:
    # Tokens signed before bulk signing existed (pinned here) must come out the same, so old
    # links keep verifying; ids of every length and the refusals behave as `_unb64` says.
    assert make_token("AbCdEfGhIjKlMnOp", SECRET) == "AbCdEfGhIjKlMnOp~O7N0jeHP-drizzNujfLtGg"
    assert make_token("AbA", SECRET) == "AbA~IyS98fA4RXPGU0dt0jthew"
    for bad in ("AbC", "AbCdE", "AbCd!fGh", "AbCd=", "ＡbCd"):
        with pytest.raises(ValueError):
            make_token(bad, SECRET)
    site = Site(url="https://news.example.jp/", unsubscribe_mailto="leave@example.jp")
    readers = [Subscriber(f"r{i}@example.jp", f"R {i}", uid=new_uid()) for i in range(300)]
    streamed = list(recipients_for(iter(readers), site, SECRET))
    assert streamed == [recipient_for(s, site, SECRET) for s in readers]
    for reader, recipient in zip(readers, streamed, strict=True):
        token = recipient.unsubscribe_url.partition("?t=")[2]
        assert verify_token(token, SECRET).uid == reader.uid
        assert recipient.unsubscribe_url == unsubscribe_url(
            "https://news.example.jp/unsubscribe", reader.uid, SECRET)
        assert recipient.unsubscribe_mailto == (
            f"mailto:leave@example.jp?subject=unsubscribe%20{token}")


def test_bulk_tokens_are_the_single_tokens_and_refuse_what_they_refuse() -> None:
    signer = Signer(SECRET)
    ids = [new_uid() for _ in range(50)] + ["AbA", "AbCdEfGhIjKlMnOp", "AQ", "AbCdEQ", "AbCdE_8"]
    assert signer.tokens(ids) == [make_token(uid, SECRET) for uid in ids]
    assert signer.tokens([]) == []
    for size in (0, 1, 31, 63, 64, 65, 128, 200):  # keys under, at and over SHA-256's block
        for secret in ("k" * size, "鍵" * size):
            tags = [hmac.new(secret.encode(), PURPOSE_ID + uid.encode(), "sha256").digest()
                    for uid in ids]
            assert Signer(secret).tokens(ids) == [
                f"{uid}~{_b64(tag[:16])}" for uid, tag in zip(ids, tags, strict=True)]
    good = "AbCdEfGhIjKlMnOp"
    for bad in ("", "AbC", "AbCd!fGh", "AbCd=", "ＡbCd", "AbCd\nEfGh", "AbCd\n", "\nAbCd"):
        with pytest.raises(ValueError):
            signer.tokens([good, bad, good])
        with pytest.raises(ValueError):
            make_token(bad, SECRET)


def test_recipient_for_builds_personal_links() -> None:
    site = Site(url="https://news.example.jp/", unsubscribe_mailto="leave@example.jp")
    recipient = recipient_for(Subscriber("a+b@example.jp", "A", uid="AbCdEfGhIjKlMnOp"), site,
                              SECRET)
    assert recipient.unsubscribe_url.startswith("https://news.example.jp/unsubscribe?t=")
    assert recipient.unsubscribe_mailto.startswith("mailto:leave@example.jp?subject=unsubscribe%20")
    assert "a+b" not in recipient.unsubscribe_url + recipient.unsubscribe_mailto
    assert unsubscribe_url("https://x.example/u?lang=ja", "AbCdEfGhIjKlMnOp", SECRET).startswith(
        "https://x.example/u?lang=ja&t="
    )
