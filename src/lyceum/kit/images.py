"""Uploaded images made safe: PNG, JPEG or WebP only (by magic bytes and by decoding),
re-encoded from the pixels alone so no metadata (EXIF, GPS) survives, cropped and
resized. CPU work: call it in a thread."""

from __future__ import annotations

import io

import filetype
from PIL import Image, ImageOps, UnidentifiedImageError

from lyceum.kit.errors import Invalid

ACCEPTED_MIME = {"image/png", "image/jpeg", "image/webp"}
ACCEPTED_FORMATS = {"PNG", "JPEG", "WEBP"}
MAX_PIXELS = 40_000_000


def _refuse(message: str) -> Invalid:
    return Invalid(message, field="body.file", slug="unsupported-image")


def normalise_image(data: bytes, size: tuple[int, int], output_format: str = "PNG") -> bytes:
    kind = filetype.guess(data)
    if kind is None or kind.mime not in ACCEPTED_MIME:
        raise _refuse("The image must be a PNG, JPEG or WebP file.")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in ACCEPTED_FORMATS:
                raise _refuse("The image must be a PNG, JPEG or WebP file.")
            if image.width * image.height > MAX_PIXELS:
                raise Invalid("The image is too large in pixels.", field="body.file")
            mode = "RGBA" if output_format == "PNG" else "RGB"
            upright = ImageOps.exif_transpose(image).convert(mode)
            fitted = ImageOps.fit(upright, size, Image.Resampling.LANCZOS)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, ValueError):
        raise _refuse("The file is not a readable image.") from None
    clean = Image.new(fitted.mode, fitted.size)
    clean.paste(fitted)
    output = io.BytesIO()
    if output_format == "PNG":
        clean.save(output, format="PNG", optimize=True)
    else:
        clean.save(output, format=output_format, quality=85)
    return output.getvalue()
