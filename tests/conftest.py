"""Shared test helpers: run the real `publish` CLI in a subprocess, and find shared data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

# CI replays the same examples every run (a red CI must be reproducible); local runs explore.
# https://hypothesis.readthedocs.io/en/latest/settings.html#hypothesis.settings.derandomize
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="run long opt-in tests (fuzzing)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="long run: pass --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def run_publish(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `python -m publisher ARGS` in cwd, with no keyring and a clean secret environment."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    full_env.update({"PUBLISHER_NO_KEYRING": "1", "NO_COLOR": "1", "COLUMNS": "200"})
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "publisher", *map(str, args)],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout, check=False,
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty working directory with the sample posts (and their images) copied in."""
    shutil.copytree(REPO / "posts", tmp_path / "posts")
    return tmp_path
