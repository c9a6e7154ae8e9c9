"""The images a post names: read or fetched within limits, then shrunk under a network's cap.

A post is untrusted input (it may come from a pull request), so its `image:` is too:
- a relative path must resolve, symlinks followed, inside the post's folder or the configured
  assets root (`[images] root`); a site-root path `/images/a.jpg` is read from that root, and
  without one it is refused, as is every other absolute path and every scheme but http(s);
- only a regular file is read (opened non-blocking, so a FIFO cannot hang the run; /dev/zero is
  refused), and at most `[images] max_bytes` of it;
- a URL is fetched by `publisher.source.fetch` (size cap while streaming, one deadline, no private
  addresses unless `[images] allow_private` lists them);
- the pixel count is checked from the header before anything is decoded (`max_pixels`), so a
  small file that decodes to gigabytes is refused instead of decoded.
Each source is read or fetched once per run, whatever the number of networks that attach it:
a temporary failure (a 503, a dropped connection) is retried here, with the run's policy, and
then stands for the run, so every network reports it without fetching again; the next run
fetches afresh.

Networks cap upload sizes (Bluesky's external-embed thumb is 1,000,000 bytes), so an image that
is too large is re-encoded as JPEG, lowering quality and then size until it fits.
"""

from __future__ import annotations

import io
import os
import re
import stat
import time
import warnings
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from publisher.channels.http import RetryPolicy, with_retries
from publisher.config.settings import ImageSettings
from publisher.errors import DeliveryError, InputError, PublisherError, TransientDeliveryError

if TYPE_CHECKING:
    from PIL import Image as PILImage

    from publisher.model import LinkCard, SocialPost

MIME_BY_FORMAT = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif",
                  "WEBP": "image/webp"}
MAX_SIDE = 2000  # no network shows a card thumbnail larger than this
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
FIX = "write image: as a path relative to the post, or an https:// URL"


@dataclass(frozen=True)
class ImageFile:
    """Encoded image bytes with their MIME type."""

    data: bytes
    mime: str


@dataclass
class ImageLoader:
    """Reads and fetches the images of one post within the limits, each source once per run."""

    settings: ImageSettings = field(default_factory=ImageSettings)
    base_dir: Path = field(default_factory=Path)  # the post's folder
    _loaded: dict[str, bytes | PublisherError] = field(default_factory=dict)
    policy: RetryPolicy = field(default_factory=lambda: RetryPolicy(attempts=1))
    sleep: Callable[[float], None] = time.sleep

    def retrying(self, policy: RetryPolicy, sleep: Callable[[float], None] | None
                 ) -> ImageLoader:
        """This loader (same memory of what was read) retrying a temporary failure by policy."""
        return ImageLoader(self.settings, self.base_dir, self._loaded, policy,
                           sleep or time.sleep)

    def thumbnail(self, source: str, max_bytes: int) -> ImageFile:
        """Load an image and fit it under a network's byte cap."""
        return fit_image(self.load(source), max_bytes, max_pixels=self.settings.max_pixels)

    def load(self, source: str) -> bytes:
        """The bytes of an image URL or local path; a failure is remembered for the run."""
        cached = self._loaded.get(source)
        if isinstance(cached, PublisherError):
            raise cached
        if cached is not None:
            return cached
        try:
            data = with_retries(lambda: self._read(source), self.policy, sleep=self.sleep)
        except TransientDeliveryError as exc:  # retried already: the next run tries again
            final = TransientDeliveryError(exc.problem, where=exc.where, fix=exc.fix,
                                           retry_now=False)
            self._loaded[source] = final
            raise final from exc
        except (InputError, DeliveryError) as exc:  # it would fail the same way again
            self._loaded[source] = exc
            raise
        self._loaded[source] = data
        return data

    def local_path(self, source: str) -> Path:
        """Where a local `image:` lives, or an InputError when the post may not read there."""
        if _SCHEME.match(source) and not source.startswith(("http://", "https://")):
            raise InputError(f"image {source!r} is not a file path or an http(s) URL",
                             where="image", fix=FIX)
        roots = [self.base_dir.resolve()]
        if self.settings.root:
            roots.append(Path(self.settings.root).resolve())
        written = Path(source)
        if written.is_absolute():
            if not self.settings.root:
                raise InputError(
                    f"image {source} is an absolute path; it is not read from this machine",
                    where="image",
                    fix=f"{FIX}; for site-root paths (/images/…) set [images] root = \"DIR\"")
            path = (roots[1] / source.lstrip("/\\")).resolve()
        else:
            path = (roots[0] / written).resolve()
        if not any(path.is_relative_to(root) for root in roots):
            raise InputError(f"image {source} is outside the post's folder; not read",
                             where="image",
                             fix=f"{FIX} inside its folder, or set [images] root = \"DIR\"")
        return path

    def _read(self, source: str) -> bytes:
        """Fetch a URL, or read a local file that passes local_path's checks."""
        if source.startswith(("http://", "https://")):
            from publisher.source.fetch import FetchLimits, fetch_untrusted

            limits = FetchLimits(max_bytes=self.settings.max_bytes,
                                 seconds=float(self.settings.timeout),
                                 allow_private=tuple(self.settings.allow_private))
            return fetch_untrusted(source, limits)
        return read_regular_file(self.local_path(source), self.settings.max_bytes, shown=source)


