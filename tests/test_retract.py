"""`publish retract` through the real CLI against the X, Bluesky and Mastodon fakes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import run_publish
from tests.helpers.e2e import SOCIAL_SECRETS, crash_mid_request, install_gate, status
from tests.helpers.social import NETWORKS, POST, Networks, configure, post_counts


def publish(root: Path, *args: str) -> Any:
    """`publish ARGS` with the network secrets."""
    return run_publish(*args, cwd=root, env=SOCIAL_SECRETS)


def test_retract_deletes_every_post_once_and_a_rerun_posts_nothing_until_resend(
    workdir: Path, nets: Networks
) -> None:
    configure(workdir, nets)
    sent = publish(workdir, POST, "--write-back")
    assert sent.returncode == 0, sent.stderr
    assert post_counts(nets) == dict.fromkeys(NETWORKS, 1)
    first_keys = {s["idempotency_key"] for s in nets.mastodon.statuses}
    first_rkeys = {p["rkey"] for p in nets.bluesky.posts}
    assert "bsky.app" in (workdir / POST).read_text(encoding="utf-8")

    unconfirmed = publish(workdir, "retract", POST)
    assert unconfirmed.returncode == 2 and "--yes" in unconfirmed.stderr
    assert post_counts(nets) == dict.fromkeys(NETWORKS, 1)

    gone = publish(workdir, "retract", POST, "--yes", "--write-back")
    assert gone.returncode == 0, gone.stderr
    assert post_counts(nets) == dict.fromkeys(NETWORKS, 0)
    assert "newsletter cannot be recalled" in gone.stderr
    assert "bsky.app" not in (workdir / POST).read_text(encoding="utf-8")
    report = status(POST, workdir, SOCIAL_SECRETS)
    assert {r["channel"] for r in report["retracted"]} == set(NETWORKS)
    assert {r["state"] for r in report["retracted"]} == {"retracted"}
    assert not [s for s in report["sent"] if s["channel"] in NETWORKS]
    table = publish(workdir, "status", POST)
    assert "1 retracted" in table.stdout

    again = publish(workdir, "retract", POST, "--yes", "--network", "x")
    assert again.returncode == 0 and "nothing to retract" in again.stderr
    assert nets.x.deletes and len(nets.x.deletes) == 1  # no second delete

    rerun = publish(workdir, POST)
    assert rerun.returncode == 0, rerun.stderr
    assert post_counts(nets) == dict.fromkeys(NETWORKS, 0)
    assert "retracted" in rerun.stdout and "--resend" in rerun.stdout

    resent = publish(workdir, POST, "--resend")
    assert resent.returncode == 0, resent.stderr
    assert post_counts(nets) == dict.fromkeys(NETWORKS, 1)
    assert not {s["idempotency_key"] for s in nets.mastodon.statuses} & first_keys
    assert not {p["rkey"] for p in nets.bluesky.posts} & first_rkeys  # fresh record keys
    assert publish(workdir, POST).returncode == 0
    assert post_counts(nets) == dict.fromkeys(NETWORKS, 1)


def test_a_post_the_account_may_not_delete_fails_that_network_and_exits_4(
    workdir: Path, nets: Networks
) -> None:
    configure(workdir, nets)
    assert publish(workdir, POST).returncode == 0
    nets.x.tweets[0]["author"] = "someone-else"  # X refuses (403): not the account's post
    partial = publish(workdir, "retract", POST, "--yes")
    assert partial.returncode == 4, partial.stderr
    assert re.search(r"^error: x \S+: .*403", partial.stderr, re.M), partial.stderr
    assert post_counts(nets) == {"x": 1, "bluesky": 0, "mastodon": 0}
    nets.x.tweets[0].pop("author")
    retried = publish(workdir, "retract", POST, "--yes")
    assert retried.returncode == 0, retried.stderr
    assert post_counts(nets) == dict.fromkeys(NETWORKS, 0)
    assert len(nets.bluesky.deletes) == 1  # the retry only touched what was left


def test_an_unknown_network_is_exit_2(workdir: Path) -> None:
    result = run_publish("retract", POST.replace("composting-e2e", "city-composting"),
                         "--network", "myspace", "--yes", cwd=workdir)
    assert result.returncode == 2 and "--network" in result.stderr


DELETE = {"x": ("DELETE", "/2/tweets/{id}"),
          "bluesky": ("POST", "/xrpc/com.atproto.repo.deleteRecord"),
          "mastodon": ("DELETE", "/api/v1/statuses/{id}")}


@pytest.mark.parametrize("network", NETWORKS)
def test_a_retract_killed_mid_delete_resumes_without_a_second_delete(
    workdir: Path, nets: Networks, network: str
) -> None:
    configure(workdir, nets, (network,))
    assert publish(workdir, POST).returncode == 0
    report = status(POST, workdir, SOCIAL_SECRETS)
    (row,) = [s for s in report["sent"] if s["channel"] == network]
    method, path = DELETE[network]
    gate = install_gate(nets.server(network), path.format(id=row["provider_id"]), nth=1,
                        method=method)
    early = crash_mid_request(gate, "retract", POST, "--yes", cwd=workdir, env=SOCIAL_SECRETS)
    assert early is None, early
    assert post_counts(nets)[network] == 0  # the delete landed; its answer never arrived
    assert status(POST, workdir, SOCIAL_SECRETS)["retracted"][0]["state"] == "retracting"

    resumed = publish(workdir, "retract", POST, "--yes")
    assert resumed.returncode == 0, resumed.stderr
    assert "already gone" in resumed.stdout
    deletes = {"x": lambda: len(nets.x.deletes), "bluesky": lambda: len(nets.bluesky.deletes),
               "mastodon": lambda: sum(nets.mastodon.calls.values())}[network]()
    assert deletes == 1
    assert status(POST, workdir, SOCIAL_SECRETS)["retracted"][0]["state"] == "retracted"


def test_posts_in_the_outbox_are_retracted_by_removing_their_files(workdir: Path) -> None:
    post = "posts/city-composting.md"
    assert run_publish(post, cwd=workdir).returncode == 0
    social = workdir / "outbox" / "city-composting" / "social"
    assert (social / "linkedin-1.txt").is_file()
    result = run_publish("retract", post, "--network", "linkedin", "--yes", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert not (social / "linkedin-1.txt").exists() and (social / "x-1.txt").is_file()
    report = status(post, workdir, {})
    assert [r["item"] for r in report["retracted"]] == ["linkedin#1"]
    rerun = run_publish(post, cwd=workdir)
    assert rerun.returncode == 0 and not (social / "linkedin-1.txt").exists()


@pytest.mark.parametrize(("only", "question"), [
    ((), "Delete 5 posts?"),
    (("--network", "x"), "Delete 1 post?"),
])
def test_on_a_terminal_retract_asks_and_a_no_deletes_nothing(
    workdir: Path, only: tuple[str, ...], question: str
) -> None:
    import os
    import pty
    import subprocess
    import sys

    from tests.helpers.e2e import cli_env

    post = "posts/city-composting.md"
    assert run_publish(post, cwd=workdir).returncode == 0
    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "publisher", "retract", post, *only],
                               cwd=workdir, env=cli_env(), stdin=follower,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    os.close(follower)
    os.write(leader, b"n\n")
    out, err = process.communicate(timeout=60)
    os.close(leader)
    assert process.returncode == 0, err
    assert question in out and "Nothing was deleted" in err
    assert err.count("will delete ") == int(question.split()[1])
    assert (workdir / "outbox" / "city-composting" / "social" / "x-1.txt").is_file()
    assert status(post, workdir, {})["retracted"] == []
