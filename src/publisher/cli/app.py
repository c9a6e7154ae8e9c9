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
from collections.abc import Iterable
from importlib import import_module
from typing import Any

import typer
from typer.core import TyperGroup

from publisher.cli import render
from publisher.errors import PublisherError, SystemFault

DEFAULT_COMMAND = "run"
# Each verb: (its module in publisher.cli, the command function or sub-app there), in the order
# `publish --help` lists them (commands first, then groups). Only the verb a run names is
# imported and built: typer reads the signature of every command it is given (~10 ms for all).
COMMANDS = {
    DEFAULT_COMMAND: ("send", "run_command"),
    "measure": ("measure", "measure_command"),
    "feed": ("feed", "feed_command"),
    "status": ("status", "status_command"),
    "retract": ("retract", "retract_command"),
    "due": ("due", "due_command"),
    "unschedule": ("unschedule", "unschedule_command"),
    "check": ("check", "check_command"),
    "preview": ("preview", "preview_command"),
    "lint": ("lint", "lint_command"),
    "digest": ("digest", "digest_command"),
    "serve": ("serve", "serve_command"),
}
GROUPS = {"subscribers": ("subscribers", "subscribers_app"), "keys": ("keys", "keys_app")}
VERBS = COMMANDS.keys() | GROUPS.keys()
HELP_FLAGS = ("--help", "-h")


def verb_of(args: list[str]) -> str | None:
    """The verb `args` run: the first word when it names one, else `run` (`publish POST …`);
    None for the group's own help (`publish`, `publish --help`, `publish --help VERB`)."""
    words = [a for a in args if not a.startswith("-")]
    if not args or (not words and any(a in HELP_FLAGS for a in args)):
        return None
    if not words or words[0] not in VERBS:
        return DEFAULT_COMMAND
    before = args[:args.index(words[0])]
    return None if any(a in HELP_FLAGS for a in before) else words[0]


class DefaultCommandGroup(TyperGroup):
    """Treat `publish POST …` as `publish run POST …` when POST is not a subcommand."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """Insert the default command before the first word that is not a known subcommand."""
        words = [a for a in args if not a.startswith("-")]
        if verb_of(args) == DEFAULT_COMMAND and words[:1] != [DEFAULT_COMMAND]:
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)


def _group() -> None:
    """The group takes no options of its own."""


def build_app(verbs: Iterable[str] = (*COMMANDS, *GROUPS)) -> typer.Typer:
    """The typer app with these verbs wired in (all of them for the group's help)."""
    app = typer.Typer(
        cls=DefaultCommandGroup,
        help="Turn one Markdown article into a newsletter, social posts and an FAQ digest.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        callback=_group,  # a group even when it holds one verb
    )
    for verb in verbs:
        if verb in COMMANDS:
            module, name = COMMANDS[verb]
            app.command(verb)(getattr(import_module(f"publisher.cli.{module}"), name))
        else:
            module, name = GROUPS[verb]
            app.add_typer(getattr(import_module(f"publisher.cli.{module}"), name), name=verb)
    return app


def app_for(args: list[str]) -> typer.Typer:
    """The app `args` need: their verb alone, or every verb for the group's own help."""
    verb = verb_of(args)
    return build_app() if verb is None else build_app([verb])


def main() -> None:
    """Entry point: one line on stderr and a documented exit code for every known error."""
    args = sys.argv[1:]
    debug = "--debug" in args or bool(os.environ.get("PUBLISHER_DEBUG"))
    args = [a for a in args if a != "--debug"]
    try:
        code = app_for(args)(args=args, prog_name="publish", standalone_mode=False)
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