def thumbnail_to_upload(post: SocialPost, key: str, uploaded: Container[str], max_bytes: int,
                        images: ImageLoader | None, *, allowed: bool = True
                        ) -> tuple[LinkCard, ImageFile] | None:
    """The card and its image fitted under max_bytes, unless there is none to attach or this
    post key's upload is done already (a retry uploads nothing twice)."""
    card = post.card
    if not allowed or card is None or not card.thumb or key in uploaded:
        return None
    return card, (images or ImageLoader()).thumbnail(card.thumb, max_bytes)


def read_regular_file(path: Path, max_bytes: int, *, shown: str) -> bytes:
    """At most max_bytes of a regular file; a FIFO, device or directory fails at once."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise InputError(f"cannot read image {shown} ({exc.strerror})", where="image",
                         fix="check the image path in the front matter") from exc
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise InputError(f"image {shown} is not a regular file; not read", where="image",
                         fix=FIX)
    with os.fdopen(fd, "rb") as file:
        data = file.read(max_bytes + 1) if info.st_size <= max_bytes else b""
    if info.st_size > max_bytes or len(data) > max_bytes:
        raise InputError(f"image {shown} is larger than {max_bytes:,} bytes", where="image",
                         fix="use a smaller image, or raise [images] max_bytes")
    return data


def fit_image(data: bytes, max_bytes: int, *, max_side: int = MAX_SIDE,
              max_pixels: int = ImageSettings.max_pixels) -> ImageFile:
    """The image as-is when small enough and in a web format, else a JPEG under max_bytes."""
    image = _open(data, max_pixels)
    mime = MIME_BY_FORMAT.get(image.format or "")
    if mime and len(data) <= max_bytes and max(image.size) <= max_side:
        _decode(image)
        return ImageFile(data, mime)
    image.draft("RGB", (max_side, max_side))  # JPEG decodes at 1/2…1/8 scale: less memory
    _decode(image)
    return ImageFile(_shrink(image, max_bytes, max_side), "image/jpeg")


def _open(data: bytes, max_pixels: int) -> PILImage.Image:
    """Read the header only, and refuse more pixels than allowed before anything is decoded."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():  # our own pixel check replaces Pillow's warning
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise _too_many_pixels(str(exc), max_pixels) from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InputError(f"not a usable image ({exc})", where="image",
                         fix="use a JPEG, PNG, GIF or WebP file") from exc
    width, height = image.size
    if width * height > max_pixels:
        raise _too_many_pixels(f"{width}×{height}", max_pixels)
    return image


def _decode(image: PILImage.Image) -> None:
    """Decode the pixels, turning Pillow's failures into an input error."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError(f"not a usable image ({exc})", where="image",
                         fix="use a JPEG, PNG, GIF or WebP file") from exc


def _too_many_pixels(size: str, max_pixels: int) -> InputError:
    """The error for an image whose header promises too many pixels (a decompression bomb)."""
    return InputError(f"image is {size} pixels, more than the {max_pixels:,} allowed; not decoded",
                      where="image", fix="use a smaller image, or raise [images] max_pixels")


def _shrink(image: PILImage.Image, max_bytes: int, max_side: int) -> bytes:
    """Re-encode as JPEG: first lower quality, then scale down by a quarter until it fits."""
    from PIL import Image

    flat = _flatten(image)
    if max(flat.size) > max_side:
        flat.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    while True:
        for quality in (85, 75, 65):
            out = io.BytesIO()
            flat.save(out, "JPEG", quality=quality, optimize=True)
            if out.tell() <= max_bytes:
                return out.getvalue()
        if max(flat.size) <= 16:
            raise InputError(f"image cannot be made smaller than {max_bytes} bytes",
                             where="image", fix="use a smaller image")
        width, height = flat.size
        flat = flat.resize((max(1, width * 3 // 4), max(1, height * 3 // 4)),
                           Image.Resampling.LANCZOS)


def _flatten(image: PILImage.Image) -> PILImage.Image:
    """RGB on white: JPEG has no alpha channel or palette."""
    from PIL import Image

    if image.mode in ("RGBA", "LA", "P", "PA"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB")
