"""`publish keys set NAME`: store a secret in the system keyring."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from publisher.cli import render

keys_app = typer.Typer(help="Store secrets in the system keyring.", no_args_is_help=True)


@keys_app.command("set")
def keys_set_command(
    name: Annotated[str, typer.Argument(help="The secret's name, e.g. SENDGRID_API_KEY.")],
) -> None:
    """Prompt for a secret (never echoed) and store it in the keyring; or read it from stdin."""
    from publisher.config.secrets import set_secret
    from publisher.errors import InputError

    if sys.stdin is None or not sys.stdin.isatty():  # piped: `printf %s "$KEY" | publish keys set`
        value = sys.stdin.readline().rstrip("\r\n") if sys.stdin is not None else ""
    else:
        try:
            value = typer.prompt(name, hide_input=True)
        except typer.Abort as exc:  # Ctrl-D at the prompt
            raise InputError("no value given", where=name, fix="type the secret at the prompt"
                             ) from exc
    if not value.strip():
        raise InputError("no value given on standard input", where=name,
                         fix=f"pipe it in (printf %s \"$VALUE\" | publish keys set {name})"
                         " or run it in a terminal to be prompted")
    set_secret(name, value)
    render.console().print(f"stored {name} in the keyring")

