"""Text extraction keeps where text came from (page, heading path), cleans extraction
noise, and fails only with ExtractionError, whose message the uploader sees."""

from __future__ import annotations

import io
import random
import zipfile

import pytest
from docx import Document
from fpdf import FPDF

from lyceum.kit.documents.extraction import (
    ExtractionError,
    Limits,
    Section,
    extract,
    extract_docx,
    extract_markdown,
    extract_pdf,
    extract_text,
    normalise_text,
    read_upload,
)
from lyceum.kit.documents.filetypes import FileKind
from lyceum.kit.sandbox import Sandbox
from tests.content.helpers import blank_pdf

PAGE_TWO_SENTENCE = "Mitochondria convert nutrients into adenosine triphosphate for the cell."


def _pdf(*pages: str, password: str | None = None) -> bytes:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 8, text)
    if password is not None:
        pdf.set_encryption(owner_password="owner-" + password, user_password=password)
    return bytes(pdf.output())


def _three_page_pdf() -> bytes:
    filler = "Cells are the smallest units of life and every organism is made of them. " * 3
    return _pdf(
        "Chapter one introduces the cell theory.",
        filler + PAGE_TWO_SENTENCE + " " + filler,
        "Chapter three covers photosynthesis in plants.",
    )


def _docx_bytes(document: object) -> bytes:
    output = io.BytesIO()
    document.save(output)  # type: ignore[attr-defined]
    return output.getvalue()


# --- PDF -------------------------------------------------------------------------------


def test_pdf_pages_become_sections_numbered_from_one() -> None:
    sections = extract_pdf(_three_page_pdf()).sections
    assert [section.page for section in sections] == [1, 2, 3]
    assert all(section.heading_path == () for section in sections)
    assert "cell theory" in sections[0].text
    # The sentence was wrapped across lines on the page; extraction joins it again.
    assert PAGE_TWO_SENTENCE in sections[1].text
    assert PAGE_TWO_SENTENCE not in sections[0].text + sections[2].text
    assert "\n" not in sections[1].text
    assert "photosynthesis" in sections[2].text


def test_pdf_pages_without_text_are_skipped_but_keep_numbering() -> None:
    sections = extract_pdf(_pdf("First page.", "", "Third page.")).sections
    assert [(section.page, section.text) for section in sections] == [
        (1, "First page."),
        (3, "Third page."),
    ]


def test_a_pdf_without_any_text_says_it_may_be_scanned() -> None:
    with pytest.raises(ExtractionError) as caught:
        extract_pdf(_pdf("", ""))
    assert str(caught.value) == "The PDF has no extractable text (is it a scanned image?)"
    assert caught.value.message == str(caught.value)


def test_a_password_protected_pdf_is_reported_as_such() -> None:
    with pytest.raises(ExtractionError, match="password-protected"):
        extract_pdf(_pdf("Secret notes.", password="hunter2"))


def test_a_pdf_with_only_an_owner_password_is_read() -> None:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 8, "Printing is restricted, reading is not.")
    pdf.set_encryption(owner_password="owner")
    text = extract_pdf(bytes(pdf.output())).sections[0].text
    assert text == "Printing is restricted, reading is not."


@pytest.mark.parametrize(
    "data",
    [b"%PDF-1.4\n%%EOF", b"%PDF-1.7\n" + bytes(range(256)) * 4, b"not a pdf at all", b""],
)
def test_unreadable_pdfs_raise_extraction_error(data: bytes) -> None:
    with pytest.raises(ExtractionError, match=r"^The PDF (could not be read|has no)"):
        extract_pdf(data)


def _damaged(data: bytes, seed: int) -> bytes:
    rng = random.Random(seed)
    if seed % 2:
        return data[: rng.randrange(len(data))]
    damaged = bytearray(data)
    for _ in range(20):
        damaged[rng.randrange(len(damaged))] = rng.randrange(256)
    return bytes(damaged)


def _outcome(kind: FileKind, data: bytes) -> list[Section] | ExtractionError:
    try:
        return extract(kind, data).sections
    except ExtractionError as error:
        return error


@pytest.mark.parametrize("seed", range(12))
def test_damaged_files_fail_only_with_extraction_error(seed: int) -> None:
    document = Document()
    document.add_heading("Damaged", level=1)
    document.add_paragraph("Some words. " * 50)
    originals = [(FileKind.pdf, _three_page_pdf()), (FileKind.docx, _docx_bytes(document))]
    for kind, original in originals:
        outcome = _outcome(kind, _damaged(original, seed))
        if isinstance(outcome, ExtractionError):
            assert str(outcome)
        else:
            assert all(isinstance(section, Section) for section in outcome)


# --- Word ------------------------------------------------------------------------------


