"""The GitHub Actions example, run locally: its `run:` steps in bash, in a git repo, against fakes.

The workflow file is parsed as YAML; each job's `run:` steps are executed in order with bash
(`bash -e`, GitHub's default shell), with the `${{ … }}` expressions of the workflow, job and
step `env:` filled in from a context this test gives (the push range, secrets, variables). The
`uses:` steps (checkout, setup-python, cache, upload-artifact) are GitHub's: here the repo is
already checked out, the ledger folder simply stays between runs (what the cache does), and the
editions are read from editions/. The install step is not run: publisher is installed here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes.feed import FakeFeed
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.sendgrid import SendGridFake
from tests.helpers import REPO, run_publish
from tests.helpers.e2e import (
    EMAIL_KEYS,
    SOCIAL_SECRETS,
    email_env,
    emails,
    seed_subscribers,
    write_config,
)

WORKFLOW = REPO / "examples" / "github-actions" / "publish.yml"
EXPRESSION = re.compile(r"\$\{\{\s*([\w.]+)\s*\}\}")
READERS = emails(3, domain="ci.example")
SECRETS = {**email_env("sendgrid"), **SOCIAL_SECRETS}
FIRST, ADDED, STRICT_FAILS = ("chuo-line-extension.md", "library-tool-lending.md",
                              "city-composting.md")  # the last one's subject warns


def workflow() -> dict[str, Any]:
    """The workflow file as YAML (PyYAML reads the `on:` key as True)."""
    data: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    return data


def test_the_workflow_runs_on_a_push_to_main_for_posts_and_on_a_cron() -> None:
    data = workflow()
    triggers = data[True]
    assert triggers["push"] == {"branches": ["main"], "paths": ["posts/**"]}
    assert triggers["schedule"][0]["cron"]
    assert data["concurrency"]["cancel-in-progress"] is False
    for name, value in data["env"].items():  # every secret from the repository's secrets
        assert value == "1" or value == f"${{{{ secrets.{name} }}}}", name
    scripts = [step.get("run", "") for job in data["jobs"].values() for step in job["steps"]]
    assert any("--strict --json" in s for s in scripts)
    assert any(s.strip().endswith("publish due") for s in scripts)
    uploads = [s for job in data["jobs"].values() for s in job["steps"]
               if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert uploads and all(s["if"] == "always()" and s["with"]["path"] == "editions/"
                           for s in uploads)


@dataclass
class Repo:
    """A content repository with publisher.toml pointing at the fakes, and its context."""

    root: Path
    sendgrid: SendGridFake
    mastodon: FakeMastodon
    feed: FakeFeed

    def git(self, *args: str) -> str:
        result = subprocess.run(["git", *args], cwd=self.root, capture_output=True, text=True,
                                check=True)
        return result.stdout.strip()

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")

    def add_post(self, name: str) -> None:
        shutil.copy(REPO / "posts" / name, self.root / "posts" / name)

    def run_job(self, job: str, context: Mapping[str, str], *, skip: tuple[str, ...] = ("install",),
                ) -> list[subprocess.CompletedProcess[str]]:
        """Run the job's `run:` steps in order, stopping at the first that fails (as Actions)."""
        data = workflow()
        spec = data["jobs"][job]
        results = []
        for step in spec["steps"]:
            if "run" not in step or step.get("id") in skip:
                continue
            env = {**os.environ, **SECRETS}
            for scope in (data.get("env", {}), spec.get("env", {}), step.get("env", {})):
                env.update({key: _fill(str(value), context) for key, value in scope.items()})
            env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
            script = self.root / ".step.sh"
            script.write_text(step["run"], encoding="utf-8")
            result = subprocess.run(["bash", "--noprofile", "--norc", "-e", str(script)],
                                    cwd=self.root, env=env, capture_output=True, text=True,
                                    timeout=300, check=False)
            results.append(result)
            if result.returncode != 0:
                break
        return results


def _fill(value: str, context: Mapping[str, str]) -> str:
    """`${{ secrets.X }}`, `${{ github.sha }}`, … from the context (secrets from SECRETS)."""
    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("secrets."):
            return SECRETS.get(name.removeprefix("secrets."), "")
        return context.get(name, "")
    return EXPRESSION.sub(lookup, value)


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repo]:
    """A git repo whose first commit holds one post, with subscribers and live fakes."""
    root = tmp_path / "content"
    (root / "posts").mkdir(parents=True)
    shutil.copytree(REPO / "posts" / "images", root / "posts" / "images")
    mastodon = FakeMastodon(token=SOCIAL_SECRETS["MASTODON_ACCESS_TOKEN"], processing_polls=0)
    feed = FakeFeed()
    with SendGridFake(api_key=EMAIL_KEYS["sendgrid"][1]).running() as sendgrid:
        config = write_config(root, transport="sendgrid", networks=["mastodon"], channels={
            "sendgrid": {"base_url": sendgrid.url}, "mastodon": {"instance_url": mastodon.url}})
        config.write_text(config.read_text(encoding="utf-8")
                          + '\n[feed]\nallow_private = ["127.0.0.1"]\n', encoding="utf-8")
        (root / ".gitignore").write_text(".publisher/\noutbox/\neditions/\nchanged.txt\n.step.sh\n",
                                         encoding="utf-8")
        seed_subscribers(root, READERS, SECRETS)
        made = Repo(root, sendgrid, mastodon, feed)
        made.git("init", "-q", "-b", "main")
        made.git("config", "user.email", "ci@example.com")
        made.git("config", "user.name", "CI")
        made.add_post(FIRST)
        made.commit("first post")
        try:
            yield made
        finally:
            mastodon.close()
            feed.close()


