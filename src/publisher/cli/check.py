"""`publish check`: validate the config and every live channel's credentials, send nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from publisher.cli import render
from publisher.cli.common import ConfigOpt, load_settings

if TYPE_CHECKING:
    from publisher.channels import Facts


def check_command(config: ConfigOpt = None) -> None:
    """Preflight: validate the config and every live channel's credentials; send nothing."""
    from publisher.channels import registry
    from publisher.delivery.pipeline import check_channels, config_summary
    from publisher.unsubscribe.sync import scope_warnings

    settings = load_settings(config)
    console = render.console()
    for name, hints in check_channels(settings).items():
        extra = [", ".join(f"{k}={v}" for k, v in hints.items()), abilities(registry.facts(name))]
        console.print(f"[green]ok[/] {name} ({'; '.join(e for e in extra if e)})")
    for warning in scope_warnings(settings):
        render.console(stderr=True).print(f"[yellow]warning:[/] {render.escape(warning)}")
    console.print(f"[green]ok[/] {render.escape(config_summary(settings))}")



def abilities(facts: Facts) -> str:
    """What a channel declares it can do, in words: `publish check` shows it for each channel."""
    if facts.kind == "email":
        return (f"up to {facts.batch_size} per call" + (", idempotent" if facts.idempotent else "")
                + (", can schedule" if facts.can_schedule else ""))
    can = [word for flag, word in ((facts.can_edit, "edit"), (facts.can_delete, "delete"),
                                   (facts.attaches_images, "attach images"),
                                   (facts.can_schedule, "schedule")) if flag]
    return "can " + ", ".join(can) if can else "cannot edit or delete"
