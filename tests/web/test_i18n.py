"""English and Vietnamese throughout: every string the web app shows has a Vietnamese
translation, and a page speaks the user's language (their setting, then the browser's)."""

from __future__ import annotations

import httpx

from lyceum.web import i18n
from lyceum.web.translations import missing, source_messages, unused


def test_every_string_of_the_web_app_has_a_vietnamese_translation() -> None:
    assert len(source_messages()) > 50
    lacking = missing("vi")
    assert not lacking, (
        f"{len(lacking)} strings lack a Vietnamese translation (run scripts/i18n vi): "
        + ", ".join(f"{msgid!r} ({where})" for msgid, where in list(lacking.items())[:30])
    )


def test_no_translation_is_left_for_a_string_the_web_app_no_longer_shows() -> None:
    stale = unused("vi")
    assert not stale, f"catalogue entries no template or web route says any more: {stale}"


def test_the_language_is_negotiated() -> None:
    assert i18n.negotiate(None, None) == "en"
    assert i18n.negotiate(None, "vi-VN,vi;q=0.9,en;q=0.8") == "vi"
    assert i18n.negotiate(None, "fr-FR, en;q=0.5, vi;q=0.7") == "vi"
    assert i18n.negotiate("en", "vi") == "en"  # the account's own setting comes first
    assert i18n.negotiate("vi-VN", None) == "vi"
    assert i18n.negotiate(None, "de;q=abc, xx") == "en"
    assert i18n.direction("ar") == "rtl" and i18n.direction("vi") == "ltr"


async def test_pages_speak_the_browsers_language(client: httpx.AsyncClient) -> None:
    english = await client.get("/catalog", headers={"Accept-Language": "en"})
    vietnamese = await client.get("/catalog", headers={"Accept-Language": "vi"})
    assert '<html lang="en" dir="ltr">' in english.text
    assert '<html lang="vi" dir="ltr">' in vietnamese.text
    assert "Sắp xếp theo" in vietnamese.text and "Sort by" in english.text
