"""Upload inspection: extension and content must agree, archives are checked before they
are opened, file names are for display only, images lose their metadata."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import pytest
from docx import Document
from fpdf import FPDF
from PIL import ExifTags, Image, PngImagePlugin

from lyceum.kit.documents.extraction import ExtractionError, extract
from lyceum.kit.documents.filetypes import (
    CONTENT_TYPES,
    DOCX_MAX_ENTRIES,
    FileKind,
    Inspected,
    inspect_upload,
    prepare_image,
    sanitise_filename,
)
from lyceum.kit.errors import Invalid

ELF = b"\x7fELF\x02\x01\x01\x00" + bytes(8) + b"\x02\x00\x3e\x00" + bytes(200)
PE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + bytes(48) + b"PE\x00\x00"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
XML_SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>'
VIETNAMESE = "Tiếng Việt có dấu: Nguyễn Thị Minh Khai học lập trình Python."


def _pdf(*pages: str) -> bytes:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


def _docx() -> bytes:
    document = Document()
    document.add_heading("Cells", level=1)
    document.add_paragraph("The cell is the basic unit of life.")
    output = io.BytesIO()
    document.save(output)
    return output.getvalue()


def _image(image_format: str, size: tuple[int, int] = (64, 48), **save: object) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    output = io.BytesIO()
    image.save(output, format=image_format, **save)
    return output.getvalue()


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares its size but holds almost no pixels: cheap to build, and
    enough to fool anything that trusts the header."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )


def _refused(data: bytes, filename: str, slug: str = "unsupported-file") -> Invalid:
    with pytest.raises(Invalid) as caught:
        inspect_upload(data, filename)
    assert caught.value.slug == slug, caught.value.detail
    assert caught.value.status == 422
    assert caught.value.field == "body.file"
    return caught.value


# --- accepted --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "kind"),
    [
        ("notes.pdf", FileKind.pdf),
        ("Notes.PDF", FileKind.pdf),
    ],
)
def test_a_real_pdf_is_accepted(filename: str, kind: FileKind) -> None:
    inspected = inspect_upload(_pdf("Hello"), filename)
    assert inspected == Inspected(kind, "application/pdf", ".pdf", filename)


def test_a_real_docx_is_accepted() -> None:
    inspected = inspect_upload(_docx(), "Lecture 1.docx")
    assert inspected.kind is FileKind.docx
    assert inspected.content_type == CONTENT_TYPES[FileKind.docx]
    assert inspected.display_name == "Lecture 1.docx"


@pytest.mark.parametrize(
    ("image_format", "filename", "kind"),
    [
        ("PNG", "diagram.png", FileKind.png),
        ("JPEG", "photo.jpg", FileKind.jpeg),
        ("JPEG", "photo.JPEG", FileKind.jpeg),
        ("WEBP", "figure.webp", FileKind.webp),
    ],
)
def test_real_images_are_accepted(image_format: str, filename: str, kind: FileKind) -> None:
    inspected = inspect_upload(_image(image_format), filename)
    assert inspected.kind is kind
    assert inspected.extension == filename[filename.rindex(".") :].lower()
    assert inspected.content_type == CONTENT_TYPES[kind]


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
@pytest.mark.parametrize(
    ("filename", "kind"),
    [
        ("readme.txt", FileKind.text),
        ("guide.md", FileKind.markdown),
        ("a.markdown", FileKind.markdown),
    ],
)
def test_utf8_text_and_markdown_are_accepted(bom: bytes, filename: str, kind: FileKind) -> None:
    data = bom + f"# Bài 1\n\n{VIETNAMESE}\n\tTabs and\r\nCRLF are fine.\n".encode()
    inspected = inspect_upload(data, filename)
    assert inspected.kind is kind
    assert inspected.content_type.endswith("; charset=utf-8")


def test_text_that_merely_starts_like_a_binary_signature_is_text() -> None:
    # "MZ" is an EXE signature and "BM" a bitmap's; prose may start with either.
    assert inspect_upload(b"MZ Motors history notes.", "mz.txt").kind is FileKind.text
    assert inspect_upload(b"BMW engines, an overview.", "bmw.txt").kind is FileKind.text


# --- refused: content and extension disagree ------------------------------------------


@pytest.mark.parametrize("filename", ["report.pdf", "notes.txt", "notes.md", "image.png"])
@pytest.mark.parametrize(("data", "what"), [(ELF, "Linux executable"), (PE, "Windows executable")])
def test_renamed_executables_are_refused(filename: str, data: bytes, what: str) -> None:
    error = _refused(data, filename)
    assert what in error.detail
    assert filename[filename.rindex(".") :] in error.detail


def test_a_pdf_named_docx_is_refused() -> None:
    error = _refused(_pdf("Hello"), "essay.docx")
    assert "named .docx" in error.detail
    assert "PDF" in error.detail


def test_png_bytes_named_pdf_are_refused() -> None:
    error = _refused(_image("PNG"), "scan.pdf")
    assert "PNG image" in error.detail


def test_jpeg_bytes_named_png_are_refused() -> None:
    assert "JPEG image" in _refused(_image("JPEG"), "photo.png").detail


def test_a_zip_named_docx_that_is_no_word_document_is_refused() -> None:
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w") as archive:
        archive.writestr("hello.txt", "hi")
    assert "not a Word document" in _refused(output.getvalue(), "x.docx").detail


def test_a_truncated_docx_is_refused() -> None:
    assert "damaged" in _refused(_docx()[:300], "x.docx").detail


@pytest.mark.parametrize(
    "filename", ["setup.exe", "archive.zip", "page.html", "page.htm", "script.js", "noext", "x.doc"]
)
def test_other_extensions_are_refused(filename: str) -> None:
    error = _refused(b"whatever", filename)
    assert "not accepted" in error.detail


@pytest.mark.parametrize(
    ("data", "filename"),
    [
        (SVG, "logo.svg"),
        (SVG, "logo.SVG"),
        (SVG, "logo.png"),
        (XML_SVG, "logo.png"),
        (XML_SVG, "x.txt"),
        (SVG, "x.md"),
    ],
)
def test_svg_is_refused_whatever_its_name(data: bytes, filename: str) -> None:
    assert "SVG files are not accepted" in _refused(data, filename).detail


def test_html_named_txt_is_refused() -> None:
    assert "HTML" in _refused(b"<!DOCTYPE html><html><script></script></html>", "x.txt").detail


@pytest.mark.parametrize(
    "data",
    [
        "Latin-1 caf\xe9".encode("latin-1"),
        "UTF-16 text".encode("utf-16"),
        b"text with a NUL\x00 inside",
        bytes(range(1, 32)) * 4,
    ],
)
def test_text_that_is_not_clean_utf8_is_refused(data: bytes) -> None:
    _refused(data, "notes.txt")


def test_an_empty_file_is_refused() -> None:
    _refused(b"", "empty.txt", slug="empty-file")


# --- refused: archives that would be expensive to open ---------------------------------


@pytest.fixture(scope="module")
def zip_bomb() -> bytes:
    """A docx-shaped zip whose document.xml expands from ~200 KB to 200 MB of zeros."""
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        block = bytes(1024 * 1024)
        with archive.open("word/document.xml", "w", force_zip64=True) as entry:
            for _ in range(200):
                entry.write(block)
    return output.getvalue()


def _forbid_opening_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on, fail if anything opens an archive entry: the check must need only
    the central directory."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("an archive entry was opened")

    monkeypatch.setattr(zipfile.ZipFile, "open", refuse)


def test_a_zip_bomb_disguised_as_docx_is_refused_unopened(
    zip_bomb: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    _forbid_opening_entries(monkeypatch)
    assert len(zip_bomb) < 1024 * 1024
    error = _refused(zip_bomb, "thesis.docx", slug="unsafe-archive")
    assert "200 MB" in error.detail


def test_a_docx_part_compressed_implausibly_well_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", bytes(10 * 1024 * 1024))
    _forbid_opening_entries(monkeypatch)
    error = _refused(output.getvalue(), "small-bomb.docx", slug="unsafe-archive")
    assert "word/document.xml" in error.detail


def test_a_docx_with_too_many_entries_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
        for index in range(DOCX_MAX_ENTRIES):
            archive.writestr(f"word/media/{index}.bin", b"")
    _forbid_opening_entries(monkeypatch)
    error = _refused(output.getvalue(), "many.docx", slug="unsafe-archive")
    assert str(DOCX_MAX_ENTRIES + 2) in error.detail


def test_a_corrupt_pdf_passes_the_type_check_but_fails_extraction() -> None:
    data = b"%PDF-1.7\n" + bytes(range(256)) * 8 + b"\n%%EOF"
    inspected = inspect_upload(data, "broken.pdf")
    assert inspected.kind is FileKind.pdf
    with pytest.raises(ExtractionError, match="The PDF could not be read"):
        extract(inspected.kind, data)


# --- file names ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd.pdf",
        "..\\..\\windows\\system32.pdf",
        "notes/../../x.pdf",
        "folder/notes.pdf",
        "C:\\Users\\me\\notes.pdf",
        "notes.pdf\x00.exe",
        "\x00",
        "..",
        "...",
        " . . ",
        "",
        "\x01\x02",
    ],
)
def test_dangerous_or_empty_filenames_are_refused(name: str) -> None:
    with pytest.raises(Invalid) as caught:
        sanitise_filename(name)
    assert caught.value.slug == "invalid-filename"
    assert caught.value.field == "body.file"


def test_inspect_refuses_a_traversal_filename_even_with_good_content() -> None:
    _refused(_pdf("Hello"), "../notes.pdf", slug="invalid-filename")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("notes.pdf", "notes.pdf"),
        ("  ..hidden   lecture\tnotes.pdf ", "hidden lecture notes.pdf"),
        ("bell\x07 and\x1b escape.txt", "bell and escape.txt"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),
        ("Nguye\u0302\u0303n.md", "Nguy\u1ec5n.md"),
        ("Bài giảng 1.docx", "Bài giảng 1.docx"),
    ],
)
def test_filenames_are_cleaned_for_display(name: str, expected: str) -> None:
    assert sanitise_filename(name) == expected


def test_long_filenames_are_capped_keeping_the_extension() -> None:
    cleaned = sanitise_filename("a" * 500 + ".pdf")
    assert len(cleaned) == 200
    assert cleaned.endswith("aaa.pdf")


# --- images ----------------------------------------------------------------------------


def _jpeg_with_gps_and_rotation() -> bytes:
    image = Image.new("RGB", (200, 100), (10, 120, 200))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # the camera was turned: display rotated 90°
    exif[ExifTags.Base.Make] = "PhoneCo"
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (21.0, 1.0, 42.0),
        ExifTags.GPS.GPSLongitudeRef: "E",
        ExifTags.GPS.GPSLongitude: (105.0, 51.0, 12.0),
    }
    output = io.BytesIO()
    image.save(output, format="JPEG", exif=exif)
    return output.getvalue()


def test_jpeg_loses_exif_and_gps_but_keeps_its_orientation() -> None:
    original = _jpeg_with_gps_and_rotation()
    with Image.open(io.BytesIO(original)) as before:
        assert before.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    clean, thumbnail, content_type = prepare_image(original, FileKind.jpeg)
    assert content_type == "image/jpeg"
    assert b"PhoneCo" not in clean
    with Image.open(io.BytesIO(clean)) as after:
        assert after.format == "JPEG"
        assert "exif" not in after.info
        assert not after.getexif()
        assert after.size == (100, 200)  # rotated upright, as the viewer saw it
    with Image.open(io.BytesIO(thumbnail)) as thumb:
        assert thumb.format == "WEBP"
        assert thumb.size == (100, 200)
        assert "exif" not in thumb.info


def test_png_stays_png_without_its_text_chunks_and_keeps_transparency() -> None:
    image = Image.new("RGBA", (300, 150), (0, 0, 0, 0))
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Secret Person")
    output = io.BytesIO()
    image.save(output, format="PNG", pnginfo=info)
    clean, _, content_type = prepare_image(output.getvalue(), FileKind.png)
    assert content_type == "image/png"
    assert b"Secret Person" not in clean
    with Image.open(io.BytesIO(clean)) as after:
        assert after.format == "PNG"
        assert after.mode == "RGBA"
        assert after.size == (300, 150)
        assert "Author" not in after.info


def test_large_images_shrink_keeping_their_aspect_ratio() -> None:
    clean, thumbnail, content_type = prepare_image(_image("WEBP", (5000, 1000)), FileKind.webp)
    assert content_type == "image/webp"
    with Image.open(io.BytesIO(clean)) as after:
        assert after.format == "WEBP"
        assert after.size == (4096, 819)
    with Image.open(io.BytesIO(thumbnail)) as thumb:
        assert thumb.size == (320, 64)


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"garbage" * 20, FileKind.png),
        (_image("JPEG")[:200], FileKind.jpeg),
        (_image("PNG"), FileKind.jpeg),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 nonsense", FileKind.webp),
    ],
)
def test_corrupt_or_mislabelled_images_are_refused(data: bytes, kind: FileKind) -> None:
    with pytest.raises(Invalid) as caught:
        prepare_image(data, kind)
    assert caught.value.slug == "unsupported-file"


@pytest.mark.parametrize(("width", "height"), [(7000, 7000), (10_000, 10_000), (30_000, 30_000)])
def test_decompression_bombs_are_refused(width: int, height: int) -> None:
    with pytest.raises(Invalid) as caught:
        prepare_image(_png_header(width, height), FileKind.png)
    assert caught.value.slug == "image-too-large"


def test_prepare_image_only_takes_image_kinds() -> None:
    assert {kind for kind in FileKind if kind.is_image} == {
        FileKind.png,
        FileKind.jpeg,
        FileKind.webp,
    }
    with pytest.raises(ValueError, match="not an image"):
        prepare_image(b"%PDF-", FileKind.pdf)
