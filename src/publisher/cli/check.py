"""`publish check`: validate the config and every live channel's credentials, send nothing."""

from __future__ import annotations

from publisher.cli import render
from publisher.cli.common import ConfigOpt, load_settings


def check_command(config: ConfigOpt = None) -> None:
    """Preflight: validate the config and every live channel's credentials; send nothing."""
    from publisher.delivery.pipeline import check_channels, config_summary
    from publisher.unsubscribe.sync import scope_warnings

    settings = load_settings(config)
    console = render.console()
    for name, hints in check_channels(settings).items():
        extra = ", ".join(f"{k}={v}" for k, v in hints.items())
        console.print(f"[green]ok[/] {name}" + (f" ({extra})" if extra else ""))
    for warning in scope_warnings(settings):
        render.console(stderr=True).print(f"[yellow]warning:[/] {render.escape(warning)}")
    console.print(f"[green]ok[/] {render.escape(config_summary(settings))}")

