"""An editor's mistakes, as the real `publish` CLI meets them against the local fakes.

Each one must be one line naming the file, the field and the fix, with the documented exit
code, nothing sent, and no call to a real provider host (a typo'd base URL key used to fall
back to the public API silently).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.bluesky import FakeBluesky
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.x import FakeX
from tests.helpers import run_publish
from tests.helpers.e2e import BLUESKY_HANDLE, SOCIAL_SECRETS, write_config


@pytest.fixture
def fakes() -> Iterator[dict[str, FakeX | FakeBluesky | FakeMastodon]]:
    """The three social fakes, running on 127.0.0.1."""
    running: dict[str, FakeX | FakeBluesky | FakeMastodon] = {
        "x": FakeX(consumer=(SOCIAL_SECRETS["X_API_KEY"], SOCIAL_SECRETS["X_API_SECRET"]),
                   token=(SOCIAL_SECRETS["X_ACCESS_TOKEN"],
                          SOCIAL_SECRETS["X_ACCESS_TOKEN_SECRET"])),
        "bluesky": FakeBluesky(handle=BLUESKY_HANDLE,
                               password=SOCIAL_SECRETS["BLUESKY_APP_PASSWORD"]),
        "mastodon": FakeMastodon(token=SOCIAL_SECRETS["MASTODON_ACCESS_TOKEN"]),
    }
    yield running
    for fake in running.values():
        fake.close()


def tables(fakes: dict[str, FakeX | FakeBluesky | FakeMastodon]) -> dict[str, dict[str, str]]:
    """Correct [channels.*] tables pointing at the fakes."""
    return {"x": {"api_base": fakes["x"].url},
            "bluesky": {"handle": BLUESKY_HANDLE, "pds_url": fakes["bluesky"].url},
            "mastodon": {"instance_url": fakes["mastodon"].url}}


@pytest.mark.parametrize(("network", "good", "typo"), [
    ("x", "api_base", "api_bsae"),
    ("bluesky", "pds_url", "pds_ur"),
    ("mastodon", "instance_url", "instanse_url"),
])
def test_a_typo_in_a_social_channel_table_is_refused_by_name(
    workdir: Path, fakes: dict[str, FakeX | FakeBluesky | FakeMastodon], network: str,
    good: str, typo: str,
) -> None:
    channels = tables(fakes)
    channels[network][typo] = channels[network].pop(good)
    write_config(workdir, networks=[network], channels={network: channels[network]})
    result = run_publish("check", cwd=workdir, env=SOCIAL_SECRETS)
    assert result.returncode == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert f"[channels.{network}]" in lines[0] and f"unknown key {typo!r}" in lines[0]
    assert good in lines[0]  # the fix names the key meant


def test_a_correct_social_channel_table_still_passes(
    workdir: Path, fakes: dict[str, FakeX | FakeBluesky | FakeMastodon],
) -> None:
    channels = tables(fakes)
    channels["x"]["attach_image"] = "true"
    channels["mastodon"]["attach_image"] = "false"
    write_config(workdir, networks=["x", "bluesky", "mastodon"], channels=channels)
    text = (workdir / "publisher.toml").read_text(encoding="utf-8")
    (workdir / "publisher.toml").write_text(
        text.replace('attach_image = "true"', "attach_image = true")
        .replace('attach_image = "false"', "attach_image = false"), encoding="utf-8")
    result = run_publish("check", cwd=workdir, env=SOCIAL_SECRETS)
    assert result.returncode == 0, result.stderr
    assert [line.split()[1] for line in result.stdout.splitlines()[:3]] == [
        "bluesky", "mastodon", "x"]


def test_check_against_an_unreachable_server_is_exit_3_naming_the_table(
    workdir: Path, fakes: dict[str, FakeX | FakeBluesky | FakeMastodon],
) -> None:
    channels = tables(fakes)
    fakes["mastodon"].close()  # nothing listens on its port any more
    write_config(workdir, networks=["mastodon"], channels={"mastodon": channels["mastodon"]})
    result = run_publish("check", cwd=workdir, env=SOCIAL_SECRETS)
    assert result.returncode == 3, result.stderr  # the README: `publish check` exits 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "mastodon" in lines[0] and "[channels.mastodon]" in lines[0] and " — " in lines[0]
