"""What tests share besides fixtures: paths, the `publish` subprocess, sample data, servers.

Tests import them as `from tests.helpers import run_publish` or `from tests.helpers.e2e import …`
(and the fakes as `from tests.fakes.sendgrid import SendGridFake`), so the suite runs the same
under pytest's default and `importlib` import modes. conftest.py keeps only fixtures and hooks.

- `e2e`: publisher.toml pointing at the fakes, subscribers, `publish` processes, crash helpers
- `social`: the X, Bluesky and Mastodon fakes running together (`nets`) and their config
- `serving`: the unsubscribe and webhook app on a local port
- `pg`: a real PostgreSQL server (fixtures `pg_server`, `pg_url`)
- `browser`: headless Chromium (fixture `chromium`)
- `sample_posts`: the reviewed sample posts by name; `newsletter_samples`: Article values
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


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


def table_rows(stdout: str, column: int = 4) -> dict[str, str]:
    """The `publish` summary or plan table as {output: a column} (by default the last: status,
    or items planned; 3 is the channel)."""
    return {line.split("│")[1].strip(): line.split("│")[column].strip()
            for line in stdout.splitlines() if line.count("│") == 5}
