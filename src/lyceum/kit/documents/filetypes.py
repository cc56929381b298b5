"""Deciding what an upload is before anything is stored.

An upload is accepted only when its extension and its content agree, so a renamed
executable or an SVG (script in an image) never reaches storage. Word files are checked
as archives first, from the zip's central directory alone, so a zip bomb is refused
without being decompressed. Images are re-encoded from their pixels (kit.images) so no
metadata (EXIF, GPS) survives. Everything here is CPU work: the checks on names and
magic bytes are cheap enough for a thread; `prepare_image` decodes untrusted pixels and
runs in the sandbox (kit.sandbox).
"""

from __future__ import annotations

import io
import os
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import filetype

from lyceum.kit.errors import Invalid
from lyceum.kit.images import DEFAULT_MAX_PIXELS, reencode_image

FIELD: Final = "body.file"
MAX_FILENAME_LENGTH: Final = 200

# Word documents are zips; these bound what reading one may cost. A real .docx has a
# few dozen entries, a few MB uncompressed, and compresses XML roughly 5-20 times.
DOCX_MAX_ENTRIES: Final = 1000
DOCX_MAX_UNCOMPRESSED_BYTES: Final = 50 * 1024 * 1024
DOCX_MAX_COMPRESSION_RATIO: Final = 100
# Small entries can compress absurdly well without costing anything to read.
DOCX_RATIO_CHECK_FROM_BYTES: Final = 1024 * 1024

IMAGE_MAX_SIDE: Final = 4096
THUMBNAIL_SIDE: Final = 320
JPEG_QUALITY: Final = 88
WEBP_QUALITY: Final = 88
THUMBNAIL_QUALITY: Final = 80


class FileKind(StrEnum):
    pdf = "pdf"
    docx = "docx"
    png = "png"
    jpeg = "jpeg"
    webp = "webp"
    text = "text"
    markdown = "markdown"

    @property
    def is_image(self) -> bool:
        return self in _IMAGE_FORMATS


CONTENT_TYPES: Final[dict[FileKind, str]] = {
    FileKind.pdf: "application/pdf",
    FileKind.docx: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    FileKind.png: "image/png",
    FileKind.jpeg: "image/jpeg",
    FileKind.webp: "image/webp",
    FileKind.text: "text/plain; charset=utf-8",
    FileKind.markdown: "text/markdown; charset=utf-8",
}

EXTENSIONS: Final[dict[str, FileKind]] = {
    ".pdf": FileKind.pdf,
    ".docx": FileKind.docx,
    ".png": FileKind.png,
    ".jpg": FileKind.jpeg,
    ".jpeg": FileKind.jpeg,
    ".webp": FileKind.webp,
    ".txt": FileKind.text,
    ".md": FileKind.markdown,
    ".markdown": FileKind.markdown,
}

_IMAGE_FORMATS: Final[dict[FileKind, str]] = {
    FileKind.png: "PNG",
    FileKind.jpeg: "JPEG",
    FileKind.webp: "WEBP",
}

_ACCEPTED = "PDF, Word (.docx), PNG, JPEG, WebP, plain text (.txt) or Markdown (.md)"


@dataclass(frozen=True, slots=True)
class Inspected:
    kind: FileKind
    content_type: str
    extension: str
    display_name: str


def _unsupported(message: str) -> Invalid:
    return Invalid(message, field=FIELD, slug="unsupported-file")


# --- file names ------------------------------------------------------------------------

