"""Sections cut into overlapping, embedding-sized chunks.

A chunk is what retrieval returns and cites, so it stays inside one section (one page,
one heading) and is built from whole sentences where possible; the overlap keeps a
thought that straddles two chunks findable from either. Token counts come from the
caller (the embedding model's tokenizer in production) and are assumed additive over
whitespace-joined pieces, which holds for word-piece tokenizers.

Chunks are made lazily (`iter_chunks`): a caller that keeps only the first N chunks of
a long document pays for reading only that far.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from lyceum.kit.documents.extraction import Section

TokenCounter = Callable[[str], int]

MIN_TAIL_TOKENS: Final = 40


@dataclass(frozen=True, slots=True)
class Chunk:
    text: str
    heading_path: tuple[str, ...]
    page: int | None
    ordinal: int
    token_count: int
    # How far into the document (characters of its sections' text, in reading order)
    # this chunk reaches; whitespace the splitting dropped is not counted.
    end: int = 0


@dataclass(frozen=True, slots=True)
class _Unit:
    """A sentence (or a piece of an over-long one), how it joins the text before it, and
    where it ends in its section (characters)."""

    text: str
    tokens: int
    separator: str
    end: int


def word_token_counter(text: str) -> int:
    """A cheap stand-in for a tokenizer: word pieces average about 1.3 per word."""
    return math.ceil(len(text.split()) * 1.3)


_SENTENCE_END = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019\u00bb)\]]*\s+|[\u3002\uff01\uff1f]+\s*")


def _sentences(paragraph: str) -> Iterable[str]:
    start = 0
    for match in _SENTENCE_END.finditer(paragraph):
        piece = paragraph[start : match.end()].strip()
        if piece:
            yield piece
        start = match.end()
    tail = paragraph[start:].strip()
    if tail:
        yield tail


def _split_word(word: str, limit: int, count: TokenCounter) -> list[str]:
    """A 'word' longer than a chunk (a URL, base64): the longest prefixes that fit."""
    pieces: list[str] = []
    while word:
        low, high = 1, len(word)
        while low < high:  # the longest prefix within the limit, at least one character
            middle = (low + high + 1) // 2
            if count(word[:middle]) <= limit:
                low = middle
            else:
                high = middle - 1
        pieces.append(word[:low])
        word = word[low:]
    return pieces


def _split_sentence(sentence: str, limit: int, count: TokenCounter) -> list[tuple[str, int]]:
    """An over-long sentence cut at word boundaries into pieces of at most `limit`."""
    pieces: list[tuple[str, int]] = []
    words: list[str] = []
    total = 0
    for word in sentence.split():
        tokens = count(word)
        parts = [(word, tokens)]
        if tokens > limit:
            parts = [(part, count(part)) for part in _split_word(word, limit, count)]
        for part, part_tokens in parts:
            if words and total + part_tokens > limit:
                pieces.append((" ".join(words), total))
                words, total = [], 0
            words.append(part)
            total += part_tokens
    if words:
        pieces.append((" ".join(words), total))
    return pieces


def _units(text: str, count: TokenCounter, target: int, maximum: int) -> Iterator[_Unit]:
    """Paragraphs, then lines (kept for lists and code), then sentences."""
    first = True
    end = 0
    for paragraph in re.split(r"\n\s*\n", text):
        for line_number, line in enumerate(paragraph.split("\n")):
            indent = line[: len(line) - len(line.lstrip())]  # code keeps its indentation
            for sentence_number, sentence in enumerate(_sentences(line)):
                if first:
                    separator = ""
                elif sentence_number > 0:
                    separator = " "
                else:
                    separator = ("\n" if line_number > 0 else "\n\n") + indent
                first = False
                tokens = count(sentence)
                pieces = [(sentence, tokens)]
                if tokens > maximum:
                    pieces = _split_sentence(sentence, target, count)
                for index, (piece, piece_tokens) in enumerate(pieces):
                    joiner = separator if index == 0 else " "
                    end += len(joiner) + len(piece)
                    yield _Unit(piece, piece_tokens, joiner, end)


def _overlap(chunk: Sequence[_Unit], budget: int, count: TokenCounter) -> list[_Unit]:
    """The tail of a chunk to repeat at the start of the next: whole sentences when they
    fit the budget, else the last words of the final sentence."""
    tail: list[_Unit] = []
    total = 0
    for unit in reversed(chunk[1:]):
        if total + unit.tokens > budget:
            break
        tail.insert(0, unit)
        total += unit.tokens
    if tail or budget <= 0:
        return tail
    words = chunk[-1].text.split()
    kept: list[str] = []
    for word in reversed(words[1:]):
        if count(" ".join([word, *kept])) > budget:
            break
        kept.insert(0, word)
    if not kept:
        return []
    text = " ".join(kept)
    return [_Unit(text, count(text), " ", chunk[-1].end)]


def _pack(
    units: Iterable[_Unit], target: int, maximum: int, overlap: int, count: TokenCounter
) -> Iterator[list[_Unit]]:
    """Fill each chunk to `target` without passing `maximum`, each one starting with the
    previous chunk's tail. Reads `units` only as far as the chunks asked for need."""
    pending = iter(units)
    upcoming = next(pending, None)
    # The last chunk made is held back until the next one exists: a scrap at the very
    # end repeats it more than it adds, and is folded into it instead.
    previous: list[_Unit] | None = None
    while upcoming is not None:
        current = _overlap(previous, overlap, count) if previous else []
        total = sum(unit.tokens for unit in current)
        # The overlap gives way when the next sentence would not fit beside it.
        while current and total + upcoming.tokens > maximum:
            total -= current.pop(0).tokens
        repeated = len(current)
        first = True
        while upcoming is not None and total < target:
            if not first and total + upcoming.tokens > maximum:
                break
            current.append(upcoming)
            total += upcoming.tokens
            upcoming = next(pending, None)
            first = False
        if previous is not None:
            new = current[repeated:]
            new_tokens = sum(unit.tokens for unit in new)
            if (
                upcoming is None
                and new_tokens < MIN_TAIL_TOKENS
                and sum(unit.tokens for unit in previous) + new_tokens <= maximum
            ):
                yield previous + new
                return
            yield previous
        previous = current
    if previous is not None:
        yield previous


