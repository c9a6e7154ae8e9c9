"""Thumbnails: read or fetch an image and fit it under a network's byte cap."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image

from fakes.server import FakeHTTPServer, Reply, Request, serving
from publisher.errors import InputError
from publisher.images import fit_image, load_image, thumbnail


def png(size: tuple[int, int], mode: str = "RGB", noise: bool = False) -> bytes:
    """An encoded PNG; noise makes it incompressible."""
    if noise:
        image = Image.frombytes(mode, size, os.urandom(size[0] * size[1] * len(mode)))
    else:
        image = Image.new(mode, size, (10, 200, 30, 128)[: len(mode)])
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_small_web_image_passes_unchanged() -> None:
    data = png((40, 20))
    fitted = fit_image(data, 1_000_000)
    assert fitted.data == data and fitted.mime == "image/png"


def test_large_image_is_reencoded_under_the_cap() -> None:
    data = png((1400, 1000), noise=True)
    assert len(data) > 1_000_000
    fitted = fit_image(data, 1_000_000)
    assert len(fitted.data) <= 1_000_000 and fitted.mime == "image/jpeg"
    assert Image.open(io.BytesIO(fitted.data)).format == "JPEG"


def test_tight_cap_shrinks_the_dimensions_too() -> None:
    fitted = fit_image(png((1200, 1200), noise=True), 30_000)
    shrunk = Image.open(io.BytesIO(fitted.data))
    assert len(fitted.data) <= 30_000 and max(shrunk.size) < 1200


def test_transparency_is_flattened_for_jpeg() -> None:
    fitted = fit_image(png((900, 900), mode="RGBA", noise=True), 200_000)
    assert Image.open(io.BytesIO(fitted.data)).mode == "RGB"


def test_not_an_image_is_an_input_error() -> None:
    with pytest.raises(InputError, match="not a usable image"):
        fit_image(b"<html>nope</html>", 1000)


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read image"):
        load_image(str(tmp_path / "missing.png"))


def test_relative_path_is_read_from_the_article_folder(tmp_path: Path) -> None:
    (tmp_path / "card.png").write_bytes(png((8, 8)))
    assert thumbnail("card.png", 1000, base_dir=tmp_path).mime == "image/png"


def test_image_url_is_fetched_over_http() -> None:
    data = png((1400, 1000), noise=True)
    seen: list[str] = []

    def serve(request: Request) -> Reply:
        seen.append(request.path)
        return Reply(200, data, {"Content-Type": "image/png"})

    with serving(FakeHTTPServer(serve)) as server:
        fitted = thumbnail(f"{server.url}/og/card.png", 1_000_000)
    assert seen == ["/og/card.png"]
    assert len(fitted.data) <= 1_000_000
