"""Run fakes on their own: for the crash tests, or to try `publish` by hand against them.

    python -m fakes sendgrid [--deliveries F.jsonl] [--key K] [--fault-rate R] [--delay S]
    python -m fakes x bluesky mastodon [--port x=8101 --port bluesky=8102 …]
    python -m fakes all [--port NAME=PORT …]

Run from tests/ (or with tests/ on PYTHONPATH). Every provider fake can be started: the email
APIs and SMTP, the newsletter platforms, the five social networks and a feed. With one provider
the first line on stdout is its base URL (the SMTP port for smtp), as the crash tests read it;
with several, one `name URL` line each. Then come the publisher.toml tables and the environment
that send through them, and the fakes serve until killed (Ctrl-C). Each fake takes a free port
unless `--port NAME=PORT` chooses one. `--deliveries` appends every email delivery to a
JSON-lines file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import shlex
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .bluesky import FakeBluesky
from .buttondown import ButtondownFake
from .feed import FakeFeed
from .ghost import GhostFake
from .linkedin import FakeLinkedIn
from .listmonk import ListmonkFake
from .mailchimp import MailchimpFake
from .mastodon import FakeMastodon
from .postmark import PostmarkFake
from .resend import ResendFake
from .sendgrid import SendGridFake
from .server import FakeHTTPServer, Faults
from .smtp import SmtpFake
from .threads import FakeThreads
from .wordpress import FakeWordPress, post_json
from .x import FakeX

EMAIL = ("sendgrid", "postmark", "resend", "smtp")
PLATFORMS = ("buttondown", "listmonk", "ghost", "mailchimp")
NETWORKS = ("x", "bluesky", "mastodon", "threads", "linkedin")
SOURCES = ("wordpress", "feed")
WORDPRESS_SITE = "news.example.jp"  # the site name `publish wp:…` and permalinks use
PROVIDERS = (*EMAIL, *PLATFORMS, *NETWORKS, *SOURCES)
READY = "ready"  # the last word printed: everything above it is complete
# A site identity of its own: a real transport refuses the embedded demo one.
SITE = {"name": "Trying publisher", "url": "https://try.example",
        "address": "1 Try Street, Testville 00000", "from": "Trying publisher <news@try.example>",
        "reply_to": "editor@try.example", "unsubscribe_url": "https://try.example/unsubscribe"}


@dataclass
class Started:
    """One running fake: its URL, the channel table and secrets that reach it."""

    name: str
    url: str
    table: dict[str, Any]
    env: dict[str, str]
    first_line: str = ""  # what a lone fake prints first (its URL; the port for SMTP)
    notes: list[str] = field(default_factory=list)


def main(argv: list[str] | None = None) -> None:
    """Start the requested fakes, print how to reach them, and block."""
    parser = argparse.ArgumentParser(prog="python -m fakes", description=__doc__.split("\n")[0])
    parser.add_argument("providers", nargs="+", metavar="PROVIDER",
                        help=f"all, or any of: {', '.join(PROVIDERS)}")
    parser.add_argument("--port", action="append", default=[], metavar="NAME=PORT",
                        help="serve NAME on this port of 127.0.0.1 (default: a free one)")
    parser.add_argument("--deliveries", type=Path, default=None)
    parser.add_argument("--key", default=None,
                        help="the API key / server token to accept (one email provider only)")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0,
                        help="seconds to sleep after handling each HTTP request (crash tests)")
    args = parser.parse_args(argv)
    names = _names(parser, args.providers)
    ports = _ports(parser, args.port, names)
    if args.key is not None and (len(names) != 1 or names[0] not in EMAIL[:3]):
        parser.error("--key applies to one of sendgrid, postmark, resend alone")
    with contextlib.ExitStack() as stack:
        started = []
        for name in names:
            try:
                started.append(START[name](stack, args, ports.get(name, 0)))
            except OSError as exc:
                parser.error(f"cannot serve {name} on port {ports.get(name, 0)} "
                             f"({exc.strerror or exc}); choose another with --port {name}=PORT")
        print(_report(started), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


def _names(parser: argparse.ArgumentParser, given: list[str]) -> list[str]:
    """The providers asked for, in the order of PROVIDERS; `all` is every one."""
    unknown = sorted(set(given) - {*PROVIDERS, "all"})
    if unknown:
        parser.error(f"unknown provider {unknown[0]!r}; use all or any of {', '.join(PROVIDERS)}")
    return list(PROVIDERS) if "all" in given else [p for p in PROVIDERS if p in given]


def _ports(parser: argparse.ArgumentParser, given: list[str], names: list[str]) -> dict[str, int]:
    """--port NAME=PORT choices, each for a provider being started."""
    ports: dict[str, int] = {}
    for choice in given:
        name, _, number = choice.partition("=")
        if name not in names or not number.isdigit() or not 0 < int(number) < 65536:
            parser.error(f"--port {choice}: write NAME=PORT with NAME one of {', '.join(names)}"
                         " and PORT 1–65535")
        ports[name] = int(number)
    return ports


def _report(started: list[Started]) -> str:
    """Base URLs first, then the publisher.toml tables and the environment to use them."""
    if len(started) == 1:
        lines = [started[0].first_line or started[0].url, ""]
    else:
        width = max(len(s.name) for s in started)
        lines = [f"{s.name:<{width}}  {s.url}" for s in started] + [""]
    mail = [s.name for s in started if s.name in EMAIL + PLATFORMS]
    networks = [s.name for s in started if s.name in NETWORKS]
    tables: dict[str, dict[str, Any]] = {"site": SITE}
    if mail:
        tables["newsletter"] = {"transport": mail[0]}
    if networks:
        tables["social"] = {"networks": networks}
    tables.update({f"channels.{s.name}": s.table for s in started
                   if s.table and s.name not in SOURCES})
    tables.update({s.name: s.table for s in started if s.table and s.name in SOURCES})
    lines.append("# publisher.toml")
    if len(mail) > 1:
        lines.append(f"# transport: one at a time — {', '.join(mail)} are all running")
    for table, values in tables.items():
        lines.append(f"[{table}]")
        lines.extend(f"{key} = {_toml(value)}" for key, value in values.items())
        lines.append("")
    lines.append("# environment (sh)")
    lines.extend(f"export {key}={shlex.quote(value)}"
                 for s in started for key, value in s.env.items())
    if any(s.name in EMAIL for s in started):  # these send to publisher's own list
        lines.append(f"export PUBLISHER_UNSUBSCRIBE_SECRET={secrets.token_hex(16)}")
        lines.append("# the email transports send to publisher's list: publish subscribers"
                     " import FILE.csv (email,name)")
    lines.extend(note for s in started for note in s.notes)
    lines.append(f"# serving until killed (Ctrl-C); {READY}")
    return "\n".join(lines)


def _toml(value: Any) -> str:
    """A TOML literal for a string, number, flag or list (JSON strings are TOML strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    return str(value) if isinstance(value, int | float) else json.dumps(value)


def _on_port(server: FakeHTTPServer, port: int) -> None:
    """Serve this fake on a chosen port instead of the free one it took when it was made."""
    if not port:
        return
    running = server.thread.is_alive()
    if running:
        server.stop()
    else:
        server.httpd.server_close()
    server.httpd = ThreadingHTTPServer(("127.0.0.1", port), server.httpd.RequestHandlerClass)
    server.httpd.daemon_threads = True
    server.thread = threading.Thread(target=server.httpd.serve_forever,
                                     kwargs={"poll_interval": 0.05}, daemon=True)
    if running:
        server.thread.start()


def _faults(args: argparse.Namespace) -> Faults:
    """The fault injection asked for on the command line."""
    return Faults(rate=args.fault_rate, seed=args.seed)


def _served(stack: contextlib.ExitStack, fake: Any, server: FakeHTTPServer, port: int,
            args: argparse.Namespace) -> None:
    """Bind an email or platform fake's server to its port, slow it if asked, and serve."""
    _on_port(server, port)
    if args.delay > 0:
        server.handle = _delayed(server.handle, args.delay)
    stack.enter_context(fake.running())


def _sendgrid(stack: contextlib.ExitStack, args: argparse.Namespace, port: int) -> Started:
    """SendGrid's v3 API."""
    fake = SendGridFake(*_key(args), faults=_faults(args),
                        deliveries_path=args.deliveries, keep_bodies=False)
    _served(stack, fake, fake.server, port, args)
    return Started("sendgrid", fake.url, {"base_url": fake.url},
                   {"SENDGRID_API_KEY": fake.api_key})


def _postmark(stack: contextlib.ExitStack, args: argparse.Namespace, port: int) -> Started:
    """Postmark's batch API."""
    fake = PostmarkFake(*_key(args), faults=_faults(args),
                        deliveries_path=args.deliveries, keep_bodies=False)
    _served(stack, fake, fake.server, port, args)
    return Started("postmark", fake.url, {"base_url": fake.url},
                   {"POSTMARK_SERVER_TOKEN": fake.server_token})


def _resend(stack: contextlib.ExitStack, args: argparse.Namespace, port: int) -> Started:
    """Resend's API."""
    fake = ResendFake(*_key(args), faults=_faults(args),
                      deliveries_path=args.deliveries, keep_bodies=False)
    _served(stack, fake, fake.server, port, args)
    return Started("resend", fake.url, {"base_url": fake.url}, {"RESEND_API_KEY": fake.api_key})


def _smtp(stack: contextlib.ExitStack, args: argparse.Namespace, port: int) -> Started:
    """An SMTP server (aiosmtpd) without TLS or login."""
    from aiosmtpd.controller import Controller

    fake = SmtpFake(fault_rate=args.fault_rate, seed=args.seed, deliveries_path=args.deliveries)
    if port:
        fake.port = port
        fake.controller = Controller(fake, hostname="127.0.0.1", port=port)
    stack.enter_context(fake.running())
    return Started("smtp", f"smtp://127.0.0.1:{fake.port}",
                   {"host": "127.0.0.1", "port": fake.port, "security": "none"}, {},
                   first_line=str(fake.port))


def _buttondown(stack: contextlib.ExitStack, args: argparse.Namespace, port: int) -> Started:
    """Buttondown's API, newsletter `news`."""
    fake = ButtondownFake(faults=_faults(args), deliveries_path=args.deliveries)
    _served(stack, fake, fake.server, port, args)
    return Started("buttondown", fake.url, {"base_url": fake.url, "newsletter": fake.username},
                   {"BUTTONDOWN_API_KEY": fake.api_key})


def _listmonk(stack: contextlib.ExitStack, args: argparse.Namespace, port: int) -> Started:
    """A listmonk instance with the list `Newsletter`."""
    fake = ListmonkFake(faults=_faults(args), deliveries_path=args.deliveries)
    _served(stack, fake, fake.server, port, args)
    return Started("listmonk", fake.url, {"base_url": fake.url, "api_user": fake.user,
                                          "lists": list(fake.lists.values())},
                   {"LISTMONK_API_TOKEN": fake.token})


def _ghost(stack: contextlib.ExitStack, args: argparse.Namespace, port: int) -> Started:
    """A Ghost site with the newsletter `weekly`."""
    fake = GhostFake(faults=_faults(args), deliveries_path=args.deliveries)
    _served(stack, fake, fake.server, port, args)
    return Started("ghost", fake.url, {"base_url": fake.url, "newsletter": "weekly"},
                   {"GHOST_ADMIN_API_KEY": f"{fake.key_id}:{fake.secret.hex()}"})


def _mailchimp(stack: contextlib.ExitStack, args: argparse.Namespace, port: int) -> Started:
    """Mailchimp's Marketing API with one audience."""
    fake = MailchimpFake(faults=_faults(args), deliveries_path=args.deliveries)
    _served(stack, fake, fake.server, port, args)
    return Started("mailchimp", fake.url, {"base_url": fake.url, "list_id": min(fake.lists)},
                   {"MAILCHIMP_API_KEY": fake.api_key})


def _social(fake: Any, port: int, stack: contextlib.ExitStack) -> None:
    """A social fake serves from the moment it is made: move it to its port, stop it last."""
    _on_port(fake.http, port)
    stack.callback(fake.close)


def _x(stack: contextlib.ExitStack, args: argparse.Namespace, port: int) -> Started:
    """X's v2 API and media upload (OAuth 1.0a user context)."""
    fake = FakeX()
    _social(fake, port, stack)
    return Started("x", fake.url, {"api_base": fake.url}, {
        "X_API_KEY": fake.consumer[0], "X_API_SECRET": fake.consumer[1],
        "X_ACCESS_TOKEN": fake.token[0], "X_ACCESS_TOKEN_SECRET": fake.token[1]})


def _bluesky(stack: contextlib.ExitStack, args: argparse.Namespace, port: int) -> Started:
    """A Bluesky PDS with one account."""
    fake = FakeBluesky()
    _social(fake, port, stack)
    return Started("bluesky", fake.url, {"handle": fake.handle, "pds_url": fake.url},
                   {"BLUESKY_APP_PASSWORD": fake.password})


def _mastodon(stack: contextlib.ExitStack, args: argparse.Namespace, port: int) -> Started:
    """A Mastodon instance with one account."""
    fake = FakeMastodon()
    _social(fake, port, stack)
    return Started("mastodon", fake.url, {"instance_url": fake.url},
                   {"MASTODON_ACCESS_TOKEN": fake.token})


def _threads(stack: contextlib.ExitStack, args: argparse.Namespace, port: int) -> Started:
    """The Threads API for one user (containers, then publish)."""
    fake = FakeThreads()
    _social(fake, port, stack)
    return Started("threads", fake.url, {"api_base": fake.url, "user_id": fake.user_id,
                                         "poll_interval": 0.5},
                   {"THREADS_ACCESS_TOKEN": next(iter(fake.tokens))})


def _linkedin(stack: contextlib.ExitStack, args: argparse.Namespace, port: int) -> Started:
    """LinkedIn's Posts and Images APIs for one member."""
    fake = FakeLinkedIn()
    _social(fake, port, stack)
    return Started("linkedin", fake.url, {"api_base": fake.url, "author": fake.author},
                   {"LINKEDIN_ACCESS_TOKEN": fake.token})


def _wordpress(stack: contextlib.ExitStack, args: argparse.Namespace, port: int) -> Started:
    """A WordPress site with one published Japanese post (id 42), for `publish wp:…`."""
    fake = FakeWordPress()
    _social(fake, port, stack)
    fake.users[3] = {"id": 3, "name": "編集部 田中", "slug": "tanaka"}
    sample = Path(__file__).resolve().parents[1] / "data" / "wordpress" / "seed-shaped.html"
    fake.posts.append(post_json(
        42, "water-bus", title="港北市、運河の水上バスを来春から毎日運航へ", base=f"https://{WORDPRESS_SITE}",
        excerpt="<p>港北市が運河の水上バスを来春から毎日運航します。</p>",
        content=sample.read_text(encoding="utf-8")))
    return Started("wordpress", fake.url, {"sites": {WORDPRESS_SITE: fake.url}}, {}, notes=[
        f"# wordpress: publish wp:{WORDPRESS_SITE}:42 (or its permalink"
        f" https://{WORDPRESS_SITE}/2025/11/water-bus/)"])


def _feed(stack: contextlib.ExitStack, args: argparse.Namespace, port: int) -> Started:
    """A blog's RSS and Atom feeds with five posts, for `publish feed`."""
    fake = FakeFeed()
    _social(fake, port, stack)
    return Started("feed", f"{fake.url}/feed.xml", {"allow_private": ["127.0.0.1"]}, {}, notes=[
        f"# feed: publish feed {fake.url}/feed.xml (or /atom.xml)"])


START: dict[str, Callable[[contextlib.ExitStack, argparse.Namespace, int], Started]] = {
    "sendgrid": _sendgrid, "postmark": _postmark, "resend": _resend, "smtp": _smtp,
    "buttondown": _buttondown, "listmonk": _listmonk, "ghost": _ghost, "mailchimp": _mailchimp,
    "x": _x, "bluesky": _bluesky, "mastodon": _mastodon, "threads": _threads,
    "linkedin": _linkedin, "wordpress": _wordpress, "feed": _feed,
}


def _key(args: argparse.Namespace) -> tuple[str, ...]:
    """The --key to accept, as the fake's first argument (none: the fake's own default)."""
    return () if args.key is None else (args.key,)


def _delayed(handle: Any, seconds: float) -> Any:
    """A handler that answers `seconds` late, so a crash test's kill lands mid-request."""

    def slow(request: Any) -> Any:
        reply = handle(request)
        time.sleep(seconds)
        return reply

    return slow


if __name__ == "__main__":
    main(sys.argv[1:])
