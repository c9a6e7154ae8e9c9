"""SMTP channel against a real aiosmtpd server on 127.0.0.1: messages, replies, drops, TLS, auth."""

from __future__ import annotations

import contextlib
import re
import select
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from publisher.channels import smtp
from publisher.channels.message import MessageBuilder, dot_stuff
from publisher.errors import ConfigError, PermanentDeliveryError, TransientDeliveryError
from publisher.model import Newsletter, Recipient
from tests.fakes.mail import SITE, batch, newsletter, recipients
from tests.fakes.smtp import SmtpFake, _free_port, self_signed
from tests.helpers.channels import build_channel

# The plain-text fake asks for AUTH without TLS on purpose (local tests only).
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


def build(settings: dict[str, object]) -> smtp.SmtpChannel:
    """The channel from a [channels.smtp] table, as the registry builds it."""
    return build_channel(smtp.SmtpChannel, settings, SITE)


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


@PIPELINING
def test_drops_with_answers_between_them_never_add_up(pipelining: bool) -> None:
    people = recipients(6)
    with SmtpFake(drop_on={2, 5}, pipelining=pipelining).running() as server:
        result = channel(server.port).send_batch(batch(people))
    assert set(result.accepted) == {p.email for p in people} and not result.deferred
    assert server.connections == 3 and server.drops == 2


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


def _dot_stuffed(data: bytes) -> bytes:
    """A whole message as DATA carries it: transparent, CRLF-terminated, then the end line."""
    data = dot_stuff(data)
    return data + (b"" if data.endswith(b"\r\n") else b"\r\n") + b".\r\n"


def _dot_stuffed_by_regex(data: bytes) -> bytes:
    """The two-regex transparency this module used before its fast path."""
    data = re.sub(rb"\r\n|\r|\n", b"\r\n", data)
    data = re.sub(rb"(?m)^\.", b"..", data)
    return data + (b"" if data.endswith(b"\r\n") else b"\r\n") + b".\r\n"


LINES = st.lists(st.sampled_from([".", "..", ". x", "a", "あ", "", "=", " ", "\r", "\t."]),
                 max_size=12).map("\n".join)


@given(text=LINES, page=LINES, name=st.text(max_size=12))
def test_pieces_stuffed_once_equal_the_whole_message_stuffed(text: str, page: str,
                                                             name: str) -> None:
    """Stuffing the shared pieces once and the reader's own per message is the same as
    stuffing the whole message (each piece starts a line and ends with CRLF)."""
    base = newsletter()
    news = Newsletter(subject=base.subject, preheader=base.preheader,
                      html=base.html.replace("本文です。", page),
                      text=base.text.replace("本文です。", text))
    builder = MessageBuilder(news, SITE, lang="ja", list_id="", message_id_domain="example.jp")
    [person] = recipients(1)
    reader = Recipient(email=person.email, name=name, unsubscribe_url=person.unsubscribe_url)
    date = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    parts = builder.parts(reader, date=date, message_id="m1", stuffed=True)
    assert all(part.endswith(b"\r\n") for part in parts if part)
    whole = builder.build(reader, date=date, message_id="m1")
    assert b"".join(parts) + b".\r\n" == _dot_stuffed(whole)


@given(st.lists(st.sampled_from([b"\r\n", b"\r", b"\n", b".", b"..", b"a", b"\xe3\x81\x82"]),
                max_size=40).map(b"".join))
def test_dot_stuffing_fast_path_equals_the_regexes(data: bytes) -> None:
    """Counting line ends and replacing dots gives the bytes the regexes gave."""
    assert _dot_stuffed(data) == _dot_stuffed_by_regex(data)



