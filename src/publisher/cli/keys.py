"""`publish keys set NAME`: store a secret in the keyring; `publish keys refresh threads`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from publisher.cli import render
from publisher.cli.common import ConfigOpt, load_settings

keys_app = typer.Typer(help="Store secrets in the system keyring; refresh tokens.",
                       no_args_is_help=True)


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


@keys_app.command("refresh")
def keys_refresh_command(
    network: Annotated[str, typer.Argument(help="The network whose token to refresh: threads.")],
    config: ConfigOpt = None,
) -> None:
    """Refresh a long-lived token before it expires; the new one replaces it where it was kept."""
    from publisher.errors import InputError

    if network != "threads":
        raise InputError(f"no token refresh for {network!r}", where="publish keys refresh",
                         fix="only threads tokens are refreshed (publish keys refresh threads)")
    from publisher.channels import registry
    from publisher.channels.threads import refresh_stored_token

    settings = load_settings(config)
    name, where, lifetime = refresh_stored_token(registry.context("threads", settings).settings)
    days = lifetime // 86_400
    render.console().print(f"refreshed {name}: valid for {days} more days, stored in {where}")
