"""Threads on X, Bluesky and Mastodon through the real `publish` CLI, against local fakes.

The fakes run in this process on 127.0.0.1 (so a test can hold a request and SIGKILL `publish`
while it is in flight); `publish` runs as a subprocess with the network secrets in its
environment. The card image is served by a local HTTP server too: nothing leaves the machine.
"""

from __future__ import annotations

import itertools
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from publisher.channels.http import RetryPolicy
from tests.fakes.hostile import HostileImageHost
from tests.fakes.sendgrid import SendGridFake
from tests.fakes.server import Faults, Reply
from tests.helpers import run_publish
from tests.helpers.e2e import (
    BLUESKY_HANDLE,
    EMAIL_KEYS,
    SOCIAL_SECRETS,
    TOOLS_POST,
    UNSUBSCRIBE_SECRET,
    AfterHook,
    crash_mid_request,
    emails,
    install_gate,
    pending_items,
    seed_subscribers,
    status,
    tallies,
    write_config,
)
from tests.helpers.social import NETWORKS, POST, Networks, card_png, configure, post_counts

THREAD = 5  # posts per network in the sample article's thread
CREATE = {"x": "/2/tweets", "bluesky": "/xrpc/com.atproto.repo.createRecord",
          "mastodon": "/api/v1/statuses"}


def publish(root: Path, *args: str) -> Any:
    """`publish POST --thread ARGS` with the network secrets."""
    return run_publish(POST, "--thread", *args, cwd=root, env=SOCIAL_SECRETS)


def assert_threaded(nets: Networks, network: str) -> None:
    """The network holds exactly one thread of THREAD posts, each replying to the one before."""
    if network == "x":
        tweets = nets.x.tweets
        assert len(tweets) == THREAD and len({t["text"] for t in tweets}) == THREAD
        assert [t["in_reply_to"] for t in tweets] == [None] + [t["id"] for t in tweets[:-1]]
    elif network == "mastodon":
        statuses = nets.mastodon.statuses
        assert len(statuses) == THREAD and len({s["text"] for s in statuses}) == THREAD
        assert [s["in_reply_to_id"] for s in statuses] == [None] + [
            s["id"] for s in statuses[:-1]]
        assert {s["language"] for s in statuses} == {"en"}
    else:
        posts = nets.bluesky.posts
        assert len(posts) == THREAD and len({p["record"]["text"] for p in posts}) == THREAD
        root = posts[0]
        assert "reply" not in root["record"]
        assert root["record"]["embed"]["external"]["thumb"]
        for parent, child in itertools.pairwise(posts):
            reply = child["record"]["reply"]
            assert reply["parent"] == {"uri": parent["uri"], "cid": parent["cid"]}
            assert reply["root"] == {"uri": root["uri"], "cid": root["cid"]}


def test_a_thread_on_each_network_then_a_rerun_posts_nothing(workdir: Path, nets: Networks
                                                              ) -> None:
    configure(workdir, nets)
    first = publish(workdir)
    assert first.returncode == 0, first.stderr
    for network in NETWORKS:
        assert_threaded(nets, network)
    report = status(POST, workdir, SOCIAL_SECRETS)
    for network in NETWORKS:
        assert tallies(report)[network] == {"sent": THREAD, "pending": 0, "failed": 0}
    urls = [s["url"] for s in report["sent"] if s["channel"] == "bluesky"]
    assert all(u.startswith(f"https://bsky.app/profile/{BLUESKY_HANDLE}/post/") for u in urls)

    second = publish(workdir)
    assert second.returncode == 0, second.stderr
    assert "Nothing new to send" in second.stdout
    assert post_counts(nets) == dict.fromkeys(NETWORKS, THREAD)


@pytest.mark.parametrize("network", NETWORKS)
def test_a_thread_killed_midway_resumes_replying_to_the_right_parent(
    workdir: Path, nets: Networks, network: str
) -> None:
    configure(workdir, nets, (network,))
    gate = install_gate(nets.server(network), CREATE[network], nth=3)
    early = crash_mid_request(gate, POST, "--thread", cwd=workdir, env=SOCIAL_SECRETS)
    assert early is None, early
    assert post_counts(nets)[network] == 3  # the third landed; its answer never arrived

    resumed = publish(workdir)
    if network == "x":  # no idempotency key: the maybe-posted third post is only reported
        assert resumed.returncode == 7, (resumed.stdout, resumed.stderr)
        assert "--retry-pending" in resumed.stderr
        report = status(POST, workdir, SOCIAL_SECRETS)
        assert pending_items(report, "x") == {"x#3"}
        assert "uncertain" in resumed.stdout and len(nets.x.tweets) == 3
        retried = publish(workdir, "--retry-pending")
        assert retried.returncode == 0, retried.stderr
    else:
        assert resumed.returncode == 0, resumed.stderr
    assert_threaded(nets, network)
    report = status(POST, workdir, SOCIAL_SECRETS)
    assert tallies(report)[network] == {"sent": THREAD, "pending": 0, "failed": 0}