def test_large_messages_over_starttls_arrive_whole(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Non-blocking TLS writes of messages far above one TLS record (and a socket buffer)."""
    made = self_signed(tmp_path)
    if made is None:
        pytest.skip("openssl is not installed")
    context, ca_file = made
    base = newsletter()
    long_text = "長い本文の行です。" * 30 + "\n"
    news = Newsletter(subject=base.subject, preheader=base.preheader,
                      html=base.html.replace("本文です。", long_text * 400),
                      text=base.text.replace("本文です。", long_text * 400))
    people = recipients(12)
    with SmtpFake(starttls=context, pipelining=True).running() as server:
        sender = channel(server.port, security="starttls", ca_file=str(ca_file), connections=3)
        result = sender.send_batch(batch(people, news=news))
        sender.close()
    assert set(result.accepted) == {p.email for p in people}
    assert min(len(r.data) for r in server.received) > 500_000
    for received in server.received:
        body = received.parsed().get_body(("plain",))
        assert body.get_content().count("長い本文の行です。") == 30 * 400  # type: ignore[union-attr]

class RefusingData(SmtpFake):
    """The aiosmtpd fake, answering the end of DATA with a chosen reply for chosen recipients."""

    def __init__(self, refuse_data: dict[str, str], **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.refuse_data = {k.lower(): v for k, v in refuse_data.items()}

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        reply = self.refuse_data.get(str(envelope.rcpt_tos[0]).lower())
        return reply or await super().handle_DATA(server, session, envelope)


@pytest.mark.parametrize("connections", [1, 3])
@PIPELINING
def test_refusals_in_the_middle_of_a_run_go_to_exactly_their_reader(
    pipelining: bool, connections: int,
) -> None:
    people = recipients(12)
    after_data = {people[3].email: "554 5.6.0 Content rejected",
                  people[6].email: "451 4.3.0 Try again later"}
    at_rcpt = {people[4].email: "550-5.1.1 No such user\r\n550 5.1.1 (two lines)",
               people[9].email: "452 4.2.2 Mailbox full"}
    fake = RefusingData(after_data, reject=at_rcpt, pipelining=pipelining)
    with fake.running() as server:
        sender = channel(server.port, connections=connections)
        result = sender.send_batch(batch(people))
        again = sender.send_batch(batch(recipients(5, start=50), key="ed1-b1"))
        sender.close()
    refused = {people[i].email for i in (3, 4, 6, 9)}
    assert set(result.accepted) == {p.email for p in people} - refused
    assert result.rejected == {
        people[3].email: "554 5.6.0 Content rejected (at end of DATA)",
        people[4].email: "550 5.1.1 No such user 5.1.1 (two lines) (at RCPT TO)",
    }
    assert result.deferred == {people[6].email: "451 4.3.0 Try again later (at end of DATA)",
                               people[9].email: "452 4.2.2 Mailbox full (at RCPT TO)"}
    assert result.bounced == {people[4].email} and not result.uncertain
    assert len(again.accepted) == 5  # the session is clean after the refusals (RSET)
    delivered = sorted(r.rcpt_tos[0] for r in server.received
                       if r.rcpt_tos[0] not in after_data)
    assert delivered == sorted([*result.accepted, *again.accepted])
    assert server.connections == connections and not server.deliveries.duplicates()


@pytest.mark.parametrize("connections", [1, 3])
def test_a_drop_mid_pipeline_leaves_only_the_unanswered_reader_uncertain(
    connections: int,
) -> None:
    people = recipients(20)
    with SmtpFake(drop_after_data_on={7}, drop_on={13}, pipelining=True).running() as server:
        sender = channel(server.port, connections=connections)
        result = sender.send_batch(batch(people))
        sender.close()
    [lost] = result.uncertain  # the 7th message the server took: its reply never came
    assert lost == server.received[6].rcpt_tos[0]
    assert set(result.accepted) == {p.email for p in people} - {lost}
    assert not result.deferred and not result.rejected
    assert server.drops == 2 and server.connections == connections + 2
    assert sorted(server.deliveries.counts.values()) == [1] * 20  # the lost one arrived once


def test_a_server_that_never_answers_the_end_of_data_times_out_into_uncertain() -> None:
    people = recipients(4)
    with WireServer(pipelining=True, silent_on={2}, hold=0.05) as server:  # hold ≪ timeout
        sender = channel(server.port, timeout=1.5)
        result = sender.send_batch(batch(people))
        sender.close()
    assert set(result.uncertain) == {people[1].email}
    assert set(result.accepted) == {people[0].email, people[2].email, people[3].email}
    assert server.connections == 2 and len(server.messages) == 4


def test_a_server_that_swallows_every_message_costs_two_timeouts_not_one_per_reader() -> None:
    """Uncertain is no progress: after two silent messages in a row the batch gives up, and
    the readers never handed over are deferred to the next run, not each timed out."""
    people = recipients(6)
    with WireServer(pipelining=True, silent_on=set(range(1, 7)), hold=0.05) as server:
        sender = channel(server.port, timeout=0.5)
        result = sender.send_batch(batch(people))
        sender.close()
    assert set(result.uncertain) == {people[0].email, people[1].email}
    assert set(result.deferred) == {p.email for p in people[2:]}
    assert "dropped the connection twice (no reply in time)" in result.deferred[people[2].email]
    assert server.connections == 2 and len(server.messages) == 2


def test_a_long_write_to_a_slow_reader_is_not_silence() -> None:
    """`timeout` is the server's silence: a message still going out is not timed out."""
    base = newsletter()
    long_text = "ゆっくり読まれる本文の行です。\n" * 10_000
    news = Newsletter(subject=base.subject, preheader=base.preheader, html=base.html,
                      text=base.text.replace("本文です。", long_text))
    with WireServer(pipelining=True, drip=0.005, hold=0.05) as server:  # under 1 MB/s
        sender = channel(server.port, timeout=0.5)
        sender.preflight()
        session = sender.pool[0].smtp
        assert session is not None and session.sock is not None
        session.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)  # a slow uplink
        result = sender.send_batch(batch(recipients(1), news=news))
        sender.close()
    assert len(result.accepted) == 1 and not result.uncertain
    assert server.connections == 1 and len(server.messages[0]) > 400_000


