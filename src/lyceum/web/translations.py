"""Which strings of the web app a catalogue lacks (used by `scripts/i18n` and the tests).

Strings are read from the templates (`{{ _("...") }}`, `{% trans %}`, `ngettext`) and the
web routes (`page.gettext("...")`, `_("...")`) with Babel's extractors."""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir

from lyceum.kit.gettext import first_uses, merged_catalogue, untranslated, unused_entries

SRC = Path(__file__).resolve().parents[1]  # src/lyceum
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2)}


def source_messages() -> dict[str, str]:
    """msgid -> "file:line" of its first use, for every string the web app shows."""
    found: dict[str, str] = {}
    for root, kind in ((SRC / "templates" / "web", "jinja2"), (SRC / "web", "python")):
        pattern = "**.html" if kind == "jinja2" else "**.py"
        extracted = extract_from_dir(
            str(root),
            method_map=[(pattern, kind)],
            options_map={"**.html": {"extensions": "jinja2.ext.i18n"}},
            keywords=KEYWORDS,
        )
        for msgid, where in first_uses(extracted, root.name).items():
            found.setdefault(msgid, where)
    return found


def catalogue(locale: str) -> Catalog:
    return merged_catalogue(
        SRC / "web" / "locale" / locale / "LC_MESSAGES", locale, translated=False
    )


def missing(locale: str) -> dict[str, str]:
    """The strings used but not translated (or marked fuzzy) for `locale`:
    msgid -> where it is used."""
    return untranslated(catalogue(locale), source_messages())


def unused(locale: str) -> list[str]:
    """The catalogue's entries for `locale` that the web app no longer shows (a string
    reworded or removed): left in, they would look translated and be dead."""
    return unused_entries(catalogue(locale), source_messages())
