"""Thumbnails for link cards and attachments: fetch or read an image, shrink it under a byte cap.

Networks cap upload sizes (Bluesky's external-embed thumb is 1,000,000 bytes), so an image that
is too large is re-encoded as JPEG, lowering quality and then size until it fits.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from publisher.errors import InputError

if TYPE_CHECKING:
    from PIL import Image as PILImage

    from publisher.http import HttpClient

MIME_BY_FORMAT = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif",
                  "WEBP": "image/webp"}
MAX_SIDE = 2000  # no network shows a card thumbnail larger than this


@dataclass(frozen=True)
class ImageFile:
    """Encoded image bytes with their MIME type."""

    data: bytes
    mime: str


def load_image(source: str, *, http: HttpClient | None = None, base_dir: Path | None = None
               ) -> bytes:
    """The bytes of an image URL (fetched through an HttpClient) or a local path."""
    if source.startswith(("http://", "https://")):
        if http is None:  # a client of its own: never send a channel's credentials elsewhere
            from publisher.http import HttpClient

            http = HttpClient("image", "", timeout=30.0)
        return http.request("GET", source).content
    path = Path(source)
    if base_dir is not None and not path.is_absolute():
        path = base_dir / path
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read image {path} ({exc.strerror})", where="image",
                         fix="check the image path in the front matter") from exc


def fit_image(data: bytes, max_bytes: int, *, max_side: int = MAX_SIDE) -> ImageFile:
    """The image as-is when small enough and in a web format, else a JPEG under max_bytes."""
    image = _open(data)
    mime = MIME_BY_FORMAT.get(image.format or "")
    if mime and len(data) <= max_bytes and max(image.size) <= max_side:
        return ImageFile(data, mime)
    return ImageFile(_shrink(image, max_bytes, max_side), "image/jpeg")


def thumbnail(source: str, max_bytes: int, *, http: HttpClient | None = None,
              base_dir: Path | None = None) -> ImageFile:
    """Load an image and fit it under a network's byte cap."""
    return fit_image(load_image(source, http=http, base_dir=base_dir), max_bytes)


def _open(data: bytes) -> PILImage.Image:
    """Decode with Pillow, turning its failures into an input error."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise InputError(f"not a usable image ({exc})", where="image",
                         fix="use a JPEG, PNG, GIF or WebP file") from exc
    return image


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
