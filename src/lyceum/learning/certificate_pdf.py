"""Course-completion certificates rendered as a one-page PDF (landscape A4).

Rendering is synchronous, CPU-bound work: callers on the event loop run it in a thread.

Text is set in the bundled DejaVu Sans (``fonts/``, Bitstream Vera licence, see
``fonts/LICENSE-DejaVu.txt``), which covers Latin with Vietnamese diacritics and Arabic.
Text shaping goes through HarfBuzz (the ``uharfbuzz`` package) so that Arabic letters take
their joined forms and right-to-left runs are laid out in visual order, also inside
left-to-right sentences such as "taught by <Arabic name>".

Long names and titles first shrink to fit the line, then wrap over several lines; as a last
resort (text far longer than any real name or title) they are cut with an ellipsis, so no text
ever leaves the page. The output is deterministic for given arguments: the PDF creation date
is the issue date at midnight UTC and the file identifier is a hash of the content.
"""

from __future__ import annotations

import datetime
import io
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import segno
from fpdf import FPDF
from fpdf.enums import Align, MethodReturnValue

__all__ = ["render_certificate"]

FONT_DIR = Path(__file__).resolve().parent / "fonts"
FONT_FAMILY = "DejaVuSans"
_FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}

_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

# Page geometry, in millimetres (landscape A4 is 297 x 210).
_PAGE_W = 297.0
_PAGE_H = 210.0
_OUTER_FRAME = 8.0
_INNER_FRAME = 11.0
_TEXT_MARGIN = 28.0
_TEXT_W = _PAGE_W - 2 * _TEXT_MARGIN
_QR_SIZE = 30.0
_PT = 25.4 / 72  # one typographic point in millimetres
_LINE_FACTOR = 1.18  # line height as a multiple of the font size

# Colours (RGB).
_NAVY = (24, 42, 84)
_GOLD = (176, 141, 67)
_INK = (40, 40, 40)
_MUTED = (105, 105, 105)


def format_issue_date(day: datetime.date) -> str:
    """'22 November 2026': English month names, independent of the process locale."""
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


@dataclass(frozen=True)
class _Fitted:
    size: float
    lines: list[str]

    @property
    def height(self) -> float:
        return len(self.lines) * self.size * _PT * _LINE_FACTOR


