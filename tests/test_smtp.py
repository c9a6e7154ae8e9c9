"""SMTP channel against a real aiosmtpd server on 127.0.0.1: messages, replies, drops, TLS, auth."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from publisher.channels import context_for, smtp
from publisher.errors import ConfigError, PermanentDeliveryError, TransientDeliveryError
from tests.fakes.mail import SITE, batch, recipients
from tests.fakes.smtp import SmtpFake, _free_port, self_signed

# The plain-text fake asks for AUTH without TLS on purpose (local tests only).
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


def build(settings: dict[str, object]) -> smtp.SmtpChannel:
    """The channel from a [channels.smtp] table, as the registry builds it."""
    return smtp.SmtpChannel.from_config(context_for("smtp", settings, SITE))


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBLISHER_NO_KEYRING", "1")


def channel(port: int, **settings: object) -> smtp.SmtpChannel:
    base: dict[str, object] = {"host": "127.0.0.1", "port": port, "security": "none", "timeout": 5}
    return build({**base, **settings})


PIPELINING = pytest.mark.parametrize("pipelining", [False, True], ids=["serial", "pipelined"])


@pytest.fixture(params=[False, True], ids=["serial", "pipelined"])
def server(request: pytest.FixtureRequest) -> Iterator[SmtpFake]:
    with SmtpFake(pipelining=request.param).running() as fake:
        yield fake


def test_messages_arrive_personalised_over_one_reused_connection(server: SmtpFake) -> None:
    people = recipients(5)
    sender = channel(server.port)
    sender.preflight()
    result = sender.send_batch(batch(people))
    session = sender.pool[0].smtp
    assert session is not None and session.has_extn("pipelining") == server.pipelining
    sender.close()
    assert sorted(result.accepted) == sorted(p.email for p in people) and not result.rejected
    assert server.connections == 1  # the preflight connection carries all five messages
    for person in people:
        [received] = server.messages_for(person.email)
        message = received.parsed()
        assert received.mail_from == "news@example.jp"
        assert person.email in str(message["To"])
        assert message["Message-ID"] == result.accepted[person.email]
        assert str(message["List-Unsubscribe"]).startswith(f"<{person.unsubscribe_url}>")
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert str(message["Subject"]) == "今週のお知らせ"
        text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        page = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert f"配信停止: {person.unsubscribe_url}" in text
        assert person.unsubscribe_url.replace("&", "&amp;") in page
        assert f"{person.name or '読者の皆'}様" in text
    assert not server.deliveries.duplicates()


@PIPELINING
def test_5xx_rejects_and_4xx_defers_single_recipients(pipelining: bool) -> None:
    people = recipients(6)
    replies = {people[1].email: "550 5.1.1 No such user", people[2].email: "452 4.2.2 Mailbox full",
               people[4].email: "554 5.7.1 Message refused by policy",
               people[5].email: "550 Requested action not taken: mailbox unavailable"}
    with SmtpFake(reject=replies, pipelining=pipelining).running() as server:
        result = channel(server.port).send_batch(batch(people))
    assert set(result.accepted) == {people[0].email, people[3].email}
    assert result.rejected[people[1].email] == "550 5.1.1 No such user (at RCPT TO)"
    assert result.deferred == {people[2].email: "452 4.2.2 Mailbox full (at RCPT TO)"}
    assert set(result.rejected) == {people[1].email, people[4].email, people[5].email}
    assert result.bounced == {people[1].email, people[5].email}  # 5.7.1 is policy, not address
    assert len(server.received) == 2


@PIPELINING
def test_a_drop_before_the_message_is_taken_reconnects_and_resends(pipelining: bool) -> None:
    people = recipients(4)
    with SmtpFake(drop_on={2}, pipelining=pipelining).running() as server:
        result = channel(server.port).send_batch(batch(people))
    assert len(result.accepted) == 4
    assert server.connections == 2 and server.drops == 1
    assert sorted(server.deliveries.emails()) == sorted(p.email for p in people)


@PIPELINING
def test_a_drop_after_the_payload_leaves_that_recipient_uncertain(pipelining: bool) -> None:
    people = recipients(4)
    with SmtpFake(drop_after_data_on={2}, pipelining=pipelining).running() as server:
        result = channel(server.port).send_batch(batch(people))
    uncertain = people[1].email
    assert uncertain not in result.accepted and uncertain not in result.rejected  # stays pending
    assert "before its reply" in result.uncertain[uncertain] and len(result.uncertain) == 1
    assert len(result.accepted) == 3
    assert not server.deliveries.duplicates() and len(server.received) == 4


def test_no_server_is_transient_and_nothing_partial() -> None:
    sender = channel(_free_port())
    with pytest.raises(TransientDeliveryError, match="cannot connect"):
        sender.preflight()
    with pytest.raises(TransientDeliveryError):
        sender.send_batch(batch(recipients(2)))


@PIPELINING
def test_a_server_that_keeps_dropping_fails_the_batch_before_anything_is_sent(
    pipelining: bool,
) -> None:
    with SmtpFake(fault_rate=1.0, pipelining=pipelining).running() as server:
        with pytest.raises(TransientDeliveryError, match="dropped the connection twice"):
            channel(server.port).send_batch(batch(recipients(3)))
        assert server.received == []


def test_an_unknown_security_mode_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="security"):
        build({"security": "ssl3"})


@pytest.mark.parametrize("mode", ["starttls", "tls"])
def test_starttls_and_implicit_tls(tmp_path: Path, mode: str,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    made = self_signed(tmp_path)
    if made is None:
        pytest.skip("openssl is not installed")
    context, ca_file = made
    monkeypatch.setenv("SMTP_PASSWORD", "tls-password-789")
    options = {"starttls": context} if mode == "starttls" else {"implicit_tls": context}
    fake = SmtpFake(credentials=("mailer", "tls-password-789"), **options)  # type: ignore[arg-type]
    with fake.running() as server:
        sender = channel(server.port, security=mode, ca_file=str(ca_file), user="mailer")
        result = sender.send_batch(batch(recipients(2)))
        assert len(result.accepted) == 2
        untrusted = channel(server.port, security=mode, user="mailer")
        with pytest.raises(PermanentDeliveryError, match="TLS"):
            untrusted.preflight()


def test_parallel_connections_share_a_batch() -> None:
    people = recipients(30)
    with SmtpFake().running() as server:
        sender = channel(server.port, connections=3)
        result = sender.send_batch(batch(people))
        again = sender.send_batch(batch(recipients(6, start=100), key="ed1-b1"))
        sender.close()
    assert len(result.accepted) == 30 and len(again.accepted) == 6
    assert server.connections == 3  # reused across batches
    assert sorted(server.deliveries.counts.values()) == [1] * 36


def _dot_stuffed_by_regex(data: bytes) -> bytes:
    """The two-regex transparency this module used before its fast path."""
    data = re.sub(rb"\r\n|\r|\n", b"\r\n", data)
    data = re.sub(rb"(?m)^\.", b"..", data)
    return data + (b"" if data.endswith(b"\r\n") else b"\r\n") + b".\r\n"


@given(st.lists(st.sampled_from([b"\r\n", b"\r", b"\n", b".", b"..", b"a", b"\xe3\x81\x82"]),
                max_size=40).map(b"".join))
def test_dot_stuffing_fast_path_equals_the_regexes(data: bytes) -> None:
    """Counting line ends and replacing dots gives the bytes the regexes gave."""
    assert smtp._dot_stuffed(data) == _dot_stuffed_by_regex(data)
