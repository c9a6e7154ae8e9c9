"""A dry run loads no delivery code: ledger, HTTP, e-mail and channel modules stay unimported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

JA_POST = REPO / "posts" / "chuo-line-extension.md"
# What only delivering needs (issue 8: the dry run's cost is mostly imports).
DELIVERY_ONLY = (
    "publisher.delivery.send", "publisher.stores.ledger", "publisher.channels.http",
    "publisher.channels",
    "publisher.channels.outbox", "publisher.channels.message", "sqlite3", "email.message", "socket",
)


def modules_after(args: list[str], cwd: Path) -> set[str]:
    """Run the CLI in a fresh interpreter and return every module it ended with."""
    listing = cwd / "modules.json"
    code = (
        "import json, sys\n"
        "from publisher.cli.app import main\n"
        f"sys.argv = ['publish', *{args!r}]\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        f"open({str(listing)!r}, 'w').write(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return set(json.loads(listing.read_text()))


def test_a_dry_run_imports_no_delivery_module(tmp_path: Path) -> None:
    loaded = modules_after([str(JA_POST), "--dry-run", "--json"], tmp_path)
    assert "publisher.edition.build" in loaded  # it did build the edition
    assert sorted(loaded & set(DELIVERY_ONLY)) == []
    assert "tomllib" not in loaded  # no publisher.toml in the folder, so nothing to parse
