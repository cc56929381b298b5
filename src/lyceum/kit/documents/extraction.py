"""Text out of uploaded course files, split into sections that keep where the text came
from (page, heading path) so answers can cite it.

Parsers of untrusted files fail in many ways; every failure leaves here as
ExtractionError, whose message is shown to the uploader as the reason. What reading a
file may cost is bounded three ways: `Limits` (pages, characters of text) inside the
parsers, and time and memory by running them in the sandbox (`read_upload`), never in
the serving process.
"""

from __future__ import annotations

import io
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, Literal

import docx
from docx.table import Table
from pypdf import PasswordType, PdfReader

from lyceum.kit.documents.filetypes import FileKind, check_docx_archive
from lyceum.kit.errors import Invalid
from lyceum.kit.sandbox import Sandbox, SandboxCrashed, SandboxOutOfMemory, SandboxTimeout


@dataclass(frozen=True, slots=True)
class Section:
    text: str
    heading_path: tuple[str, ...]
    page: int | None


@dataclass(frozen=True, slots=True)
class Limits:
    """What reading one file may cost. A course file longer than this is read up to the
    limit (`truncate`, and the document says so); an essay is refused."""

    max_pages: int | None = None
    max_chars: int | None = None
    truncate: bool = True


UNLIMITED = Limits()


@dataclass(frozen=True, slots=True)
class Document:
    sections: list[Section]
    page_count: int | None = None  # PDFs: pages in the file, read or not
    truncated: str | None = None  # why only the start of the file was read


Budget = Literal["pages", "text", "time", "memory"]