def test_write_back_adds_only_syndication_and_the_post_stays_the_same_edition(
    workdir: Path, nets: Networks
) -> None:
    configure(workdir, nets, ("bluesky", "x"))
    path = workdir / POST
    before = path.read_text(encoding="utf-8")
    result = publish(workdir, "--write-back")
    assert result.returncode == 0, result.stderr
    after = path.read_text(encoding="utf-8")
    added = after.replace(before.split("\n---\n", 1)[1], "")
    assert after.endswith(before.split("\n---\n", 1)[1])  # the body is byte-for-byte the same
    assert added.startswith(before.split("\n---\n", 1)[0])  # front matter kept, key appended
    urls = re.findall(r"https://\S+", added.split("syndication:", 1)[1])
    report = status(POST, workdir, SOCIAL_SECRETS)
    assert set(urls) == {s["url"] for s in report["sent"] if s["channel"] in ("bluesky", "x")}

    again = publish(workdir)
    assert again.returncode == 0, (again.stdout, again.stderr)
    assert "--resend" not in again.stderr and "Nothing new to send" in again.stdout
    assert post_counts(nets) == {"x": THREAD, "bluesky": THREAD, "mastodon": 0}


def test_rejected_bluesky_password_fails_before_anything_is_posted(
    workdir: Path, nets: Networks
) -> None:
    configure(workdir, nets)
    env = {**SOCIAL_SECRETS, "BLUESKY_APP_PASSWORD": "revoked-app-password"}
    result = run_publish(POST, "--thread", cwd=workdir, env=env)
    assert result.returncode == 3, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "bluesky" in lines[0] and "app password" in lines[0]
    assert "revoked-app-password" not in result.stdout + result.stderr
    assert post_counts(nets) == dict.fromkeys(NETWORKS, 0)


def test_credentials_expiring_mid_thread_fail_clearly_then_resume(
    workdir: Path, nets: Networks
) -> None:
    configure(workdir, nets, ("bluesky",))
    fake = nets.bluesky

    def revoke_after_two(created: int) -> None:
        if created == 2:  # every token expires and the app password is revoked
            fake.skew = 100 * 86400.0
            fake.password = "revoked"

    nets.bluesky.http.handle = AfterHook(nets.bluesky.http.handle, CREATE["bluesky"],
                                         revoke_after_two)
    failed = publish(workdir)
    assert failed.returncode == 4, (failed.stdout, failed.stderr)
    assert "bluesky" in failed.stderr and "app password" in failed.stderr
    assert not re.search(r"bluesky.*\b\d+ new\b", failed.stdout)
    report = status(POST, workdir, SOCIAL_SECRETS)
    assert tallies(report)["bluesky"] == {"sent": 2, "pending": 0, "failed": 1}
    assert len(fake.posts) == 2

    fake.skew, fake.password = 0.0, SOCIAL_SECRETS["BLUESKY_APP_PASSWORD"]
    resumed = publish(workdir)
    assert resumed.returncode == 0, resumed.stderr
    assert_threaded(nets, "bluesky")


def test_a_429_storm_completes_every_thread_once(workdir: Path, nets: Networks) -> None:
    configure(workdir, nets)
    for network in NETWORKS:
        nets.server(network).faults = Faults(rate=1.0, kinds=("429",), reset_seconds=1,
                                             paths=(CREATE[network],), only_first=2)
    result = publish(workdir)
    assert result.returncode == 0, result.stderr
    for network in NETWORKS:
        assert nets.server(network).faults.injected["429"] == 2
        assert_threaded(nets, network)


