"""Which sentences of the mails a catalogue lacks (used by `scripts/i18n` and the tests).

Sentences are read from the mail templates (`{{ _("...") }}`, `ngettext`, `{% trans %}`)
with Babel's Jinja2 extractor; catalogues are
`templates/mail/locale/<language>/LC_MESSAGES/*.po`."""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir

from lyceum.kit.gettext import first_uses, merged_catalogue, untranslated, unused_entries

TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "mail"
_JINJA = {"extensions": "jinja2.ext.i18n"}


def catalogue_folder(language: str) -> Path:
    return TEMPLATES / "locale" / language / "LC_MESSAGES"


def source_messages() -> dict[str, str]:
    """msgid -> "file:line" of its first use, for every sentence a mail says."""
    extracted = extract_from_dir(
        str(TEMPLATES),
        method_map=[("**.html", "jinja2"), ("**.txt", "jinja2")],
        options_map={"**.html": _JINJA, "**.txt": _JINJA},
    )
    return first_uses(extracted, "mail")


def catalogue(language: str) -> Catalog:
    return merged_catalogue(catalogue_folder(language), language, translated=False)


def missing(language: str) -> dict[str, str]:
    """The sentences used but not translated (or marked fuzzy) for `language`:
    msgid -> where it is used."""
    return untranslated(catalogue(language), source_messages())


def unused(language: str) -> list[str]:
    """Catalogue entries no template says any more (a sentence was reworded)."""
    return unused_entries(catalogue(language), source_messages())
