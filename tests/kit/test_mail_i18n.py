"""Mails in the recipient's language: one set of templates, every sentence in a gettext
catalogue (read with Babel), numbers, amounts and dates written the language's way."""

from __future__ import annotations

import pytest

from lyceum.config import Settings
from lyceum.kit import mail
from lyceum.kit.mail import render
from lyceum.kit.mail.translations import TEMPLATES, missing, source_messages, unused


@pytest.mark.parametrize("language", [lang for lang in mail.LANGUAGES if lang != "en"])
def test_every_sentence_of_every_mail_has_a_translation(language: str) -> None:
    assert len(source_messages()) > 80
    lacking = missing(language)
    assert not lacking, (
        f"{len(lacking)} mail sentences lack a {language} translation (run scripts/i18n "
        f"{language}): " + ", ".join(f"{msgid!r} ({where})" for msgid, where in lacking.items())
    )
    assert not unused(language), f"catalogue entries no mail says: {unused(language)}"


def test_no_template_tree_per_language_is_left() -> None:
    assert not (TEMPLATES / "vi").exists()
    assert {path.parent.name for path in TEMPLATES.rglob("*.po")} == {"LC_MESSAGES"}


def test_every_template_speaks_vietnamese_for_every_vietnamese_locale(
    settings: Settings,
) -> None:
    for locale in ("vi", "vi-VN", "vi_VN"):
        subject, text, html = render("test_message", {"note": "x"}, settings, language=locale)
        assert subject == "Kiểm tra thư của Lyceum"
        assert "Ghi chú: x" in text and '<html lang="vi">' in html
        assert "Bạn nhận được thư này từ Lyceum" in html
    for locale in (None, "", "en", "en-GB", "fr", "zz-ZZ"):
        subject, text, html = render("test_message", {"note": "x"}, settings, language=locale)
        assert subject == "Lyceum mail check"
        assert "Note: x" in text and '<html lang="en">' in html


def test_one_environment_per_language_is_built_once() -> None:
    assert mail._environment("vi") is mail._environment("vi")
    assert mail._environment("vi") is not mail._environment("en")


def test_amounts_dates_and_counts_are_written_the_languages_way(settings: Settings) -> None:
    paid = {
        "full_name": "Lan",
        "course_title": "Quang học",
        "amount": {"value": "1234.5", "currency": "KWD"},
        "receipt_number": "2026-000001",
        "receipt_url": "http://lyceum.test/r",
    }
    _, text, html = render("order_paid", paid, settings)
    assert "Amount paid: 1,234.500 KWD" in text and "<strong>1,234.500 KWD</strong>" in html
    _, text, html = render("order_paid", paid, settings, language="vi")
    assert "Số tiền đã thanh toán: 1.234,500 KWD" in text

    refunded = paid | {
        "refunded_amount": {"value": "100.00", "currency": "USD"},
        "amount": {"value": "250.00", "currency": "USD"},
        "full": False,
    }
    subject, text, _ = render("order_refunded", refunded, settings, language="vi")
    assert subject == "Hoàn tiền một phần đơn hàng khóa học Quang học"
    assert "Đã hoàn đến nay: 100,00 USD trên 250,00 USD" in text

    due = {
        "full_name": "Lan",
        "item_title": "Bài kiểm tra 1",
        "course_title": "Quang học",
        "due_at": "2026-12-10T06:00:00+00:00",
        "url": "http://lyceum.test/q",
    }
    assert "closes at Dec 10, 2026, 6:00\u202fAM UTC." in render("due_soon", due, settings)[1]
    assert (
        "sẽ đóng lúc 06:00 10 thg 12, 2026 UTC."
        in render("due_soon", due, settings, language="vi")[1]
    )

    week = {
        "full_name": "Lan",
        "week_first": "2026-11-30",
        "week_last": "2026-12-06",
        "courses": [
            {
                "title": "Quang học",
                "percent": 12.5,
                "next_lesson_title": None,
                "next_lesson_url": None,
                "lessons_completed_this_week": 1,
            },
            {
                "title": "Đại số",
                "percent": 50.0,
                "next_lesson_title": "Bài 2",
                "next_lesson_url": "http://lyceum.test/l",
                "lessons_completed_this_week": 3,
            },
        ],
    }
    subject, text, _ = render("weekly_progress", week, settings)
    assert subject == "Your week on Lyceum: Nov 30 \u2013 Dec 6, 2026"
    assert "- Quang học: 12.5% done, 1 lesson this week" in text
    assert "- Đại số: 50% done, 3 lessons this week" in text
    subject, text, html = render("weekly_progress", week, settings, language="vi")
    assert subject == "Tuần học của bạn trên Lyceum: 30 thg 11 \u2013 6 thg 12, 2026"
    assert "- Quang học: hoàn thành 12,5%, 1 bài học trong tuần này" in text
    assert 'Tiếp theo: <a href="http://lyceum.test/l">Bài 2</a>' in html


def test_a_mail_queued_with_the_older_context_still_renders(settings: Settings) -> None:
    """Contexts are stored with the notification: one written before amounts, dates and
    weeks were passed raw (already written out in English) renders as it is."""
    old = {
        "full_name": "Lan",
        "course_title": "Optics",
        "amount": "12.345 KWD",
        "receipt_number": "2026-000001",
        "receipt_url": "http://lyceum.test/r",
    }
    assert (
        "Số tiền đã thanh toán: 12.345 KWD" in render("order_paid", old, settings, language="vi")[1]
    )
    due = {
        "full_name": "Lan",
        "item_title": "Quiz",
        "course_title": "Optics",
        "due_at": "2026-12-10 06:00 UTC",
        "url": "http://lyceum.test/q",
    }
    assert "closes at 2026-12-10 06:00 UTC." in render("due_soon", due, settings)[1]
    week = {"full_name": "Lan", "week_label": "30 November to 6 December 2026", "courses": []}
    assert render("weekly_progress", week, settings)[0].endswith("30 November to 6 December 2026")


def test_a_translation_cannot_unescape_a_value(settings: Settings) -> None:
    """The values of a translated sentence are escaped in HTML and kept on one line."""
    hostile = "<b>x</b>\r\nBcc: a@b.c"
    _, text, html = render(
        "course_enrolled",
        {"full_name": hostile, "course_title": hostile, "course_url": "http://lyceum.test/c"},
        settings,
        language="vi",
    )
    assert "<b>" not in html and "Bạn đã đăng ký khóa học <strong>&lt;b&gt;x&lt;/b&gt; Bcc:" in html
    assert "\nBcc" not in text and 'khóa học "<b>x</b> Bcc: a@b.c"' in text
