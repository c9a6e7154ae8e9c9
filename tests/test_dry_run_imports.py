"""A dry run loads no delivery code: ledger, HTTP, e-mail and channel modules stay unimported."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import REPO, modules_after

JA_POST = REPO / "posts" / "chuo-line-extension.md"
# What only delivering needs (issue 8: the dry run's cost is mostly imports).
DELIVERY_ONLY = (
    "publisher.delivery.send", "publisher.stores.ledger", "publisher.channels.http",
    "publisher.channels",
    "publisher.channels.outbox", "publisher.channels.message", "sqlite3", "email.message", "socket",
    # Only a PostgreSQL setting needs these; a SQLite run decides with publisher.stores.setting.
    "publisher.stores.pgurl", "publisher.stores.postgres",
)


def test_a_dry_run_imports_no_delivery_module(tmp_path: Path) -> None:
    loaded = modules_after([str(JA_POST), "--dry-run", "--json"], tmp_path)
    assert "publisher.edition.build" in loaded  # it did build the edition
    assert sorted(loaded & set(DELIVERY_ONLY)) == []
    assert "tomllib" not in loaded  # no publisher.toml in the folder, so nothing to parse
