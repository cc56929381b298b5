"""The PDF receipt of a paid order (portrait A4): seller, receipt number and date, buyer,
the course with its list price, discount, total and the tax it includes, refunds so far,
and how it was paid.

Rendering is synchronous, CPU-bound work: callers on the event loop run it in a thread.

Text is set in the DejaVu Sans the project ships with the certificates
(`learning/fonts`, Bitstream Vera licence), shaped by HarfBuzz (`uharfbuzz`), as the
certificate is: Vietnamese diacritics and joined right-to-left Arabic render. Amounts
are shown with their currency's own decimals (`money.format_amount`: 12.345 KWD,
500 JPY). The output is deterministic for a given receipt: the PDF creation date is the
payment time and the file identifier a hash of the content.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import Align, XPos, YPos

from lyceum.payments.money import format_amount

__all__ = ["Receipt", "format_rate", "render_receipt"]

# The fonts shipped for the certificates (package data of `lyceum`, see pyproject.toml).
FONT_DIR = Path(__file__).resolve().parents[1] / "learning" / "fonts"
FONT_FAMILY = "DejaVuSans"
_FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}

_MARGIN = 20.0
_PAGE_W = 210.0
_TEXT_W = _PAGE_W - 2 * _MARGIN
_AMOUNT_W = 45.0
_LINE_H = 6.0

_NAVY = (24, 42, 84)
_INK = (40, 40, 40)
_MUTED = (105, 105, 105)
_RULE = (200, 200, 200)


@dataclass(frozen=True)
class Receipt:
    """Everything a receipt shows; amounts in the currency's minor units."""

    seller_name: str
    seller_address: str | None
    seller_tax_id: str | None
    receipt_number: str
    paid_at: dt.datetime
    buyer_name: str
    buyer_email: str
    course_title: str
    currency: str
    list_amount: int
    discount_amount: int
    coupon_code: str | None
    amount: int  # what was charged, tax included
    tax_name: str
    tax_rate_bp: int  # basis points: 1400 = 14%
    tax_amount: int
    refunded_amount: int
    provider: str
    payment_ref: str | None


def format_rate(basis_points: int) -> str:
    """1400 -> '14%', 1250 -> '12.5%', 0 -> '0%'."""
    rate = Decimal(basis_points).scaleb(-2).normalize()
    return f"{rate:f}%"


