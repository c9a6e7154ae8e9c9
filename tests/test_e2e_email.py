"""The newsletter through the real `publish` CLI to local provider fakes, end to end.

Each test writes a publisher.toml pointing a transport at a fake on 127.0.0.1, imports
subscribers with `publish subscribers import`, runs `publish` in a subprocess and then reads what
the fake received: one message per active subscriber, each with its own signed unsubscribe link.
"""

from __future__ import annotations

import re
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from publisher.stores.sqlite import SqliteSubscriberStore
from publisher.unsubscribe.tokens import verify_token
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.postmark import PostmarkFake
from tests.fakes.resend import ResendFake
from tests.fakes.sendgrid import SendGridFake
from tests.fakes.smtp import SmtpFake
from tests.fakes.x import FakeX
from tests.helpers import run_publish
from tests.helpers.e2e import (
    EMAIL_KEYS,
    EN_POST,
    JA_POST,
    SOCIAL_SECRETS,
    UNSUBSCRIBE_SECRET,
    email_env,
    emails,
    free_port,
    install_gate,
    seed_subscribers,
    serving_unsubscribe,
    spawn_publish,
    status,
    tallies,
    wait_for,
    write_config,
)

ACTIVE = emails(7)
OPTED_OUT = "gone@e2e.example"
BAD_ROWS = ("not-an-address,Bad One", "two@@e2e.example,Bad Two", "ok@e2e.example,Odd,weird")
LINK = re.compile(r"<(https?://[^>]+)>")


@dataclass(frozen=True)
class Delivered:
    """One message as a fake received it."""

    email: str
    provider_id: str
    headers: dict[str, str]
    text: str


@dataclass
class Mailer:
    """A running fake and how to point publisher.toml at it."""

    transport: str
    channel: dict[str, Any]
    received: Callable[[], list[Delivered]]


def _http_received(fake: Any) -> Callable[[], list[Delivered]]:
    """What an HTTP email fake recorded."""
    return lambda: [Delivered(m["email"], m["id"], dict(m["headers"]), m.get("text", ""))
                    for m in fake.deliveries.messages]


def _smtp_received(fake: SmtpFake) -> list[Delivered]:
    """Each SMTP message parsed: envelope recipients, headers and the text part."""
    out: list[Delivered] = []
    for received in fake.received:
        message = received.parsed()
        text_part = message.get_body(("plain",))
        text = text_part.get_content() if text_part is not None else ""
        headers = {k: str(v) for k, v in message.items()}
        out.extend(Delivered(rcpt, str(message["Message-ID"]), headers, text)
                   for rcpt in received.rcpt_tos)
    return out


@pytest.fixture(params=["sendgrid", "postmark", "resend", "smtp"])
def mailer(request: pytest.FixtureRequest) -> Iterator[Mailer]:
    """Each transport in turn, its fake running for the test."""
    transport = request.param
    if transport == "smtp":
        smtp = SmtpFake()
        with smtp.running():
            yield Mailer("smtp", {"host": "127.0.0.1", "port": smtp.port, "security": "none",
                                  "connections": 2}, lambda: _smtp_received(smtp))
        return
    key = EMAIL_KEYS[transport][1]
    fakes: dict[str, Any] = {
        "sendgrid": lambda: SendGridFake(api_key=key),
        "postmark": lambda: PostmarkFake(server_token=key),
        "resend": lambda: ResendFake(api_key=key),
    }
    fake = fakes[transport]()
    with fake.running():
        yield Mailer(transport, {"base_url": fake.url}, _http_received(fake))