def test_no_secret_reaches_output_files_or_the_ledger(workdir: Path, nets: Networks) -> None:
    sentinels = {**SOCIAL_SECRETS, **dict(EMAIL_KEYS.values()),
                 "PUBLISHER_UNSUBSCRIBE_SECRET": UNSUBSCRIBE_SECRET}
    wrong = "SG.sentinel-wrong-key-5e1f0b"
    outputs: list[str] = []

    def run(*args: str | Path, env: dict[str, str] | None = None, code: int = 0) -> None:
        result = run_publish(*args, cwd=workdir, env=env or sentinels)
        assert result.returncode == code, (args, result.stdout, result.stderr)
        outputs.extend((result.stdout, result.stderr))

    with SendGridFake(api_key=EMAIL_KEYS["sendgrid"][1]).running() as sendgrid:
        tables = {"sendgrid": {"base_url": sendgrid.url},
                  "x": {"api_base": nets.x.url},
                  "bluesky": {"handle": BLUESKY_HANDLE, "pds_url": nets.bluesky.url},
                  "mastodon": {"instance_url": nets.mastodon.url}}
        write_config(workdir, transport="sendgrid", networks=list(NETWORKS), channels=tables)
        seed_subscribers(workdir, emails(5), sentinels)
        run("check")
        run("check", env={**sentinels, "SENDGRID_API_KEY": wrong}, code=3)
        run(POST, "--thread", env={**sentinels, "BLUESKY_APP_PASSWORD": wrong}, code=3)
        run(POST, "--dry-run", "--json")
        run(POST, "--thread", "--dry-run")  # the plan table, after preflighting every channel
        run("lint", POST)
        run(POST, "--thread", "--write-back")
        run(POST, "--thread")
        run("status", POST)
        run("status", POST, "--json")
        run("subscribers", "list")
        run("subscribers", "export", "exported.csv")
        run("preview", POST, "--out", "outbox/preview")
        run("digest", "posts", "--last", "2")
        run("measure", "--network", "x", "hello https://example.com")
        run("subscribers", "add", "late@example.org", "--name", "Late")
        run("subscribers", "remove", "late@example.org")
        run("subscribers", "import", "exported.csv")
        run(POST, "--thread", "--debug")  # nothing new to send: no traceback, no secret
        write_config(workdir, networks=list(NETWORKS), channels=tables)  # the outbox's .eml
        run(POST, "--thread")
    assert len(sendgrid.deliveries.messages) == 5 and list((workdir / "outbox").rglob("*.eml"))
    files = [p for p in workdir.rglob("*") if p.is_file()]
    assert any(p.suffix == ".sqlite3" for p in files)
    for name, secret in [*sentinels.items(), ("wrong key", wrong)]:
        for text in outputs:
            assert secret not in text, name
        for path in files:
            assert secret.encode() not in path.read_bytes(), (name, path)


def test_check_says_what_each_channel_can_do_from_its_facts(workdir: Path, nets: Networks
                                                              ) -> None:
    write_config(workdir, networks=list(NETWORKS), channels={
        "x": {"api_base": nets.x.url},
        "bluesky": {"handle": BLUESKY_HANDLE, "pds_url": nets.bluesky.url},
        "mastodon": {"instance_url": nets.mastodon.url}})
    result = run_publish("check", cwd=workdir, env=SOCIAL_SECRETS)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert ("ok mastodon (limit=1000, url_length=23; can edit, delete, attach images, schedule)"
            in lines)
    assert "ok bluesky (limit=300, max_bytes=3000; can delete, attach images)" in lines
    assert "ok x (limit=280; can delete, attach images)" in lines


def test_an_unreadable_card_image_fails_that_network_only_and_leaves_nothing_uncertain(
    workdir: Path, nets: Networks
) -> None:
    write_config(workdir, networks=["bluesky", "mastodon"], channels={
        "bluesky": {"handle": BLUESKY_HANDLE, "pds_url": nets.bluesky.url},
        "mastodon": {"instance_url": nets.mastodon.url, "attach_image": False}})
    post = "posts/tools-new-photo.md"
    source = (workdir / TOOLS_POST).read_text(encoding="utf-8")
    (workdir / post).write_text(source.replace("images/tool-library.jpg", "images/new.jpg"),
                                encoding="utf-8")
    result = run_publish(post, cwd=workdir, env=SOCIAL_SECRETS)  # a thread; missing image
    assert result.returncode == 4, (result.stdout, result.stderr)
    assert "bluesky: cannot read image" in result.stderr and "Traceback" not in result.stderr
    report = status(post, workdir, SOCIAL_SECRETS)
    assert report["pending"] == []  # nothing was sent, so nothing is uncertain
    assert tallies(report)["bluesky"] == {"sent": 0, "pending": 0, "failed": 1}
    assert len(nets.bluesky.posts) == 0 and len(nets.mastodon.statuses) == THREAD  # went on
    assert all(s["media_ids"] == [] for s in nets.mastodon.statuses)  # attach_image = false

    (workdir / "images").mkdir()  # next to the working directory: not where the post looks
    (workdir / "images" / "new.jpg").write_bytes(b"not an image")
    (workdir / "posts" / "images" / "new.jpg").write_bytes(card_png())  # next to the post
    fixed = run_publish(post, cwd=workdir, env=SOCIAL_SECRETS)
    assert fixed.returncode == 0, fixed.stderr
    assert_threaded(nets, "bluesky")
    assert len(nets.mastodon.statuses) == THREAD


