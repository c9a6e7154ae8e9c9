"""Secrets never show: not with a trailing newline, not cut in half, not base64-encoded, not in the
ledger, not in --debug tracebacks, and never in publisher.toml or a database setting."""

from __future__ import annotations

import base64
import socketserver
import sys
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from publisher.channels import smtp
from publisher.channels.http import HttpClient
from publisher.cli import app as cli
from publisher.config.load import config_from_mapping
from publisher.config.secrets import get_secret, mask, masked_excerpt, remember
from publisher.errors import ConfigError, PermanentDeliveryError
from publisher.stores.backends import open_ledger, open_store
from publisher.stores.setting import is_database_url
from publisher.stores.sqlite import SqliteLedger
from tests.fakes.mail import SITE
from tests.fakes.sendgrid import SendGridFake
from tests.fakes.server import FakeHTTPServer, Reply, serving
from tests.helpers import run_publish
from tests.helpers.channels import build_channel
from tests.helpers.e2e import write_config

build = partial(build_channel, smtp.SmtpChannel, site=SITE)  # as the registry builds it


@pytest.fixture(autouse=True)
def no_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBLISHER_NO_KEYRING", "1")


# --- values with a newline -------------------------------------------------------------------


def test_a_trailing_newline_is_stripped_from_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_NEWLINE_KEY", "SG.newline-key-0123456789\n")
    assert get_secret("T_NEWLINE_KEY") == "SG.newline-key-0123456789"
    assert "newline-key" not in mask("sent SG.newline-key-0123456789\n to the server")


def test_a_line_break_inside_a_secret_is_refused_without_showing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("T_BROKEN_KEY", "first-half-abcdef\nsecond-half-uvwxyz")
    with pytest.raises(ConfigError, match="T_BROKEN_KEY has a line break") as caught:
        get_secret("T_BROKEN_KEY")
    assert "half" not in caught.value.one_line()


def test_a_key_read_from_a_file_with_its_newline_still_works_end_to_end(tmp_path: Path) -> None:
    key = "SG.e2e-key-from-a-file-71c3"
    with SendGridFake(api_key=key).running() as fake:
        write_config(tmp_path, transport="sendgrid", channels={"sendgrid": {"base_url": fake.url}})
        result = run_publish("check", cwd=tmp_path, env={"SENDGRID_API_KEY": key + "\n"})
    assert result.returncode == 0, result.stderr
    assert "ok sendgrid" in result.stdout and "e2e-key" not in result.stderr + result.stdout


# --- every printed path masks ----------------------------------------------------------------


