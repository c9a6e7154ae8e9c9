"""`publish POST --update` and thread reshaping through the real CLI against the fakes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers import run_publish
from tests.helpers.e2e import (
    SOCIAL_SECRETS,
    THREAD_LENGTH,
    crash_mid_request,
    install_gate,
    status,
    write_thread_articles,
)
from tests.helpers.social import NETWORKS, POST, Networks, configure, post_counts

FIX = ("Riverton adds a weekly composting cart", "Riverton adds a weekly green cart")


def publish(root: Path, *args: str) -> Any:
    """`publish POST ARGS` with the network secrets."""
    return run_publish(POST, *args, cwd=root, env=SOCIAL_SECRETS)


def correct(root: Path) -> None:
    """The editor fixes a word in the text every social post is made from."""
    path = root / POST
    text = path.read_text(encoding="utf-8")
    assert FIX[0] in text
    path.write_text(text.replace(*FIX), encoding="utf-8")


def test_update_edits_mastodon_once_names_x_and_bluesky_and_then_nothing_is_new(
    workdir: Path, nets: Networks
) -> None:
    configure(workdir, nets)
    assert publish(workdir).returncode == 0
    (status_before,) = nets.mastodon.statuses
    media = list(status_before["media_ids"])
    assert media  # the hero image went with it
    old_x, old_bluesky = nets.x.texts(), nets.bluesky.texts()
    correct(workdir)
    assert publish(workdir).returncode == 5  # changed since it was sent

    updated = publish(workdir, "--update")
    assert updated.returncode == 0, updated.stderr
    (edited,) = nets.mastodon.statuses
    assert "green cart" in edited["text"] and edited["edits"] == 1
    assert edited["media_ids"] == media and edited["language"] == "en"  # re-sent, not dropped
    assert nets.x.texts() == old_x and nets.bluesky.texts() == old_bluesky
    assert "bluesky, x cannot edit" in updated.stderr
    edition = (workdir / "outbox" / "composting-e2e" / "edition.json").read_text("utf-8")
    assert "green cart" in edition  # the outbox follows the corrected article

    plain = publish(workdir)
    assert plain.returncode == 0, plain.stderr
    assert "Nothing new to send" in plain.stdout
    assert post_counts(nets) == dict.fromkeys(NETWORKS, 1)
    again = publish(workdir, "--update")
    assert again.returncode == 0 and "Nothing to update" in again.stdout
    assert sum(nets.mastodon.calls.values()) == 1


def test_an_update_that_changes_a_threads_length_is_refused(
    workdir: Path, nets: Networks
) -> None:
    configure(workdir, nets, ("mastodon",))
    (ferry,) = write_thread_articles(workdir, [7])
    sent = run_publish(ferry, "--thread", cwd=workdir, env=SOCIAL_SECRETS)
    assert sent.returncode == 0, sent.stderr
    assert len(nets.mastodon.statuses) == THREAD_LENGTH
    path = workdir / ferry
    text = path.read_text(encoding="utf-8")
    path.write_text(text.split("## Frequently asked questions")[0], encoding="utf-8")
    refused = run_publish(ferry, "--update", cwd=workdir, env=SOCIAL_SECRETS)
    assert refused.returncode == 2, refused.stderr
    assert "retract" in refused.stderr and "--resend" in refused.stderr
    assert (f"mastodon: the correction makes 3 posts where {THREAD_LENGTH} posts were sent"
            in refused.stderr)
    assert len(nets.mastodon.statuses) == THREAD_LENGTH and not nets.mastodon.calls


def test_an_update_killed_mid_edit_resumes_without_a_second_edit(
    workdir: Path, nets: Networks
) -> None:
    configure(workdir, nets, ("mastodon",))
    assert publish(workdir).returncode == 0
    (sent,) = nets.mastodon.statuses
    correct(workdir)
    gate = install_gate(nets.mastodon.http, f"/api/v1/statuses/{sent['id']}", nth=1,
                        method="PUT")
    early = crash_mid_request(gate, POST, "--update", cwd=workdir, env=SOCIAL_SECRETS)
    assert early is None, early
    resumed = publish(workdir, "--update")
    assert resumed.returncode == 0, resumed.stderr
    assert nets.mastodon.calls[f"PUT {sent['id']}"] == 1
    assert nets.mastodon.statuses[0]["edits"] == 1
    assert publish(workdir).returncode == 0


def test_a_thread_is_never_hung_under_a_single_post(workdir: Path, nets: Networks) -> None:
    configure(workdir, nets)
    assert publish(workdir).returncode == 0
    threaded = publish(workdir, "--thread")
    assert threaded.returncode == 5, threaded.stderr
    assert "sent as a single post; retract it, then `--resend --thread`" in threaded.stderr
    assert post_counts(nets) == dict.fromkeys(NETWORKS, 1)  # no 2/5 under a post without 1/5
    first_keys = {s["idempotency_key"] for s in nets.mastodon.statuses}
    first_rkeys = {p["rkey"] for p in nets.bluesky.posts}

    assert run_publish("retract", POST, "--yes", cwd=workdir, env=SOCIAL_SECRETS).returncode == 0
    fresh = publish(workdir, "--resend", "--thread")
    assert fresh.returncode == 0, fresh.stderr
    counts = post_counts(nets)
    assert min(counts.values()) > 1  # a whole thread, 1/n first
    assert nets.mastodon.statuses[0]["in_reply_to_id"] is None
    assert not {s["idempotency_key"] for s in nets.mastodon.statuses} & first_keys
    assert not {p["rkey"] for p in nets.bluesky.posts} & first_rkeys
    live = {s["provider_id"] for s in status(POST, workdir, SOCIAL_SECRETS)["sent"]}
    assert {s["id"] for s in nets.mastodon.statuses} <= live


def test_update_rewrites_the_outbox_posts_and_faq_files(workdir: Path) -> None:
    post = "posts/city-composting.md"
    assert run_publish(post, cwd=workdir).returncode == 0
    path = workdir / post
    path.write_text(path.read_text(encoding="utf-8").replace(*FIX), encoding="utf-8")
    updated = run_publish(post, "--update", cwd=workdir)
    assert updated.returncode == 0, updated.stderr
    folder = workdir / "outbox" / "city-composting"
    assert "green cart" in (folder / "social" / "linkedin-1.txt").read_text(encoding="utf-8")
    assert "threads: 1 edited" in updated.stdout
    assert "cannot edit" not in updated.stderr  # nothing live: every copy was corrected
    plain = run_publish(post, cwd=workdir)
    assert plain.returncode == 0 and "Nothing new to send" in plain.stdout


@pytest.mark.parametrize(("made", "sent", "said"), [
    (1, 3, "the correction makes 1 post where 3 posts were sent"),
    (2, 1, "the correction makes 2 posts where 1 post was sent"),
])
def test_a_reshaped_correction_counts_its_posts_in_words(made: int, sent: int, said: str) -> None:
    from publisher.delivery.corrections import refuse_reshaped
    from publisher.errors import InputError
    from publisher.model import SocialPost

    posts = tuple(SocialPost("x", f"part {n}", 6, 280, position=n, of=made)
                  for n in range(1, made + 1))
    with pytest.raises(InputError) as refused:
        refuse_reshaped({"x": posts}, {"x": sent}, Path("posts/a.md"))
    assert said in refused.value.one_line()
