"""`publish serve`: opaque one-click links, a page in the newsletter's language, a hardened server.

Every request goes over a real socket to the threaded server `publish serve` runs.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from publisher.config.settings import Site
from publisher.stores.sqlite import SqliteSubscriberStore
from publisher.stores.subscribers import SubscriberStore, Suppression
from publisher.unsubscribe.app import make_app, make_server
from publisher.unsubscribe.tokens import make_address_token, make_token, recipient_for, verify_token
from tests.helpers import run_publish
from tests.helpers.e2e import free_port, serving_unsubscribe
from tests.helpers.serving import serving

SECRET = "serve-test-secret-abcdefghijklmnop"
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
def store(tmp_path: Path) -> SubscriberStore:
    store = SqliteSubscriberStore(tmp_path / "subs.sqlite3")
    for address in ("hanako@example.jp", "taro@example.jp", "ken@example.jp"):
        store.add(address)
    return store


@pytest.fixture
def base(store: SubscriberStore) -> Iterator[str]:
    with serving(store, SECRET, site=Site(name="The Daily Example")) as url:
        yield url


@pytest.fixture
def ja_base(store: SubscriberStore) -> Iterator[str]:
    with serving(store, SECRET, site=Site(name="まちの便り", lang="ja")) as url:
        yield url


def link_for(store: SubscriberStore, email: str, base: str) -> str:
    found = store.get(email)
    assert found is not None
    return recipient_for(found, Site(url=base), SECRET).unsubscribe_url


def test_one_click_post_unsubscribes_and_the_next_send_skips_them(
    store: SubscriberStore, base: str
) -> None:
    link = link_for(store, "taro@example.jp", base)
    assert "taro" not in link and "dGFyb" not in link  # neither the address nor its base64
    # What Gmail and friends send (RFC 8058 §3.1): an urlencoded POST to the List-Unsubscribe URL.
    reply = requests.post(link, data=ONE_CLICK, timeout=5)
    assert reply.status_code == 200
    taro = store.get("taro@example.jp")
    assert taro is not None and (taro.status, taro.reason) == ("unsubscribed",
                                                               "one-click unsubscribe link")
    assert [s.email for s in store.iter_active()] == ["hanako@example.jp", "ken@example.jp"]
    again = requests.post(link, data=ONE_CLICK, timeout=5)
    assert again.status_code == 200  # idempotent


def test_links_of_the_address_format_keep_working(store: SubscriberStore, base: str) -> None:
    token = make_address_token("Ken@Example.jp", SECRET)
    reply = requests.post(f"{base}/unsubscribe", params={"t": token},
                          files={"List-Unsubscribe": (None, "One-Click")}, timeout=5)
    assert reply.status_code == 200  # multipart, as some clients send it
    assert store.get("ken@example.jp").status == "unsubscribed"  # type: ignore[union-attr]


def test_decoding_is_strict_in_the_last_base64_character(store: SubscriberStore) -> None:
    found = store.get("hanako@example.jp")
    assert found is not None
    token = make_token(found.uid, SECRET)
    assert verify_token(token, SECRET).uid == found.uid
    tail = token[-1]
    # 16 tag bytes are 22 characters with 4 unused bits: flipping them decodes to the same bytes.
    sibling = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    index = sibling.index(tail)
    twin = token[:-1] + sibling[index ^ 1]
    with pytest.raises(Exception, match="malformed"):
        verify_token(twin, SECRET)
    old = make_address_token("hanako@example.jp", SECRET)
    head, _, tag = old.partition(".")
    with pytest.raises(Exception, match="malformed"):
        verify_token(f"{head}.{tag[:-1]}{sibling[sibling.index(tag[-1]) ^ 1]}", SECRET)


def test_get_only_shows_the_page_in_the_newsletters_language(
    store: SubscriberStore, ja_base: str
) -> None:
    link = link_for(store, "hanako@example.jp", ja_base)
    page = requests.get(link, headers={"Accept-Language": "en-US"}, timeout=5)
    assert page.status_code == 200
    assert '<html lang="ja">' in page.text and "まちの便り" in page.text
    assert "配信を停止する" in page.text and 'method="post"' in page.text
    assert 'name="viewport"' in page.text and "<style>" in page.text
    assert 'name="List-Unsubscribe" value="One-Click"' in page.text
    assert store.get("hanako@example.jp").status == "subscribed"  # type: ignore[union-attr]


def test_the_done_page_offers_to_resubscribe_and_that_works(
    store: SubscriberStore, base: str
) -> None:
    link = link_for(store, "hanako@example.jp", base)
    done = requests.post(link, data=ONE_CLICK, timeout=5)
    assert "is unsubscribed from The Daily Example" in done.text
    assert 'name="action" value="resubscribe"' in done.text
    shown = requests.get(link, timeout=5)
    assert "already unsubscribed" in shown.text and "Subscribe again" in shown.text
    back = requests.post(link, data={"action": "resubscribe"}, timeout=5)
    assert back.status_code == 200 and "will receive The Daily Example again" in back.text
    hanako = store.get("hanako@example.jp")
    assert hanako is not None
    assert (hanako.status, hanako.reason) == ("subscribed", "resubscribed on the unsubscribe page")


def test_a_bounced_address_cannot_be_resubscribed_from_the_page(
    store: SubscriberStore, base: str
) -> None:
    store.suppress([Suppression("ken@example.jp", "bounced", "550 5.1.1")])
    link = link_for(store, "ken@example.jp", base)
    assert "Subscribe again" not in requests.get(link, timeout=5).text
    assert requests.post(link, data={"action": "resubscribe"}, timeout=5).status_code == 409
    assert store.get("ken@example.jp").status == "bounced"  # type: ignore[union-attr]


def test_bad_tokens_and_bodies_are_refused(store: SubscriberStore, base: str) -> None:
    uid = store.get("hanako@example.jp").uid  # type: ignore[union-attr]
    forged = make_token(uid, "wrong-secret")
    assert requests.post(f"{base}/unsubscribe", params={"t": forged}, data=ONE_CLICK,
                         timeout=5).status_code == 403
    assert requests.get(f"{base}/unsubscribe", params={"t": forged}, timeout=5).status_code == 403
    assert requests.post(f"{base}/unsubscribe", data=ONE_CLICK, timeout=5).status_code == 400
    token = make_token(uid, SECRET)
    assert requests.post(f"{base}/unsubscribe", params={"t": token}, data={"x": "y"},
                         timeout=5).status_code == 400
    assert requests.get(f"{base}/elsewhere", timeout=5).status_code == 404
    assert requests.put(f"{base}/unsubscribe", timeout=5).status_code == 405
    assert store.count_active() == 3


def raw_request(base: str, head: str, body: bytes = b"") -> bytes:
    """Send bytes as they are and read the whole answer."""
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(head.encode("latin-1") + b"\r\n\r\n" + body)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


def test_negative_huge_and_chunked_bodies_are_refused_unread(
    store: SubscriberStore, base: str
) -> None:
    uid = store.get("hanako@example.jp").uid  # type: ignore[union-attr]
    target = f"/unsubscribe?t={make_token(uid, SECRET)}"
    form = "Content-Type: application/x-www-form-urlencoded\r\nConnection: close"
    for length, status in (("-1", b" 400 "), ("99999999999", b" 413 "), ("1e3", b" 400 ")):
        head = f"POST {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n{form}"
        answer = raw_request(base, head, b"List-Unsubscribe=One-Click")
        assert status in answer.split(b"\r\n")[0] + b" ", answer[:80]
    chunked = f"POST {target} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n{form}"
    answer = raw_request(base, chunked, b"1a\r\nList-Unsubscribe=One-Click\r\n0\r\n\r\n")
    assert b" 411 " in answer.split(b"\r\n")[0] + b" "
    assert store.count_active() == 3


def test_a_silent_client_does_not_block_others(store: SubscriberStore, base: str) -> None:
    port = int(base.rsplit(":", 1)[1])
    silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(5)]
    try:
        started = time.monotonic()
        assert requests.get(f"{base}/healthz", timeout=5).status_code == 200
        assert time.monotonic() - started < 2
    finally:
        for conn in silent:
            conn.close()


def test_publish_serve_logs_no_token_or_address_and_refuses_a_busy_port(tmp_path: Path) -> None:
    env = {"PUBLISHER_UNSUBSCRIBE_SECRET": SECRET}
    (tmp_path / "publisher.toml").write_text('[site]\nname = "Example News"\n', encoding="utf-8")
    assert run_publish("subscribers", "add", "reader@example.com", cwd=tmp_path,
                       env=env).returncode == 0
    store = SqliteSubscriberStore(tmp_path / ".publisher" / "subscribers.sqlite3")
    token = make_token(store.get("reader@example.com").uid, SECRET)  # type: ignore[union-attr]
    port = free_port()
    with serving_unsubscribe(tmp_path, port, env) as base:
        assert requests.post(f"{base}/unsubscribe", params={"t": token}, data=ONE_CLICK,
                             timeout=5).status_code == 200
        busy = run_publish("serve", "--port", str(port), cwd=tmp_path, env=env, timeout=30)
    assert busy.returncode == 3
    assert busy.stderr.count("\n") == 1 and f"cannot listen on 127.0.0.1:{port}" in busy.stderr
    assert store.get("reader@example.com").status == "unsubscribed"  # type: ignore[union-attr]


def test_the_access_log_holds_no_personal_data(
    store: SubscriberStore, capfd: pytest.CaptureFixture[str], base: str
) -> None:
    link = link_for(store, "taro@example.jp", base)
    requests.get(link, timeout=5)
    requests.post(link, data=ONE_CLICK, timeout=5)
    logged = capfd.readouterr().err
    assert "/unsubscribe?…" in logged and "127.0.0.1" not in logged
    token = link.split("t=", 1)[1]
    assert token not in logged and "taro" not in logged
    assert json.dumps(logged)  # readable text


def test_make_app_without_arguments_is_the_production_factory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "publisher.toml").write_text('[site]\nname = "Factory News"\nlang = "ja"\n',
                                             encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PUBLISHER_NO_KEYRING", "1")
    monkeypatch.setenv("PUBLISHER_UNSUBSCRIBE_SECRET", SECRET)
    store = SqliteSubscriberStore(tmp_path / ".publisher" / "subscribers.sqlite3")
    store.add("reader@example.com")
    server = make_server("127.0.0.1", 0, make_app())  # as in gunicorn
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        page = requests.get(link_for(store, "reader@example.com", base), timeout=5)
        assert page.status_code == 200 and "Factory News" in page.text and 'lang="ja"' in page.text
        assert requests.post(f"{base}/webhooks/resend", timeout=5).status_code == 503
    finally:
        server.shutdown()
        server.server_close()
