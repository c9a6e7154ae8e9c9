"""Images a post names: read or fetched within limits, then fit under a network's byte cap.

The post is untrusted and so is its image host: paths stay inside the post's folder, only
regular files are read, downloads are capped and have a deadline, private addresses are refused,
redirects are checked hop by hop, and a decompression bomb is refused before it is decoded.
The hostile hosts are real HTTP servers on 127.0.0.1 (tests/fakes/hostile.py).
"""

from __future__ import annotations

import io
import os
import struct
import threading
import time
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from publisher.channels.http import RetryPolicy
from publisher.channels.images import ImageLoader, fit_image
from publisher.config.settings import ImageSettings
from publisher.errors import (
    DeliveryError,
    InputError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from tests.fakes.hostile import HostileImageHost
from tests.fakes.server import FakeHTTPServer, Reply, Request, serving
from tests.fakes.support import Sleeps

LOOPBACK = ImageSettings(allow_private=("127.0.0.1",))


def png(size: tuple[int, int], mode: str = "RGB", noise: bool = False) -> bytes:
    """An encoded PNG; noise makes it incompressible."""
    if noise:
        image = Image.frombytes(mode, size, os.urandom(size[0] * size[1] * len(mode)))
    else:
        image = Image.new(mode, size, (10, 200, 30, 128)[: len(mode)])
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header promises width × height pixels (its data is a few zero rows)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    rows = zlib.compress(b"\0" * (width + 1) * 4, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(
        b"IEND", b"")


def finishes_within(seconds: float, call: Callable[[], object]) -> BaseException | None:
    """Run call in a thread; fail the test if it is still running after `seconds`."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as exc:  # handed back to the test
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"still running after {seconds} s"
    return outcome[0]


# --- fitting ---------------------------------------------------------------------------------


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


def test_a_decompression_bomb_is_refused_from_its_header_without_a_warning() -> None:
    bomb = bomb_png(13_000, 13_000)
    assert len(bomb) < 20_000
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no raw DecompressionBombWarning may escape
        started = time.monotonic()
        with pytest.raises(InputError, match="13000×13000 pixels") as caught:
            fit_image(bomb, 1_000_000)
    assert time.monotonic() - started < 1.0
    assert "max_pixels" in caught.value.fix


def test_the_pixel_cap_is_configurable() -> None:
    with pytest.raises(InputError, match="200×200 pixels, more than the 10,000"):
        fit_image(png((200, 200)), 1_000_000, max_pixels=10_000)


# --- local files -----------------------------------------------------------------------------


@pytest.fixture
def post_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "site" / "posts"
    (folder / "img").mkdir(parents=True)
    (folder / "img" / "card.png").write_bytes(png((8, 8)))
    (tmp_path / "outside.png").write_bytes(png((8, 8)))
    return folder


def test_a_relative_path_is_read_from_the_post_folder(post_dir: Path) -> None:
    assert ImageLoader(base_dir=post_dir).thumbnail("img/card.png", 1000).mime == "image/png"


def test_missing_file_is_an_input_error(post_dir: Path) -> None:
    with pytest.raises(InputError, match=r"cannot read image img/none\.png"):
        ImageLoader(base_dir=post_dir).load("img/none.png")


@pytest.mark.parametrize("source", ["../../outside.png", "img/../../../outside.png"])
def test_a_path_leaving_the_post_folder_is_refused(post_dir: Path, source: str) -> None:
    with pytest.raises(InputError, match="outside the post's folder"):
        ImageLoader(base_dir=post_dir).load(source)


def test_a_symlink_out_of_the_post_folder_is_refused(post_dir: Path, tmp_path: Path) -> None:
    (post_dir / "img" / "link.png").symlink_to(tmp_path / "outside.png")
    with pytest.raises(InputError, match="outside the post's folder"):
        ImageLoader(base_dir=post_dir).load("img/link.png")


def test_an_absolute_path_is_refused(post_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="absolute path; it is not read"):
        ImageLoader(base_dir=post_dir).load(str(tmp_path / "outside.png"))


def test_a_site_root_path_is_read_from_the_assets_root_not_the_filesystem_root(
    post_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    static = tmp_path / "site" / "static"
    (static / "images").mkdir(parents=True)
    (static / "images" / "a.png").write_bytes(png((9, 9)))
    monkeypatch.chdir(tmp_path)
    loader = ImageLoader(ImageSettings(root="site/static"), base_dir=post_dir)
    assert Image.open(io.BytesIO(loader.load("/images/a.png"))).size == (9, 9)
    assert loader.load("../static/images/a.png")  # relative, inside the assets root
    with pytest.raises(InputError, match="outside the post's folder"):
        loader.load("/../../outside.png")
    with pytest.raises(InputError, match="absolute path"):
        ImageLoader(base_dir=post_dir).load("/images/a.png")  # no root: never from /images


@pytest.mark.parametrize("source", ["file:///etc/hostname", "data:image/png;base64,AAAA",
                                    "ftp://example.com/a.png"])
def test_other_schemes_are_refused(post_dir: Path, source: str) -> None:
    with pytest.raises(InputError, match="not a file path or an http"):
        ImageLoader(base_dir=post_dir).load(source)


def test_a_fifo_fails_at_once(post_dir: Path) -> None:
    os.mkfifo(post_dir / "img" / "pipe.png")
    failure = finishes_within(3, lambda: ImageLoader(base_dir=post_dir).load("img/pipe.png"))
    assert isinstance(failure, InputError) and "not a regular file" in str(failure)


def test_dev_zero_fails_at_once_even_inside_the_assets_root(post_dir: Path) -> None:
    loader = ImageLoader(ImageSettings(root="/dev"), base_dir=post_dir)
    failure = finishes_within(3, lambda: loader.load("/zero"))
    assert isinstance(failure, InputError) and "not a regular file" in str(failure)


def test_a_directory_is_not_read(post_dir: Path) -> None:
    with pytest.raises(InputError, match="not a regular file"):
        ImageLoader(base_dir=post_dir).load("img")


def test_the_file_read_is_capped(post_dir: Path) -> None:
    (post_dir / "img" / "big.png").write_bytes(png((300, 300), noise=True))
    with pytest.raises(InputError, match="larger than 10,000 bytes"):
        ImageLoader(ImageSettings(max_bytes=10_000), base_dir=post_dir).load("img/big.png")


# --- URLs ------------------------------------------------------------------------------------


def test_an_image_url_is_fetched_once_per_run() -> None:
    data = png((1400, 1000), noise=True)
    seen: list[str] = []

    def serve(request: Request) -> Reply:
        seen.append(request.path)
        return Reply(200, data, {"Content-Type": "image/png"})

    loader = ImageLoader(LOOPBACK)
    with serving(FakeHTTPServer(serve)) as server:
        fitted = loader.thumbnail(f"{server.url}/og/card.png", 1_000_000)
        again = loader.thumbnail(f"{server.url}/og/card.png", 300_000)  # another network's cap
    assert seen == ["/og/card.png"]
    assert len(fitted.data) <= 1_000_000 and len(again.data) <= 300_000


def test_a_definite_failure_is_not_fetched_again() -> None:
    loader = ImageLoader(LOOPBACK)
    with serving(FakeHTTPServer(lambda request: Reply(404, b"gone", {}))) as server:
        for _ in range(2):
            with pytest.raises(PermanentDeliveryError, match="HTTP 404 for image"):
                loader.load(f"{server.url}/gone.png?sig=secret-in-query")
        assert server.count("GET", "/gone.png") == 1


def test_a_temporary_failure_is_retried_once_then_stands_for_the_run() -> None:
    loader = ImageLoader(LOOPBACK)
    with serving(FakeHTTPServer(lambda request: Reply(503, b"busy", {}))) as server:
        for network in ("x", "bluesky", "mastodon"):  # each network asks the run's loader
            retrying = loader.retrying(RetryPolicy(attempts=3), Sleeps())
            with pytest.raises(TransientDeliveryError, match="HTTP 503 for image") as caught:
                retrying.thumbnail(f"{server.url}/card.png", 1_000_000)
            assert caught.value.retry_now is False, network  # no retry on top, in this run
        assert server.count("GET", "/card.png") == 3
    fresh = ImageLoader(LOOPBACK)  # the next run fetches again
    with serving(FakeHTTPServer(lambda request: Reply(200, png((8, 8)), {}))) as server:
        assert fresh.load(f"{server.url}/card.png")


def test_loopback_is_refused_unless_allowed() -> None:
    with serving(FakeHTTPServer(lambda request: Reply(200, png((8, 8)), {}))) as server:
        with pytest.raises(PermanentDeliveryError,
                           match=r"non-public address 127\.0\.0\.1; not fetched") as caught:
            ImageLoader().load(f"{server.url}/card.png")
        assert server.requests == []  # refused before connecting
    assert "allow_private" in caught.value.fix


@pytest.mark.parametrize("address", ["10.1.2.3", "169.254.169.254", "192.168.0.1", "::1",
                                     "fe80::1", "100.64.0.1", "0.0.0.0", "::ffff:127.0.0.1"])
def test_private_link_local_and_other_non_public_addresses_are_refused(address: str) -> None:
    host = f"[{address}]" if ":" in address else address
    failure = finishes_within(3, lambda: ImageLoader().load(f"http://{host}:9/a.png"))
    assert isinstance(failure, PermanentDeliveryError) and "non-public address" in str(failure)


def test_a_redirect_to_a_refused_address_is_checked_like_the_first_hop() -> None:
    with HostileImageHost() as host:
        with pytest.raises(PermanentDeliveryError, match=r"non-public address 127\.0\.0\.2"):
            ImageLoader(LOOPBACK).load(f"{host.url}/redirect?to=http://127.0.0.2:9/meta")
        assert host.hits["/redirect"] == 1


def test_a_redirect_loop_is_a_failure_of_that_image() -> None:
    with HostileImageHost() as host:
        with pytest.raises(PermanentDeliveryError, match="redirects more than 5 times"):
            ImageLoader(LOOPBACK).load(f"{host.url}/loop")
        assert host.hits["/loop"] == 6


def test_a_redirect_to_a_file_url_is_refused() -> None:
    with HostileImageHost() as host, pytest.raises(PermanentDeliveryError,
                                                   match="leads to a file: URL"):
        ImageLoader(LOOPBACK).load(f"{host.url}/redirect?to=file:///etc/passwd")


def test_an_endless_body_is_cut_at_the_cap_while_it_streams() -> None:
    settings = ImageSettings(allow_private=("127.0.0.1",), max_bytes=1_000_000)
    with HostileImageHost() as host:
        failure = finishes_within(10, lambda: ImageLoader(settings).load(f"{host.url}/endless"))
        assert isinstance(failure, PermanentDeliveryError)
        assert "larger than 1,000,000 bytes" in str(failure)
        assert host.sent["/endless"] < 20_000_000  # it stopped reading, did not drain


def test_a_declared_length_over_the_cap_is_refused_without_reading() -> None:
    with HostileImageHost() as host:
        failure = finishes_within(
            3, lambda: ImageLoader(LOOPBACK).load(f"{host.url}/huge-declared"))
    assert isinstance(failure, PermanentDeliveryError) and "larger than" in str(failure)


@pytest.mark.parametrize("path", ["/drip", "/drip-headers"])
def test_a_dripping_server_is_cut_off_at_the_deadline(path: str) -> None:
    settings = ImageSettings(allow_private=("127.0.0.1",), timeout=1.5)
    with HostileImageHost(drip_seconds=0.4) as host:
        started = time.monotonic()
        failure = finishes_within(6, lambda: ImageLoader(settings).load(f"{host.url}{path}"))
        took = time.monotonic() - started
    assert isinstance(failure, DeliveryError) and "took longer than 1.5 s" in str(failure)
    assert took < 3.5


def test_a_bad_port_in_an_image_url_is_a_failure_not_a_crash() -> None:
    with pytest.raises(PermanentDeliveryError, match="malformed"):
        ImageLoader(LOOPBACK).load("https://x.example:99999/a.png")