@pytest.fixture
def failing_check(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """`publish check` made to fail with a bug whose message carries a secret."""
    secret = "internal-path-secret-5e1b"
    remember(secret)

    def broken(config: object) -> None:
        raise RuntimeError(f"header value {secret!r} rejected")

    import publisher.delivery.pipeline

    monkeypatch.setattr(publisher.delivery.pipeline, "check_channels", broken)
    monkeypatch.chdir(tmp_path)
    return secret


@pytest.mark.parametrize("debug", [False, True])
def test_internal_errors_and_debug_tracebacks_are_masked(
    failing_check: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    debug: bool,
) -> None:
    monkeypatch.setattr(sys, "argv", ["publish", "check", *(["--debug"] if debug else [])])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    err = capsys.readouterr().err
    assert exited.value.code == 1
    assert failing_check not in err and "in****" in err
    assert ("Traceback" in err) is debug and ("internal error" in err) is not debug


def test_a_provider_reply_is_masked_before_it_is_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.access-jwt-echoed-by-the-server.c2lnbmF0dXJl"
    remember(token)
    body = ("x" * 290 + f" token={token}").encode()
    with serving(FakeHTTPServer(lambda request: Reply(400, body, {}))) as server:
        client = HttpClient("bluesky", server.url)
        with pytest.raises(PermanentDeliveryError) as caught:
            client.request("GET", "/xrpc/app.bsky.actor.getProfile?api_key=query-secret-9")
    line = caught.value.one_line()
    assert "eyJhbG" not in line and "query-secret-9" not in line and "HTTP 400" in line
    assert masked_excerpt("a" * 10 + token, 12) == "a" * 10 + "ey"  # the mask, cut


def test_the_ledger_stores_failures_masked(tmp_path: Path) -> None:
    secret = "ledger-column-secret-2a9f"
    remember(secret)
    ledger = SqliteLedger(tmp_path / "ledger.sqlite3")
    ledger.mark_pending("ed", "post", "bluesky", ["0"], batch="b")
    ledger.mark_failed("ed", "bluesky", {"0": f"HTTP 400: bad token {secret}"})
    [row] = ledger.rows("ed", "bluesky")
    ledger.close()
    assert row.error and secret not in row.error and "le****" in row.error


@pytest.mark.parametrize("prefix", [b"", b"\0", b"\0u", b"\0news\0", b"user:", b"\0ab\0"])
def test_base64_of_a_secret_inside_a_longer_blob_is_masked(prefix: bytes) -> None:
    secret = "blob-secret-value-8c2d"
    remember(secret)
    blob = base64.b64encode(prefix + secret.encode() + b"!tail").decode()
    shown = mask(f"535 5.7.8 {blob} rejected")
    left = shown.removeprefix("535 5.7.8 ").removesuffix(" rejected").replace("****", "")
    assert len(left) <= len(prefix) * 4 // 3 + 4 + 12  # the prefix, the tail, edge characters
    assert shown != f"535 5.7.8 {blob} rejected"


class _EchoingSmtp(socketserver.StreamRequestHandler):
    """A hostile SMTP server: it offers one AUTH mechanism and echoes the client's AUTH line."""

    mechanism = "PLAIN"

    def handle(self) -> None:
        self.wfile.write(b"220 echo.example ESMTP\r\n")
        while line := self.rfile.readline():
            word = line.split(b" ", 1)[0].upper().strip()
            if word in (b"EHLO", b"HELO"):
                self.wfile.write(f"250-echo.example\r\n250 AUTH {self.mechanism}\r\n".encode())
            elif word == b"AUTH" and self.mechanism == "PLAIN":
                self.wfile.write(b"535 5.7.8 bad credentials: " + line.strip() + b"\r\n")
            elif word == b"AUTH":
                self.wfile.write(b"334 VXNlcm5hbWU6\r\n")  # "Username:"
                self.rfile.readline()
                self.wfile.write(b"334 UGFzc3dvcmQ6\r\n")  # "Password:"
                answer = self.rfile.readline().strip()
                self.wfile.write(b"535 5.7.8 bad credentials: " + answer + b"\r\n")
            elif word == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture(params=["PLAIN", "LOGIN"])
def echoing_smtp(request: pytest.FixtureRequest) -> Iterator[int]:
    handler = type("Echo", (_EchoingSmtp,), {"mechanism": request.param})
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def test_an_smtp_server_echoing_auth_shows_no_encoded_password(
    echoing_smtp: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    password = "smtp-pass-echoed-4d7a91"
    monkeypatch.setenv("SMTP_PASSWORD", password)
    channel = build({"host": "127.0.0.1", "port": echoing_smtp, "security": "none",
                                "user": "news", "timeout": 5})
    with pytest.raises(PermanentDeliveryError) as caught:
        channel.preflight()
    line = caught.value.one_line()
    assert "refused the login" in line and "bad credentials" in line
    for encoded in (base64.b64encode(f"\0news\0{password}".encode()),
                    base64.b64encode(password.encode())):
        assert encoded.decode()[4:-4] not in line


# --- no secret in publisher.toml ---------------------------------------------------------------


@pytest.mark.parametrize(("data", "named"), [
    ({"channels": {"smtp": {"key": "k-123"}}}, "channels.smtp.key"),
    ({"channels": {"smtp": {"pass": "p-123"}}}, "channels.smtp.pass"),
    ({"channels": {"smtp": {"passwd": "p-123"}}}, "channels.smtp.passwd"),
    ({"channels": {"smtp": {"pwd": "p-123"}}}, "channels.smtp.pwd"),
    ({"channels": {"smtp": {"smtp_pass": "p-123"}}}, "channels.smtp.smtp_pass"),
    ({"channels": {"x": {"accessToken": "t"}}}, "channels.x.accessToken"),
    ({"channels": {"sendgrid": {"base_url": "https://u:pw@api.sendgrid.com"}}},
     "channels.sendgrid.base_url"),
    ({"channels": {"bluesky": {"pds_url": "https://me.bsky.social:app-pass@bsky.social"}}},
     "channels.bluesky.pds_url"),
    ({"channels": {"mastodon": {"instance_url": "https://token-only@m.example"}}},
     "channels.mastodon.instance_url"),
    ({"channels": {"resend": {"base_url": "https://api.resend.com/?api_key=re_1"}}},
     "channels.resend.base_url"),
    ({"site": {"logo": "https://cdn.example/logo.png?access_token=abc"}}, "site.logo"),
    ({"channels": {"x": [{"handle": "a"}, {"password": "p"}]}}, "channels.x[1].password"),
    ({"ledger": "postgresql://news:pw-123@db/news"}, "ledger"),
    ({"ledger": "postgresql://db/news?password=pw-123"}, "ledger"),
    ({"subscribers": "host=db dbname=news password=pw-123"}, "subscribers"),
])
def test_secret_names_and_credentials_in_urls_are_refused(data: dict[str, object], named: str
                                                          ) -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_mapping(data, source="publisher.toml")
    line = caught.value.one_line()
    assert line.startswith(f"publisher.toml: {named} ")
    assert "123" not in line and "pw" not in line.split(named)[1].split("—")[0]
    if named in ("ledger", "subscribers"):  # the database's own message, with its fixes
        assert "a database password is written in the config" in line and "***" in line


def test_ordinary_settings_that_look_a_little_like_secrets_are_accepted() -> None:
    config = config_from_mapping({
        "ledger": "postgresql://news@db.internal/newsletter",
        "newsletter": {"strings": {"en": {"key_points": "Key points"}}},
        "site": {"logo": "https://cdn.example/logo.png?w=200"},
        "channels": {"bluesky": {"handle": "a.bsky.social", "app_password_env": "BSKY"},
                     "x": {"auth": "oauth2"}, "smtp": {"user": "news", "password_env": "PW"}},
    })
    assert config.newsletter.strings["en"]["key_points"] == "Key points"


# --- database settings ---------------------------------------------------------------------------


def test_a_password_in_the_database_url_query_is_refused_and_masked() -> None:
    with pytest.raises(ConfigError) as caught:
        open_ledger("postgresql://news@db.example/news?sslmode=require&password=hunter2-q")
    line = caught.value.one_line()
    assert "hunter2" not in line and "password=***" in line and caught.value.exit_code == 3


def test_a_libpq_string_with_a_password_is_refused_and_creates_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for opener in (open_ledger, open_store):
        with pytest.raises(ConfigError) as caught:
            opener("host=db.example dbname=news user=news password='hunter2 kv'")
        assert "hunter2" not in caught.value.one_line()
    assert list(tmp_path.iterdir()) == []


def test_without_psycopg_a_postgresql_ledger_says_which_extra_to_install(
    workdir: Path,
) -> None:
    hidden = workdir / "no-psycopg" / "psycopg"
    hidden.mkdir(parents=True)  # stands in for an install without the postgres extra
    (hidden / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'psycopg'\", name='psycopg')\n")
    (workdir / "publisher.toml").write_text('ledger = "postgresql://news@127.0.0.1:9/news"\n')
    result = run_publish("posts/city-composting.md", cwd=workdir,
                         env={"PYTHONPATH": str(hidden.parent)})
    assert result.returncode == 3, result.stderr
    assert "pip install 'publisher[postgres]'" in result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr


def test_a_postgres_setting_is_never_taken_for_a_file_name() -> None:
    assert is_database_url("host=db.example dbname=news")
    assert is_database_url("dbname=news")
    assert not is_database_url(".publisher/ledger.sqlite3")
    assert not is_database_url("data/hosting=1.sqlite3")
