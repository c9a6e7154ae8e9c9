"""Fixtures and hooks only; shared helpers live in tests/helpers/."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.helpers import REPO
from tests.helpers.browser import CHROMIUM
from tests.helpers.social import Networks, running_networks

# CI replays the same examples every run (a red CI must be reproducible); local runs explore.
# https://hypothesis.readthedocs.io/en/latest/settings.html#hypothesis.settings.derandomize
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_configure(config: pytest.Config) -> None:
    # The CLIs the tests start keep compiled templates in a throwaway folder, not the user's.
    folder = tempfile.mkdtemp(prefix="publisher-cache-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    os.environ["PUBLISHER_CACHE_DIR"] = folder


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="run long opt-in tests (fuzzing)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="long run: pass --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture


def workdir(tmp_path: Path) -> Path:
    """An empty working directory with the sample posts (and their images) copied in."""
    shutil.copytree(REPO / "posts", tmp_path / "posts")
    return tmp_path


@pytest.fixture(scope="module")
def chromium() -> str:
    """The browser binary; missing is a skip locally and a failure in CI."""
    if Path(CHROMIUM).is_file():
        return CHROMIUM
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is required in CI (apt-get install -y chromium)")
    pytest.skip("chromium not installed")


@pytest.fixture
def nets(workdir: Path) -> Iterator[Networks]:
    """The X, Bluesky and Mastodon fakes running, and the English sample with a local card."""
    with running_networks(workdir) as running:
        yield running
