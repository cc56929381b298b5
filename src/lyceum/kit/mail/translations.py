"""Which sentences of the mails a catalogue lacks (used by `scripts/i18n` and the tests).

Sentences are read from the mail templates (`{{ _("...") }}`, `ngettext`, `{% trans %}`)
with Babel's Jinja2 extractor; catalogues are
`templates/mail/locale/<language>/LC_MESSAGES/*.po`."""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "mail"
_JINJA = {"extensions": "jinja2.ext.i18n"}


def catalogue_folder(language: str) -> Path:
    return TEMPLATES / "locale" / language / "LC_MESSAGES"


def source_messages() -> dict[str, str]:
    """msgid -> "file:line" of its first use, for every sentence a mail says."""
    found: dict[str, str] = {}
    for filename, line, message, _comments, _context in extract_from_dir(
        str(TEMPLATES),
        method_map=[("**.html", "jinja2"), ("**.txt", "jinja2")],
        options_map={"**.html": _JINJA, "**.txt": _JINJA},
    ):
        # ngettext gives (singular, plural): catalogues key them by the singular.
        msgid = message[0] if isinstance(message, tuple) else message
        if msgid:
            found.setdefault(msgid, f"mail/{filename}:{line}")
    return found


def catalogue(language: str) -> Catalog:
    merged = Catalog(locale=language)
    for path in sorted(catalogue_folder(language).glob("*.po")):
        with path.open("rb") as handle:
            for message in read_po(handle, locale=language):
                if message.id and message.id not in merged:
                    merged[message.id] = message
    return merged


def missing(language: str) -> dict[str, str]:
    """The sentences used but not translated (or marked fuzzy) for `language`:
    msgid -> where it is used."""
    catalog = catalogue(language)
    lacking = {}
    for msgid, where in source_messages().items():
        message = catalog.get(msgid)
        strings = (
            ()
            if message is None or message.fuzzy
            else (message.string if isinstance(message.string, tuple) else (message.string,))
        )
        if not strings or not all(strings):
            lacking[msgid] = where
    return lacking


def unused(language: str) -> list[str]:
    """Catalogue entries no template says any more (a sentence was reworded)."""
    used = source_messages()
    ids = (message.id for message in catalogue(language) if message.id)
    return sorted(
        msgid for msgid in (i if isinstance(i, str) else i[0] for i in ids) if msgid not in used
    )