def mails(repo: Repo) -> int:
    return len(repo.sendgrid.deliveries.messages)


def test_a_merged_post_is_published_once_and_a_second_run_sends_nothing(repo: Repo) -> None:
    before = repo.git("rev-parse", "HEAD")
    repo.add_post(ADDED)
    after = repo.commit("add a post")
    push = {"github.event.before": before, "github.sha": after}

    first = repo.run_job("posts", push)
    assert [r.returncode for r in first] == [0], first[-1].stdout + first[-1].stderr
    assert "posts to publish: 1" in first[0].stdout
    assert sorted(m["email"] for m in repo.sendgrid.deliveries.messages) == sorted(READERS)
    posted = len(repo.mastodon.statuses)
    assert posted >= 1 and any("posts/library-tool-lending" in s["text"]
                               for s in repo.mastodon.statuses)
    assert not (repo.root / "outbox" / Path(FIRST).stem).exists()  # not in the push range
    edition = json.loads((repo.root / "editions" / ADDED.replace(".md", ".json")).read_text(
        encoding="utf-8"))
    assert edition["article"]["slug"] == Path(ADDED).stem

    again = repo.run_job("posts", push)
    assert [r.returncode for r in again] == [0], again[-1].stderr
    assert mails(repo) == len(READERS) and len(repo.mastodon.statuses) == posted
    assert "Nothing new to send" in again[0].stderr  # --json: the summary is on stderr


def test_an_edited_post_that_was_sent_is_corrected_not_mailed_again(repo: Repo) -> None:
    base = repo.git("rev-parse", "HEAD")
    repo.add_post(ADDED)
    sent = repo.commit("add a post")
    assert repo.run_job("posts", {"github.event.before": base, "github.sha": sent})[0].returncode \
        == 0
    posted = len(repo.mastodon.statuses)
    post = repo.root / "posts" / ADDED
    text = post.read_text(encoding="utf-8")
    body_start = text.index("\n---\n") + 5
    post.write_text(text[:body_start] + text[body_start:].replace(".", ". Updated.", 1),
                    encoding="utf-8")
    edited = repo.commit("fix a sentence")
    result = repo.run_job("posts", {"github.event.before": sent, "github.sha": edited})
    assert [r.returncode for r in result] == [0], result[-1].stdout + result[-1].stderr
    assert "has changed: publish --update" in result[0].stdout
    assert mails(repo) == len(READERS) and len(repo.mastodon.statuses) == posted


def test_a_post_with_a_warning_fails_the_job_and_sends_nothing(repo: Repo) -> None:
    before = repo.git("rev-parse", "HEAD")
    repo.add_post(STRICT_FAILS)
    after = repo.commit("a post whose subject is too wide")
    result = repo.run_job("posts", {"github.event.before": before, "github.sha": after})
    assert result[-1].returncode == 2
    assert f"::error file=posts/{STRICT_FAILS}::publish exited 2" in result[-1].stdout
    assert mails(repo) == 0 and repo.mastodon.statuses == []


def test_the_first_push_of_a_branch_publishes_the_posts_of_its_commit(repo: Repo) -> None:
    repo.add_post(ADDED)
    result = repo.run_job("posts", {"github.event.before": "0" * 40,
                                    "github.sha": repo.commit("add a post")})
    assert [r.returncode for r in result] == [0], result[-1].stderr
    assert "posts to publish: 1" in result[0].stdout
    assert sorted(m["email"] for m in repo.sendgrid.deliveries.messages) == sorted(READERS)


def test_the_cron_job_publishes_new_feed_items_once(repo: Repo) -> None:
    context = {"vars.FEED_URL": f"{repo.feed.url}/feed.xml", "inputs.feed_limit": "--latest 2"}
    first = repo.run_job("due", context, skip=("install", "due"))
    assert [r.returncode for r in first] == [0], first[-1].stderr
    assert [e["article"]["slug"] for e in json.loads(
        (repo.root / "editions" / "feed.json").read_text(encoding="utf-8"))] == [
        "story-4", "story-5"]
    assert len(repo.mastodon.statuses) == 2
    again = repo.run_job("due", {**context, "inputs.feed_limit": ""}, skip=("install", "due"))
    assert [r.returncode for r in again] == [0], again[-1].stderr
    assert len(repo.mastodon.statuses) == 2 and mails(repo) == 2 * len(READERS)


def test_the_cron_job_sends_what_is_due(repo: Repo) -> None:
    commands = run_publish("--help", cwd=repo.root).stdout
    if not re.search(r"^\s+due\s", commands, re.MULTILINE):
        pytest.skip("`publish due` (scheduling, issue 16 item 3) is not in this build yet")
    result = repo.run_job("due", {}, skip=("install", "feed"))
    assert [r.returncode for r in result] == [0], result[-1].stderr
    assert mails(repo) == 0 and repo.mastodon.statuses == []  # nothing was scheduled


def test_a_rerun_saves_its_own_ledger_copy_and_artifact() -> None:
    """A re-run attempt keeps the run id; a key without the attempt exists already, so
    actions/cache/save skips it and the re-run's deliveries would be forgotten (and resent)."""
    steps = [s for job in workflow()["jobs"].values() for s in job["steps"]]
    saves = [s for s in steps if str(s.get("uses", "")).startswith("actions/cache/save")]
    uploads = [s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert saves and uploads
    for step in saves:
        assert "github.run_attempt" in step["with"]["key"], step
    for step in uploads:
        assert "github.run_attempt" in step["with"]["name"], step
