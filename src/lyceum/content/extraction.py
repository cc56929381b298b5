"""Text out of uploaded course files, split into sections that keep where the text came
from (page, heading path) so answers can cite it.

Parsers of untrusted files fail in many ways; every failure leaves here as
ExtractionError, whose message is shown to the uploader as the reason.
"""

from __future__ import annotations

import io
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import docx
from docx.table import Table
from pypdf import PasswordType, PdfReader

from lyceum.content.filetypes import FileKind, check_docx_archive
from lyceum.kit.errors import Invalid


@dataclass(frozen=True, slots=True)
class Section:
    text: str
    heading_path: tuple[str, ...]
    page: int | None


class ExtractionError(Exception):
    """The file's text could not be read; the message is meant for the uploader."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- normalisation ---------------------------------------------------------------------

_HYPHENATED_BREAK = re.compile(r"(\w)-[ \t]*\n[ \t]*(\w)")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
# A line starting like a list item stays on its own line when wrapped lines are joined.
_LIST_ITEM = re.compile(r"(?:[-*+\u2022\u2023\u25e6\u25aa\u2013]|\d{1,3}[.)]|[a-zA-Z][.)])\s")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")

_LINE_BREAKS: Final = {"\r\n": "\n", "\r": "\n", "\v": "\n", "\x85": "\n", "\u2028": "\n"}
_CLEANUP: Final = str.maketrans(
    {
        # Control characters, lone surrogates (which cannot be stored as UTF-8), and
        # invisible characters that split words: soft hyphen, zero-width space, BOM.
        **dict.fromkeys([*range(0x20), *range(0x7F, 0xA0)], None),
        **dict.fromkeys(range(0xD800, 0xE000), None),
        **dict.fromkeys([0x00AD, 0x200B, 0xFEFF], None),
        "\n": "\n",
        "\t": "\t",
        "\f": "\n\n",
        "\u2029": "\n\n",
        # Typographic ligatures, which PDF text often keeps, would hide words from search.
        "\ufb00": "ff",
        "\ufb01": "fi",
        "\ufb02": "fl",
        "\ufb03": "ffi",
        "\ufb04": "ffl",
    }
)


def _strip_controls(text: str) -> str:
    for old, new in _LINE_BREAKS.items():
        text = text.replace(old, new)
    return text.translate(_CLEANUP)


def _rejoin_hyphenated(match: re.Match[str]) -> str:
    """`exam-\nple` was split by the line width; `Anglo-\nSaxon` keeps its hyphen."""
    before, after = match.group(1), match.group(2)
    return f"{before}{after}" if after.islower() else f"{before}-{after}"


def _join_lines(paragraph: str) -> str:
    lines = [line.strip() for line in paragraph.split("\n")]
    joined: list[str] = []
    for line in lines:
        if not line:
            continue
        if joined and not _LIST_ITEM.match(line):
            joined[-1] = f"{joined[-1]} {line}"
        else:
            joined.append(line)
    return "\n".join(joined)


def normalise_text(text: str) -> str:
    """Prose as extractors produce it, made fit for chunking and embedding.

    PDFs break lines (and words) at the page width; those breaks are noise, while blank
    lines separate paragraphs and are kept as the one structure worth keeping.
    """
    text = _strip_controls(unicodedata.normalize("NFC", text))
    text = _SPACES.sub(" ", text)
    text = _HYPHENATED_BREAK.sub(_rejoin_hyphenated, text)
    paragraphs = (_join_lines(part) for part in _PARAGRAPH_BREAK.split(text))
    return "\n\n".join(paragraph for paragraph in paragraphs if paragraph)


def _clean_code(text: str) -> str:
    """Code keeps its lines and indentation; only invisible damage is removed."""
    text = _strip_controls(unicodedata.normalize("NFC", text)).replace("\t", "    ")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")


# --- PDF -------------------------------------------------------------------------------


def extract_pdf(data: bytes) -> list[Section]:
    """One section per page with text; page numbers are 1-based like a PDF viewer's."""
    sections: list[Section] = []
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise ExtractionError("The PDF could not be read: it is password-protected.")
        for number, page in enumerate(reader.pages, start=1):
            text = normalise_text(page.extract_text() or "")
            if text:
                sections.append(Section(text=text, heading_path=(), page=number))
    except ExtractionError:
        raise
    except Exception as error:  # pypdf reports damaged files with many exception types.
        raise ExtractionError(f"The PDF could not be read: {_reason(error)}") from error
    if not sections:
        raise ExtractionError("The PDF has no extractable text (is it a scanned image?)")
    return sections


def _reason(error: Exception) -> str:
    message = str(error).strip() or type(error).__name__
    return message if len(message) <= 200 else message[:199] + "…"


# --- Word ------------------------------------------------------------------------------

_HEADING_STYLE = re.compile(r"heading ([1-6])", re.IGNORECASE)


def _heading_level(style_name: str | None) -> int | None:
    """0 for Title, 1-6 for Heading n, None for body text."""
    if not style_name:
        return None
    name = style_name.strip()
    if name.lower() == "title":
        return 0
    match = _HEADING_STYLE.fullmatch(name)
    return int(match.group(1)) if match else None