def test_every_active_subscriber_gets_exactly_one_personal_message(
    workdir: Path, mailer: Mailer
) -> None:
    env = email_env(mailer.transport)
    write_config(workdir, transport=mailer.transport, channels={mailer.transport: mailer.channel})
    imported = seed_subscribers(
        workdir, [*ACTIVE, OPTED_OUT], env, bad_rows=BAD_ROWS,
    )
    assert "added 8" in imported.stdout and "bad rows 3" in imported.stdout
    for line_number in (10, 11, 12):
        assert f"subscribers.csv:{line_number}:" in imported.stderr
    assert run_publish("subscribers", "remove", OPTED_OUT, cwd=workdir, env=env).returncode == 0

    first = run_publish(EN_POST, cwd=workdir, env=env)
    assert first.returncode == 0, first.stderr

    received = mailer.received()
    assert Counter(d.email for d in received) == Counter(ACTIVE)
    store = SqliteSubscriberStore(workdir / ".publisher" / "subscribers.sqlite3")
    for delivered in received:
        links = LINK.findall(delivered.headers["List-Unsubscribe"])
        uid = verify_token(_token(links[0]), UNSUBSCRIBE_SECRET).uid
        assert store.get_by_uid(uid).email == delivered.email  # type: ignore[union-attr]
        assert not _carries_address(links[0], delivered.email)
        assert delivered.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert links[0] in delivered.text.replace("=\n", "")  # the footer link is the same
    assert len({d.headers["List-Unsubscribe"] for d in received}) == len(ACTIVE)

    report = status(EN_POST, workdir, env)
    assert tallies(report)[mailer.transport] == {"sent": 7, "pending": 0, "failed": 0}
    ids = {s["item"]: s["provider_id"] for s in report["sent"] if s["channel"] == mailer.transport}
    assert set(ids) == set(ACTIVE)
    assert {ids[d.email] for d in received} <= {d.provider_id.strip("<>") for d in received} | {
        d.provider_id for d in received}

    second = run_publish(EN_POST, cwd=workdir, env=env)
    assert second.returncode == 0, second.stderr
    assert "Nothing new to send" in second.stdout
    assert len(mailer.received()) == len(ACTIVE)


def test_smtp_messages_carry_recipient_and_list_headers(workdir: Path) -> None:
    smtp = SmtpFake()
    env = email_env("smtp")
    with smtp.running():
        write_config(workdir, transport="smtp",
                     channels={"smtp": {"host": "127.0.0.1", "port": smtp.port,
                                        "security": "none"}})
        seed_subscribers(workdir, ACTIVE[:3], env)
        result = run_publish(JA_POST, cwd=workdir, env=env)
        assert result.returncode == 0, result.stderr
    assert len(smtp.received) == 3
    for received in smtp.received:
        message = received.parsed()
        (rcpt,) = received.rcpt_tos
        assert rcpt in message["To"] and received.mail_from == "news@e2e.example"
        assert message["Subject"] and message["List-Id"] and message["Message-ID"]
        assert message.get_body(("html",)) is not None
        assert message.get_body(("plain",)) is not None


def _carries_address(url: str, email: str) -> bool:
    """Whether a URL holds the address, plainly, percent-encoded or in any base64 alignment."""
    import base64
    from urllib.parse import unquote

    text = unquote(url)
    if email.lower() in text.lower():
        return True
    raw = email.encode()
    for shift in range(3):  # base64 of the address at each of the three byte alignments
        encoded = base64.urlsafe_b64encode(b"\0" * shift + raw).decode().rstrip("=")[4:-4]
        if encoded and encoded in text:
            return True
    return False


def _token(url: str) -> str:
    """The t= parameter of an unsubscribe link."""
    from urllib.parse import parse_qs, urlsplit

    return parse_qs(urlsplit(url).query)["t"][0]


def test_check_with_a_wrong_key_fails_in_one_masked_line(workdir: Path) -> None:
    wrong = "SG.e2e-wrong-key-c0ffee42"
    with SendGridFake(api_key=EMAIL_KEYS["sendgrid"][1]).running() as fake:
        write_config(workdir, transport="sendgrid", channels={"sendgrid": {"base_url": fake.url}})
        result = run_publish("check", cwd=workdir, env=email_env("sendgrid", key=wrong))
        assert result.returncode == 3, (result.stdout, result.stderr)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "sendgrid" in lines[0] and "401" in lines[0]
        assert wrong not in result.stdout + result.stderr
        assert "Traceback" not in result.stderr

        good = run_publish("check", cwd=workdir, env=email_env("sendgrid"))
        assert good.returncode == 0, good.stderr
        assert "ok sendgrid (up to 1000 per call, can schedule)" in good.stdout.splitlines()


