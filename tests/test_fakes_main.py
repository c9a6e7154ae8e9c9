"""`python -m fakes` as an editor runs it: every provider fake at once, on chosen ports, with
the publisher.toml and environment it prints — which must be enough for `publish` to deliver."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.helpers import run_publish
from tests.helpers.e2e import TOOLS_POST, emails, seed_subscribers

REPO = Path(__file__).resolve().parents[1]
EVERY = ("sendgrid", "postmark", "resend", "smtp", "buttondown", "listmonk", "ghost",
         "mailchimp", "x", "bluesky", "mastodon", "threads", "linkedin", "wordpress", "feed")


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def fakes(*args: str) -> Iterator[list[str]]:
    """`python -m fakes ARGS` from tests/ until the block ends; yields what it printed."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), str(REPO / "src")])}
    process = subprocess.Popen([sys.executable, "-m", "fakes", *args], cwd=REPO / "tests",
                               env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        lines: list[str] = []
        while not lines or not lines[-1].endswith("ready"):
            line = process.stdout.readline()
            assert line, f"python -m fakes ended early: {lines}"
            lines.append(line.rstrip("\n"))
        yield lines
    finally:
        process.terminate()
        process.wait(timeout=10)


def config_and_env(lines: list[str]) -> tuple[str, dict[str, str]]:
    """The printed publisher.toml text and the exported variables."""
    start, end = lines.index("# publisher.toml"), lines.index("# environment (sh)")
    env = dict(shlex.split(line)[1].split("=", 1) for line in lines[end:]
               if line.startswith("export "))
    return "\n".join(lines[start:end]) + "\n", env


def test_every_fake_starts_on_chosen_ports_and_its_printout_is_enough_to_publish(
    workdir: Path,
) -> None:
    port = free_port()
    with fakes("all", "--port", f"mastodon={port}") as lines:
        listed = dict(line.split() for line in lines[: lines.index("")])
        assert tuple(listed) == EVERY
        assert listed["mastodon"] == f"http://127.0.0.1:{port}"
        toml, env = config_and_env(lines)
        assert f'instance_url = "http://127.0.0.1:{port}"' in toml
        assert 'transport = "sendgrid"' in toml
        assert 'networks = ["x", "bluesky", "mastodon", "threads", "linkedin"]' in toml
        assert {"SENDGRID_API_KEY", "X_ACCESS_TOKEN_SECRET", "BLUESKY_APP_PASSWORD",
                "THREADS_ACCESS_TOKEN", "LINKEDIN_ACCESS_TOKEN", "MAILCHIMP_API_KEY"} <= set(env)
        (workdir / "publisher.toml").write_text(toml, encoding="utf-8")
        seed_subscribers(workdir, emails(2), env)
        sent = run_publish(TOOLS_POST, cwd=workdir, env=env)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        counts = _sent(workdir, env)
        assert counts["sendgrid"] == 2
        assert all(counts[n] >= 1 for n in ("x", "bluesky", "mastodon", "threads", "linkedin"))

        for transport in ("postmark", "resend", "smtp", "buttondown", "listmonk", "ghost",
                          "mailchimp"):  # each printed table reaches its fake as well
            shutil.rmtree(workdir / ".publisher")
            (workdir / "publisher.toml").write_text(
                toml.replace('transport = "sendgrid"', f'transport = "{transport}"'), "utf-8")
            seed_subscribers(workdir, emails(2), env)
            mailed = run_publish(TOOLS_POST, "--only", "newsletter", cwd=workdir, env=env)
            assert mailed.returncode == 0, (transport, mailed.stdout + mailed.stderr)
            per_reader = transport in ("postmark", "resend", "smtp")  # a platform: one campaign
            assert _sent(workdir, env).get(transport) == (2 if per_reader else 1), transport

        # The sources: the WordPress site's post and the feed's items read as articles.
        wordpress = run_publish("wp:news.example.jp:42", "--dry-run", cwd=workdir, env=env)
        assert wordpress.returncode == 0, wordpress.stdout + wordpress.stderr
        assert "水上バス" in wordpress.stdout
        feed = run_publish("feed", listed["feed"], "--latest", "1", "--dry-run", cwd=workdir,
                           env=env)
        assert feed.returncode == 0, feed.stdout + feed.stderr


def _sent(workdir: Path, env: dict[str, str]) -> dict[str, int]:
    """What `publish status --json` counts as sent, by channel."""
    status = run_publish("status", TOOLS_POST, "--json", cwd=workdir, env=env)
    return {t["channel"]: t["sent"] for t in json.loads(status.stdout)["channels"]}


def test_one_fake_prints_its_url_first_and_a_taken_port_is_one_line_exit_2() -> None:
    with fakes("buttondown") as lines:
        url = lines[0]
        assert url.startswith("http://127.0.0.1:")
        assert f'base_url = "{url}"' in lines and "export BUTTONDOWN_API_KEY=bd-fake-key" in lines
        taken = url.rsplit(":", 1)[1]
        clash = subprocess.run(
            [sys.executable, "-m", "fakes", "x", "--port", f"x={taken}"], cwd=REPO / "tests",
            env={**os.environ, "PYTHONPATH": str(REPO / "tests")}, capture_output=True,
            text=True, timeout=30, check=False)
    assert clash.returncode == 2
    assert f"cannot serve x on port {taken}" in clash.stderr
    assert "--port x=PORT" in clash.stderr and "Traceback" not in clash.stderr
