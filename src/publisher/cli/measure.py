"""`publish measure TEXT`: count text exactly as a network does."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from publisher.cli.common import JsonOpt


def measure_command(
    text: Annotated[str, typer.Argument(help="The text to count, as you would post it.")],
    network: Annotated[str, typer.Option("--network", "-n", help="x, bluesky, mastodon…")] = "x",
    limit: Annotated[int | None, typer.Option(help="Override the network's limit.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Count TEXT exactly as NETWORK does and compare it with the limit."""
    from publisher.networks.counting import measure

    result = measure(network, text, limit=limit)
    if as_json:
        data = {"network": result.network, "length": result.length, "limit": result.limit,
                "fits": result.fits, "unit": result.unit}
        print(json.dumps(data))
    else:
        verdict = "fits" if result.fits else f"too long by {result.length - result.limit}"
        print(f"{result.network}: {result.length}/{result.limit} {result.unit} — {verdict}")
    if not result.fits:
        raise typer.Exit(2)

