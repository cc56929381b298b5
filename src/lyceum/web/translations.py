"""Which strings of the web app a catalogue lacks (used by `scripts/i18n` and the tests).

Strings are read from the templates (`{{ _("...") }}`, `{% trans %}`, `ngettext`) and the
web routes (`page.gettext("...")`, `_("...")`) with Babel's extractors."""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

SRC = Path(__file__).resolve().parents[1]  # src/lyceum
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2)}


def source_messages() -> dict[str, str]:
    """msgid -> "file:line" of its first use, for every string the web app shows."""
    found: dict[str, str] = {}
    for root, method in (
        (SRC / "templates" / "web", {"**.html": "jinja2"}),
        (SRC / "web", {"**.py": "python"}),
    ):
        mapping = [(pattern, kind) for pattern, kind in method.items()]
        options = {"**.html": {"extensions": "jinja2.ext.i18n"}}
        for filename, line, message, _comments, _context in extract_from_dir(
            str(root), method_map=mapping, options_map=options, keywords=KEYWORDS
        ):
            # ngettext gives (singular, plural): catalogues key them by the singular.
            msgid = message[0] if isinstance(message, tuple) else message
            if msgid:
                found.setdefault(msgid, f"{root.name}/{filename}:{line}")
    return found


def catalogue(locale: str) -> Catalog:
    merged = Catalog(locale=locale)
    for path in sorted((SRC / "web" / "locale" / locale / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as handle:
            for message in read_po(handle, locale=locale):
                if message.id and message.id not in merged:
                    merged[message.id] = message
    return merged


def missing(locale: str) -> dict[str, str]:
    """The strings used but not translated (or marked fuzzy) for `locale`:
    msgid -> where it is used."""
    catalog = catalogue(locale)
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
