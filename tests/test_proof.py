"""`publish POST --proof ADDRESS` through the CLI: the newsletter alone, marked, never counted."""

from __future__ import annotations

import email
import email.policy
from collections import Counter
from email.message import EmailMessage
from pathlib import Path

from tests.fakes.sendgrid import SendGridFake
from tests.fakes.server import Faults
from tests.helpers import run_publish
from tests.helpers.e2e import (
    EMAIL_KEYS,
    EN_POST,
    email_env,
    emails,
    seed_subscribers,
    status,
    tallies,
    write_config,
)

FOLDER = Path("outbox") / "city-composting"


def _message(path: Path) -> EmailMessage:
    """A written .eml, parsed."""
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_an_outbox_proof_writes_proof_files_and_the_real_send_still_happens(
    workdir: Path,
) -> None:
    result = run_publish(EN_POST, "--proof", "Editor@Example.org", "--proof", "desk@example.org",
                         cwd=workdir)
    assert result.returncode == 0, result.stderr
    folder = workdir / FOLDER
    assert sorted(p.name for p in folder.glob("*.eml")) == [
        "proof-Editor@example.org.eml", "proof-desk@example.org.eml"]
    proof = _message(folder / "proof-desk@example.org.eml")
    assert str(proof["Subject"]).strip().startswith("[PROOF] ")
    assert proof["To"] == "desk@example.org"
    assert not (folder / "social").exists()  # social posts are never proofed
    assert status(EN_POST, workdir, {})["channels"] == []  # not a delivery of the edition
    assert len(status(EN_POST, workdir, {})["proofs"]) == 2
    shown = run_publish("status", EN_POST, cwd=workdir)
    assert shown.returncode == 0, shown.stderr
    assert "2 proofs sent (not counted as deliveries)" in shown.stdout

    real = run_publish(EN_POST, cwd=workdir)
    assert real.returncode == 0, real.stderr
    assert "Nothing new" not in real.stdout
    sent = _message(folder / "newsletter.eml")
    assert not str(sent["Subject"]).strip().startswith("[PROOF]")
    assert (folder / "social" / "x-1.txt").is_file()


def test_a_proof_through_sendgrid_reaches_only_the_proof_address(workdir: Path) -> None:
    env = email_env("sendgrid")
    readers = emails(5)
    with SendGridFake(api_key=EMAIL_KEYS["sendgrid"][1]).running() as fake:
        write_config(workdir, transport="sendgrid", channels={"sendgrid": {"base_url": fake.url}})
        seed_subscribers(workdir, readers, env)
        proof = run_publish(EN_POST, "--proof", readers[2], cwd=workdir, env=env)
        assert proof.returncode == 0, proof.stderr
        assert fake.deliveries.emails() == [readers[2]]
        (copy,) = fake.deliveries.for_email(readers[2])
        assert copy["subject"].startswith("[PROOF] ")
        assert "Reader 2" in copy["text"]  # personalised like the subscriber's own copy
        assert "List-Unsubscribe" in copy["headers"]
        assert tallies(status(EN_POST, workdir, env)) == {}
        shown = run_publish("status", EN_POST, cwd=workdir, env=env)
        assert "1 proof sent (not counted as deliveries)" in shown.stdout, shown.stderr

        real = run_publish(EN_POST, cwd=workdir, env=env)
        assert real.returncode == 0, real.stderr
        counts = Counter(fake.deliveries.emails())
    assert counts == Counter({**dict.fromkeys(readers, 1), readers[2]: 2})


def test_a_bad_proof_address_or_a_clashing_option_is_exit_2(workdir: Path) -> None:
    bad = run_publish(EN_POST, "--proof", "not-an-address", cwd=workdir)
    assert bad.returncode == 2 and "--proof" in bad.stderr
    clash = run_publish(EN_POST, "--proof", "a@example.org", "--only", "x", cwd=workdir)
    assert clash.returncode == 2 and "--only" in clash.stderr
    assert not (workdir / "outbox").exists()


def test_a_proof_the_provider_refused_is_shown_as_failed_not_sent(workdir: Path) -> None:
    env = email_env("sendgrid")
    refusing = Faults(rate=1.0, kinds=("500",), paths=("/v3/mail/send",))
    with SendGridFake(api_key=EMAIL_KEYS["sendgrid"][1], faults=refusing).running() as fake:
        write_config(workdir, transport="sendgrid", channels={"sendgrid": {"base_url": fake.url}})
        proof = run_publish(EN_POST, "--proof", "desk@example.org", cwd=workdir, env=env)
        assert proof.returncode == 4 and fake.deliveries.emails() == [], proof.stderr
        shown = run_publish("status", EN_POST, cwd=workdir, env=env)
    assert "0 proofs sent, 1 failed (not counted as deliveries)" in shown.stdout, shown.stderr
