"""The web app's languages: gettext catalogues read with Babel.

`src/lyceum/web/locale/<lang>/LC_MESSAGES/*.po` hold each translation, one file per
area of the app (`common.po`, `learn.po`, ...), merged when read; English is the
source language (the msgids). Catalogues are compiled in memory when first used, so no
build step is needed. `scripts/i18n` lists the strings of the templates and the web
routes that a catalogue lacks, and `tests/web/test_i18n.py` fails while any does.

The language of a page: the signed-in user's own setting (a visitor's choice in the
`lyceum_lang` cookie), else the browser's
`Accept-Language`, else English. Right-to-left languages get `dir="rtl"` on the page.
"""

from __future__ import annotations

import functools
from importlib import resources

from babel.support import NullTranslations

from lyceum.kit.gettext import compiled

DEFAULT_LOCALE = "en"
# A signed-out visitor's choice of language (a signed-in user's is on their account).
LANGUAGE_COOKIE = "lyceum_lang"
# Languages with a catalogue (English is the source).
LOCALES: tuple[str, ...] = ("en", "vi")
LOCALE_NAMES = {"en": "English", "vi": "Tiếng Việt"}
RTL_LANGUAGES = frozenset({"ar", "fa", "he", "ur"})


@functools.cache
def translations(locale: str) -> NullTranslations:
    if locale == DEFAULT_LOCALE or locale not in LOCALES:
        return NullTranslations()
    return compiled(resources.files("lyceum.web") / "locale" / locale / "LC_MESSAGES", locale)


def _language(tag: str) -> str:
    return tag.strip().replace("_", "-").split("-", 1)[0].lower()


def negotiate(user_locale: str | None, accept_language: str | None) -> str:
    """The user's setting if we have it, else the best of `Accept-Language`, else en."""
    if user_locale and _language(user_locale) in LOCALES:
        return _language(user_locale)
    if accept_language:
        weighted: list[tuple[float, int, str]] = []
        for position, part in enumerate(accept_language.split(",")[:20]):
            tag, _, params = part.strip().partition(";")
            quality = 1.0
            if params.strip().startswith("q="):
                try:
                    quality = float(params.strip()[2:])
                except ValueError:
                    quality = 0.0
            language = _language(tag)
            if language in LOCALES and quality > 0:
                weighted.append((-quality, position, language))
        if weighted:
            return min(weighted)[2]
    return DEFAULT_LOCALE


def direction(locale: str) -> str:
    return "rtl" if _language(locale) in RTL_LANGUAGES else "ltr"
