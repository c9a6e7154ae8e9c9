"""The sample posts whose outputs are reviewed goldens; a post an editor adds is not one of them."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import REPO

POSTS = REPO / "posts"
NAMES = ("chuo-line-extension.md", "city-composting.md", "library-tool-lending.md")


def sample_posts() -> list[Path]:
    """The reviewed samples still in posts/, so an editor's new post never breaks a test."""
    return [POSTS / name for name in NAMES if (POSTS / name).is_file()]