def test_docx_headings_build_heading_paths_and_tables_stay_in_their_section() -> None:
    document = Document()
    document.add_paragraph("Preface before any heading.")
    document.add_heading("Biology 101", level=0)  # the Title style
    document.add_paragraph("Course overview.")
    document.add_heading("Cells", level=1)
    document.add_paragraph("Cells are the unit of life.")
    document.add_heading("Organelles", level=2)
    document.add_paragraph("Mitochondria make energy.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "Organelle"
    table.cell(0, 1).text = "Role"
    table.cell(1, 0).text = "Ribosome"
    table.cell(1, 1).text = "Makes proteins"
    document.add_heading("Membranes", level=3)
    document.add_paragraph("Membranes separate inside from outside.")
    document.add_heading("Empty heading", level=2)
    document.add_heading("Genetics", level=1)
    document.add_paragraph("DNA carries\ninformation.")

    sections = extract_docx(_docx_bytes(document)).sections

    assert [section.heading_path for section in sections] == [
        (),
        ("Biology 101",),
        ("Biology 101", "Cells"),
        ("Biology 101", "Cells", "Organelles"),
        ("Biology 101", "Cells", "Organelles", "Membranes"),
        ("Biology 101", "Genetics"),
    ]
    assert sections[0].text == "Preface before any heading."
    assert sections[3].text == (
        "Mitochondria make energy.\n\nOrganelle | Role\nRibosome | Makes proteins"
    )
    assert sections[5].text == "DNA carries information."
    assert all(section.page is None for section in sections)


def test_docx_merged_cells_are_read_once() -> None:
    document = Document()
    table = document.add_table(rows=1, cols=3)
    merged = table.cell(0, 0).merge(table.cell(0, 1))
    merged.text = "Wide cell"
    table.cell(0, 2).text = "Narrow"
    assert extract_docx(_docx_bytes(document)).sections[0].text == "Wide cell | Narrow"


def test_a_docx_bomb_is_refused_by_extraction_too() -> None:
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", bytes(60 * 1024 * 1024))
    with pytest.raises(ExtractionError, match="expand to 60 MB"):
        extract_docx(output.getvalue())


@pytest.mark.parametrize("data", [b"PK\x03\x04 broken", b"", b"%PDF-1.4"])
def test_unreadable_docx_raises_extraction_error(data: bytes) -> None:
    with pytest.raises(ExtractionError):
        extract_docx(data)


# --- Markdown and text -----------------------------------------------------------------

MARKDOWN = """\
Intro paragraph with a [link](https://example.org) and ![a diagram](fig.png).

# Python basics

Python is *easy* to **learn** and ~~hard~~ fun to _master_; snake_case_names stay.

## Loops ##

A `for` loop repeats:

```python
# this is a comment, not a heading
for item in items:
    print(item)
```

### Nested

Deep text
wrapped over lines.

## Functions

> Quoted wisdom.

---

- first item
- second item

# Second part
~~~
## still code
~~~
After the fence.
"""


def test_markdown_headings_nest_and_code_fences_do_not_count() -> None:
    sections = extract_markdown(MARKDOWN)
    assert [section.heading_path for section in sections] == [
        (),
        ("Python basics",),
        ("Python basics", "Loops"),
        ("Python basics", "Loops", "Nested"),
        ("Python basics", "Functions"),
        ("Second part",),
    ]
    assert all(section.page is None for section in sections)
    intro, basics, loops, nested, functions, second = (section.text for section in sections)
    assert intro == "Intro paragraph with a link and ."
    assert basics == "Python is easy to learn and hard fun to master; snake_case_names stay."
    assert loops == (
        "A for loop repeats:\n\n"
        "# this is a comment, not a heading\nfor item in items:\n    print(item)"
    )
    assert nested == "Deep text wrapped over lines."
    assert functions == "Quoted wisdom.\n\n- first item\n- second item"
    assert second == "## still code\n\nAfter the fence."


def test_an_unclosed_fence_runs_to_the_end() -> None:
    sections = extract_markdown("# Code\n\n```\n# not a heading\nx = 1\n")
    assert sections == [Section("# not a heading\nx = 1", ("Code",), None)]


def test_markdown_without_text_has_no_sections() -> None:
    assert extract_markdown("# Only a heading\n\n## And another\n") == []


def test_text_files_are_one_section_and_keep_vietnamese() -> None:
    data = "\ufeffBài học đầu tiên.\r\nHọc sinh viết\r\nchương trình.\r\n\r\nĐoạn hai.".encode()
    assert extract_text(data).sections == [
        Section("Bài học đầu tiên. Học sinh viết chương trình.\n\nĐoạn hai.", (), None)
    ]
    assert extract(FileKind.text, data) == extract_text(data)


def test_markdown_is_dispatched_after_decoding() -> None:
    sections = extract(FileKind.markdown, "\ufeff# Tiêu đề\n\nNội dung.".encode()).sections
    assert sections == [Section("Nội dung.", ("Tiêu đề",), None)]


def test_undecodable_text_raises_extraction_error() -> None:
    with pytest.raises(ExtractionError, match="not valid UTF-8"):
        extract(FileKind.markdown, b"caf\xe9")


@pytest.mark.parametrize("kind", [FileKind.png, FileKind.jpeg, FileKind.webp])
def test_images_have_nothing_to_index(kind: FileKind) -> None:
    assert extract(kind, b"\x89PNG anything").sections == []


# --- normalisation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("an exam-\nple of hyphen-\n  ation", "an example of hyphenation"),
        ("Anglo-\nSaxon words", "Anglo-Saxon words"),
        ("line one\nline two\n\n\n\nnext   paragraph", "line one line two\n\nnext paragraph"),
        ("tabs\tand\u00a0non-breaking   spaces", "tabs and non-breaking spaces"),
        ("bell\x07 and\x00 nul\x1b", "bell and nul"),
        ("windows\r\nline\rendings", "windows line endings"),
        ("Nguye\u0302\u0303n", "Nguy\u1ec5n"),
        ("page one\fpage two", "page one\n\npage two"),
        ("Steps:\n- one\n- two\ncontinued\n1. first", "Steps:\n- one\n- two continued\n1. first"),
        ("  \n\n  ", ""),
        ("ﬁle ﬂow ef\u00adfect zero\u200bwidth", "file flow effect zerowidth"),
        ("lone \ud800surrogate", "lone surrogate"),
        ("one\u2028two\u2029three", "one two\n\nthree"),
    ],
)
def test_normalise_text(raw: str, expected: str) -> None:
    assert normalise_text(raw) == expected


