"""`publish due`: send every queued output whose `--at` time has come (for cron or CI)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import typer

from publisher.cli import render
from publisher.cli.common import (
    EXIT_DELIVERY_FAILED,
    EXIT_REFUSED,
    EXIT_UNCERTAIN,
    ConfigOpt,
    JsonOpt,
    load_settings,
)

if TYPE_CHECKING:
    from publisher.delivery.due import DueSend


def due_command(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Send what `--at` queued once its time has come, exactly once (safe to run concurrently)."""
    import json

    from publisher.delivery.due import due

    settings = load_settings(config)
    sends = due(settings, now=datetime.now(UTC))
    if as_json:
        print(json.dumps([{"post": s.source, "outputs": list(s.outputs),
                           "status": {o.output: o.status for o in s.outcomes},
                           "error": render.mask(s.problem.one_line()) if s.problem else ""}
                          for s in sends], ensure_ascii=False))
    _print_due(sends, quiet=as_json, max_attempts=settings.max_attempts)
    raise typer.Exit(_exit_code(sends))


def _print_due(sends: list[DueSend], *, quiet: bool, max_attempts: int) -> None:
    """Each post's table as a normal run prints it; one line for a post that could not go."""
    from publisher.cli.send import print_outcomes

    console, errors = render.console(stderr=quiet), render.console(stderr=True)
    if not sends:
        console.print("Nothing is due.")
    for send in sends:
        if send.problem is not None:
            errors.print(f"[red]error:[/] {render.safe(send.problem.one_line())}")
        elif send.prepared is not None:
            print_outcomes(console, send.prepared, send.outcomes, max_attempts=max_attempts)


def _exit_code(sends: list[DueSend]) -> int:
    """The worst of the posts: 4 undelivered, then a refused post's own code, 5, 7, else 0."""
    outcomes = [o for s in sends for o in s.outcomes]
    problems = [s.problem for s in sends if s.problem is not None]
    if any(o.undelivered for o in outcomes):
        return EXIT_DELIVERY_FAILED
    if problems:
        return problems[0].exit_code
    if any(o.refused for o in outcomes):
        return EXIT_REFUSED
    if any(o.uncertain or o.lost for o in outcomes):
        return EXIT_UNCERTAIN
    return 0
