"""Every run tells the truth: exit codes and stderr through the real CLI, against local fakes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.fakes.postmark import PostmarkFake
from tests.fakes.smtp import SmtpFake
from tests.fakes.x import FakeX
from tests.helpers import run_publish
from tests.helpers.e2e import (
    EMAIL_KEYS,
    EN_POST,
    email_env,
    emails,
    seed_subscribers,
    status,
    write_config,
)


def not_warnings(stderr: str) -> list[str]:
    """The stderr lines that are not the post's own warnings."""
    return [x for x in stderr.splitlines() if x.strip() and not x.startswith("warning:")]


def test_a_refused_oauth2_token_is_exit_3_and_names_that_token(workdir: Path) -> None:
    fake = FakeX()
    try:
        write_config(workdir, networks=["x"], channels={"x": {"api_base": fake.url,
                                                              "auth": "oauth2"}})
        env = {"X_OAUTH2_USER_TOKEN": "x-oauth2-expired-token-77"}
        for args in (("check",), (EN_POST,)):
            result = run_publish(*args, cwd=workdir, env=env)
            assert result.returncode == 3, (result.stdout, result.stderr)
            lines = not_warnings(result.stderr)
            assert len(lines) == 1 and "X_OAUTH2_USER_TOKEN" in lines[0], lines
            assert "X_API_KEY" not in lines[0] and "x-oauth2-expired" not in lines[0]
        assert fake.tweets == []
    finally:
        fake.close()


# --- SMTP: refusals, deferrals, bounces, lost replies ---------------------------------------

READERS = emails(5, prefix="outcome")
UNKNOWN, BUSY = READERS[1], READERS[3]


def smtp_setup(workdir: Path, smtp: SmtpFake) -> dict[str, str]:
    """publisher.toml for the SMTP fake, the readers imported; the environment to run with."""
    env = email_env("smtp")
    write_config(workdir, transport="smtp", channels={"smtp": {
        "host": "127.0.0.1", "port": smtp.port, "security": "none"}})
    seed_subscribers(workdir, READERS, env)
    return env


def lines_of(stderr: str, tag: str) -> list[str]:
    """The stderr lines that start with a tag such as 'failed:'."""
    return [line for line in stderr.splitlines() if line.startswith(tag)]


def test_a_550_bounces_the_reader_and_a_451_is_retried_then_given_up(workdir: Path) -> None:
    smtp = SmtpFake(reject={UNKNOWN: "550 5.1.1 User unknown", BUSY: "451 4.3.0 Try again later"})
    with smtp.running():
        env = smtp_setup(workdir, smtp)
        first = run_publish(EN_POST, cwd=workdir, env=env)
        assert first.returncode == 4, (first.stdout, first.stderr)
        [line] = lines_of(first.stderr, "failed:")
        assert line.startswith("failed: smtp: 2 recipients not delivered — 550 5.1.1 User unknown")
        assert "(o@…) — marked bounced, never sent to again" in line
        assert "451 4.3.0 Try again later (at RCPT TO) (o@…) — retried on the next run" in line
        assert UNKNOWN not in first.stderr and BUSY not in first.stderr
        assert "Nothing new" not in first.stdout
        listed = run_publish("subscribers", "list", "--json", cwd=workdir, env=env).stdout
        people = {p["email"]: p for p in json.loads(listed)}
        assert people[BUSY]["status"] == "subscribed"
        assert people[UNKNOWN]["status"] == "bounced" and people[UNKNOWN]["status_at"]
        assert "550 5.1.1 User unknown" in people[UNKNOWN]["reason"]

        report = status(EN_POST, workdir, env)
        failed = {f["item"]: f for f in report["failed"]}
        assert set(failed) == {UNKNOWN, BUSY}
        assert failed[UNKNOWN]["kind"] == "permanent" and failed[UNKNOWN]["next"] == "refused"
        assert failed[BUSY]["kind"] == "transient" and failed[BUSY]["next"] == "retry"
        assert failed[BUSY]["attempts"] == 1 and failed[BUSY]["last_attempt"].endswith("Z")
        assert "451 4.3.0" in failed[BUSY]["reason"]

        for attempt in (2, 3):
            rerun = run_publish(EN_POST, cwd=workdir, env=env)
            assert rerun.returncode == 4, rerun.stderr
            assert "Nothing new" not in rerun.stdout
            tries = {f["item"]: f["attempts"] for f in status(EN_POST, workdir, env)["failed"]}
            assert tries == {UNKNOWN: 1, BUSY: attempt}
        assert "given up after 3 attempts" in rerun.stderr
        assert len(smtp.messages_for(UNKNOWN)) == 0 and smtp.reject_count(UNKNOWN) == 1
        assert smtp.reject_count(BUSY) == 3

        settled = run_publish(EN_POST, cwd=workdir, env=env)  # given up: reported, not tried
        assert settled.returncode == 4 and smtp.reject_count(BUSY) == 3
        assert "given up after 3 attempts" in lines_of(settled.stderr, "failed:")[0]
        given_up = run_publish("status", EN_POST, "--failed", "--json", cwd=workdir, env=env)
        entry = {f["item"]: f for f in json.loads(given_up.stdout)["failed"]}[BUSY]
        assert entry["next"] == "given-up" and entry["attempts"] == 3
        shown = run_publish("status", EN_POST, "--failed", cwd=workdir, env=env).stdout
        failed_lines = [line for line in shown.splitlines() if line.startswith("failed smtp o@… ")]
        assert len(failed_lines) == 2
        assert UNKNOWN not in shown and BUSY not in shown

        del smtp.reject[BUSY.lower()]
        fixed = run_publish(EN_POST, "--retry-failed", cwd=workdir, env=env)
        assert fixed.returncode == 0, fixed.stderr
        assert len(smtp.messages_for(BUSY)) == 1 and not smtp.messages_for(UNKNOWN)
        done = run_publish(EN_POST, cwd=workdir, env=env)
        assert done.returncode == 0 and "Nothing new to send" in done.stdout


