"""`publish digest FOLDER`: gather the FAQs of several posts into digest posts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from publisher.cli import render
from publisher.cli.common import ConfigOpt, JsonOpt, load_settings
from publisher.text.counts import counted


def digest_command(
    folder: Annotated[Path, typer.Argument(help="Folder of posts to gather FAQs from.")],
    since: Annotated[str | None, typer.Option(help="Posts dated on/after YYYY-MM-DD.")] = None,
    last: Annotated[int | None, typer.Option(help="Only the N newest posts.")] = None,
    lang: Annotated[str | None, typer.Option(
        help="Only posts in this language (default: one digest per language).")] = None,
    url: Annotated[str | None, typer.Option(
        help="Where the digest's posts link ({date}, {lang}, {slug} filled in).")] = None,
    config: ConfigOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Outbox folder.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Gather the FAQs of several posts: one digest per language (newsletter, JSON-LD, Markdown)."""
    from publisher.delivery.pipeline import write_cross_digest

    settings = load_settings(config)
    result = write_cross_digest(folder, settings, since=since, last=last, out=out, lang=lang,
                                url=url)
    if as_json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return
    console = render.console()
    for digest in result["digests"]:
        posts = digest["with_faq"]
        questions = digest["questions"]
        console.print(f"{digest['lang']}: {counted(questions, 'question')}"
                      f" from {counted(posts, 'post')}")
        if digest["without_faq"]:
            console.print(f"  no FAQ in {len(digest['without_faq'])} more selected: "
                          + ", ".join(digest["without_faq"]))
        for path in digest["files"]:
            console.print(f"  {path}")
        if digest["url"]:
            console.print(f"  its posts link to {digest['url']}")
        else:
            console.print("  [yellow]warning[/]: its posts carry no link — pass --url or set "
                          + render.escape("[faq] digest_url or [site] url in publisher.toml"))
        console.print(f"  send it like any other post: {digest['publish']}")

