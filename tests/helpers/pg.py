"""A real PostgreSQL server for tests: $PUBLISHER_TEST_PG_URL, else a throwaway cluster, else skip.

Under CI=true a missing server fails the test instead of skipping it, so CI cannot go green
without ever talking to PostgreSQL. The throwaway cluster lives in a temporary folder, listens on
127.0.0.1 on a free port, and demands a password (scram-sha-256), so the password-from-the-
environment path is exercised for real. Each test gets a database of its own.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

PASSWORD = "pg-test-password-6c1e9b"
USER = "publisher"


@dataclass(frozen=True)
class PgServer:
    """Where the test server listens, with and without the password in the URL."""

    host: str
    port: int
    user: str
    password: str

    def url(self, database: str, *, with_password: bool = True) -> str:
        """A postgresql:// URL for one database."""
        auth = f"{self.user}:{self.password}" if with_password and self.password else self.user
        return f"postgresql://{auth}@{self.host}:{self.port}/{database}"


def missing(reason: str) -> None:
    """Skip, except under CI where a missing PostgreSQL is a failure."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL is required under CI: {reason}")
    pytest.skip(reason)


def find_bindir() -> Path | None:
    """The folder holding initdb and pg_ctl (Debian keeps them off PATH)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_server_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run as the `postgres` account instead."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The configured server, or a throwaway cluster for this test session."""
    configured = os.environ.get("PUBLISHER_TEST_PG_URL")
    if configured:
        parts = urlsplit(configured)
        server = PgServer(parts.hostname or "127.0.0.1", parts.port or 5432,
                          parts.username or "postgres",
                          parts.password or os.environ.get("PGPASSWORD", ""))
        yield from _with_pgpassword(server)
        return
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing("psycopg is not installed (pip install -e '.[postgres]')")
    bindir = find_bindir()
    if bindir is None:
        missing("no PostgreSQL server binaries (apt-get install postgresql)")
        return
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            missing("running as root and there is no `postgres` account to run the server")
            return
    yield from _throwaway_cluster(bindir, owner if os.geteuid() == 0 else None)


def _throwaway_cluster(bindir: Path, owner: pwd.struct_passwd | None) -> Iterator[PgServer]:
    """initdb + pg_ctl start in a temporary folder; stopped and removed at the end."""
    root = Path(tempfile.mkdtemp(prefix="publisher-pg-"))
    data, pwfile, log = root / "data", root / "pwfile", root / "server.log"
    pwfile.write_text(PASSWORD + "\n")
    if owner is not None:
        os.chown(root, owner.pw_uid, owner.pw_gid)
        os.chown(pwfile, owner.pw_uid, owner.pw_gid)
    port = free_port()
    try:
        subprocess.run(_as_server_user([
            str(bindir / "initdb"), "-D", str(data), "-U", USER, "--auth=scram-sha-256",
            f"--pwfile={pwfile}", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync",
        ]), check=True, capture_output=True, text=True)
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(_as_server_user([
            str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "start",
        ]), check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(root, ignore_errors=True)
        missing(f"could not start a throwaway PostgreSQL: {exc.stderr or exc.stdout}")
    try:
        yield from _with_pgpassword(PgServer("127.0.0.1", port, USER, PASSWORD))
    finally:
        subprocess.run(_as_server_user([
            str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop",
        ]), check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def _with_pgpassword(server: PgServer) -> Iterator[PgServer]:
    """Export PGPASSWORD for the session: publisher.toml URLs carry no password, libpq reads it."""
    before = os.environ.get("PGPASSWORD")
    os.environ["PGPASSWORD"] = server.password
    try:
        yield server
    finally:
        if before is None:
            os.environ.pop("PGPASSWORD", None)
        else:
            os.environ["PGPASSWORD"] = before


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """A fresh, empty database (URL without the password, as in a config), dropped afterwards."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = pg_server.url("postgres")
    with psycopg.connect(admin, autocommit=True) as db:
        db.execute(f'CREATE DATABASE "{name}"')
    try:
        yield pg_server.url(name, with_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as db:
            db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def without_password(url: str) -> str:
    """The same URL with the password taken out (what publisher.toml may hold)."""
    parts = urlsplit(url)
    netloc = parts.netloc.split("@", 1)[-1]
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    return urlunsplit(parts._replace(netloc=netloc))
