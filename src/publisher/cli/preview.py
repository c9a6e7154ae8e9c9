"""`publish preview POST`: write preview.html, optionally screenshot or serve it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from publisher.cli import render
from publisher.cli.common import ConfigOpt, PostArg, load_settings


def preview_command(
    post: PostArg,
    config: ConfigOpt = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Where to write the files (default: the post's outbox folder).")] = None,
    templates: Annotated[Path | None, typer.Option(help="Folder overriding templates/.")] = None,
    thread: Annotated[bool | None, typer.Option("--thread/--no-thread")] = None,
    png: Annotated[bool, typer.Option(
        "--png", help="Also write screenshots through headless Chromium.")] = False,
    serve: Annotated[bool, typer.Option(
        "--serve", help="Serve the page on 127.0.0.1 until Ctrl-C.")] = False,
    port: Annotated[int, typer.Option(help="Port for --serve (0: any free port).")] = 0,
    open_browser: Annotated[bool, typer.Option("--open", help="Open it in a browser.")] = False,
) -> None:
    """Write preview.html (newsletter, every network's posts, FAQ, JSON-LD, warnings and lint)."""
    from publisher.delivery.pipeline import Options, write_preview

    settings = load_settings(config)
    files, warnings = write_preview(Options(post, templates=templates, thread=thread), settings,
                                    out=out)
    for warning in warnings:
        render.console(stderr=True).print(f"[yellow]warning:[/] {render.safe(warning)}")
    for path in files:
        print(path)
    page = files[0]
    if png:
        from publisher.cli.browser import take_screenshots

        for shot in take_screenshots(page):
            print(shot)
    if serve:
        from publisher.cli.browser import serve_folder

        serve_folder(page, port=port, open_browser=open_browser,
                     announce=lambda url: render.console(stderr=True).print(f"serving {url}"))
    elif open_browser:
        import webbrowser

        webbrowser.open(page.resolve().as_uri())