def test_after_a_bounce_the_next_run_exits_0_without_the_bounced_reader(workdir: Path) -> None:
    smtp = SmtpFake(reject={UNKNOWN: "550 5.1.1 <x@y.example>: Recipient address rejected"})
    with smtp.running():
        env = smtp_setup(workdir, smtp)
        assert run_publish(EN_POST, cwd=workdir, env=env).returncode == 4
        second = run_publish(EN_POST, cwd=workdir, env=env)
        assert second.returncode == 0, second.stderr
        assert "Nothing new to send" in second.stdout
        assert not [x for x in second.stderr.splitlines() if x.startswith(("failed:", "error:",
                                                                             "uncertain:"))]
    assert smtp.reject_count(UNKNOWN) == 1
    assert sorted(r for m in smtp.received for r in m.rcpt_tos) == sorted(
        set(READERS) - {UNKNOWN})


def test_a_reply_lost_after_data_is_exit_7_in_that_run(workdir: Path) -> None:
    smtp = SmtpFake(drop_after_data_on={2})
    with smtp.running():
        env = smtp_setup(workdir, smtp)
        first = run_publish(EN_POST, cwd=workdir, env=env)
        assert first.returncode == 7, (first.stdout, first.stderr)
        [line] = lines_of(first.stderr, "uncertain:")
        assert "smtp: 1 recipient uncertain — the server took the message" in line
        assert "in this run" in line and "stopped mid-send" not in line
        [entry] = status(EN_POST, workdir, env)["uncertain"]
        assert "before its reply" in entry["reason"] and entry["attempts"] == 1
        shown = run_publish("status", EN_POST, cwd=workdir, env=env).stdout
        assert f"uncertain smtp {entry['item'][0]}@… (batch" in shown and entry["item"] not in shown

        second = run_publish(EN_POST, cwd=workdir, env=env)
        assert second.returncode == 7 and "Nothing new" not in second.stdout
        assert "in an earlier run" in second.stderr and "stopped mid-send" not in second.stderr
        retried = run_publish(EN_POST, "--retry-pending", cwd=workdir, env=env)
        assert retried.returncode == 0, retried.stderr
    assert sorted(smtp.deliveries.emails()) == sorted([*READERS, entry["item"]])


def test_status_masks_the_addresses_of_sent_lines_and_json_keeps_them(workdir: Path) -> None:
    smtp = SmtpFake()
    with smtp.running():
        env = smtp_setup(workdir, smtp)
        assert run_publish(EN_POST, cwd=workdir, env=env).returncode == 0
    shown = run_publish("status", EN_POST, cwd=workdir, env=env)
    assert shown.returncode == 0, shown.stderr
    sent = [line for line in lines_of(shown.stdout, "sent ") if " smtp " in line]
    assert len(sent) == len(READERS) and all(" o@… → " in line for line in sent)
    assert [r for r in READERS if r in shown.stdout] == []
    assert set(READERS) <= {row["item"] for row in status(EN_POST, workdir, env)["sent"]}