class _SectionBuilder:
    """Collects blocks under the current heading path and emits a section per heading."""

    def __init__(self) -> None:
        self.sections: list[Section] = []
        self._headings: list[tuple[int, str]] = []
        self._blocks: list[str] = []

    def heading(self, level: int, title: str) -> None:
        self.flush()
        while self._headings and self._headings[-1][0] >= level:
            self._headings.pop()
        self._headings.append((level, title))

    def add(self, block: str) -> None:
        if block:
            self._blocks.append(block)

    def flush(self) -> None:
        text = "\n\n".join(self._blocks)
        self._blocks = []
        if text:
            path = tuple(title for _, title in self._headings)
            self.sections.append(Section(text=text, heading_path=path, page=None))


def _table_rows(table: Any) -> Iterator[str]:
    for row in table.rows:
        cells: list[str] = []
        seen: set[int] = set()
        for cell in row.cells:
            # A merged cell is returned once per grid column it spans.
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            text = normalise_text(cell.text).replace("\n", " ")
            if text:
                cells.append(text)
        if cells:
            yield " | ".join(cells)


def extract_docx(data: bytes) -> list[Section]:
    """Sections follow the document's heading styles; tables stay where they appear."""
    try:
        check_docx_archive(data)
    except Invalid as refused:
        raise ExtractionError(refused.detail) from None
    try:
        document = docx.Document(io.BytesIO(data))
        builder = _SectionBuilder()
        for block in document.iter_inner_content():
            if isinstance(block, Table):
                builder.add("\n".join(_table_rows(block)))
                continue
            text = normalise_text(block.text)
            level = _heading_level(block.style.name if block.style is not None else None)
            if level is not None and text:
                builder.heading(level, text.replace("\n", " "))
            else:
                builder.add(text)
        builder.flush()
    except Exception as error:  # python-docx, lxml and zipfile each raise their own types.
        raise ExtractionError(f"The Word document could not be read: {_reason(error)}") from error
    return builder.sections


# --- Markdown and plain text -----------------------------------------------------------

_FENCE_OPEN = re.compile(r" {0,3}(`{3,}|~{3,})")
_ATX_HEADING = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*")
# Thematic breaks, and the underlines of setext headings.
_RULE = re.compile(r" {0,3}(?:([-*_])(?:[ \t]*\1){2,}|=+)[ \t]*")
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)|!\[[^\]]*\]\[[^\]]*\]")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)|\[([^\]]+)\]\[[^\]]*\]")
_LINK_DEFINITION = re.compile(r" {0,3}\[[^\]]+\]:\s+\S+.*")
_EMPHASIS = (
    re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"),
    re.compile(r"~~(?=\S)(.+?)(?<=\S)~~"),
    re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])"),
    re.compile(r"(?<!\w)_(?=\S)(.+?)(?<=\S)_(?!\w)"),
)
_INLINE_CODE = re.compile(r"`+([^`]+?)`+")
_BLOCKQUOTE = re.compile(r" {0,3}>[ \t]?")


def _strip_inline(line: str) -> str:
    line = _IMAGE.sub("", line)
    line = _LINK.sub(lambda match: match.group(1) or match.group(2), line)
    line = _INLINE_CODE.sub(r"\1", line)
    for pattern in _EMPHASIS:
        line = pattern.sub(lambda match: match.group(match.lastindex or 0), line)
    return line


def extract_markdown(text: str) -> list[Section]:
    """Sections under ATX headings; fenced code is kept verbatim and never read as
    headings. Markup that would only add noise to embeddings is dropped."""
    builder = _SectionBuilder()
    prose: list[str] = []
    code: list[str] = []
    fence: str | None = None

    def flush_prose() -> None:
        builder.add(normalise_text("\n".join(prose)))
        prose.clear()

    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if fence is not None:
            stripped = line.strip()
            if stripped.startswith(fence) and stripped.strip(fence[0]) == "":
                builder.add(_clean_code("\n".join(code)))
                code.clear()
                fence = None
            else:
                code.append(line)
            continue
        if opening := _FENCE_OPEN.match(line):
            flush_prose()
            fence = opening.group(1)
            continue
        if heading := _ATX_HEADING.fullmatch(line):
            flush_prose()
            title = normalise_text(_strip_inline(heading.group(2) or ""))
            if title:
                builder.heading(len(heading.group(1)), title)
            continue
        if _RULE.fullmatch(line) or _LINK_DEFINITION.fullmatch(line):
            prose.append("")
            continue
        prose.append(_strip_inline(_BLOCKQUOTE.sub("", line, count=1)))
    flush_prose()
    if fence is not None:  # An unclosed fence runs to the end, as CommonMark says.
        builder.add(_clean_code("\n".join(code)))
    builder.flush()
    return builder.sections


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ExtractionError(f"The text file is not valid UTF-8: {error.reason}.") from None


def extract_text(data: bytes) -> list[Section]:
    """Plain text has no structure to keep: one section."""
    text = normalise_text(_decode(data))
    return [Section(text=text, heading_path=(), page=None)] if text else []


def extract(kind: FileKind, data: bytes) -> list[Section]:
    """The sections of an accepted upload; images have no text to index."""
    match kind:
        case FileKind.pdf:
            return extract_pdf(data)
        case FileKind.docx:
            return extract_docx(data)
        case FileKind.markdown:
            return extract_markdown(_decode(data))
        case FileKind.text:
            return extract_text(data)
        case FileKind.png | FileKind.jpeg | FileKind.webp:
            return []
