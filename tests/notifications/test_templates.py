"""Every notification mail renders, HTML and text, in English and Vietnamese."""

from __future__ import annotations

from typing import Any

import pytest

from lyceum.config import Settings
from lyceum.kit.mail import language_of, render

URL = "http://lyceum.test/api/v1/courses/x"
CONTEXTS: dict[str, dict[str, Any]] = {
    "welcome": {"full_name": "Ada", "app_url": URL},
    "verify_email": {"full_name": "Ada", "link": URL},
    "password_reset": {"full_name": "Ada", "link": URL},
    "course_enrolled": {"full_name": "Ada", "course_title": "Python", "course_url": URL},
    "certificate_issued": {
        "full_name": "Ada",
        "course_title": "Python",
        "download_url": URL,
        "code": "ABC",
        "verify_url": URL,
    },
    "grade_released": {
        "full_name": "Ada",
        "course_title": "Python",
        "score": "8",
        "max_score": "10",
        "url": URL,
    },
    "due_soon": {
        "full_name": "Ada",
        "item_title": "Quiz 1",
        "course_title": "Python",
        "due_at": "2026-12-05 09:00 UTC",
        "url": URL,
    },
    "announcement": {
        "full_name": "Ada",
        "course_title": "Python",
        "title": "Exam moved",
        "body": "It is on **Friday**",
        "url": URL,
        "unsubscribe_url": "http://lyceum.test/api/v1/notifications/unsubscribe?token=t",
    },
    "weekly_progress": {
        "full_name": "Ada",
        "week_label": "30 Nov - 6 Dec 2026",
        "courses": [
            {
                "title": "Python",
                "percent": 40,
                "next_lesson_title": "Loops",
                "next_lesson_url": URL,
                "lessons_completed_this_week": 2,
            },
            {
                "title": "SQL",
                "percent": 100,
                "next_lesson_title": None,
                "next_lesson_url": None,
                "lessons_completed_this_week": 0,
            },
        ],
    },
    "order_paid": {
        "full_name": "Ada",
        "course_title": "Python",
        "amount": "12.345 KWD",
        "receipt_number": "2026-000001",
        "receipt_url": URL,
    },
    "order_refunded": {
        "full_name": "Ada",
        "course_title": "Python",
        "amount": "12.345 KWD",
        "refunded_amount": "2.000 KWD",
        "receipt_number": "2026-000001",
        "receipt_url": URL,
        "full": False,
    },
    "inactivity_nudge": {
        "full_name": "Ada",
        "course_title": "Python",
        "next_lesson_title": None,
        "url": URL,
    },
}


@pytest.mark.parametrize("template", sorted(CONTEXTS))
@pytest.mark.parametrize("language", [None, "vi"])
def test_every_template_renders_in_both_languages(
    settings: Settings, template: str, language: str | None
) -> None:
    subject, text, html = render(template, CONTEXTS[template], settings, language=language)
    assert subject and "Ada" in text and "Ada" in html
    assert ("Xin chào" in text or "Chúc mừng" in text) is (language == "vi")
    assert ('lang="vi"' in html) is (language == "vi")


def test_the_unsubscribe_link_shows_only_when_given(settings: Settings) -> None:
    _, text, html = render("announcement", CONTEXTS["announcement"], settings)
    assert "unsubscribe?token=t" in text and "unsubscribe?token=t" in html
    _, text, html = render("grade_released", CONTEXTS["grade_released"], settings)
    assert "nsubscribe" not in text and "nsubscribe" not in html


def test_locales_choose_a_language_and_fall_back_to_english(settings: Settings) -> None:
    assert language_of("vi-VN") == "vi" and language_of("vi") == "vi"
    assert language_of("vi_VN") == "vi" and language_of("VI") == "vi"
    assert language_of("en") is None and language_of("fr") is None and language_of(None) is None
    # A language without a catalogue gets English; a regional locale its language.
    for locale, expected in (("fr-FR", "Lyceum mail check"), ("vi-VN", "Kiểm tra thư của Lyceum")):
        subject, _, _ = render("test_message", {"note": "x"}, settings, language=locale)
        assert subject == expected
