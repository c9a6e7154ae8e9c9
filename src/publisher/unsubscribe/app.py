"""`publish serve`: the unsubscribe page and the providers' webhooks, as one WSGI app.

RFC 8058 one-click: mail clients POST `List-Unsubscribe=One-Click` (urlencoded or multipart) to
the List-Unsubscribe URL; we verify the token, mark the reader unsubscribed and answer 200.
A GET only shows a confirmation page whose button makes that same POST, because link scanners
fetch URLs in mail and must never unsubscribe anyone (RFC 8058 §3.2). After unsubscribing, the
page offers to subscribe again (another POST). The page speaks the newsletter's language
(`[site] lang`, else the browser's) and names the newsletter.

`serve()` runs the app on a threaded standard-library server with a socket timeout per connection,
a cap on connections and a hard cap on request bodies, so one silent or hostile client cannot
hold the others up. In production put any WSGI server in front: `make_app()` with no arguments
builds the app from ./publisher.toml and the secrets
(`gunicorn 'publisher.unsubscribe.app:make_app()'`).
"""

from __future__ import annotations

import html
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from email.parser import BytesParser
from email.policy import HTTP
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from publisher.config.settings import Site
from publisher.errors import InputError, os_fault
from publisher.stores.addresses import SUPPRESSED, Subscriber
from publisher.stores.subscribers import SubscriberStore
from publisher.unsubscribe.body import FORM_BODY_LIMIT, BodyRefused, read_body
from publisher.unsubscribe.tokens import TokenSubject, verify_token

if TYPE_CHECKING:
    from publisher.config.settings import Config
    from publisher.unsubscribe.webhooks import Webhooks

