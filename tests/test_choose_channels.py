"""--only and --skip through the real CLI: what a run leaves out is remembered and sent later."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import run_publish, table_rows
from tests.helpers.e2e import EN_POST, status


def _items(root: Path) -> set[str]:
    """Every item the ledger records as sent for the sample post."""
    return {row["item"] for row in status(EN_POST, root, {})["sent"]}


def test_only_delivers_those_channels_and_a_later_run_sends_the_rest_once(workdir: Path) -> None:
    first = run_publish(EN_POST, "--only", "newsletter,x", cwd=workdir)
    assert first.returncode == 0, first.stderr
    folder = workdir / "outbox" / "city-composting"
    assert (folder / "newsletter.eml").is_file() and (folder / "social" / "x-1.txt").is_file()
    assert not (folder / "social" / "bluesky-1.txt").exists()
    assert not (folder / "faq.md").exists()  # `faq` names the FAQ digest files
    report = status(EN_POST, workdir, {})
    assert set(report["skipped"]) == {"bluesky", "mastodon", "threads", "linkedin", "faq"}
    assert "x#1" in _items(workdir) and "bluesky#1" not in _items(workdir)
    table = run_publish("status", EN_POST, cwd=workdir)
    assert table.returncode == 0
    linkedin = next(line for line in table.stdout.splitlines() if "linkedin" in line)
    assert "skipped" in linkedin

    rest = run_publish(EN_POST, cwd=workdir)
    assert rest.returncode == 0, rest.stderr
    rows = table_rows(rest.stdout)
    assert rows["newsletter"] == "1 already sent" and rows["x"] == "1 already sent"
    assert rows["bluesky"] == "1 new" and rows["faq digest"] == "1 new"
    assert (folder / "social" / "bluesky-1.txt").is_file() and (folder / "faq.md").is_file()
    assert status(EN_POST, workdir, {})["skipped"] == []

    again = run_publish(EN_POST, cwd=workdir)
    assert again.returncode == 0 and "Nothing new to send: every output" in again.stdout


def test_skip_leaves_one_network_out_and_says_so(workdir: Path) -> None:
    result = run_publish(EN_POST, "--skip", "linkedin", cwd=workdir)
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if "linkedin" in line)
    assert "skipped" in line
    assert status(EN_POST, workdir, {})["skipped"] == ["linkedin"]
    assert "linkedin#1" not in _items(workdir) and "threads#1" in _items(workdir)
    again = run_publish(EN_POST, "--skip", "linkedin", cwd=workdir)
    assert again.returncode == 0
    assert "Nothing new to send; left out this time: linkedin." in again.stdout


def test_an_unknown_channel_name_is_one_line_and_exit_2(workdir: Path) -> None:
    result = run_publish(EN_POST, "--only", "newsletter,facebook", cwd=workdir)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--only" in lines[0] and "facebook" in lines[0]
    assert "linkedin" in lines[0]  # names the valid list
    assert not (workdir / "outbox").exists() and not (workdir / ".publisher").exists()


def test_the_dry_run_plan_marks_what_is_left_out(workdir: Path) -> None:
    result = run_publish(EN_POST, "--dry-run", "--skip", "newsletter,mastodon", cwd=workdir)
    assert result.returncode == 0, result.stderr
    rows = table_rows(result.stdout)
    assert rows["newsletter"] == "skipped" and rows["mastodon"] == "skipped"
    assert rows["x"] == "1"
