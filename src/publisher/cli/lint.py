"""`publish lint POST`: check the newsletter before it goes out."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from publisher.cli import render
from publisher.cli.common import ConfigOpt, PostArg, load_settings


def lint_command(
    post: PostArg,
    config: ConfigOpt = None,
    templates: Annotated[Path | None, typer.Option(help="Folder overriding templates/.")] = None,
) -> None:
    """Check the newsletter: Gmail clipping, alt text, links, unsubscribe, address, subject."""
    from publisher.delivery.pipeline import Options, prepare
    from publisher.edition.newsletter.lint import lint_newsletter, raise_on_errors

    settings = load_settings(config)
    prepared = prepare(Options(post, templates=templates, dry_run=True), settings)
    findings = lint_newsletter(prepared.edition.newsletter, prepared.article, settings)
    console = render.console()
    for finding in findings:
        color = "red" if finding.level == "error" else "yellow"
        message = render.escape(finding.message)
        console.print(f"[{color}]{finding.level}[/] {finding.code}: {message}")
    if not findings:
        console.print(f"{post}: no problems found")
    raise_on_errors(findings, where=str(post))