@PIPELINING
def test_the_next_envelope_rides_behind_the_end_of_data_and_never_before_a_354(
    pipelining: bool,
) -> None:
    """On the wire: with PIPELINING each message but a batch's last carries the next envelope
    (the server withholds its reply until it arrives); content never before its 354; without
    PIPELINING, nothing is sent while a reply is due (RFC 2920 §3.1, RFC 5321 §4.3)."""
    people = recipients(5)
    with WireServer(pipelining=pipelining) as server:
        sender = channel(server.port)
        result = sender.send_batch(batch(people))
        sender.close()
    assert len(result.accepted) == 5 and server.violations == []
    if pipelining:
        assert server.released == ["pipelined"] * 4 + ["waited"]
    assert server.connections == 1 and len(server.messages) == 5


def test_lines_starting_with_a_dot_arrive_intact() -> None:
    base = newsletter()
    news = Newsletter(subject=base.subject, preheader=base.preheader,
                      html=base.html.replace("本文です。", "\n.\n..two\n.one dot\n"),
                      text=base.text.replace("本文です。", ".\n..two\n.one dot\n.\n"))
    with SmtpFake(pipelining=True).running() as server:
        result = channel(server.port).send_batch(batch(recipients(2), news=news))
    assert len(result.accepted) == 2
    for received in server.received:
        body = received.parsed().get_body(("plain",))
        text = body.get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
        assert "\n.\n..two\n.one dot\n.\n" in text
        assert b"\r\n..two\r\n.one dot\r\n" in received.data  # the server undid our stuffing


def test_an_address_with_a_line_break_is_refused_without_touching_the_session() -> None:
    people = recipients(3)
    evil = Recipient(email="x@example.com>\r\nRCPT TO:<victim@example.org",
                     unsubscribe_url=people[0].unsubscribe_url)
    with SmtpFake(pipelining=True).running() as server:
        result = channel(server.port).send_batch(batch([people[0], evil, *people[1:]]))
    assert set(result.accepted) == {p.email for p in people}
    assert "not a valid SMTP address" in result.rejected[evil.email]
    assert not server.messages_for("victim@example.org")



