"""End-to-end helpers: a publisher.toml pointing at local fakes, subscribers, `publish` processes.

The CLI always runs as a real subprocess against fakes listening on 127.0.0.1; the fakes run in
the test process (so a test can gate a request and SIGKILL `publish` while it is in flight) or
as their own process (`python -m fakes`).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fakes.server import Reply, Request
from tests.helpers import REPO, run_publish

UNSUBSCRIBE_SECRET = "e2e-unsubscribe-secret-4f1c9a7e2b"
EMAIL_KEYS = {
    "sendgrid": ("SENDGRID_API_KEY", "SG.e2e-sendgrid-key-7d3f1a"),
    "postmark": ("POSTMARK_SERVER_TOKEN", "pm-e2e-server-token-5b8e2c"),
    "resend": ("RESEND_API_KEY", "re_e2e_resend_key_9a4d6f"),
}
SOCIAL_SECRETS = {
    "X_API_KEY": "x-e2e-consumer-key-31",
    "X_API_SECRET": "x-e2e-consumer-secret-32",
    "X_ACCESS_TOKEN": "x-e2e-access-token-33",
    "X_ACCESS_TOKEN_SECRET": "x-e2e-access-secret-34",
    "BLUESKY_APP_PASSWORD": "bsky-e2e-app-pass-35",
    "MASTODON_ACCESS_TOKEN": "masto-e2e-token-36",
}
BLUESKY_HANDLE = "editor.e2e.example"
SITE = {
    "name": "E2E News",
    "url": "https://news.e2e.example",
    "address": "2 Test Lane, Springfield 00000",
    "from": "E2E News <news@e2e.example>",
    "reply_to": "editor@e2e.example",
}
EN_POST = "posts/city-composting.md"
JA_POST = "posts/chuo-line-extension.md"
TOOLS_POST = "posts/library-tool-lending.md"


# --- configuration --------------------------------------------------------------------------


LOOPBACK_IMAGES: Mapping[str, Any] = {"allow_private": ["127.0.0.1"]}


def write_config(
    root: Path,
    *,
    transport: str = "outbox",
    networks: Sequence[str] = (),
    channels: Mapping[str, Mapping[str, Any]] | None = None,
    site: Mapping[str, Any] | None = None,
    images: Mapping[str, Any] = LOOPBACK_IMAGES,
) -> Path:
    """Write root/publisher.toml: the site, the transport, the networks and channel tables.

    The image host of these tests runs on 127.0.0.1, which publish refuses unless allowed.
    """
    tables: dict[str, Mapping[str, Any]] = {
        "site": {**SITE, **(site or {})},
        "newsletter": {"transport": transport},
        "social": {"networks": list(networks)},
        "images": images,
    }
    for name, settings in (channels or {}).items():
        tables[f"channels.{name}"] = settings
    lines = []
    for table, values in tables.items():
        lines.append(f"[{table}]")
        lines.extend(f"{key} = {toml_value(value)}" for key, value in values.items())
        lines.append("")
    path = root / "publisher.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def toml_value(value: Any) -> str:
    """A TOML literal for the few value types a config needs (JSON strings are TOML strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def email_env(provider: str, *, key: str | None = None) -> dict[str, str]:
    """The environment a send through an email provider needs (key and unsubscribe secret)."""
    env = {"PUBLISHER_UNSUBSCRIBE_SECRET": UNSUBSCRIBE_SECRET}
    if provider in EMAIL_KEYS:
        name, value = EMAIL_KEYS[provider]
        env[name] = key if key is not None else value
    return env


def emails(count: int, *, domain: str = "e2e.example", prefix: str = "reader") -> list[str]:
    """count distinct subscriber addresses."""
    return [f"{prefix}{i:05d}@{domain}" for i in range(count)]


def seed_subscribers(
    root: Path, addresses: Iterable[str], env: Mapping[str, str], *, bad_rows: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    """Import addresses (plus deliberately bad rows) with `publish subscribers import`."""
    csv_path = root / "subscribers.csv"
    rows = ["email,name,status"]
    rows.extend(f"{address},Reader {i}," for i, address in enumerate(addresses))
    rows.extend(bad_rows)
    csv_path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = run_publish("subscribers", "import", csv_path, cwd=root, env=dict(env))
    assert result.returncode == 0, result.stderr
    return result


def status(post: str, root: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """`publish status POST --json`, parsed."""
    result = run_publish("status", post, "--json", cwd=root, env=dict(env))
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def tallies(report: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """Per-channel {sent, pending, failed} from a status report."""
    return {t["channel"]: {k: t[k] for k in ("sent", "pending", "failed")}
            for t in report["channels"]}


def pending_items(report: Mapping[str, Any], channel: str) -> set[str]:
    """The items a status report lists as pending (uncertain) on one channel."""
    return {p["item"] for p in report["pending"] if p["channel"] == channel}


# --- processes ------------------------------------------------------------------------------


def cli_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment `run_publish` uses: no ambient PUBLISHER_* settings, no keyring."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    full.update({"PUBLISHER_NO_KEYRING": "1", "NO_COLOR": "1", "COLUMNS": "200"})
    full.update(env or {})
    return full


def spawn_publish(*args: str | Path, cwd: Path, env: Mapping[str, str] | None = None
                  ) -> subprocess.Popen[str]:
    """Start `python -m publisher ARGS` without waiting, so a test can kill it."""
    return subprocess.Popen(
        [sys.executable, "-m", "publisher", *map(str, args)], cwd=cwd, env=cli_env(env),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def sigkill(process: subprocess.Popen[str]) -> None:
    """SIGKILL a process this test started and reap it."""
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll until condition holds; fail with what was awaited (a deadline, not a timed assert)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@contextmanager
def fake_process(provider: str, deliveries: Path, *, key: str, delay: float = 0.0
                 ) -> Iterator[str]:
    """Run `python -m fakes PROVIDER` as its own process; yield its base URL."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), str(REPO / "src")])}
    process = subprocess.Popen(
        [sys.executable, "-m", "fakes", provider, "--deliveries", str(deliveries), "--key", key,
         "--delay", str(delay)],
        cwd=REPO / "tests", env=env, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def serving_unsubscribe(root: Path, port: int, env: Mapping[str, str]) -> Iterator[str]:
    """`publish serve --port PORT` as a subprocess until the block ends; yields its base URL."""
    process = spawn_publish("serve", "--port", str(port), cwd=root, env=env)
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1) as reply:
                return bool(reply.status == 200)
        except OSError:
            assert process.poll() is None, process.communicate()[1]
            return False

    try:
        wait_for(healthy, "publish serve to answer")
        yield base
    finally:
        process.terminate()
        process.communicate(timeout=10)


# --- steering a fake from the test ----------------------------------------------------------


@dataclass
class Gate:
    """Wraps a fake server's handler and holds the nth matching request until released.

    By default the request is processed first: the provider did the work but the client has no
    answer yet, the moment a crash makes a delivery uncertain. With `lose` the request is held
    unprocessed and then dropped, as if it never reached the provider.
    """

    inner: Callable[[Request], Reply]
    path: str
    nth: int
    method: str = "POST"
    lose: bool = False
    seen: int = 0
    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: Request) -> Reply:
        """Handle the request; hold the nth match until released."""
        hold = False
        if request.method == self.method and request.path == self.path:
            with self.lock:
                self.seen += 1
                hold = self.seen == self.nth
        if hold and self.lose:
            self._hold()
            return Reply(503, {"message": "lost in transit (test gate)"})
        reply = self.inner(request)
        if hold:
            self._hold()
        return reply

    def _hold(self) -> None:
        """Signal the test and wait for it to let go."""
        self.reached.set()
        self.released.wait(30)

    def release(self) -> None:
        """Let the held reply go."""
        self.released.set()


def install_gate(server: Any, path: str, nth: int, *, method: str = "POST",
                 lose: bool = False) -> Gate:
    """Put a Gate in front of a FakeHTTPServer's handler."""
    gate = Gate(server.handle, path, nth, method, lose)
    server.handle = gate
    return gate


@dataclass
class AfterHook:
    """Wraps a fake server's handler and calls `then(seen)` after each matching request."""

    inner: Callable[[Request], Reply]
    path: str
    then: Callable[[int], None]
    seen: int = 0

    def __call__(self, request: Request) -> Reply:
        """Handle the request, then run the hook."""
        reply = self.inner(request)
        if request.method == "POST" and request.path == self.path and reply.status < 300:
            self.seen += 1
            self.then(self.seen)
        return reply


def crash_mid_request(
    gate: Gate, *args: str | Path, cwd: Path, env: Mapping[str, str]
) -> subprocess.CompletedProcess[str] | None:
    """Start `publish ARGS`, SIGKILL it while the gated request is held, then release the gate.

    Returns the finished process when it ended before reaching the gate (a test failure).
    """
    process = spawn_publish(*args, cwd=cwd, env=env)
    try:
        wait_for(lambda: gate.reached.is_set() or process.poll() is not None,
                 "the gated request", timeout=60)
        if not gate.reached.is_set():
            out, err = process.communicate()
            return subprocess.CompletedProcess(process.args, process.returncode, out, err)
        sigkill(process)
        return None
    finally:
        gate.release()
        if process.poll() is None:
            sigkill(process)


# --- kill torture and fault measurement (issue 8) -------------------------------------------


def kill_after(process: subprocess.Popen[str], progress: Callable[[], int], target: int,
               jitter: float) -> bool:
    """SIGKILL process `jitter` seconds after progress() reaches target; False if it ended first."""
    wait_for(lambda: progress() >= target or process.poll() is not None,
             f"progress {target}", timeout=120)
    if jitter > 0 and process.poll() is None:
        time.sleep(jitter)
    if process.poll() is not None:
        process.communicate()
        return False
    sigkill(process)
    return True


@dataclass(frozen=True)
class Answer:
    """One request a fake answered: when, where, with which status (0: dropped) and headers."""

    at: float
    path: str
    status: int
    headers: Mapping[str, str]


@dataclass
class AnswerLog:
    """Wraps a FakeHTTPServer's dispatch and records the time and outcome of every answer."""

    inner: Callable[[Request], Reply | str]
    answers: list[Answer] = field(default_factory=list)
    run_ends: list[float] = field(default_factory=list)  # when each `publish` run exited
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: Request) -> Reply | str:
        """Dispatch, then log the arrival time and outcome ("slow" or "drop" log status 0)."""
        arrived = time.time()
        outcome = self.inner(request)
        status, headers = (outcome.status, dict(outcome.headers)) if isinstance(
            outcome, Reply) else (0, {})
        with self.lock:
            self.answers.append(Answer(arrived, request.path, status, headers))
        return outcome

    def waits_after_429(self, hint: Callable[[Answer], float]) -> list[tuple[str, float, float]]:
        """(path, asked, waited) per 429: the hint, and the gap to the path's next request.

        A 429 on a call's last attempt ends the run; the next request comes from the next run
        and says nothing about backoff, so pairs with a run's end between them are left out.
        """
        with self.lock:
            answers = list(self.answers)
        waits: list[tuple[str, float, float]] = []
        for path in {a.path for a in answers}:
            on_path = [a for a in answers if a.path == path]
            waits.extend((path, hint(a), later.at - a.at)
                         for a, later in itertools.pairwise(on_path) if a.status == 429
                         and not any(a.at < end < later.at for end in self.run_ends))
        return waits


def log_answers(server: Any) -> AnswerLog:
    """Put an AnswerLog in front of a FakeHTTPServer's dispatch."""
    log = AnswerLog(server.dispatch)
    server.dispatch = log
    return log


THREAD_ARTICLE = """---
title: "Harbor ferry adds a night run, route {n}"
date: 2025-03-01
url: https://news.e2e.example/ferry-{n}
tags: [transit]
---
The harbor ferry will run a late crossing on route {n} every night from April. Shift workers on
the east shore asked for it for years.

## Key takeaways

- The last boat on route {n} leaves the west pier at 23:{n}.
- Fares stay the same as the day service.

## Frequently asked questions

### Does the night run on route {n} carry bicycles?

Yes. Up to {n} bicycles ride on each crossing, first come first served.
"""
THREAD_LENGTH = 4  # THREAD_ARTICLE makes a 4-post thread: lead, key points, one Q&A, link


def write_thread_articles(root: Path, numbers: Iterable[int]) -> list[str]:
    """One 4-post thread article per number (no card image: nothing is fetched); their paths."""
    posts = []
    for n in numbers:
        post = f"posts/ferry-{n}.md"
        (root / post).write_text(THREAD_ARTICLE.format(n=n), encoding="utf-8")
        posts.append(post)
    return posts


def assert_chains(posts: Sequence[tuple[str, str | None, str]], markers: Sequence[str]) -> None:
    """(id, parent id, text) posts form one THREAD_LENGTH chain per marker: no copy, no fork."""
    assert len(posts) == THREAD_LENGTH * len(markers), len(posts)
    children: dict[str | None, list[tuple[str, str | None, str]]] = {}
    for post in posts:
        children.setdefault(post[1], []).append(post)
    roots = children.get(None, [])
    assert sorted(m for root in roots for m in markers if m in root[2]) == sorted(markers)
    for root in roots:
        chain = [root]
        while chain[-1][0] in children:
            (child,) = children[chain[-1][0]]  # exactly one reply: a retry never forked
            chain.append(child)
        assert [text.rsplit("\n", 1)[-1] for _, _, text in chain] == [
            f"{i}/{THREAD_LENGTH}" for i in range(1, THREAD_LENGTH + 1)]
