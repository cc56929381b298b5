"""Gettext catalogues read with Babel, shared by the web app and the mails.

A language's catalogue is every `*.po` file of its `LC_MESSAGES` folder, merged (the
first file to translate a message wins) and compiled in memory: no build step. The
tests ask `untranslated` which strings the sources use that a catalogue lacks."""

from __future__ import annotations

import io
from collections.abc import Iterable
from importlib.resources.abc import Traversable
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations


def merged_catalogue(folder: Traversable | Path, locale: str, *, translated: bool) -> Catalog:
    """The `*.po` files of `folder` as one catalogue; with `translated`, only the
    messages that have a translation (what compiling needs)."""
    catalog = Catalog(locale=locale)
    if not folder.is_dir():
        return catalog
    for source in sorted(folder.iterdir(), key=lambda entry: entry.name):
        if not source.name.endswith(".po"):
            continue
        with source.open("rb") as handle:
            for message in read_po(handle, locale=locale):
                if message.id and message.id not in catalog and (message.string or not translated):
                    catalog[message.id] = message
    return catalog


def compiled(folder: Traversable | Path, locale: str) -> Translations:
    """The catalogue of `folder`, compiled in memory."""
    binary = io.BytesIO()
    write_mo(binary, merged_catalogue(folder, locale, translated=True))
    binary.seek(0)
    return Translations(binary)


def first_uses(
    extracted: Iterable[tuple[str, int, str | tuple[str, ...], object, object]], prefix: str
) -> dict[str, str]:
    """msgid -> "prefix/file:line" of its first use, from Babel's extractor's output
    (ngettext's (singular, plural) keyed by the singular, as catalogues key it)."""
    found: dict[str, str] = {}
    for filename, line, message, _comments, _context in extracted:
        msgid = message[0] if isinstance(message, tuple) else message
        if msgid:
            found.setdefault(msgid, f"{prefix}/{filename}:{line}")
    return found


def untranslated(catalog: Catalog, used: dict[str, str]) -> dict[str, str]:
    """Of the `used` msgids (-> where), those `catalog` lacks, leaves empty or marks
    fuzzy (for a plural, any of its forms)."""
    lacking = {}
    for msgid, where in used.items():
        message = catalog.get(msgid)
        strings = (
            ()
            if message is None or message.fuzzy
            else (message.string if isinstance(message.string, tuple) else (message.string,))
        )
        if not strings or not all(strings):
            lacking[msgid] = where
    return lacking


def unused_entries(catalog: Catalog, used: dict[str, str]) -> list[str]:
    """The msgids `catalog` holds that none of the `used` strings is any more (a string
    reworded or removed), sorted; a plural is keyed by its singular."""
    ids = (message.id for message in catalog if message.id)
    return sorted(
        msgid for msgid in (i if isinstance(i, str) else i[0] for i in ids) if msgid not in used
    )
