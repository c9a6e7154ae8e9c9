"""`publish serve`: the unsubscribe endpoint as a WSGI app (wsgiref locally, any WSGI server live).

RFC 8058 one-click: mail clients POST `List-Unsubscribe=One-Click` (urlencoded or multipart) to
the List-Unsubscribe URL; we verify the token, mark the address unsubscribed and answer 200.
A GET only shows a confirmation page whose button makes that same POST, because link scanners
fetch URLs in mail and must never unsubscribe anyone (RFC 8058 §3.2).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Mapping
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qs, quote

from publisher.errors import InputError
from publisher.subscribers import SubscriberStore
from publisher.tokens import verify_token

MAX_BODY = 64 * 1024
ONE_CLICK = "One-Click"
PAGES: Mapping[str, Mapping[str, str]] = {
    "en": {
        "title": "Unsubscribe",
        "confirm": "Stop sending the newsletter to {email}?",
        "button": "Unsubscribe",
        "done": "{email} has been unsubscribed. You will not receive further newsletters.",
        "bad": "This unsubscribe link is not valid. Please use the full link from the email.",
        "missing": "This link is incomplete. Please use the full link from the email.",
    },
    "ja": {
        "title": "配信停止",
        "confirm": "{email} へのニュースレター配信を停止しますか？",
        "button": "配信を停止する",
        "done": "{email} への配信を停止しました。今後ニュースレターはお送りしません。",
        "bad": "この配信停止リンクは無効です。メールに記載のリンクをそのままお使いください。",
        "missing": "リンクが途中で切れています。メールに記載のリンクをそのままお使いください。",
    },
}
StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def make_app(store: SubscriberStore, secret: str, *, path: str = "/unsubscribe") -> WSGIApp:
    """The WSGI app answering GET/POST on the unsubscribe path (and /healthz)."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Route one request."""
        method = environ.get("REQUEST_METHOD", "GET")
        route = environ.get("PATH_INFO", "")
        lang = _lang(environ)
        if route == "/healthz":
            return _respond(start_response, "200 OK", b"ok\n", "text/plain; charset=utf-8")
        if route.rstrip("/") != path.rstrip("/"):
            return _respond(start_response, "404 Not Found", b"not found\n",
                            "text/plain; charset=utf-8")
        token = parse_qs(environ.get("QUERY_STRING", "")).get("t", [""])[0]
        if method == "POST":
            return _post(environ, start_response, store, secret, token, lang)
        if method in ("GET", "HEAD"):
            return _get(start_response, secret, token, lang, path)
        return _respond(start_response, "405 Method Not Allowed", b"", "text/plain",
                        [("Allow", "GET, POST")])

    return app


def serve(host: str, port: int, app: WSGIApp) -> None:
    """Serve the app with the standard library's wsgiref server until interrupted."""
    from wsgiref.simple_server import make_server

    with make_server(host, port, app) as server:
        server.serve_forever()


def _get(start_response: StartResponse, secret: str, token: str, lang: str,
         path: str) -> Iterable[bytes]:
    """The confirmation page with a button that makes the one-click POST."""
    words = PAGES[lang]
    email = _verified(secret, token)
    if email is None:
        return _page(start_response, "400 Bad Request" if not token else "403 Forbidden", lang,
                     words["missing"] if not token else words["bad"])
    action = f"{path}?t={quote(token, safe='')}&lang={lang}"
    form = (
        f'<p>{html.escape(words["confirm"].format(email=email))}</p>'
        f'<form method="post" action="{html.escape(action)}">'
        f'<input type="hidden" name="List-Unsubscribe" value="{ONE_CLICK}">'
        f'<button type="submit">{html.escape(words["button"])}</button></form>'
    )
    return _page(start_response, "200 OK", lang, form, raw=True)


def _post(environ: dict[str, Any], start_response: StartResponse, store: SubscriberStore,
          secret: str, token: str, lang: str) -> Iterable[bytes]:
    """Verify the RFC 8058 body and the token, then record the opt-out."""
    words = PAGES[lang]
    if not token:
        return _page(start_response, "400 Bad Request", lang, words["missing"])
    if not _is_one_click(environ):
        return _page(start_response, "400 Bad Request", lang, words["missing"])
    email = _verified(secret, token)
    if email is None:
        return _page(start_response, "403 Forbidden", lang, words["bad"])
    store.unsubscribe(email)
    return _page(start_response, "200 OK", lang, words["done"].format(email=email))


def _verified(secret: str, token: str) -> str | None:
    """The token's address, or None when it does not verify."""
    try:
        return verify_token(token, secret) if token else None
    except InputError:
        return None


def _is_one_click(environ: dict[str, Any]) -> bool:
    """Whether the body says List-Unsubscribe=One-Click (urlencoded or multipart/form-data)."""
    try:
        length = min(int(environ.get("CONTENT_LENGTH") or 0), MAX_BODY)
    except ValueError:
        return False
    body = environ["wsgi.input"].read(length) if length else b""
    kind = environ.get("CONTENT_TYPE", "")
    if kind.startswith("multipart/form-data"):
        return bool(_multipart_value(kind, body, "List-Unsubscribe") == ONE_CLICK)
    values: dict[str, list[str]] = parse_qs(body.decode("utf-8", "replace"))
    return values.get("List-Unsubscribe", [""])[0] == ONE_CLICK


def _multipart_value(content_type: str, body: bytes, name: str) -> str:
    """One field of a multipart/form-data body, parsed with the email package."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1")
    message: Any = BytesParser(policy=HTTP).parsebytes(head + body)
    for part in message.iter_parts() if message.is_multipart() else ():
        if part.get_param("name", header="content-disposition") == name:
            payload = part.get_payload(decode=True)
            return payload.decode("utf-8", "replace").strip() if isinstance(payload, bytes) else ""
    return ""


def _lang(environ: dict[str, Any]) -> str:
    """?lang= if given, else the first Accept-Language we have words for, else English."""
    asked = str(parse_qs(str(environ.get("QUERY_STRING", ""))).get("lang", [""])[0])
    wanted = [asked] if asked else []
    for item in str(environ.get("HTTP_ACCEPT_LANGUAGE", "")).split(","):
        wanted.append(item.split(";")[0].strip())
    for tag in wanted:
        base = tag.split("-")[0].lower()
        if base in PAGES:
            return base
    return "en"


def _page(start_response: StartResponse, status: str, lang: str, message: str, *,
          raw: bool = False) -> Iterable[bytes]:
    """A small HTML page in the reader's language."""
    words = PAGES[lang]
    content = message if raw else f"<p>{html.escape(message)}</p>"
    page = (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(words['title'])}</title></head>"
        f'<body style="font-family:sans-serif;max-width:32em;margin:3em auto;padding:0 1em">'
        f"<h1>{html.escape(words['title'])}</h1>{content}</body></html>"
    )
    return _respond(start_response, status, page.encode("utf-8"), "text/html; charset=utf-8")


def _respond(start_response: StartResponse, status: str, body: bytes, kind: str,
             extra: list[tuple[str, str]] | None = None) -> Iterable[bytes]:
    """Start the response and return its body."""
    headers = [("Content-Type", kind), ("Content-Length", str(len(body))),
               ("Cache-Control", "no-store"), ("X-Robots-Tag", "noindex"), *(extra or [])]
    start_response(status, headers)
    return [body]