# Directional overrides let "invoice\u202efdp.exe" display as "invoiceexe.pdf".
_BIDI_CONTROLS: Final = frozenset(
    [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
)


def _is_dropped(char: str) -> bool:
    return unicodedata.category(char) == "Cc" or ord(char) in _BIDI_CONTROLS


def sanitise_filename(name: str) -> str:
    """The name shown to people; never used as a storage path.

    Separators, `..` segments and NUL are refused rather than repaired: browsers send a
    bare file name, so anything else is a client bug or a traversal attempt.
    """
    if "\x00" in name or "/" in name or "\\" in name:
        raise Invalid(
            "The file name must not contain path separators or NUL characters.",
            field=FIELD,
            slug="invalid-filename",
        )
    if name.strip() == "..":
        raise Invalid("The file name is not valid.", field=FIELD, slug="invalid-filename")
    cleaned = re.sub(r"\s+", " ", unicodedata.normalize("NFC", name))
    cleaned = "".join(char for char in cleaned if not _is_dropped(char))
    cleaned = re.sub(r" {2,}", " ", cleaned).lstrip(". ").rstrip()
    if not cleaned:
        raise Invalid("The file name is empty.", field=FIELD, slug="invalid-filename")
    if len(cleaned) > MAX_FILENAME_LENGTH:
        stem, extension = os.path.splitext(cleaned)
        if 1 < len(extension) <= 16:
            cleaned = stem[: MAX_FILENAME_LENGTH - len(extension)].rstrip() + extension
        else:
            cleaned = cleaned[:MAX_FILENAME_LENGTH].rstrip()
    return cleaned


# --- content sniffing ------------------------------------------------------------------

_DESCRIPTIONS: Final[dict[str, str]] = {
    "pdf": "a PDF document",
    "zip": "a ZIP archive",
    "png": "a PNG image",
    "jpeg": "a JPEG image",
    "webp": "a WebP image",
    "svg": "an SVG image",
    "html": "an HTML page",
    "elf": "a Linux executable",
    "exe": "a Windows executable",
    "text": "plain text",
    "binary": "binary data",
}

_EXPECTED: Final[dict[FileKind, str]] = {
    FileKind.pdf: "pdf",
    FileKind.docx: "zip",
    FileKind.png: "png",
    FileKind.jpeg: "jpeg",
    FileKind.webp: "webp",
    FileKind.text: "text",
    FileKind.markdown: "text",
}

_FILETYPE_LABELS: Final = {"image/png": "png", "image/jpeg": "jpeg", "image/webp": "webp"}
_SNIFF_CHARS: Final = 4096
# Text may hold a stray control character or two; binary data is full of them.
_MAX_CONTROL_RATIO: Final = 0.01
_BINARY_CONTROLS: Final = tuple(
    chr(code) for code in [*range(0x20), 0x7F] if chr(code) not in "\t\n\r\f\v"
)


def _markup_label(head: str) -> str | None:
    """SVG carries script and HTML renders as a page; neither may pass as text."""
    lowered = head.lstrip().lower()
    if lowered.startswith("<svg") or (lowered.startswith("<?xml") and "<svg" in lowered):
        return "svg"
    if lowered.startswith(("<!doctype html", "<html")):
        return "html"
    return None


def _decode_text(data: bytes) -> str | None:
    """The text if the bytes are UTF-8 (BOM allowed) and do not look binary."""
    if b"\x00" in data:
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    controls = sum(text.count(char) for char in _BINARY_CONTROLS)
    if controls > len(text) * _MAX_CONTROL_RATIO:
        return None
    return text


def _sniff(data: bytes) -> str:
    """A label for what the bytes are, whatever the file claims to be.

    Text is recognised before consulting `filetype`, whose two-byte signatures (BMP's
    "BM", EXE's "MZ") would otherwise claim ordinary prose.
    """
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        return "zip"
    if data.startswith(b"\x7fELF"):
        return "elf"
    text = _decode_text(data)
    if text is not None:
        return _markup_label(text[:_SNIFF_CHARS]) or "text"
    if data.startswith(b"MZ"):
        return "exe"
    guessed = filetype.guess(data[:8192])
    if guessed is not None:
        mime = str(guessed.mime)
        return _FILETYPE_LABELS.get(mime, mime)
    return "binary"


def _describe(label: str) -> str:
    return _DESCRIPTIONS.get(label, f"a file of type {label}")


# --- Word archives ---------------------------------------------------------------------


def check_docx_archive(data: bytes) -> None:
    """Refuse a zip that would be costly to read or is not a Word document.

    Only the central directory is read. Declared sizes are trustworthy bounds because
    zipfile never returns more than an entry's declared size (and fails its CRC check on
    a lie), and python-docx reads parts through zipfile.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError):
        raise _unsupported("The .docx file is damaged: it is not a readable archive.") from None
    if len(entries) > DOCX_MAX_ENTRIES:
        raise _unsafe(f"The .docx file holds {len(entries)} parts; at most {DOCX_MAX_ENTRIES}.")
    total = sum(entry.file_size for entry in entries)
    if total > DOCX_MAX_UNCOMPRESSED_BYTES:
        raise _unsafe(
            f"The .docx file would expand to {total // (1024 * 1024)} MB; "
            f"at most {DOCX_MAX_UNCOMPRESSED_BYTES // (1024 * 1024)} MB."
        )
    for entry in entries:
        if entry.file_size < DOCX_RATIO_CHECK_FROM_BYTES:
            continue
        if entry.file_size > DOCX_MAX_COMPRESSION_RATIO * max(entry.compress_size, 1):
            raise _unsafe(f"The .docx part {entry.filename!r} is compressed implausibly well.")
    names = {entry.filename for entry in entries}
    if not {"[Content_Types].xml", "word/document.xml"} <= names:
        raise _unsupported("The file is named .docx but is not a Word document.")


def _unsafe(message: str) -> Invalid:
    return Invalid(message, field=FIELD, slug="unsafe-archive")


# --- the whole check -------------------------------------------------------------------


def inspect_upload(data: bytes, filename: str) -> Inspected:
    """Accept the upload only if its name and its bytes agree on a supported kind."""
    display_name = sanitise_filename(filename)
    extension = os.path.splitext(display_name)[1].lower()
    if extension == ".svg":
        raise _unsupported("SVG files are not accepted; upload a PNG, JPEG or WebP image.")
    kind = EXTENSIONS.get(extension)
    if kind is None:
        named = f"{extension} files" if extension else "Files without an extension"
        raise _unsupported(f"{named} are not accepted; upload {_ACCEPTED}.")
    if not data:
        raise Invalid("The file is empty.", field=FIELD, slug="empty-file")
    detected = _sniff(data)
    if detected == "svg":
        raise _unsupported(f"SVG files are not accepted, even named {extension}.")
    if detected != _EXPECTED[kind]:
        raise _unsupported(
            f"The file is named {extension} but contains {_describe(detected)}; upload {_ACCEPTED}."
        )
    if kind is FileKind.docx:
        check_docx_archive(data)
    return Inspected(
        kind=kind,
        content_type=CONTENT_TYPES[kind],
        extension=extension,
        display_name=display_name,
    )


# --- images ----------------------------------------------------------------------------


def prepare_image(
    data: bytes, kind: FileKind, max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[bytes, bytes, str]:
    """(clean image, WebP thumbnail, content type), rebuilt from the pixels alone within
    the pixel budget (kit.images). Orientation from EXIF is applied to the pixels before
    the metadata is dropped, so photos stay upright. The aspect ratio is kept; only
    oversized images shrink."""
    image_format = _IMAGE_FORMATS.get(kind)
    if image_format is None:
        raise ValueError(f"{kind} is not an image kind")
    quality = JPEG_QUALITY if image_format == "JPEG" else WEBP_QUALITY
    clean, thumbnail = reencode_image(
        data,
        image_format,
        max_side=IMAGE_MAX_SIDE,
        thumbnail_side=THUMBNAIL_SIDE,
        quality=quality,
        thumbnail_quality=THUMBNAIL_QUALITY,
        max_pixels=max_pixels,
    )
    return clean, thumbnail, CONTENT_TYPES[kind]
