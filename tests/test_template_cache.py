"""The compiled newsletter template is kept between runs, and a bad cache never fails a run."""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2.bccache import bc_magic

from publisher.edition.newsletter.render import (
    TEMPLATE_NAME,
    Templates,
    load_templates,
    templates_dir,
)

CONTEXT_NAME = "a template of our own"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A template folder of the editor's own: a small template, so an edit is easy to see."""
    own = tmp_path / "templates"
    own.mkdir()
    (own / TEMPLATE_NAME).write_text("<mjml>{{ name }} one</mjml>\n", encoding="utf-8")
    return own


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PUBLISHER_CACHE_DIR pointed at a fresh folder; returns where the copies land."""
    monkeypatch.setenv("PUBLISHER_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "templates"


def rendered(templates: Templates) -> str:
    """The template filled with a fixed context."""
    return templates.template.render(name=CONTEXT_NAME)


def copies(cache: Path) -> list[Path]:
    """The compiled copies in the cache folder."""
    return sorted(cache.glob("*.cache")) if cache.is_dir() else []


def test_a_second_load_reads_the_compiled_copy_and_an_edit_recompiles(
    folder: Path, cache: Path
) -> None:
    assert rendered(load_templates(folder)) == f"<mjml>{CONTEXT_NAME} one</mjml>\n"
    [copy] = copies(cache)
    written = copy.stat().st_ino
    assert rendered(load_templates(folder)) == f"<mjml>{CONTEXT_NAME} one</mjml>\n"
    assert copy.stat().st_ino == written  # read, not compiled and written again
    (folder / TEMPLATE_NAME).write_text("<mjml>{{ name }} two</mjml>\n", encoding="utf-8")
    assert rendered(load_templates(folder)) == f"<mjml>{CONTEXT_NAME} two</mjml>\n"
    assert copy.stat().st_ino != written


def test_the_built_in_template_comes_back_from_its_copy_as_compiled(cache: Path) -> None:
    compiled = load_templates(None).template
    [copy] = copies(cache)
    written = copy.stat().st_ino
    again = load_templates(None).template
    assert copy.stat().st_ino == written
    assert again.root_render_func.__code__ == compiled.root_render_func.__code__
    assert again.filename == str(templates_dir() / TEMPLATE_NAME)


@pytest.mark.parametrize("keep", [0, 7, len(bc_magic), len(bc_magic) + 3, -40])
def test_a_damaged_copy_is_compiled_again(folder: Path, cache: Path, keep: int) -> None:
    load_templates(folder)
    [copy] = copies(cache)
    copy.write_bytes(copy.read_bytes()[:keep] + b"\x80")  # cut short at `keep` bytes
    assert rendered(load_templates(folder)) == f"<mjml>{CONTEXT_NAME} one</mjml>\n"


def test_a_copy_that_cannot_be_written_is_skipped(folder: Path, cache: Path) -> None:
    load_templates(folder)
    [copy] = copies(cache)
    copy.unlink()
    copy.mkdir()  # where the copy would go is a folder: reading and writing it both fail
    assert rendered(load_templates(folder)) == f"<mjml>{CONTEXT_NAME} one</mjml>\n"


def test_a_cache_folder_that_cannot_be_made_means_no_cache(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    monkeypatch.setenv("PUBLISHER_CACHE_DIR", str(tmp_path / "a-file" / "cache"))
    assert load_templates(folder).template.environment.bytecode_cache is None
    assert rendered(load_templates(folder)) == f"<mjml>{CONTEXT_NAME} one</mjml>\n"


def test_a_folder_others_can_write_is_not_trusted(folder: Path, cache: Path) -> None:
    cache.mkdir(parents=True)
    cache.chmod(0o777)
    assert load_templates(folder).template.environment.bytecode_cache is None
    assert copies(cache) == []


def test_xdg_cache_home_when_no_publisher_folder_is_named(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PUBLISHER_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    load_templates(folder)
    assert len(copies(tmp_path / "xdg" / "publisher" / "templates")) == 1
