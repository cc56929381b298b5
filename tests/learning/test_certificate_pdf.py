"""The course-completion certificate PDF: Vietnamese and Arabic text survive (checked through
poppler's pdftotext), Arabic is shaped, the page rasterises to something visible, and very
long names wrap instead of running off the page.

Needs poppler-utils (pdftotext, pdftoppm) on PATH: `apt-get install -y poppler-utils`."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import unicodedata
from pathlib import Path
from typing import Literal

import pytest
import uharfbuzz as hb
from PIL import Image

from lyceum.learning.certificate_pdf import FONT_DIR, format_issue_date, render_certificate

ISSUED = dt.date(2026, 11, 22)
CODE = "LYC-7Q2K-9XMD"
VERIFY_URL = "https://lyceum.example.org/certificates/verify/LYC-7Q2K-9XMD"

VI_NAME = "Nguyễn Thị Minh Khai"
VI_TITLE = "Lập trình Python cơ bản"
VI_INSTRUCTOR = "Trần Văn Đức"
AR_NAME = "محمد بن عبد الله"
AR_TITLE = "مقدمة في البرمجة"
AR_INSTRUCTOR = "فاطمة الزهراء"

# Directional marks and embeddings that pdftotext puts around right-to-left runs.
_BIDI_CONTROLS = dict.fromkeys(
    [0x200E, 0x200F, 0x061C, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} not found: install poppler-utils "
            "(apt-get update -qq && apt-get install -y poppler-utils)"
        )
    return path


def _render(tmp_path: Path, stem: str, **overrides: str) -> Path:
    fields = {
        "learner_name": VI_NAME,
        "course_title": VI_TITLE,
        "instructor_name": VI_INSTRUCTOR,
        "code": CODE,
        "verify_url": VERIFY_URL,
        **overrides,
    }
    pdf = render_certificate(issued_on=ISSUED, **fields)
    assert pdf.startswith(b"%PDF-")
    path = tmp_path / f"{stem}.pdf"
    path.write_bytes(pdf)
    return path


def _pdftotext(pdf: Path) -> str:
    result = subprocess.run(
        [_tool("pdftotext"), "-enc", "UTF-8", str(pdf), "-"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    text = result.stdout.decode("utf-8")
    assert "\ufffd" not in text, "replacement characters in extracted text"
    return text


def _compact(text: str, form: Literal["NFC", "NFKC"] = "NFC") -> str:
    """Normalised, with whitespace and bidi controls removed (wrapping and RTL runs vary)."""
    text = unicodedata.normalize(form, text).translate(_BIDI_CONTROLS)
    return re.sub(r"\s+", "", text)


def _assert_latin_parts(text: str) -> None:
    flat = " ".join(text.split())
    for part in (
        "Certificate of Completion",
        "This certifies that",
        "has completed the course",
        "taught by",
        f"Certificate code: {CODE}",
        format_issue_date(ISSUED),
        VERIFY_URL,
    ):
        assert part in flat, f"{part!r} missing from extracted text:\n{text}"


def _assert_arabic(expected: str, text: str) -> None:
    found = _compact(text, "NFKC")
    wanted = _compact(expected, "NFKC")
    # Shaped right-to-left text may be extracted in logical or in visual (reversed) order.
    assert wanted in found or wanted[::-1] in found, f"{expected!r} not in {text!r}"
    for letter in set(wanted):
        assert letter in found, f"Arabic letter {letter!r} missing from extracted text"


def _assert_rasterises(pdf: Path) -> Image.Image:
    prefix = pdf.with_suffix("")
    subprocess.run(
        [_tool("pdftoppm"), "-png", "-r", "50", "-singlefile", str(pdf), str(prefix)],
        capture_output=True,
        check=True,
        timeout=60,
    )
    png = prefix.with_suffix(".png")
    assert png.exists()
    assert png.stat().st_size > 5_000
    image = Image.open(png).convert("L")
    width, height = image.size
    assert width > height, "certificate should be landscape"
    assert abs(width / height - 297 / 210) < 0.02, "certificate should be A4"
    dark = sum(image.histogram()[:200])
    assert dark > 0.01 * width * height, "page is (nearly) blank"
    return image


def test_vietnamese_certificate(tmp_path: Path) -> None:
    pdf = _render(tmp_path, "vi")
    text = _pdftotext(pdf)

    _assert_latin_parts(text)
    flat = unicodedata.normalize("NFC", " ".join(text.split()))
    for part in (VI_NAME, VI_TITLE, f"taught by {VI_INSTRUCTOR}"):
        assert unicodedata.normalize("NFC", part) in flat, f"{part!r} not in {text!r}"
    _assert_rasterises(pdf)


def test_decomposed_input_is_normalised(tmp_path: Path) -> None:
    decomposed = unicodedata.normalize("NFD", VI_NAME)
    assert decomposed != VI_NAME
    text = _pdftotext(_render(tmp_path, "nfd", learner_name=decomposed))
    assert VI_NAME in unicodedata.normalize("NFC", text)


def test_arabic_certificate(tmp_path: Path) -> None:
    pdf = _render(
        tmp_path,
        "ar",
        learner_name=AR_NAME,
        course_title=AR_TITLE,
        instructor_name=AR_INSTRUCTOR,
    )
    text = _pdftotext(pdf)

    _assert_latin_parts(text)
    _assert_arabic(AR_NAME, text)
    _assert_arabic(AR_TITLE, text)
    _assert_arabic(AR_INSTRUCTOR, text)
    _assert_rasterises(pdf)


@pytest.mark.parametrize("font_file", ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf"])
def test_bundled_font_shapes_arabic_and_vietnamese(font_file: str) -> None:
    """Every character has a real glyph, and HarfBuzz picks joined (contextual) forms for
    Arabic: the shaped glyphs differ from the isolated ones the cmap gives."""
    blob = hb.Blob.from_file_path(str(FONT_DIR / font_file))
    font = hb.Font(hb.Face(blob))

    def shape(text: str) -> list[int]:
        buf = hb.Buffer()
        buf.add_str(text)
        buf.guess_segment_properties()
        hb.shape(font, buf)
        return [info.codepoint for info in buf.glyph_infos]

    for text in (VI_NAME, VI_TITLE, AR_NAME, AR_TITLE, AR_INSTRUCTOR):
        assert 0 not in shape(text), f"{font_file} has no glyph for part of {text!r}"

    word = "محمد"
    isolated = [font.get_nominal_glyph(ord(ch)) for ch in word]
    shaped = shape(word)
    assert None not in isolated
    assert list(reversed(shaped)) != isolated, "Arabic letters were not joined"


def test_very_long_name_wraps_and_stays_on_the_page(tmp_path: Path) -> None:
    words = ["Wolfgang", "Amadeus", "Theophilus", "Nguyễn-Hoàng", "Bartholomew", "Maximilian"]
    name = " ".join(words * 10)[:200].strip()
    assert len(name) >= 195
    title = "Distributed Systems, Consensus Protocols and Formal Verification in Practice " * 3

    pdf = _render(tmp_path, "long", learner_name=name, course_title=title)
    text = _pdftotext(pdf)

    assert _compact(name) in _compact(text)
    assert _compact(title) in _compact(text)
    _assert_latin_parts(text)
    _assert_rasterises(pdf)


def test_long_unbroken_name_is_kept_whole(tmp_path: Path) -> None:
    name = "X" * 200
    text = _pdftotext(_render(tmp_path, "unbroken", learner_name=name))
    assert name in _compact(text)


def test_output_is_reproducible() -> None:
    def render() -> bytes:
        return render_certificate(
            learner_name=AR_NAME,
            course_title=VI_TITLE,
            instructor_name=VI_INSTRUCTOR,
            issued_on=ISSUED,
            code=CODE,
            verify_url=VERIFY_URL,
        )

    first = render()
    assert render() == first
    assert b"D:20261122000000Z" in first