# --- budgets -------------------------------------------------------------------------


def test_an_essay_of_35000_empty_pages_is_refused_from_its_page_count() -> None:
    """The page tree is never walked: the declared count is over the budget."""
    with pytest.raises(ExtractionError) as caught:
        extract_pdf(blank_pdf(35_000), Limits(max_pages=100, truncate=False))
    assert caught.value.budget == "pages"
    assert caught.value.message == "The PDF has 35,000 pages; at most 100 are accepted."


def test_a_pdf_that_understates_its_pages_is_held_to_the_budget_too() -> None:
    with pytest.raises(ExtractionError) as caught:
        extract_pdf(blank_pdf(300, declared=1), Limits(max_pages=100, truncate=False))
    assert caught.value.budget == "pages"
    assert "300 pages" in caught.value.message


def test_a_course_file_is_read_up_to_the_page_budget_and_says_so() -> None:
    document = extract_pdf(_pdf("One.", "Two.", "Three.", "Four.", "Five."), Limits(max_pages=2))
    assert [(section.page, section.text) for section in document.sections] == [
        (1, "One."),
        (2, "Two."),
    ]
    assert document.page_count == 5
    assert document.truncated == "Only the first 2 of 5 pages were read."


def test_text_beyond_the_character_budget_is_cut_or_refused() -> None:
    data = "\n\n".join(f"Paragraph {number} of the handout." for number in range(100)).encode()
    whole = extract_text(data, Limits(max_chars=10_000))
    assert whole.truncated is None
    cut = extract_text(data, Limits(max_chars=200))
    assert cut.truncated == "Only the first 200 characters were read."
    assert cut.sections[0].text.startswith("Paragraph 0 of the handout.")
    assert len(cut.sections[0].text) <= 200
    assert cut.sections[0].text.endswith("of the handout.")  # cut at a line break
    with pytest.raises(ExtractionError) as caught:
        extract_text(data, Limits(max_chars=200, truncate=False))
    assert caught.value.budget == "text"


def test_pdf_and_word_text_count_against_the_character_budget() -> None:
    pdf = extract_pdf(_pdf("A" * 50 + " first.", "Second page text."), Limits(max_chars=30))
    assert sum(len(section.text) for section in pdf.sections) == 30
    assert pdf.truncated == "Only the first 30 characters of text were read, up to page 1 of 2."
    document = Document()
    for number in range(20):
        document.add_paragraph(f"Paragraph {number} of the essay.")
    with pytest.raises(ExtractionError) as caught:
        extract_docx(_docx_bytes(document), Limits(max_chars=100, truncate=False))
    assert caught.value.budget == "text"


async def test_reading_that_takes_too_long_is_stopped() -> None:
    sandbox = Sandbox(processes=1, memory_bytes=1024 * 1024 * 1024)
    try:
        with pytest.raises(ExtractionError) as caught:
            await read_upload(sandbox, FileKind.pdf, blank_pdf(35_000), Limits(), 0.01)
        assert caught.value.budget == "time"
        assert "took longer than 0.01 seconds" in caught.value.message
        # The sandbox goes on reading the next file.
        document = await read_upload(sandbox, FileKind.pdf, _three_page_pdf(), Limits(), 60)
        assert [section.page for section in document.sections] == [1, 2, 3]
    finally:
        sandbox.close()