def test_the_hero_image_goes_to_mastodon_with_alt_text_and_to_x_only_when_asked(
    workdir: Path, nets: Networks
) -> None:
    configure(workdir, nets)
    default = run_publish(TOOLS_POST, cwd=workdir, env=SOCIAL_SECRETS)
    assert default.returncode == 0, default.stderr
    alt = "Shelves of drills, saws and garden tools with library barcode labels"
    first = nets.mastodon.statuses[0]
    assert [nets.mastodon.media[m]["description"] for m in first["media_ids"]] == [alt]
    assert all(s["media_ids"] == [] for s in nets.mastodon.statuses[1:])
    assert nets.bluesky.posts[0]["record"]["embed"]["external"]["thumb"]
    assert all(t["media_ids"] == [] for t in nets.x.tweets)  # X draws its own link card

    write_config(workdir, networks=["x"], channels={
        "x": {"api_base": nets.x.url, "attach_image": True}})
    shutil.rmtree(workdir / ".publisher")  # a fresh ledger and account: post it again
    nets.x.tweets.clear()
    asked = run_publish(TOOLS_POST, cwd=workdir, env=SOCIAL_SECRETS)
    assert asked.returncode == 0, asked.stderr
    media = [nets.x.media[m] for m in nets.x.tweets[0]["media_ids"]]
    assert len(media) == 1 and media[0]["alt_text"] == alt and media[0]["state"] == "succeeded"
    assert all(t["media_ids"] == [] for t in nets.x.tweets[1:])


def test_an_image_that_cannot_be_fetched_fails_the_post_and_never_makes_it_uncertain(
    workdir: Path, nets: Networks
) -> None:
    write_config(workdir, networks=["x"], channels={
        "x": {"api_base": nets.x.url, "attach_image": True}})
    png = card_png()
    nets.images.handle = lambda request: Reply(404, b"gone", {"Content-Type": "text/plain"})
    failed = publish(workdir)
    assert failed.returncode == 4, (failed.stdout, failed.stderr)
    assert re.search(r"^error: x: HTTP 404 for image ", failed.stderr, re.M), failed.stderr
    report = status(POST, workdir, SOCIAL_SECRETS)
    assert report["pending"] == [] and tallies(report)["x"] == {"sent": 0, "pending": 0,
                                                                "failed": 1}
    assert nets.x.tweets == []

    nets.images.handle = lambda request: Reply(200, png, {"Content-Type": "image/png"})
    fixed = publish(workdir)  # a failed post is simply sent on the next run
    assert fixed.returncode == 0, fixed.stderr
    assert_threaded(nets, "x")
    assert len(nets.x.tweets[0]["media_ids"]) == 1


# --- hostile image hosts (issue: files and URLs named by a post) ------------------------------


def _point_image_at(workdir: Path, url: str) -> None:
    """Make the test post's `image:` the given URL."""
    path = workdir / POST
    text = re.sub(r"(?m)^image: .*$", f"image: {url}", path.read_text(encoding="utf-8"), count=1)
    path.write_text(text, encoding="utf-8")


def _every_network_attaching(workdir: Path, nets: Networks) -> None:
    """A config posting to every network at its fake, each attaching the post's image."""
    write_config(workdir, networks=list(NETWORKS), channels={
        "x": {"api_base": nets.x.url, "attach_image": True},
        "bluesky": {"handle": BLUESKY_HANDLE, "pds_url": nets.bluesky.url},
        "mastodon": {"instance_url": nets.mastodon.url}})


