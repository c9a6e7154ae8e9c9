"""The `publish` command: the typer app, its verbs wired in, errors turned into exit codes.

`publish POST` is the default command (`publish run POST` spelled out); every other verb is a
subcommand. Exit codes: 0 everyone got everything, 1 internal error, 2 bad input or usage,
3 configuration or credentials (also refused at preflight), 4 something was not delivered,
5 the ledger refused (changed post, send in progress), 6 lint found errors, 7 deliveries are
uncertain (see `publish status`, resend with `--retry-pending`), 130 interrupted.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from publisher.cli import (
    check,
    digest,
    due,
    feed,
    keys,
    lint,
    measure,
    preview,
    render,
    retract,
    send,
    serve,
    status,
    subscribers,
    unschedule,
)
from publisher.errors import PublisherError, SystemFault

DEFAULT_COMMAND = "run"


class DefaultCommandGroup(TyperGroup):
    """Treat `publish POST …` as `publish run POST …` when POST is not a subcommand."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """Insert the default command before the first word that is not a known subcommand."""
        words = [a for a in args if not a.startswith("-")]
        wants_group_help = not words and any(a in ("--help", "-h") for a in args)
        if args and not wants_group_help and (not words or words[0] not in self.commands):
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=DefaultCommandGroup,
    help="Turn one Markdown article into a newsletter, social posts and an FAQ digest.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# The order here is the order `publish --help` lists them (commands first, then groups).
app.command(DEFAULT_COMMAND)(send.run_command)
app.command("measure")(measure.measure_command)
app.command("feed")(feed.feed_command)
app.command("status")(status.status_command)
app.command("retract")(retract.retract_command)
app.command("due")(due.due_command)
app.command("unschedule")(unschedule.unschedule_command)
app.command("check")(check.check_command)
app.command("preview")(preview.preview_command)
app.command("lint")(lint.lint_command)
app.command("digest")(digest.digest_command)
app.command("serve")(serve.serve_command)
app.add_typer(subscribers.subscribers_app, name="subscribers")
app.add_typer(keys.keys_app, name="keys")


def main() -> None:
    """Entry point: one line on stderr and a documented exit code for every known error."""
    args = sys.argv[1:]
    debug = "--debug" in args or bool(os.environ.get("PUBLISHER_DEBUG"))
    args = [a for a in args if a != "--debug"]
    try:
        code = app(args=args, prog_name="publish", standalone_mode=False)
    except PublisherError as exc:
        if debug:
            _print_traceback(exc)
        else:
            render.console(stderr=True).print(f"[red]error:[/] {render.safe(exc.one_line())}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):  # typer's own usage errors
            exc.show()
            sys.exit(exc.exit_code)
        fault = _damaged_database(exc)
        if fault is not None and not debug:
            render.console(stderr=True).print(f"[red]error:[/] {render.safe(fault.one_line())}")
            sys.exit(fault.exit_code)
        if debug:
            _print_traceback(exc)
        else:
            render.console(stderr=True).print(
                f"[red]internal error:[/] {type(exc).__name__}: {render.safe(str(exc))}"
                " — rerun with --debug and report"
            )
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


def _damaged_database(exc: Exception) -> SystemFault | None:
    """A SQLite file whose pages are damaged ("database disk image is malformed", "file is not
    a database") is a fault of the disk or of a copy, not a bug: one line and exit 3."""
    sqlite3 = sys.modules.get("sqlite3")  # not imported: no SQLite error is possible
    if sqlite3 is None or type(exc) is not sqlite3.DatabaseError:
        return None
    return SystemFault(
        f"a SQLite file of this project is damaged ({exc})",
        where="the ledger or the subscriber list",
        fix="restore it from a backup or rebuild it with  sqlite3 FILE .recover,"
            " then check  publish status  before sending again",
    )


def _print_traceback(exc: BaseException) -> None:
    """--debug: the whole traceback, with secrets masked like every other line we print."""
    import traceback

    sys.stderr.write(render.mask("".join(traceback.format_exception(exc))))