SOCKET_TIMEOUT = 10.0  # seconds a connection may stay silent before it is dropped
MAX_CONNECTIONS = 64
ONE_CLICK = "One-Click"
CSS = (
    "body{font:16px/1.5 system-ui,-apple-system,'Segoe UI','Hiragino Sans','Noto Sans JP',"
    "sans-serif;background:#f4f4f5;color:#18181b;margin:0;padding:24px 16px}"
    "main{max-width:28rem;margin:8vh auto;background:#fff;border-radius:12px;padding:24px;"
    "box-shadow:0 1px 3px rgba(0,0,0,.12)}"
    ".name{font-size:.85rem;color:#52525b;margin:0 0 4px}h1{font-size:1.35rem;margin:0 0 16px}"
    "p{margin:0 0 16px}form{margin:0 0 12px}"
    "button{font:inherit;width:100%;padding:12px 16px;border:0;border-radius:8px;"
    "background:#18181b;color:#fff;cursor:pointer}"
    "button.quiet{background:#e4e4e7;color:#18181b}"
    "@media (prefers-color-scheme:dark){body{background:#18181b;color:#f4f4f5}"
    "main{background:#27272a}.name{color:#a1a1aa}button{background:#f4f4f5;color:#18181b}"
    "button.quiet{background:#3f3f46;color:#f4f4f5}}"
)
PAGES: Mapping[str, Mapping[str, str]] = {
    "en": {
        "title": "Unsubscribe",
        "confirm": "Stop sending {name} to {email}?",
        "button": "Unsubscribe",
        "done": "{email} is unsubscribed from {name}. You will not receive it any more.",
        "already": "{email} is already unsubscribed from {name}.",
        "offer": "Unsubscribed by mistake?",
        "again": "Subscribe again",
        "back": "Welcome back: {email} will receive {name} again.",
        "blocked": "Mail to {email} could not be delivered or was reported as spam, so it cannot "
                   "be subscribed again here. Please contact {name}.",
        "bad": "This unsubscribe link is not valid. Please use the full link from the email.",
        "missing": "This link is incomplete. Please use the full link from the email.",
    },
    "ja": {
        "title": "配信停止",
        "confirm": "{email} への「{name}」の配信を停止しますか？",
        "button": "配信を停止する",
        "done": "{email} への「{name}」の配信を停止しました。今後はお送りしません。",
        "already": "{email} への「{name}」の配信はすでに停止しています。",
        "offer": "間違えて停止しましたか？",
        "again": "もう一度購読する",
        "back": "{email} への「{name}」の配信を再開しました。",
        "blocked": "{email} へのメールは届かなかったか迷惑メールとして報告されたため、ここでは"
                   "購読を再開できません。「{name}」までお問い合わせください。",
        "bad": "この配信停止リンクは無効です。メールに記載のリンクをそのままお使いください。",
        "missing": "リンクが途中で切れています。メールに記載のリンクをそのままお使いください。",
    },
}
StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def make_app(store: SubscriberStore | None = None, secret: str | None = None, *,
             site: Site | None = None, webhooks: Webhooks | None = None,
             config: Config | None = None, path: str = "/unsubscribe") -> WSGIApp:
    """The WSGI app: the unsubscribe page at `path`, /webhooks/<provider> and /healthz.

    With no arguments (what a WSGI server calls), everything comes from ./publisher.toml (or
    `config`) and the secrets.
    """
    from publisher.unsubscribe.webhooks import Material
    from publisher.unsubscribe.webhooks import Webhooks as Hooks

    if store is None or secret is None:
        from publisher.config.load import load_config
        from publisher.stores.backends import open_store
        from publisher.unsubscribe.tokens import unsubscribe_secret

        settings = config or load_config()
        store = store if store is not None else open_store(settings.subscribers)
        secret = secret if secret is not None else unsubscribe_secret()
        site = site or settings.site
        webhooks = webhooks or Hooks.from_config(settings, store)
    site = site or Site()
    webhooks = webhooks or Hooks(store, Material())  # given a store only: webhooks answer 503
    unsubscribe = UnsubscribePage(store, secret, site, path)
    hooks = webhooks

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Route one request."""
        route = str(environ.get("PATH_INFO", ""))
        if route == "/healthz":
            return respond(start_response, "200 OK", b"ok\n")
        try:
            if route.startswith("/webhooks/"):
                status, body = hooks.handle(route.removeprefix("/webhooks/"), environ)
                return respond(start_response, status, body.encode("utf-8"))
            if route.rstrip("/") == path.rstrip("/"):
                return unsubscribe(environ, start_response)
        except BodyRefused as refused:
            return respond(start_response, refused.status, b"request body refused\n")
        return respond(start_response, "404 Not Found", b"not found\n")

    return app


class UnsubscribePage:
    """GET shows the page; POST unsubscribes (RFC 8058) or subscribes again."""

    def __init__(self, store: SubscriberStore, secret: str, site: Site, path: str) -> None:
        self.store = store
        self.secret = secret
        self.site = site
        self.path = path

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        """Answer one request on the unsubscribe path."""
        method = environ.get("REQUEST_METHOD", "GET")
        query = parse_qs(str(environ.get("QUERY_STRING", "")))
        token = query.get("t", [""])[0]
        lang = page_language(self.site, query, str(environ.get("HTTP_ACCEPT_LANGUAGE", "")))
        if method not in ("GET", "HEAD", "POST"):
            return respond(start_response, "405 Method Not Allowed", b"",
                           extra=[("Allow", "GET, POST")])
        form = read_form(environ) if method == "POST" else {}  # capped, read before all else
        if not token:
            return self._page(start_response, "400 Bad Request", lang, "missing")
        subject = _verified(self.secret, token)
        if subject is None:
            return self._page(start_response, "403 Forbidden", lang, "bad")
        found = self._find(subject)
        email = found.email if found else subject.email
        if not email:  # a valid id whose subscriber was erased: nothing to show or change
            return self._page(start_response, "403 Forbidden", lang, "bad")
        if method != "POST":
            return self._show(start_response, lang, token, found, email)
        if form.get("action") == "resubscribe":
            return self._resubscribe(start_response, lang, token, found, email)
        if form.get("List-Unsubscribe") != ONE_CLICK:
            return self._page(start_response, "400 Bad Request", lang, "missing")
        self.store.unsubscribe(email, "one-click unsubscribe link")
        return self._page(start_response, "200 OK", lang, "done", email,
                          form=self._form(token, lang, "again"))

    def _find(self, subject: TokenSubject) -> Subscriber | None:
        """The subscriber a token names."""
        if subject.uid:
            return self.store.get_by_uid(subject.uid)
        return self.store.get(subject.email)

    def _show(self, start_response: StartResponse, lang: str, token: str,
              found: Subscriber | None, email: str) -> Iterable[bytes]:
        """The confirmation page (GET never changes anything)."""
        if found is not None and found.status in SUPPRESSED:
            form = self._form(token, lang, "again") if found.status == "unsubscribed" else ""
            return self._page(start_response, "200 OK", lang, "already", email, form=form)
        return self._page(start_response, "200 OK", lang, "confirm", email,
                          form=self._form(token, lang, "button"))

    def _resubscribe(self, start_response: StartResponse, lang: str, token: str,
                     found: Subscriber | None, email: str) -> Iterable[bytes]:
        """Subscribe again a reader who unsubscribed (never a bounced or complained address)."""
        if found is not None and found.status in ("bounced", "complained"):
            return self._page(start_response, "409 Conflict", lang, "blocked", email)
        self.store.add(email, resubscribe=True, reason="resubscribed on the unsubscribe page")
        return self._page(start_response, "200 OK", lang, "back", email,
                          form=self._form(token, lang, "button"))

    def _form(self, token: str, lang: str, button: str) -> str:
        """A one-button form: unsubscribe (RFC 8058 body) or subscribe again."""
        words = PAGES[lang]
        action = html.escape(f"{self.path}?t={quote(token, safe='')}&lang={lang}")
        if button == "again":
            return (f'<p>{html.escape(words["offer"])}</p><form method="post" action="{action}">'
                    '<input type="hidden" name="action" value="resubscribe">'
                    f'<button type="submit" class="quiet">{html.escape(words["again"])}</button>'
                    "</form>")
        return (f'<form method="post" action="{action}">'
                f'<input type="hidden" name="List-Unsubscribe" value="{ONE_CLICK}">'
                f'<button type="submit">{html.escape(words["button"])}</button></form>')

    def _page(self, start_response: StartResponse, status: str, lang: str, key: str,
              email: str = "", *, form: str = "") -> Iterable[bytes]:
        """A small page in the newsletter's language, named after the newsletter."""
        words = PAGES[lang]
        name = html.escape(self.site.name)
        text = html.escape(words[key].format(email=email, name=self.site.name))
        page = (
            f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width,initial-scale=1">'
            '<meta name="robots" content="noindex">'
            f"<title>{html.escape(words['title'])} · {name}</title><style>{CSS}</style></head>"
            f'<body><main><p class="name">{name}</p><h1>{html.escape(words["title"])}</h1>'
            f"<p>{text}</p>{form}</main></body></html>"
        )
        return respond(start_response, status, page.encode("utf-8"), "text/html; charset=utf-8")