def test_one_bad_social_channel_stops_the_run_before_anything_is_sent(workdir: Path) -> None:
    mastodon = FakeMastodon(token=SOCIAL_SECRETS["MASTODON_ACCESS_TOKEN"])
    x = FakeX(consumer=("someone-else", "other-secret"))
    try:
        with SendGridFake(api_key=EMAIL_KEYS["sendgrid"][1]).running() as sendgrid:
            write_config(
                workdir, transport="sendgrid", networks=["x", "mastodon"],
                channels={"sendgrid": {"base_url": sendgrid.url},
                          "mastodon": {"instance_url": mastodon.url, "attach_image": False},
                          "x": {"api_base": x.url, "attach_image": False}},
            )
            env = {**email_env("sendgrid"), **SOCIAL_SECRETS}
            seed_subscribers(workdir, ACTIVE, env)
            result = run_publish(EN_POST, cwd=workdir, env=env)
            assert result.returncode == 3, (result.stdout, result.stderr)
            assert re.search(r"^error: x: ", result.stderr, re.M), result.stderr
            assert "Traceback" not in result.stderr
            assert sendgrid.deliveries.messages == []
            assert sendgrid.server.count("POST", "/v3/mail/send") == 0
        assert mastodon.statuses == [] and x.tweets == []
        assert tallies(status(EN_POST, workdir, env)) == {}
    finally:
        mastodon.close()
        x.close()


def test_one_click_unsubscribe_then_the_next_send_skips_that_reader(workdir: Path) -> None:
    port = free_port()
    env = email_env("sendgrid")
    with SendGridFake(api_key=EMAIL_KEYS["sendgrid"][1]).running() as fake:
        write_config(workdir, transport="sendgrid", channels={"sendgrid": {"base_url": fake.url}},
                     site={"unsubscribe_url": f"http://127.0.0.1:{port}/unsubscribe"})
        seed_subscribers(workdir, ACTIVE[:4], env)
        assert run_publish(EN_POST, cwd=workdir, env=env).returncode == 0
        leaving = fake.deliveries.for_email(ACTIVE[1])[0]
        url = LINK.findall(leaving["headers"]["List-Unsubscribe"])[0]

        with serving_unsubscribe(workdir, port, env):
            request = urllib.request.Request(
                url, data=b"List-Unsubscribe=One-Click", method="POST",
                headers={"Content-Type": "application/x-www-form-urlencoded"})
            with urllib.request.urlopen(request, timeout=10) as reply:
                assert reply.status == 200

        listed = run_publish("subscribers", "list", cwd=workdir, env=env)
        assert f"{ACTIVE[1]}\tunsubscribed" in listed.stdout
        assert run_publish(JA_POST, cwd=workdir, env=env).returncode == 0
    second = [m["email"] for m in fake.deliveries.messages[4:]]
    assert sorted(second) == sorted(set(ACTIVE[:4]) - {ACTIVE[1]})


def test_two_senders_at_once_only_one_sends(workdir: Path) -> None:
    env = email_env("sendgrid")
    with SendGridFake(api_key=EMAIL_KEYS["sendgrid"][1]).running() as fake:
        write_config(workdir, transport="sendgrid",
                     channels={"sendgrid": {"base_url": fake.url, "batch_size": 2}})
        seed_subscribers(workdir, ACTIVE, env)
        gate = install_gate(fake.server, "/v3/mail/send", nth=1)
        runs = [spawn_publish(EN_POST, cwd=workdir, env=env) for _ in range(2)]
        try:
            wait_for(lambda: gate.reached.is_set() and any(r.poll() is not None for r in runs),
                     "one sender to hold the lock and the other to give up")
        finally:
            gate.release()
        results = [(r.wait(timeout=60), *r.communicate()) for r in runs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 5], results
    refused = next(err for code, _, err in results if code == 5)
    assert "another publish run is sending" in refused
    assert Counter(fake.deliveries.emails()) == Counter(ACTIVE)