class _CertificatePDF(FPDF):
    def __init__(self) -> None:
        super().__init__(orientation="landscape", unit="mm", format="A4")
        self.set_auto_page_break(auto=False)
        self.set_margins(_TEXT_MARGIN, _TEXT_MARGIN, _TEXT_MARGIN)
        self.c_margin = 0
        for style, filename in _FONT_FILES.items():
            self.add_font(FONT_FAMILY, style=style, fname=FONT_DIR / filename)
        self.set_text_shaping(True)

    # -- text fitting -------------------------------------------------------------------------

    def _wrap(self, text: str, width: float) -> list[str]:
        lines = self.multi_cell(
            w=width,
            h=self.font_size * _LINE_FACTOR,
            text=text,
            align=Align.C,
            dry_run=True,
            output=MethodReturnValue.LINES,
        )
        assert isinstance(lines, list)
        return [str(line) for line in lines]

    def fit(
        self,
        text: str,
        *,
        style: str,
        max_size: float,
        min_single_size: float,
        min_size: float,
        max_height: float,
        width: float = _TEXT_W,
    ) -> _Fitted:
        """Largest size at which `text` fits: one line down to `min_single_size`, then wrapped
        lines within `max_height` down to `min_size`; cut with an ellipsis beyond that."""
        size = max_size
        while size >= min_single_size:
            self.set_font(FONT_FAMILY, style, size)
            if self.get_string_width(text) <= width:
                return _Fitted(size, [text])
            size -= 1
        size = min_single_size
        while size >= min_size:
            self.set_font(FONT_FAMILY, style, size)
            fitted = _Fitted(size, self._wrap(text, width))
            if fitted.height <= max_height:
                return fitted
            size -= 1
        # Pathologically long text: keep as many whole lines as fit at the smallest size.
        self.set_font(FONT_FAMILY, style, min_size)
        max_lines = max(1, int(max_height // (min_size * _PT * _LINE_FACTOR)))
        lines = self._wrap(text, width)[:max_lines]
        last = lines[-1]
        while last and self.get_string_width(last + " …") > width:
            last = last[:-1]
        lines[-1] = last.rstrip() + " …"
        return _Fitted(min_size, lines)

    def draw(
        self,
        fitted: _Fitted,
        *,
        style: str,
        color: tuple[int, int, int],
        y: float,
        x: float = _TEXT_MARGIN,
        width: float = _TEXT_W,
        align: Align = Align.C,
    ) -> float:
        """Draw pre-fitted lines starting at `y`; returns the y just below them."""
        self.set_font(FONT_FAMILY, style, fitted.size)
        self.set_text_color(*color)
        line_h = fitted.size * _PT * _LINE_FACTOR
        for line in fitted.lines:
            self.set_xy(x, y)
            self.cell(w=width, h=line_h, text=line, align=align)
            y += line_h
        return y

    def fit_line(
        self,
        text: str,
        *,
        style: str = "",
        size: float,
        min_size: float | None = None,
        max_height: float | None = None,
    ) -> _Fitted:
        """Fixed-text line: `size`, shrinking to `min_size` then wrapping if it must."""
        smallest = min_size if min_size is not None else size
        return self.fit(
            text,
            style=style,
            max_size=size,
            min_single_size=smallest,
            min_size=smallest,
            max_height=max_height if max_height is not None else 3 * size * _PT * _LINE_FACTOR,
        )

    # -- decoration ---------------------------------------------------------------------------

    def frame(self) -> None:
        self.set_draw_color(*_NAVY)
        self.set_line_width(1.2)
        self.rect(
            _OUTER_FRAME, _OUTER_FRAME, _PAGE_W - 2 * _OUTER_FRAME, _PAGE_H - 2 * _OUTER_FRAME
        )
        self.set_draw_color(*_GOLD)
        self.set_line_width(0.4)
        self.rect(
            _INNER_FRAME, _INNER_FRAME, _PAGE_W - 2 * _INNER_FRAME, _PAGE_H - 2 * _INNER_FRAME
        )
        # Small gold diamonds in the corners of the inner frame.
        self.set_fill_color(*_GOLD)
        for cx, cy in (
            (_INNER_FRAME, _INNER_FRAME),
            (_PAGE_W - _INNER_FRAME, _INNER_FRAME),
            (_INNER_FRAME, _PAGE_H - _INNER_FRAME),
            (_PAGE_W - _INNER_FRAME, _PAGE_H - _INNER_FRAME),
        ):
            d = 2.2
            self.polygon([(cx - d, cy), (cx, cy - d), (cx + d, cy), (cx, cy + d)], style="F")

    def rule(self, y: float, half_width: float) -> None:
        self.set_draw_color(*_GOLD)
        self.set_line_width(0.5)
        self.line(_PAGE_W / 2 - half_width, y, _PAGE_W / 2 + half_width, y)


def _clean(text: str) -> str:
    """NFC, and any run of whitespace (newlines, tabs) as a single space."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def _qr_png(data: str) -> io.BytesIO:
    buf = io.BytesIO()
    segno.make(data, error="m", micro=False).save(
        buf, kind="png", scale=10, border=0, dark="#182a54"
    )
    buf.seek(0)
    return buf


def render_certificate(
    *,
    learner_name: str,
    course_title: str,
    instructor_name: str,
    issued_on: datetime.date,
    code: str,
    verify_url: str,
) -> bytes:
    """Render a course-completion certificate and return the PDF document's bytes."""
    learner_name = _clean(learner_name)
    course_title = _clean(course_title)
    instructor_name = _clean(instructor_name)
    code = _clean(code)
    verify_url = verify_url.strip()

    pdf = _CertificatePDF()
    pdf.set_creation_date(
        datetime.datetime(issued_on.year, issued_on.month, issued_on.day, tzinfo=datetime.UTC)
    )
    pdf.set_title(f"Certificate of Completion: {course_title}")
    pdf.set_subject(f"{learner_name} has completed the course {course_title}")
    pdf.set_creator("Lyceum")
    pdf.set_lang("en")
    pdf.add_page()
    pdf.frame()

    # Lower band geometry: the QR code sits in the bottom-right corner of the text area.
    qr_x = _PAGE_W - _TEXT_MARGIN - _QR_SIZE
    qr_y = _PAGE_H - _TEXT_MARGIN - _QR_SIZE - 4.0

    # Upper part: the statement, fitted first, then centred vertically above the lower band.
    heading = pdf.fit_line("Certificate of Completion", style="B", size=30, min_size=16)
    name = pdf.fit(
        learner_name, style="B", max_size=34, min_single_size=20, min_size=11, max_height=30
    )
    title = pdf.fit(
        course_title, style="B", max_size=22, min_single_size=15, min_size=10, max_height=22
    )
    taught_by = pdf.fit_line(f"taught by {instructor_name}", size=13, min_size=8, max_height=12)
    statement: list[tuple[float, _Fitted, str, tuple[int, int, int]]] = [
        # (space above, fitted text, font style, colour)
        (0.0, heading, "B", _NAVY),
        (11.0, pdf.fit_line("This certifies that", size=13), "", _MUTED),
        (4.0, name, "B", _NAVY),
        (4.0, pdf.fit_line("has completed the course", size=13), "", _MUTED),
        (3.0, title, "B", _INK),
        (3.0, taught_by, "", _INK),
    ]
    top, bottom = _INNER_FRAME + 12.0, qr_y - 6.0
    total = sum(gap + fitted.height for gap, fitted, _, _ in statement)
    y = top + max(0.0, (bottom - top - total) / 2)
    for index, (gap, fitted, style, color) in enumerate(statement):
        y = pdf.draw(fitted, style=style, color=color, y=y + gap)
        if index == 0:
            pdf.rule(y + 4.0, 40)

    # Lower band: issue date and code on the left, QR code and URL on the right.
    pdf.image(_qr_png(verify_url), x=qr_x, y=qr_y, w=_QR_SIZE, h=_QR_SIZE)

    # The URL, centred under the QR code where it fits, else right-aligned to the text margin.
    url_w = _PAGE_W - 2 * _TEXT_MARGIN - 100.0
    url = pdf.fit(
        verify_url, style="", max_size=7, min_single_size=5, min_size=5, max_height=7.0, width=url_w
    )
    pdf.set_font(FONT_FAMILY, "", url.size)
    text_w = max(pdf.get_string_width(line) for line in url.lines)
    right = _PAGE_W - _TEXT_MARGIN
    url_x = min(qr_x + _QR_SIZE / 2 - text_w / 2, right - text_w)
    pdf.draw(url, style="", color=_MUTED, y=qr_y + _QR_SIZE + 1.5, x=url_x, width=text_w)

    left_w = qr_x - _TEXT_MARGIN - 10.0
    band_y = qr_y + _QR_SIZE - 15.0
    pdf.set_draw_color(*_GOLD)
    pdf.set_line_width(0.3)
    pdf.line(_TEXT_MARGIN, band_y - 3.0, _TEXT_MARGIN + 70.0, band_y - 3.0)
    for text, size, color in (
        (f"Issued on {format_issue_date(issued_on)}", 11.0, _INK),
        (f"Certificate code: {code}", 10.0, _MUTED),
    ):
        fitted = pdf.fit(
            text,
            style="",
            max_size=size,
            min_single_size=6,
            min_size=6,
            max_height=6.0,
            width=left_w,
        )
        band_y = pdf.draw(fitted, style="", color=color, y=band_y, width=left_w, align=Align.L)
        band_y += 1.5

    return bytes(pdf.output())
