"""Chunking: sizes stay within bounds, neighbours overlap, chunks never cross a section,
and the same input always gives the same chunks."""

from __future__ import annotations

import itertools
import re

import pytest

from lyceum.content.chunking import Chunk, chunk_sections, word_token_counter
from lyceum.kit.documents.extraction import Section

TOPICS = ["cells", "genes", "proteins", "enzymes", "membranes", "ribosomes", "plants"]


def _sentence(index: int) -> str:
    topic = TOPICS[index % len(TOPICS)]
    return f"Sentence {index} explains how {topic} work inside living organisms today."


def _paragraphs(count: int, per_paragraph: int = 5, start: int = 0) -> str:
    paragraphs = []
    for paragraph in range(count):
        first = start + paragraph * per_paragraph
        paragraphs.append(" ".join(_sentence(first + n) for n in range(per_paragraph)))
    return "\n\n".join(paragraphs)


def _sections() -> list[Section]:
    return [
        Section(_paragraphs(12), (), 1),
        Section(_paragraphs(1, 2, start=100), (), 2),
        Section("", ("Empty",), None),
        Section(_paragraphs(20, start=200), ("Biology", "Cells"), None),
    ]


def _count(text: str) -> int:
    return word_token_counter(text)


def test_word_token_counter() -> None:
    assert word_token_counter("") == 0
    assert word_token_counter("one") == 2
    assert word_token_counter("one two three four five six seven eight nine ten") == 13


def test_chunks_are_sized_between_bounds() -> None:
    chunks = chunk_sections(_sections(), _count, target=120, maximum=160, overlap=25)
    for chunk in chunks:
        assert chunk.token_count == _count(chunk.text)
        assert chunk.token_count <= 160
    # Only the last chunk of a section may fall short of the target.
    by_section: dict[tuple[tuple[str, ...], int | None], list[Chunk]] = {}
    for chunk in chunks:
        by_section.setdefault((chunk.heading_path, chunk.page), []).append(chunk)
    for section_chunks in by_section.values():
        assert all(chunk.token_count >= 100 for chunk in section_chunks[:-1])


def test_ordinals_run_across_the_document_and_empty_sections_are_skipped() -> None:
    chunks = chunk_sections(_sections(), _count, target=120, maximum=160, overlap=25)
    assert [chunk.ordinal for chunk in chunks] == list(range(len(chunks)))
    assert ("Empty",) not in {chunk.heading_path for chunk in chunks}
    pages = [chunk.page for chunk in chunks]
    assert pages == sorted(pages, key=lambda page: (page is None, page))


def test_chunks_never_cross_a_section_boundary() -> None:
    sections = _sections()
    chunks = chunk_sections(sections, _count, target=120, maximum=160, overlap=25)
    for chunk in chunks:
        owner = next(
            section
            for section in sections
            if (section.heading_path, section.page) == (chunk.heading_path, chunk.page)
        )
        for sentence in chunk.text.replace("\n\n", " ").split(". "):
            assert sentence.rstrip(".") in owner.text
    # Page 2 is small: one chunk holding exactly its own text.
    assert [chunk.text for chunk in chunks if chunk.page == 2] == [sections[1].text]


def test_neighbouring_chunks_overlap_by_whole_sentences() -> None:
    chunks = chunk_sections(_sections(), _count, target=120, maximum=160, overlap=25)
    pairs = [
        (before, after)
        for before, after in itertools.pairwise(chunks)
        if (before.heading_path, before.page) == (after.heading_path, after.page)
    ]
    assert len(pairs) >= 5
    for before, after in pairs:
        first_sentence = re.split(r"(?<=\.)\s+", after.text)[0]
        assert before.text.endswith(first_sentence)
        assert _count(first_sentence) <= 25
    # Chunks of different sections share nothing.
    first_of_page_2 = next(chunk for chunk in chunks if chunk.page == 2)
    assert "Sentence 100 " in first_of_page_2.text.split(".")[0]


def test_without_overlap_the_chunks_partition_the_text() -> None:
    section = Section(_paragraphs(10), ("Only",), None)
    chunks = chunk_sections([section], _count, target=100, maximum=130, overlap=0)
    assert " ".join(chunk.text for chunk in chunks).replace("\n\n", " ") == section.text.replace(
        "\n\n", " "
    )


def test_paragraph_breaks_survive_inside_chunks() -> None:
    chunks = chunk_sections([Section(_paragraphs(2), (), None)], _count)
    assert len(chunks) == 1
    assert chunks[0].text.count("\n\n") == 1


def test_a_tiny_tail_is_folded_into_the_previous_chunk() -> None:
    # Eleven 13-token sentences: 9 fill a 110-token chunk and two would be left over.
    text = " ".join(f"Tail word {n} has exactly ten words in its sentence." for n in range(11))
    chunks = chunk_sections([Section(text, (), None)], _count, target=110, maximum=160, overlap=0)
    assert len(chunks) == 1
    assert chunks[0].text == text


def test_a_giant_sentence_is_split_by_words() -> None:
    words = [f"word{n}" for n in range(1000)]
    giant = " ".join(words) + "."
    chunks = chunk_sections([Section(giant, (), 7)], _count, target=300, maximum=400, overlap=50)
    assert len(chunks) >= 4
    assert all(chunk.token_count <= 400 for chunk in chunks)
    assert all(chunk.page == 7 for chunk in chunks)
    # Every word survives, in order, and neighbours still overlap (by trailing words).
    seen = [word for chunk in chunks for word in chunk.text.rstrip(".").split()]
    assert sorted(set(seen), key=words.index) == words
    for before, after in itertools.pairwise(chunks):
        assert before.text.split()[-1] in after.text.split()[:60]


def test_a_giant_word_is_split_by_characters() -> None:
    def by_characters(text: str) -> int:
        return len(text.replace(" ", ""))

    blob = "x" * 1000
    chunks = chunk_sections([Section(blob, (), None)], by_characters, target=300, maximum=400)
    assert all(chunk.token_count <= 400 for chunk in chunks)
    assert "".join(chunk.text for chunk in chunks).replace(" ", "").count("x") >= 1000


def test_lines_of_lists_and_code_keep_their_line_breaks() -> None:
    text = "Steps:\n- open the file\n- read it\n\nfor x in y:\n    print(x)"
    chunks = chunk_sections([Section(text, (), None)], _count)
    assert [chunk.text for chunk in chunks] == [text]


def test_chunking_is_deterministic() -> None:
    first = chunk_sections(_sections(), _count, target=120, maximum=160, overlap=25)
    second = chunk_sections(_sections(), _count, target=120, maximum=160, overlap=25)
    assert first == second


def test_default_sizes() -> None:
    chunks = chunk_sections(_sections(), _count)
    assert all(chunk.token_count <= 400 for chunk in chunks)
    assert max(chunk.token_count for chunk in chunks) >= 300


def test_no_sections_no_chunks() -> None:
    assert chunk_sections([], _count) == []


@pytest.mark.parametrize(
    ("target", "maximum", "overlap"), [(0, 10, 0), (20, 10, 0), (100, 200, 100), (100, 200, -1)]
)
def test_inconsistent_sizes_are_refused(target: int, maximum: int, overlap: int) -> None:
    with pytest.raises(ValueError, match="target"):
        chunk_sections(_sections(), _count, target=target, maximum=maximum, overlap=overlap)
