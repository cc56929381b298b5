"""Uploaded images made safe, the one place Lyceum decodes them (avatars, course covers,
course-file images): PNG, JPEG or WebP only, checked against a pixel budget from the
header before a single pixel is decoded, and re-encoded from the pixels alone so no
metadata (EXIF, GPS, ICC, text chunks) survives.

Decoding costs memory in proportion to the pixels a header claims (a 6300x6300 PNG of
a few kilobytes decodes to 160 MB), so the budget is checked on the lazily opened image
first, and JPEGs far larger than needed are decoded at 1/2, 1/4 or 1/8 scale. Pillow's
own decompression-bomb guard (which fires while reading the header) is set to the
ceiling any budget may have. Everything here is CPU work on untrusted bytes: run it
through `kit.sandbox` (as the services do), never on the event loop.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Final, ParamSpec, TypeVar

from PIL import Image, ImageOps

from lyceum.kit.errors import Invalid
from lyceum.kit.sandbox import Sandbox, SandboxCrashed, SandboxOutOfMemory, SandboxTimeout

P = ParamSpec("P")
R = TypeVar("R")

FIELD: Final = "body.file"
FORMATS: Final = ("PNG", "JPEG", "WEBP")
CONTENT_TYPES: Final = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
# The largest pixel budget a deployment may configure (IMAGE_MAX_PIXELS); Pillow warns
# above it and refuses above twice it while reading a header.
PIXEL_CEILING: Final = 100_000_000
DEFAULT_MAX_PIXELS: Final = 25_000_000
# Decoding and re-encoding one image within the budget takes well under a second.
IMAGE_SECONDS: Final = 20.0
Image.MAX_IMAGE_PIXELS = PIXEL_CEILING

_ALPHA_MODES: Final = {"RGBA", "LA", "PA", "La", "RGBa"}


def _unreadable(slug: str) -> Invalid:
    return Invalid("The file is not a readable PNG, JPEG or WebP image.", field=FIELD, slug=slug)


def _too_large(width: int, height: int, max_pixels: int) -> Invalid:
    return Invalid(
        f"The image is {width}x{height} pixels ({width * height / 1e6:.1f} megapixels); "
        f"at most {max_pixels / 1e6:g} megapixels are accepted.",
        field=FIELD,
        slug="image-too-large",
    )


def open_within_budget(
    data: bytes, formats: tuple[str, ...], max_pixels: int, *, slug: str
) -> Image.Image:
    """The image opened lazily (only its header read), if it is one of `formats` and
    within `max_pixels`. Raises Invalid naming the field otherwise."""
    try:
        image = Image.open(io.BytesIO(data), formats=list(formats))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise Invalid(
            "The image is too large in pixels.", field=FIELD, slug="image-too-large"
        ) from None
    except Exception:  # Pillow signals unknown and malformed input with many types.
        raise _unreadable(slug) from None
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise _too_large(width, height, max_pixels)
    return image


def _decode(
    image: Image.Image, mode: str, needed: tuple[int, int] | None, slug: str
) -> Image.Image:
    """The pixels, upright (EXIF orientation applied), in `mode`. With `needed`, a JPEG
    at least that large on both sides (after any rotation) is decoded at a reduced
    scale: a quarter or less of the memory for a photo shrunk to an avatar."""
    try:
        if needed is not None and image.format == "JPEG":
            side = max(needed)
            image.draft(mode, (side, side))
        upright = ImageOps.exif_transpose(image)
        return upright.convert(mode)
    except Exception:  # truncated or corrupt pixel data
        raise _unreadable(slug) from None


def _pixels_only(image: Image.Image) -> Image.Image:
    """A fresh image holds pixels and nothing else: no EXIF, ICC, XMP or text chunks."""
    clean = Image.new(image.mode, image.size)
    clean.paste(image)
    return clean


def encode(image: Image.Image, image_format: str, quality: int) -> bytes:
    output = io.BytesIO()
    if image_format == "PNG":
        image.save(output, format="PNG", optimize=image.width * image.height <= 1_000_000)
    else:
        image.save(output, format=image_format, quality=quality)
    return output.getvalue()


def fit_image(
    data: bytes,
    size: tuple[int, int],
    output_format: str = "PNG",
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> bytes:
    """Avatars and covers: cropped to fill `size` exactly, as `output_format`."""
    with open_within_budget(data, FORMATS, max_pixels, slug="unsupported-image") as image:
        mode = "RGBA" if output_format == "PNG" else "RGB"
        upright = _decode(image, mode, size, "unsupported-image")
    fitted = ImageOps.fit(upright, size, Image.Resampling.LANCZOS)
    return encode(_pixels_only(fitted), output_format, 85)


def reencode_image(
    data: bytes,
    image_format: str,
    *,
    max_side: int,
    thumbnail_side: int,
    quality: int,
    thumbnail_quality: int,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[bytes, bytes]:
    """Course-file images: (the image in its own format, at most `max_side` on its
    longer side, aspect ratio kept; a WebP thumbnail at most `thumbnail_side`)."""
    with open_within_budget(data, (image_format,), max_pixels, slug="unsupported-file") as image:
        keep_alpha = image_format != "JPEG" and (
            image.mode in _ALPHA_MODES or "transparency" in image.info
        )
        upright = _decode(
            image, "RGBA" if keep_alpha else "RGB", (max_side, max_side), "unsupported-file"
        )
    clean = _pixels_only(upright)
    clean.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    thumbnail = clean.copy()
    thumbnail.thumbnail((thumbnail_side, thumbnail_side), Image.Resampling.LANCZOS)
    return encode(clean, image_format, quality), encode(thumbnail, "WEBP", thumbnail_quality)


async def in_sandbox(
    sandbox: Sandbox, function: Callable[P, R], *args: P.args, **kwargs: P.kwargs
) -> R:
    """One of the functions above, run in the sandbox: at most `sandbox.processes`
    images are decoded at once, each within IMAGE_SECONDS and the sandbox's memory."""
    try:
        return await sandbox.run(IMAGE_SECONDS, function, *args, **kwargs)
    except (SandboxTimeout, SandboxOutOfMemory) as error:
        raise Invalid(
            f"The image could not be processed: it {error}.", field=FIELD, slug="image-too-large"
        ) from None
    except SandboxCrashed:
        raise _unreadable("unsupported-image") from None