def test_the_image_is_downloaded_once_per_run_for_every_network(
    workdir: Path, nets: Networks
) -> None:
    _every_network_attaching(workdir, nets)
    result = publish(workdir)
    assert result.returncode == 0, result.stderr
    assert nets.x.tweets[0]["media_ids"] and nets.mastodon.statuses[0]["media_ids"]
    assert nets.bluesky.posts[0]["record"]["embed"]["external"]["thumb"]
    assert nets.images.count("GET", "/card.png") == 1


def test_a_temporary_image_failure_is_retried_once_per_run_and_reported_per_network(
    workdir: Path, nets: Networks
) -> None:
    _every_network_attaching(workdir, nets)
    png = card_png()
    nets.images.handle = lambda request: Reply(503, b"busy", {"Retry-After": "0"})
    failed = publish(workdir)
    assert failed.returncode == 4, (failed.stdout, failed.stderr)
    assert nets.images.count("GET", "/card.png") == RetryPolicy().attempts  # not per network
    for network in NETWORKS:
        assert re.search(rf"^error: {network}: HTTP 503 for image ", failed.stderr, re.M), (
            failed.stderr)
    report = status(POST, workdir, SOCIAL_SECRETS)
    assert report["pending"] == []
    assert {(f["channel"], f["kind"], f["next"]) for f in report["failed"]} == {
        (network, "transient", "retry") for network in NETWORKS}
    assert post_counts(nets) == dict.fromkeys(NETWORKS, 0)

    nets.images.handle = lambda request: Reply(200, png, {"Content-Type": "image/png"})
    fixed = publish(workdir)  # the next run fetches afresh, once
    assert fixed.returncode == 0, fixed.stderr
    assert nets.images.count("GET", "/card.png") == RetryPolicy().attempts + 1
    assert nets.x.tweets[0]["media_ids"] and nets.mastodon.statuses[0]["media_ids"]
    assert nets.bluesky.posts[0]["record"]["embed"]["external"]["thumb"]


@pytest.mark.parametrize("path", ["/loop", "/redirect?to=file:///etc/passwd"])
def test_a_bad_redirect_fails_those_networks_and_the_others_go_on(
    workdir: Path, nets: Networks, path: str
) -> None:
    write_config(workdir, networks=["bluesky", "mastodon", "threads"], channels={
        "bluesky": {"handle": BLUESKY_HANDLE, "pds_url": nets.bluesky.url},
        "mastodon": {"instance_url": nets.mastodon.url}})
    with HostileImageHost() as host:
        _point_image_at(workdir, f"{host.url}{path}")
        result = publish(workdir)
    assert result.returncode == 4, (result.stdout, result.stderr)
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    why = "redirects more than 5 times" if path == "/loop" else "leads to a file: URL"
    assert f"bluesky: {why}" in result.stderr.replace("image URL ", "")
    assert nets.bluesky.posts == [] and nets.mastodon.statuses == []
    counts = tallies(status(POST, workdir, SOCIAL_SECRETS))
    assert counts["bluesky"]["failed"] == 1 and counts["mastodon"]["failed"] == 1
    assert counts["outbox"] == {"sent": 7, "pending": 0, "failed": 0}  # digest, email, 5 Threads
    assert list((workdir / "outbox").glob("*/social/threads-*.txt"))
    assert host.hits[path.split("?")[0]] == (6 if path == "/loop" else 1)  # once per run


def test_a_dripping_image_host_does_not_hold_the_run(workdir: Path, nets: Networks) -> None:
    configure(workdir, nets, ("bluesky", "mastodon"))
    config = workdir / "publisher.toml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        "[images]", "[images]\ntimeout = 2"), encoding="utf-8")
    with HostileImageHost(drip_seconds=5) as host:  # one byte every 5 s
        _point_image_at(workdir, f"{host.url}/drip")
        started = time.monotonic()
        result = publish(workdir)
        took = time.monotonic() - started
    assert result.returncode == 4, result.stderr
    assert "took longer than 2 s" in result.stderr and "Traceback" not in result.stderr
    assert took < 20  # two networks, one 2 s deadline: the failure is remembered, not repeated
    assert host.hits["/drip"] == 1


def test_an_image_on_a_private_address_is_refused_by_default(
    workdir: Path, nets: Networks
) -> None:
    write_config(workdir, networks=["mastodon"], images={},
                 channels={"mastodon": {"instance_url": nets.mastodon.url}})
    result = publish(workdir)
    assert result.returncode == 4, result.stderr
    assert "mastodon: image URL" in result.stderr and "non-public address" in result.stderr
    assert nets.images.count("GET", "/card.png") == 0