def format_paid_at(moment: dt.datetime) -> str:
    """'2026-12-04 16:05 UTC', independent of the process locale."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _clean(text: str) -> str:
    """NFC, and any run of whitespace (newlines, tabs) as a single space."""
    return " ".join(unicodedata.normalize("NFC", text).split())


class _ReceiptPDF(FPDF):
    def __init__(self) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.set_auto_page_break(auto=True, margin=_MARGIN)
        self.set_margins(_MARGIN, _MARGIN, _MARGIN)
        for style, filename in _FONT_FILES.items():
            self.add_font(FONT_FAMILY, style=style, fname=FONT_DIR / filename)
        self.set_text_shaping(True)

    def text_block(
        self,
        text: str,
        *,
        size: float,
        style: str = "",
        color: tuple[int, int, int] = _INK,
        align: Align = Align.L,
        width: float = _TEXT_W,
    ) -> None:
        """Wrapped lines from the left margin, the cursor left on the next line."""
        self.set_font(FONT_FAMILY, style, size)
        self.set_text_color(*color)
        self.set_x(_MARGIN)
        self.multi_cell(
            w=width,
            h=size * 0.5,
            text=text,
            align=align,
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )

    def row(
        self, label: str, amount: str, *, style: str = "", color: tuple[int, int, int] = _INK
    ) -> None:
        """A description (wrapped if long) and its amount, right-aligned on the first line."""
        self.set_font(FONT_FAMILY, style, 10)
        self.set_text_color(*color)
        top = self.get_y()
        self.set_xy(_PAGE_W - _MARGIN - _AMOUNT_W, top)
        self.cell(w=_AMOUNT_W, h=_LINE_H, text=amount, align=Align.R)
        self.set_xy(_MARGIN, top)
        self.multi_cell(
            w=_TEXT_W - _AMOUNT_W - 5.0,
            h=_LINE_H,
            text=label,
            align=Align.L,
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )

    def rule(self, gap: float = 2.0) -> None:
        self.ln(gap)
        self.set_draw_color(*_RULE)
        self.set_line_width(0.3)
        self.line(_MARGIN, self.get_y(), _PAGE_W - _MARGIN, self.get_y())
        self.ln(gap)


def render_receipt(receipt: Receipt) -> bytes:
    """Render `receipt` and return the PDF document's bytes."""
    money = receipt.currency

    def amount(value: int) -> str:
        return format_amount(value, money)

    pdf = _ReceiptPDF()
    pdf.set_creation_date(receipt.paid_at.astimezone(dt.UTC))
    pdf.set_title(f"Receipt {receipt.receipt_number}")
    pdf.set_subject(f"Receipt {receipt.receipt_number}: {_clean(receipt.course_title)}")
    pdf.set_creator(_clean(receipt.seller_name))
    pdf.set_lang("en")
    pdf.add_page()

    # Seller, and the receipt's number and date.
    pdf.text_block(_clean(receipt.seller_name), size=16, style="B", color=_NAVY)
    # Lines end with a newline, or with a literal `\n` (how a .env value writes one).
    for line in re.split(r"\n|\\n", receipt.seller_address or ""):
        if line.strip():
            pdf.text_block(_clean(line), size=9, color=_MUTED)
    if receipt.seller_tax_id:
        pdf.text_block(f"Tax ID: {_clean(receipt.seller_tax_id)}", size=9, color=_MUTED)
    pdf.ln(6)
    pdf.text_block("Receipt", size=20, style="B", color=_NAVY)
    pdf.text_block(f"Receipt number: {receipt.receipt_number}", size=10)
    pdf.text_block(f"Date: {format_paid_at(receipt.paid_at)}", size=10)
    pdf.ln(4)
    pdf.text_block("Billed to", size=10, style="B", color=_MUTED)
    pdf.text_block(_clean(receipt.buyer_name), size=10)
    pdf.text_block(_clean(receipt.buyer_email), size=10)
    pdf.ln(4)

    # What was bought and what it cost.
    pdf.row("Description", "Amount", style="B", color=_MUTED)
    pdf.rule()
    pdf.row(f"Course: {_clean(receipt.course_title)}", amount(receipt.list_amount))
    if receipt.discount_amount:
        coupon = f" (coupon {_clean(receipt.coupon_code)})" if receipt.coupon_code else ""
        pdf.row(f"Discount{coupon}", f"-{amount(receipt.discount_amount)}")
    pdf.rule()
    pdf.row("Total paid", amount(receipt.amount), style="B")
    tax_name = _clean(receipt.tax_name) or "Tax"
    pdf.row(
        f"Includes {tax_name} at {format_rate(receipt.tax_rate_bp)}",
        amount(receipt.tax_amount),
        color=_MUTED,
    )
    if receipt.refunded_amount:
        pdf.row("Refunded so far", f"-{amount(receipt.refunded_amount)}")
        pdf.row("Net paid", amount(receipt.amount - receipt.refunded_amount), style="B")
    pdf.ln(8)

    # How it was paid.
    pdf.text_block("Payment", size=10, style="B", color=_MUTED)
    pdf.text_block(f"Provider: {_clean(receipt.provider)}", size=10)
    if receipt.payment_ref:
        pdf.text_block(f"Payment reference: {_clean(receipt.payment_ref)}", size=10)
    pdf.text_block(f"Amounts in {money}.", size=9, color=_MUTED)
    return bytes(pdf.output())
