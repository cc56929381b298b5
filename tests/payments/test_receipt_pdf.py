"""The PDF receipt: Vietnamese and Arabic text survive (checked through poppler's
pdftotext), each currency's own decimals, the tax line, discounts and refunds, and the
seller's details from the settings.

Needs poppler-utils (pdftotext, pdftoppm) on PATH."""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
import unicodedata
from pathlib import Path

import pytest

from lyceum.payments.receipt_pdf import Receipt, format_rate, render_receipt
from tests.learning.test_certificate_pdf import AR_NAME, AR_TITLE, VI_NAME, VI_TITLE
from tests.learning.test_certificate_pdf import _assert_arabic as assert_arabic
from tests.learning.test_certificate_pdf import _tool as tool

PAID_AT = dt.datetime(2026, 12, 4, 16, 5, tzinfo=dt.UTC)
RECEIPT = Receipt(
    seller_name="Example Academy LLC",
    seller_address="12 Nile Street\\nCairo, Egypt",
    seller_tax_id="EG-123-456-789",
    receipt_number="2026-000123",
    paid_at=PAID_AT,
    buyer_name=VI_NAME,
    buyer_email="khai@example.org",
    course_title=VI_TITLE,
    currency="KWD",
    list_amount=15_000,
    discount_amount=2_655,
    coupon_code="WELCOME10",
    amount=12_345,
    tax_name="VAT",
    tax_rate_bp=500,
    tax_amount=588,
    refunded_amount=0,
    provider="myfatoorah",
    payment_ref="PAY-7781",
)


def pdftotext(pdf: Path) -> str:
    """The text in reading order, each printed line as one line (`-layout`: a row's
    label and amount stay together)."""
    result = subprocess.run(
        [tool("pdftotext"), "-layout", "-enc", "UTF-8", str(pdf), "-"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    text = result.stdout.decode("utf-8")
    assert "\ufffd" not in text, "replacement characters in extracted text"
    return text


def text_of(tmp_path: Path, receipt: Receipt, stem: str = "receipt") -> str:
    pdf = render_receipt(receipt)
    assert pdf.startswith(b"%PDF-")
    path = tmp_path / f"{stem}.pdf"
    path.write_bytes(pdf)
    return unicodedata.normalize("NFC", " ".join(pdftotext(path).split()))


def test_a_vietnamese_receipt_shows_every_part_with_three_decimal_dinars(tmp_path: Path) -> None:
    text = text_of(tmp_path, RECEIPT)
    for part in (
        "Example Academy LLC",
        "12 Nile Street",
        "Cairo, Egypt",
        "Tax ID: EG-123-456-789",
        "Receipt number: 2026-000123",
        "Date: 2026-12-04 16:05 UTC",
        VI_NAME,
        "khai@example.org",
        f"Course: {VI_TITLE}",
        "15.000 KWD",
        "Discount (coupon WELCOME10)",
        "-2.655 KWD",
        "Total paid 12.345 KWD",
        "Includes VAT at 5% 0.588 KWD",
        "Provider: myfatoorah",
        "Payment reference: PAY-7781",
    ):
        assert part in text, f"{part!r} missing from {text!r}"
    assert "Refunded" not in text  # nothing refunded yet


def test_an_arabic_title_and_buyer_are_shaped_and_extracted(tmp_path: Path) -> None:
    receipt = dataclasses.replace(RECEIPT, course_title=AR_TITLE, buyer_name=AR_NAME)
    path = tmp_path / "ar.pdf"
    path.write_bytes(render_receipt(receipt))
    text = pdftotext(path)
    assert_arabic(AR_TITLE, text)
    assert_arabic(AR_NAME, text)
    assert "Receipt number: 2026-000123" in " ".join(text.split())


def test_refunds_so_far_and_the_net_are_shown(tmp_path: Path) -> None:
    text = text_of(tmp_path, dataclasses.replace(RECEIPT, refunded_amount=2_000))
    assert "Refunded so far -2.000 KWD" in text
    assert "Net paid 10.345 KWD" in text


@pytest.mark.parametrize(
    ("currency", "amount", "shown"),
    [("USD", 1999, "19.99 USD"), ("JPY", 500, "500 JPY"), ("BHD", 1, "0.001 BHD")],
)
def test_amounts_use_the_currency_s_own_decimals(
    tmp_path: Path, currency: str, amount: int, shown: str
) -> None:
    receipt = dataclasses.replace(
        RECEIPT,
        currency=currency,
        list_amount=amount,
        discount_amount=0,
        amount=amount,
        tax_rate_bp=0,
        tax_amount=0,
    )
    text = text_of(tmp_path, receipt, currency)
    assert f"Total paid {shown}" in text
    assert "Discount" not in text
    assert f"Amounts in {currency}." in text


def test_a_minimal_seller_prints_no_empty_lines_and_a_named_tax(tmp_path: Path) -> None:
    receipt = dataclasses.replace(
        RECEIPT,
        seller_name="Lyceum",
        seller_address=None,
        seller_tax_id=None,
        tax_name="GST",
        tax_rate_bp=1250,
        payment_ref=None,
    )
    text = text_of(tmp_path, receipt)
    assert text.startswith("Lyceum Receipt")
    assert "Tax ID" not in text and "Payment reference" not in text
    assert "Includes GST at 12.5%" in text


def test_the_output_is_deterministic() -> None:
    assert render_receipt(RECEIPT) == render_receipt(RECEIPT)


def test_rates_are_written_as_people_write_them() -> None:
    assert [format_rate(bp) for bp in (0, 500, 1250, 1400, 1)] == [
        "0%",
        "5%",
        "12.5%",
        "14%",
        "0.01%",
    ]