# --- Postmark: 200 with a per-entry ErrorCode 406 -------------------------------------------


def test_postmark_406_in_a_200_batch_is_exit_4_and_never_posted_again(workdir: Path) -> None:
    inactive = READERS[2]
    env = email_env("postmark")
    with PostmarkFake(server_token=EMAIL_KEYS["postmark"][1], inactive=[inactive]).running() as pm:
        write_config(workdir, transport="postmark", channels={"postmark": {"base_url": pm.url}})
        seed_subscribers(workdir, READERS, env)
        first = run_publish(EN_POST, cwd=workdir, env=env)
        assert first.returncode == 4, (first.stdout, first.stderr)
        [line] = lines_of(first.stderr, "failed:")
        assert line.startswith("failed: postmark: 1 recipient refused — Postmark ErrorCode 406")
        assert line.endswith("(o@…) — marked bounced, never sent to again")
        assert inactive not in first.stderr
        second = run_publish(EN_POST, cwd=workdir, env=env)
        assert second.returncode == 0 and "Nothing new to send" in second.stdout
        assert pm.server.count("POST", "/email/batch") == 1
    listed = run_publish("subscribers", "list", "--status", "bounced", cwd=workdir, env=env)
    assert listed.stdout.split("\t")[0] == inactive


# --- no demo identity in a real send; the whole configuration checked -----------------------


def test_a_real_send_refuses_the_demo_identity_and_names_each_field(workdir: Path) -> None:
    smtp = SmtpFake()
    with smtp.running():
        channel = f'[channels.smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\nsecurity = "none"\n'
        (workdir / "publisher.toml").write_text(
            f'[newsletter]\ntransport = "smtp"\n{channel}', encoding="utf-8")
        env = email_env("smtp")
        seed_subscribers(workdir, READERS[:2], env)
        for args in (("check",), (EN_POST,)):
            result = run_publish(*args, cwd=workdir, env=env)
            assert result.returncode == 3, (result.stdout, result.stderr)
            [line] = not_warnings(result.stderr)
            assert "demo from, address, url, unsubscribe_url" in line, line
        (workdir / "publisher.toml").write_text(
            '[site]\nfrom = "Real News <news@real.example>"\nurl = "https://real.example"\n'
            f'[newsletter]\ntransport = "smtp"\n{channel}', encoding="utf-8")
        partly = run_publish("check", cwd=workdir, env=env)
        assert partly.returncode == 3 and "demo address;" in partly.stderr, partly.stderr
        assert smtp.received == [] and smtp.mail_count == 0


@pytest.mark.parametrize(("toml", "expected"), [
    ('[faq]\nmax_items = "ten"\n', "max_items must be a whole number, not 'ten'"),
    ("[faq]\nshort_answer_chars = 5\n", "short_answer_chars must be between 20 and 2000"),
    ("max_attempts = 0\n", "max_attempts must be between 1 and 100"),
    ('[social]\nnetworks = ["x", "myspace"]\n', "unknown network 'myspace'"),
    ("[social]\nthread = 1\n", "thread must be true or false"),
    ('[newsletter]\ntransport = "pigeon"\n', "unknown transport 'pigeon'"),
    ('[channels.telegram]\ntoken_env = "T"\n', "unknown channel table [channels.telegram]"),
    ('[site]\nname = 7\n', "name must be a string"),
])
def test_check_rejects_a_bad_configuration_in_one_line(
    workdir: Path, toml: str, expected: str
) -> None:
    (workdir / "publisher.toml").write_text(toml, encoding="utf-8")
    result = run_publish("check", cwd=workdir)
    assert result.returncode == 3, (result.stdout, result.stderr)
    [line] = not_warnings(result.stderr)
    assert expected in line and "publisher.toml" in line, line


def test_a_channel_value_of_the_wrong_type_is_a_config_error(workdir: Path) -> None:
    write_config(workdir, transport="smtp", channels={"smtp": {"host": "127.0.0.1",
                                                               "port": "twenty-five"}})
    result = run_publish("check", cwd=workdir, env=email_env("smtp"))
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert "[channels.smtp]" in result.stderr and "internal error" not in result.stderr


