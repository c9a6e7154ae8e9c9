"""What every verb shares: its argument types, the settings it loads, the CLI's own exit codes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from publisher.config.settings import Config

EXIT_DELIVERY_FAILED = 4
EXIT_REFUSED = 5  # the ledger forbade an output (e.g. a thread under a single post)
EXIT_UNCERTAIN = 7  # nothing failed, but some deliveries may or may not have landed

PostArg = Annotated[
    Path, typer.Argument(metavar="POST", help="The article: Markdown with YAML front matter.")
]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="publisher.toml to use (default: ./publisher.toml).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]


def load_settings(path: Path | None) -> Config:
    """Settings from the file, or the embedded defaults."""
    from publisher.config.load import load_config

    return load_config(path)
