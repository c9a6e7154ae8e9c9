"""`main()` builds only the verb a run names; that app answers exactly as the whole one does."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from publisher.cli.app import COMMANDS, GROUPS, app_for, build_app, verb_of
from tests.helpers import modules_after

ARGVS = [
    [],
    ["--help"],
    ["-h"],
    ["--help", "measure"],
    ["--help", "posts/missing.md"],
    ["-z"],
    ["posts/missing.md"],
    ["posts/missing.md", "--dry-run", "--only", "nosuch"],
    ["run", "posts/missing.md"],
    ["measure"],
    ["measure", "a text", "--network", "nosuch"],
    ["subscribers"],
    ["subscribers", "import", "--help"],
    ["keys", "nosuch"],
    *([verb, "--help"] for verb in (*COMMANDS, *GROUPS)),
]


@pytest.mark.parametrize("args", ARGVS, ids=" ".join)
def test_the_verbs_app_answers_as_the_whole_app(args: list[str], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    whole = runner.invoke(build_app(), args, prog_name="publish", env={"COLUMNS": "100"})
    alone = runner.invoke(app_for(args), args, prog_name="publish", env={"COLUMNS": "100"})
    assert whole.output or whole.exception
    assert (alone.exit_code, alone.output, repr(alone.exception)) == (
        whole.exit_code, whole.output, repr(whole.exception))


@pytest.mark.parametrize(("args", "verb"), [
    ([], None),
    (["--help"], None),
    (["--help", "status"], None),
    (["--help", "a.md"], "run"),
    (["a.md"], "run"),
    (["--dry-run", "a.md"], "run"),
    (["-z"], "run"),
    (["status", "--help"], "status"),
    (["measure.md"], "run"),
    (["subscribers", "list"], "subscribers"),
])
def test_verb_of_names_the_verb_click_would_run(args: list[str], verb: str | None) -> None:
    assert verb_of(args) == verb


def test_a_run_imports_only_its_own_verb(tmp_path: Path) -> None:
    loaded = modules_after(["measure", "a text", "--network", "x"], cwd=tmp_path)
    verbs = {f"publisher.cli.{module}" for module, _ in (*COMMANDS.values(), *GROUPS.values())}
    assert loaded & verbs == {"publisher.cli.measure"}