def read_form(environ: Mapping[str, Any]) -> dict[str, str]:
    """A small urlencoded or multipart/form-data body as a dict of first values."""
    body = read_body(environ, FORM_BODY_LIMIT)
    kind = str(environ.get("CONTENT_TYPE", ""))
    if kind.startswith("multipart/form-data"):
        return _multipart_fields(kind, body)
    values = parse_qs(body.decode("utf-8", "replace"))
    return {name: found[0] for name, found in values.items()}


def _multipart_fields(content_type: str, body: bytes) -> dict[str, str]:
    """The fields of a multipart/form-data body, parsed with the email package."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
    message: Any = BytesParser(policy=HTTP).parsebytes(head + body)
    found: dict[str, str] = {}
    for part in message.iter_parts() if message.is_multipart() else ():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            found.setdefault(name, payload.decode("utf-8", "replace").strip())
    return found


def _verified(secret: str, token: str) -> TokenSubject | None:
    """Whom the token names, or None when it does not verify."""
    try:
        return verify_token(token, secret)
    except InputError:
        return None


def page_language(site: Site, query: Mapping[str, list[str]], accept: str) -> str:
    """?lang=, else the newsletter's `[site] lang`, else the browser's, else English."""
    wanted = [query.get("lang", [""])[0], site.lang]
    wanted += [item.split(";")[0].strip() for item in accept.split(",")]
    for tag in wanted:
        base = tag.split("-")[0].lower()
        if base in PAGES:
            return base
    return "en"


def respond(start_response: StartResponse, status: str, body: bytes,
            kind: str = "text/plain; charset=utf-8",
            extra: list[tuple[str, str]] | None = None) -> Iterable[bytes]:
    """Start the response and return its body."""
    headers = [("Content-Type", kind), ("Content-Length", str(len(body))),
               ("Cache-Control", "no-store"), ("X-Robots-Tag", "noindex"),
               ("Referrer-Policy", "no-referrer"), *(extra or [])]
    start_response(status, headers)
    return [body]


# -- the built-in server -------------------------------------------------------------------------

_QUERY = re.compile(r"\?[^\s\"']*")


class QuietHandler(WSGIRequestHandler):
    """Requests with a socket timeout, logged without query strings or client addresses."""

    timeout = SOCKET_TIMEOUT

    def log_message(self, format: str, *args: Any) -> None:
        """One access-log line on stderr, with no token and nothing personal in it."""
        text = _QUERY.sub("?…", format % args)
        sys.stderr.write(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {text}\n")


class ThreadedServer(ThreadingMixIn, WSGIServer):
    """One thread per connection, at most MAX_CONNECTIONS at once; more get a quick 503."""

    daemon_threads = True
    request_queue_size = MAX_CONNECTIONS

    def __init__(self, address: tuple[str, int], handler: type[WSGIRequestHandler]) -> None:
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Hand the connection to a thread, or refuse it when every slot is taken."""
        if not self.slots.acquire(blocking=False):
            with suppress(OSError):
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                b"Connection: close\r\nRetry-After: 5\r\n\r\n")
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """Serve one connection, then free its slot."""
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


def make_server(host: str, port: int, app: WSGIApp) -> ThreadedServer:
    """The threaded server bound to host:port; a port in use is a ConfigError, not a crash."""
    try:
        server = ThreadedServer((host, port), QuietHandler)
    except OSError as exc:  # EADDRINUSE, EACCES below 1024, an address this host lacks
        raise os_fault(exc, doing=f"listen on {host}:{port}", where="publish serve",
                       fix="stop whatever uses that port, or pass another --port/--host") from exc
    server.set_app(app)
    return server


def serve(host: str, port: int, app: WSGIApp) -> None:
    """Serve the app until interrupted."""
    with make_server(host, port, app) as server:
        server.serve_forever()