def _join(units: Iterable[_Unit]) -> str:
    parts: list[str] = []
    for unit in units:
        parts.append((unit.separator if parts else "") + unit.text)
    return "".join(parts)


def iter_chunks(
    sections: Iterable[Section],
    count_tokens: TokenCounter,
    *,
    target: int = 300,
    maximum: int = 400,
    overlap: int = 50,
) -> Iterator[Chunk]:
    """Chunks of about `target` tokens, never above `maximum`, numbered across the
    whole document in reading order, made as they are asked for."""
    if not 0 < target <= maximum or not 0 <= overlap < target:
        raise ValueError("need 0 < target <= maximum and 0 <= overlap < target")
    return _chunks(sections, count_tokens, target, maximum, overlap)


def _chunks(
    sections: Iterable[Section], count_tokens: TokenCounter, target: int, maximum: int, overlap: int
) -> Iterator[Chunk]:
    ordinal = 0
    start = 0  # where the current section begins in the document
    for section in sections:
        units = _units(section.text, count_tokens, target, maximum)
        for packed in _pack(units, target, maximum, overlap, count_tokens):
            text = _join(packed)
            yield Chunk(
                text=text,
                heading_path=section.heading_path,
                page=section.page,
                ordinal=ordinal,
                token_count=count_tokens(text),
                end=start + packed[-1].end,
            )
            ordinal += 1
        start += len(section.text)


def chunk_sections(
    sections: Iterable[Section],
    count_tokens: TokenCounter,
    *,
    target: int = 300,
    maximum: int = 400,
    overlap: int = 50,
) -> list[Chunk]:
    """Every chunk of `sections` (see `iter_chunks`)."""
    return list(
        iter_chunks(sections, count_tokens, target=target, maximum=maximum, overlap=overlap)
    )
