"""`publish serve`: a real RFC 8058 one-click POST unsubscribes, and the next send skips them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import requests

from publisher.config import Site
from publisher.serve import make_app
from publisher.subscribers import SubscriberStore
from publisher.tokens import make_token, recipient_for

SECRET = "serve-test-secret-abcdefghijklmnop"


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """No access log in test output."""


@pytest.fixture
def store(tmp_path: Path) -> SubscriberStore:
    store = SubscriberStore(tmp_path / "subs.sqlite3")
    for address in ("hanako@example.jp", "taro@example.jp", "ken@example.jp"):
        store.add(address)
    return store


@pytest.fixture
def base(store: SubscriberStore) -> Iterator[str]:
    server: WSGIServer = make_server("127.0.0.1", 0, make_app(store, SECRET),
                                     handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_one_click_post_unsubscribes_and_the_next_send_skips_them(
    store: SubscriberStore, base: str
) -> None:
    site = Site(url=base)
    link = recipient_for(store.get("taro@example.jp"), site, SECRET).unsubscribe_url  # type: ignore[arg-type]
    # What Gmail and friends send (RFC 8058 §3.1): an urlencoded POST to the List-Unsubscribe URL.
    reply = requests.post(link, data={"List-Unsubscribe": "One-Click"}, timeout=5)
    assert reply.status_code == 200
    assert store.get("taro@example.jp").status == "unsubscribed"  # type: ignore[union-attr]
    assert [s.email for s in store.iter_active()] == ["hanako@example.jp", "ken@example.jp"]
    again = requests.post(link, data={"List-Unsubscribe": "One-Click"}, timeout=5)
    assert again.status_code == 200  # idempotent


def test_multipart_one_click_body_is_accepted(store: SubscriberStore, base: str) -> None:
    token = make_token("ken@example.jp", SECRET)
    reply = requests.post(f"{base}/unsubscribe", params={"t": token},
                          files={"List-Unsubscribe": (None, "One-Click")}, timeout=5)
    assert reply.status_code == 200
    assert store.get("ken@example.jp").status == "unsubscribed"  # type: ignore[union-attr]


def test_get_only_shows_a_confirmation_page_in_the_readers_language(
    store: SubscriberStore, base: str
) -> None:
    token = make_token("hanako@example.jp", SECRET)
    page = requests.get(f"{base}/unsubscribe", params={"t": token},
                        headers={"Accept-Language": "ja-JP,ja;q=0.9"}, timeout=5)
    assert page.status_code == 200
    assert "配信を停止する" in page.text and 'method="post"' in page.text
    assert 'name="List-Unsubscribe" value="One-Click"' in page.text
    assert store.get("hanako@example.jp").status == "subscribed"  # type: ignore[union-attr]
    english = requests.get(f"{base}/unsubscribe", params={"t": token}, timeout=5)
    assert "Unsubscribe" in english.text


def test_bad_tokens_and_bodies_are_refused(store: SubscriberStore, base: str) -> None:
    forged = make_token("hanako@example.jp", "wrong-secret")
    one_click = {"List-Unsubscribe": "One-Click"}
    assert requests.post(f"{base}/unsubscribe", params={"t": forged}, data=one_click,
                         timeout=5).status_code == 403
    assert requests.get(f"{base}/unsubscribe", params={"t": forged}, timeout=5).status_code == 403
    assert requests.post(f"{base}/unsubscribe", data=one_click, timeout=5).status_code == 400
    token = make_token("hanako@example.jp", SECRET)
    assert requests.post(f"{base}/unsubscribe", params={"t": token}, data={"x": "y"},
                         timeout=5).status_code == 400
    assert requests.get(f"{base}/elsewhere", timeout=5).status_code == 404
    assert requests.put(f"{base}/unsubscribe", timeout=5).status_code == 405
    assert store.count_active() == 3
