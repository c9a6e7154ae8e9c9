"""`publish subscribers sync` and the `check` scope warnings, through the CLI against the fakes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.postmark import PostmarkFake
from tests.fakes.resend import ResendFake
from tests.fakes.sendgrid import SendGridFake
from tests.helpers import run_publish
from tests.helpers.e2e import EMAIL_KEYS, email_env, write_config

READERS = [f"r{i:03d}@example.com" for i in range(12)]
CREATED = 1764500000


def sendgrid_lists() -> dict[str, list[dict[str, object]]]:
    """Bounces over two pages (paging is exercised), plus one of every other list."""
    bounces = [{"created": CREATED, "email": f"gone{i:04d}@elsewhere.example",
                "reason": "550 5.1.1 unknown user", "status": "5.1.1"} for i in range(620)]
    bounces.append({"created": CREATED, "email": "R000@Example.com",
                    "reason": "550 5.1.1 unknown user", "status": "5.1.1"})
    return {
        "bounces": bounces,
        "invalid_emails": [{"created": CREATED, "email": "r001@example.com",
                            "reason": "Mail domain mentioned in email address is unknown"}],
        "spam_reports": [{"created": CREATED, "email": "r002@example.com", "ip": "10.0.0.1"}],
        "unsubscribes": [{"created": CREATED, "email": "r003@example.com"}],
        "blocks": [{"created": CREATED, "email": "r004@example.com",
                    "reason": "554 blocked by policy", "status": "4.0.0"}],
    }


@dataclass
class Fakes:
    sendgrid: SendGridFake
    postmark: PostmarkFake
    resend: ResendFake


@pytest.fixture
def fakes() -> Iterator[Fakes]:
    sendgrid = SendGridFake(EMAIL_KEYS["sendgrid"][1], suppressions=sendgrid_lists(),
                            scopes=("mail.send", "scopes.read", "suppression.read"))
    postmark = PostmarkFake(EMAIL_KEYS["postmark"][1], suppressions={
        "broadcast": [
            {"EmailAddress": "r005@example.com", "SuppressionReason": "HardBounce",
             "Origin": "Recipient", "CreatedAt": "2026-11-30T10:00:00-05:00"},
            {"EmailAddress": "r006@example.com", "SuppressionReason": "ManualSuppression",
             "Origin": "Customer", "CreatedAt": "2026-11-30T10:00:00-05:00"},
        ],
        "outbound": [{"EmailAddress": "r007@example.com", "SuppressionReason": "SpamComplaint",
                      "Origin": "Recipient", "CreatedAt": "2026-11-30T10:00:00Z"}],
    })
    resend = ResendFake(EMAIL_KEYS["resend"][1], suppressions=[
        {"object": "suppression", "id": f"s{i}", "email": email, "origin": origin,
         "source_id": None, "created_at": "2026-11-30T10:00:00.000Z"}
        for i, (email, origin) in enumerate(
            [("r008@example.com", "bounce"), ("r009@example.com", "complaint")]
            + [(f"m{i:03d}@example.com", "manual") for i in range(150)])
    ])
    with sendgrid.running(), postmark.running(), resend.running():
        yield Fakes(sendgrid, postmark, resend)


def configure(root: Path, fakes: Fakes) -> dict[str, str]:
    """A config naming all three providers (Postmark on its broadcast stream), and their keys."""
    write_config(root, transport="sendgrid", channels={
        "sendgrid": {"base_url": fakes.sendgrid.url},
        "postmark": {"base_url": fakes.postmark.url, "message_stream": "broadcast"},
        "resend": {"base_url": fakes.resend.url},
    })
    env = email_env("sendgrid")
    for name, value in EMAIL_KEYS.values():
        env[name] = value
    (root / "list.csv").write_text("email\n" + "\n".join(READERS) + "\n", encoding="utf-8")
    assert run_publish("subscribers", "import", "list.csv", cwd=root, env=env).returncode == 0
    return env


def test_sync_pulls_every_list_once_and_a_second_run_changes_nothing(
    tmp_path: Path, fakes: Fakes
) -> None:
    env = configure(tmp_path, fakes)
    first = run_publish("subscribers", "sync", "--json", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {
        "sendgrid": {"bounced": 622, "complained": 1, "unsubscribed": 1, "unchanged": 0},
        "postmark": {"bounced": 1, "complained": 0, "unsubscribed": 1, "unchanged": 0},
        "resend": {"bounced": 1, "complained": 1, "unsubscribed": 150, "unchanged": 0},
    }
    assert "sendgrid: 1 blocked addresses reported, not suppressed" in first.stderr
    assert fakes.sendgrid.server.count("GET", "/v3/suppression/bounces") == 2  # two pages
    listed = json.loads(run_publish("subscribers", "list", "--json", cwd=tmp_path,
                                    env=env).stdout)
    by_email = {row["email"]: row for row in listed}
    assert by_email["r000@example.com"]["status"] == "bounced"  # matched case-insensitively
    assert by_email["r000@example.com"]["reason"] == "SendGrid bounce: 550 5.1.1 unknown user"
    assert by_email["r000@example.com"]["status_at"] == "2025-11-30T10:53:20Z"
    assert [by_email[f"r00{i}@example.com"]["status"] for i in range(1, 10)] == [
        "bounced", "complained", "unsubscribed", "subscribed", "bounced", "unsubscribed",
        "subscribed", "bounced", "complained"]  # blocks and the other stream stay subscribed
    second = run_publish("subscribers", "sync", cwd=tmp_path, env=env)
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines() == [
        "sendgrid: no changes (624 already suppressed)",
        "postmark: no changes (2 already suppressed)",
        "resend: no changes (152 already suppressed)",
    ]


def test_sync_prints_what_changed_per_provider_and_status(tmp_path: Path, fakes: Fakes) -> None:
    env = configure(tmp_path, fakes)
    result = run_publish("subscribers", "sync", "--provider", "postmark", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "postmark: 1 bounced, 1 unsubscribed (0 unchanged)",
        "  r005@example.com: subscribed → bounced (Postmark HardBounce (Recipient))",
        "  r006@example.com: subscribed → unsubscribed (Postmark ManualSuppression (Customer))",
    ]


def test_a_sending_only_resend_key_is_skipped_with_a_note_and_exit_0(
    tmp_path: Path, fakes: Fakes
) -> None:
    env = configure(tmp_path, fakes)
    fakes.resend.sending_only = True
    result = run_publish("subscribers", "sync", "--provider", "resend", "--json", cwd=tmp_path,
                         env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {}
    assert "resend: the API key may only send emails" in result.stderr
    assert "webhooks cover it" in result.stderr


def test_a_key_without_the_read_scope_fails_sync_and_check_warns(
    tmp_path: Path, fakes: Fakes
) -> None:
    env = configure(tmp_path, fakes)
    fakes.sendgrid.scopes = ("mail.send", "scopes.read", "suppression.bounces.read")
    fakes.resend.sending_only = True
    check = run_publish("check", cwd=tmp_path, env=env)
    assert check.returncode == 0, check.stderr
    assert ("warning: sendgrid: the API key lacks suppression.invalid_emails.read,"
            " suppression.spam_reports.read, suppression.unsubscribes.read") in check.stderr
    assert "warning: resend: the API key may only send emails" in check.stderr
    assert "postmark" not in check.stderr
    synced = run_publish("subscribers", "sync", "--provider", "sendgrid", cwd=tmp_path, env=env)
    assert synced.returncode == 4
    assert "HTTP 403" in synced.stderr and "access forbidden" in synced.stderr


def test_no_provider_configured_is_a_config_error(tmp_path: Path) -> None:
    result = run_publish("subscribers", "sync", cwd=tmp_path)
    assert result.returncode == 3
    assert "no email provider is configured" in result.stderr


def test_a_provider_table_without_its_key_is_skipped_unless_asked_for(
    tmp_path: Path, fakes: Fakes
) -> None:
    env = configure(tmp_path, fakes)
    del env[EMAIL_KEYS["postmark"][0]]  # [channels.postmark] only for its webhook user
    result = run_publish("subscribers", "sync", "--json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert set(json.loads(result.stdout)) == {"sendgrid", "resend"}
    assert "postmark: not synced:" in result.stderr and "POSTMARK_SERVER_TOKEN" in result.stderr
    asked = run_publish("subscribers", "sync", "--provider", "postmark", cwd=tmp_path, env=env)
    assert asked.returncode == 3 and "POSTMARK_SERVER_TOKEN" in asked.stderr