def test_check_ends_with_a_short_positive_summary(workdir: Path) -> None:
    plain = run_publish("check", cwd=workdir)
    assert plain.returncode == 0, plain.stderr
    assert "embedded defaults) is valid: newsletter via outbox" in plain.stdout
    with PostmarkFake(server_token=EMAIL_KEYS["postmark"][1]).running() as pm:
        write_config(workdir, transport="postmark", networks=["x", "threads"],
                     channels={"postmark": {"base_url": pm.url}})
        result = run_publish("check", cwd=workdir, env=email_env("postmark"))
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("ok ") and "publisher.toml is valid: newsletter via postmark" in last
    assert "to the outbox: x, threads" in last


# --- ordinary faults of the machine: one line, exit 2 or 3, never 1 --------------------------


def one_error_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The single stderr line of a run that failed with the expected code."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = not_warnings(result.stderr)
    assert len(lines) == 1 and "internal error" not in lines[0], lines
    return lines[0]


def test_serve_on_a_port_in_use_is_one_line(workdir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_publish("serve", "--port", str(port), cwd=workdir,
                             env={"PUBLISHER_UNSUBSCRIBE_SECRET": "s" * 32}, timeout=30)
    line = one_error_line(result, 3)
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in line


def keys_set(workdir: Path, stdin: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`publish keys set EXAMPLE_TOKEN` with stdin piped in."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    return subprocess.run([sys.executable, "-m", "publisher", "keys", "set", "EXAMPLE_TOKEN"],
                          cwd=workdir, env={**full, **env}, input=stdin, capture_output=True,
                          text=True, timeout=60, check=False)


def test_keys_set_without_a_keyring_backend_or_without_input(workdir: Path) -> None:
    fail = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    line = one_error_line(keys_set(workdir, "a-secret-value\n", **fail), 3)
    assert "no usable keyring" in line and "a-secret-value" not in line
    line = one_error_line(keys_set(workdir, "", **fail), 2)
    assert "no value given on standard input" in line


def test_an_unwritable_outbox_or_ledger_folder_is_one_line(workdir: Path) -> None:
    (workdir / "blocker").write_text("a file where a folder should be\n", encoding="utf-8")
    for setting in ('outbox = "blocker/outbox"', 'ledger = "blocker/ledger.sqlite3"'):
        (workdir / "publisher.toml").write_text(setting + "\n", encoding="utf-8")
        line = one_error_line(run_publish(EN_POST, cwd=workdir), 3)
        assert "blocker" in line and "cannot" in line, line


@contextmanager
def tiny_disk(path: Path, size: str = "48k") -> Iterator[Path]:
    """A small tmpfs at path (root only): a real disk that fills up."""
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


def test_a_full_disk_is_one_line_and_leaves_no_half_files(workdir: Path) -> None:
    with tiny_disk(workdir / "tiny") as disk:
        (disk / "filler").write_bytes(b"\0" * 40_000)
        (workdir / "publisher.toml").write_text('outbox = "tiny/outbox"\n', encoding="utf-8")
        line = one_error_line(run_publish(EN_POST, cwd=workdir), 3)
        assert "No space left on device" in line and "tiny/outbox" in line, line
        assert not [p for p in disk.rglob(".*.tmp")]
        (disk / "filler").unlink()
        (workdir / "publisher.toml").write_text('ledger = "tiny/ledger.sqlite3"\n',
                                                encoding="utf-8")
        (disk / "filler").write_bytes(b"\0" * 44_000)
        line = one_error_line(run_publish(EN_POST, cwd=workdir), 3)
        assert "ledger" in line and "full" in line, line


def test_a_disk_that_fills_mid_send_is_a_system_fault_naming_the_ledger(workdir: Path) -> None:
    from publisher.errors import SystemFault
    from publisher.stores.sqlite import SqliteLedger

    with tiny_disk(workdir / "tiny", "1m") as disk:
        ledger = SqliteLedger(disk / "ledger.sqlite3")
        try:
            free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
            (disk / "filler").write_bytes(b"\0" * max(0, free - 4096))
            many = [f"reader{i:05d}@example.org" for i in range(2000)]
            with pytest.raises(SystemFault, match="cannot write the ledger") as caught:
                ledger.mark_pending("e", "p", "smtp", many, batch="b")
            assert str(disk / "ledger.sqlite3") in caught.value.one_line()
        finally:
            ledger.close()