@PIPELINING
def test_a_non_ascii_address_goes_with_smtputf8_or_not_at_all(pipelining: bool) -> None:
    people = recipients(3)
    local = Recipient(email="読者@example.jp", unsubscribe_url=people[0].unsubscribe_url)
    mixed = batch([people[0], local, *people[1:]])
    with SmtpFake(pipelining=pipelining).running() as server:  # aiosmtpd offers SMTPUTF8
        sender = channel(server.port)
        result = sender.send_batch(mixed)
        sender.close()
    assert set(result.accepted) == {local.email, *(p.email for p in people)}
    [received] = server.messages_for(local.email)
    assert local.email in str(received.parsed()["To"])
    with WireServer(pipelining=pipelining) as wire:  # offers no SMTPUTF8 (RFC 6531)
        sender = channel(wire.port)
        result = sender.send_batch(mixed)
        sender.close()
    assert set(result.accepted) == {p.email for p in people}
    assert "SMTPUTF8" in result.rejected[local.email] and local.email not in result.bounced
    assert len(wire.messages) == 3

class WireServer:
    """A raw SMTP server over a socket that checks the order of the client's writes.

    With PIPELINING offered it withholds each end-of-data reply until the next MAIL arrives
    (or `hold` seconds pass) and notes which; a byte between DATA and its 354 is a violation.
    Without PIPELINING, a byte arriving while a reply is due is a violation. Messages counted
    in `silent_on` (1-based) are taken and never answered.
    """

    def __init__(self, *, pipelining: bool, hold: float = 0.5,
                 silent_on: set[int] | None = None, drip: float = 0.0) -> None:
        self.pipelining, self.hold, self.silent_on = pipelining, hold, silent_on or set()
        self.drip = drip  # seconds between small reads: a slow link the client must not time out
        self.listener = socket.socket()
        if drip:
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.port = self.listener.getsockname()[1]
        self.violations: list[str] = []
        self.released: list[str] = []
        self.messages: list[bytes] = []
        self.connections = 0
        self.threads: list[threading.Thread] = []
        self.open: list[socket.socket] = []

    def __enter__(self) -> WireServer:
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.close()
        for conn in self.open:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in self.threads:
            thread.join(5)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            self.open.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            wire = _Wire(conn, self.drip)
            conn.sendall(b"220 wire ESMTP\r\n")
            while (line := wire.line()) is not None:
                verb = line[:4].upper()
                if not self.pipelining and wire.early(0.02):
                    self.violations.append(f"sent behind {verb!r} before its reply")
                if verb == b"EHLO":
                    offer = b"250-PIPELINING\r\n" if self.pipelining else b""
                    conn.sendall(b"250-wire\r\n" + offer + b"250 SIZE 10000000\r\n")
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                elif verb != b"DATA":
                    conn.sendall(b"250 OK\r\n")
                elif not self._data(conn, wire):
                    return

    def _data(self, conn: socket.socket, wire: _Wire) -> bool:
        if self.pipelining and wire.early(0.05):
            self.violations.append("content before the 354")
        conn.sendall(b"354 go ahead\r\n")
        message = wire.until(b"\r\n.\r\n")
        if message is None:
            return False
        self.messages.append(message)
        if len(self.messages) in self.silent_on:
            wire.until(b"never")  # take it, answer nothing, until the client hangs up
            return False
        if self.pipelining:
            self.released.append("pipelined" if wire.wait_for(b"MAIL FROM", self.hold)
                                 else "waited")
        elif wire.early(0.02):
            self.violations.append("sent behind the end of data before its reply")
        conn.sendall(b"250 2.0.0 queued\r\n")
        return True


class _Wire:
    """Buffered reads from one client socket."""

    def __init__(self, conn: socket.socket, drip: float = 0.0) -> None:
        self.conn, self.buffer, self.drip = conn, b"", drip

    def _more(self, timeout: float | None) -> bool:
        if timeout is not None and not select.select([self.conn], [], [], timeout)[0]:
            return False
        if self.drip:
            time.sleep(self.drip)
        data = self.conn.recv(4096 if self.drip else 65536)
        self.buffer += data
        return bool(data)

    def until(self, end: bytes) -> bytes | None:
        while (at := self.buffer.find(end)) < 0:
            if not self._more(None):
                return None
        found, self.buffer = self.buffer[:at], self.buffer[at + len(end):]
        return found

    def line(self) -> bytes | None:
        return self.until(b"\r\n")

    def early(self, wait: float) -> bool:
        return bool(self.buffer) or self._more(wait)

    def wait_for(self, text: bytes, wait: float) -> bool:
        while text not in self.buffer:
            if not self._more(wait):
                return False
        return True