class ExtractionError(Exception):
    """The file's text could not be read; the message is meant for the uploader.
    `budget`: which limit reading it would exceed (None: the file is unreadable)."""

    def __init__(self, message: str, *, budget: Budget | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.budget = budget


class _Budget:
    """Characters of text kept so far, against `Limits.max_chars`."""

    def __init__(self, limits: Limits, what: str) -> None:
        self.limits = limits
        self.what = what
        self.used = 0
        self.exhausted = False

    def take(self, text: str) -> str:
        """`text`, or as much of it as the budget still allows (refusing if it must
        not truncate)."""
        limit = self.limits.max_chars
        if limit is None or self.used + len(text) <= limit:
            self.used += len(text)
            return text
        if not self.limits.truncate:
            raise ExtractionError(
                f"The {self.what} holds more than {limit:,} characters of text.",
                budget="text",
            )
        kept = text[: limit - self.used]
        self.used = limit
        self.exhausted = True
        return kept

    def note(self) -> str:
        return f"Only the first {self.limits.max_chars:,} characters of text were read."


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


def _declared_pages(reader: PdfReader) -> int | None:
    """The page count the document states (/Root /Pages /Count), read without walking
    the page tree; a hostile file may lie, so it only serves to refuse early."""
    try:
        root: Any = reader.trailer["/Root"]
        count = root["/Pages"]["/Count"]
    except Exception:
        return None
    return int(count) if isinstance(count, int) else None


def _page_budget(limits: Limits, pages: int, what: str) -> int:
    if limits.max_pages is None or pages <= limits.max_pages:
        return pages
    if not limits.truncate:
        raise ExtractionError(
            f"The {what} has {pages:,} pages; at most {limits.max_pages:,} are accepted.",
            budget="pages",
        )
    return limits.max_pages


def extract_pdf(data: bytes, limits: Limits = UNLIMITED) -> Document:
    """One section per page with text; page numbers are 1-based like a PDF viewer's."""
    sections: list[Section] = []
    budget = _Budget(limits, "PDF")
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise ExtractionError("The PDF could not be read: it is password-protected.")
        declared = _declared_pages(reader)
        if declared is not None:
            _page_budget(limits, declared, "PDF")
        total = len(reader.pages)
        readable = _page_budget(limits, total, "PDF")
        for number in range(1, readable + 1):
            text = budget.take(normalise_text(reader.pages[number - 1].extract_text() or ""))
            if text:
                sections.append(Section(text=text, heading_path=(), page=number))
            if budget.exhausted:
                break
    except ExtractionError:
        raise
    except Exception as error:  # pypdf reports damaged files with many exception types.
        raise ExtractionError(f"The PDF could not be read: {_reason(error)}") from error
    if not sections:
        raise ExtractionError("The PDF has no extractable text (is it a scanned image?)")
    truncated = None
    if budget.exhausted:
        truncated = f"{budget.note()[:-1]}, up to page {sections[-1].page} of {total}."
    elif readable < total:
        truncated = f"Only the first {readable:,} of {total:,} pages were read."
    return Document(sections, page_count=total, truncated=truncated)


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


def extract_docx(data: bytes, limits: Limits = UNLIMITED) -> Document:
    """Sections follow the document's heading styles; tables stay where they appear."""
    try:
        check_docx_archive(data)
    except Invalid as refused:
        raise ExtractionError(refused.detail) from None
    budget = _Budget(limits, "Word document")
    try:
        document = docx.Document(io.BytesIO(data))
        builder = _SectionBuilder()
        for block in document.iter_inner_content():
            if isinstance(block, Table):
                builder.add(budget.take("\n".join(_table_rows(block))))
            else:
                text = normalise_text(block.text)
                level = _heading_level(block.style.name if block.style is not None else None)
                if level is not None and text:
                    builder.heading(level, budget.take(text.replace("\n", " ")))
                else:
                    builder.add(budget.take(text))
            if budget.exhausted:
                break
        builder.flush()
    except ExtractionError:
        raise
    except Exception as error:  # python-docx, lxml and zipfile each raise their own types.
        raise ExtractionError(f"The Word document could not be read: {_reason(error)}") from error
    return Document(builder.sections, truncated=budget.note() if budget.exhausted else None)


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


def _decode(data: bytes, limits: Limits) -> tuple[str, str | None]:
    """The text (cut at `limits.max_chars`, at a line break when there is one close to
    it) and, if it was cut, why."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ExtractionError(f"The text file is not valid UTF-8: {error.reason}.") from None
    limit = limits.max_chars
    if limit is None or len(text) <= limit:
        return text, None
    if not limits.truncate:
        raise ExtractionError(f"The text file holds more than {limit:,} characters.", budget="text")
    cut = text.rfind("\n", max(0, limit - max(limit // 10, 1000)), limit)
    return text[: cut if cut > 0 else limit], f"Only the first {limit:,} characters were read."


def extract_text(data: bytes, limits: Limits = UNLIMITED) -> Document:
    """Plain text has no structure to keep: one section."""
    raw, truncated = _decode(data, limits)
    text = normalise_text(raw)
    sections = [Section(text=text, heading_path=(), page=None)] if text else []
    return Document(sections, truncated=truncated)


def extract(kind: FileKind, data: bytes, limits: Limits = UNLIMITED) -> Document:
    """The sections of an accepted upload; images have no text to index. CPU work on
    untrusted bytes without a time limit: from a request or a job use `read_upload`."""
    match kind:
        case FileKind.pdf:
            return extract_pdf(data, limits)
        case FileKind.docx:
            return extract_docx(data, limits)
        case FileKind.markdown:
            raw, truncated = _decode(data, limits)
            return Document(extract_markdown(raw), truncated=truncated)
        case FileKind.text:
            return extract_text(data, limits)
        case FileKind.png | FileKind.jpeg | FileKind.webp:
            return Document([])


async def read_upload(
    sandbox: Sandbox, kind: FileKind, data: bytes, limits: Limits, seconds: float
) -> Document:
    """`extract` in the sandbox: within `seconds` and the sandbox's memory limit, off
    the serving process. Every way it can fail is an ExtractionError."""
    try:
        return await sandbox.run(seconds, extract, kind, data, limits)
    except SandboxTimeout:
        raise ExtractionError(
            f"Reading the file took longer than {seconds:g} seconds, so it was stopped.",
            budget="time",
        ) from None
    except SandboxOutOfMemory as error:
        raise ExtractionError(
            f"Reading the file needs more than {error.limit_bytes // (1024 * 1024)} MiB of memory.",
            budget="memory",
        ) from None
    except SandboxCrashed:
        raise ExtractionError("The file could not be read: its parser crashed.") from None
