"""The tutor without a model provider: a short study answer built from the course's own
passages. It quotes the sentences of the retrieved sources that are closest to the
question (by embedding similarity), cites them, and says where to read more. When the
material does not answer the question (`Grounding.relevant`), it says so and names the
closest lessons instead of quoting a passage that merely ranked first; when part of the
material is still being indexed, it says that. Questions about which course to take are
answered from the catalog."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from lyceum.content.service import Hit
from lyceum.kit.ai.embedding import Embedder
from lyceum.tutor.grounding import Grounding, waiting_material

OFFLINE_NOTE = (
    "_Offline tutor: this answer quotes the course material only. Full explanations "
    "need an AI provider (set AI_API_KEY)._"
)
MAX_QUOTES = 4
MIN_SIMILARITY = 0.2
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-ZÀ-Ỹ0-9\"'(])")
_CATALOG_QUESTION = re.compile(
    r"\b(which|what) (course|class)|\brecommend|\bshould i (take|learn|study|do) next"
    r"|\bnext course\b|\bkhóa học nào\b|\bnên học (gì|khóa)\b|\bgợi ý\b",
    re.IGNORECASE,
)


def is_catalog_question(text: str) -> bool:
    return bool(_CATALOG_QUESTION.search(text))


@dataclass(frozen=True, slots=True)
class CourseSuggestion:
    title: str
    subtitle: str
    url: str


def _sentences(text: str) -> list[str]:
    flat = " ".join(line.strip() for line in text.splitlines() if line.strip())
    return [part.strip() for part in _SENTENCE.split(flat) if len(part.strip()) > 20]


def _where(hit: Hit) -> str:
    where = f", page {hit.source.page}" if hit.source.page else ""
    section = f" (section {hit.source.heading})" if hit.source.heading else ""
    kind = "lesson" if hit.source.kind == "lesson" else "file"
    return f"{kind} “{hit.source.title}”{section}{where}"


def graded_hint(grounding: Grounding) -> str:
    """For graded work: where to read, and how to go on, but no passage of the
    material: the sentences closest to a graded question are usually its answer. No
    `[n]` markers either, since a citation carries a quote of its passage."""
    lines = [
        "This looks like part of graded work, so I will not give the answer or quote "
        "the passage that contains it. The course explains what you need here:",
        "",
    ]
    lines += [f"- {_where(hit)}" for hit in grounding.sources[:3]]
    lines += [
        "",
        "Reread those sections, then try it: say in your own words what the question "
        "asks and which idea from the course it depends on. Tell me your reasoning and "
        "I can point you to the next step.",
        "",
        OFFLINE_NOTE,
    ]
    return "\n".join(lines)


def not_in_material(grounding: Grounding) -> str:
    """No passage answers the question: say so, and where the course comes closest."""
    lines = []
    if grounding.still_indexing and grounding.indexing is not None:
        lines += [
            f"The course material is still being indexed ({waiting_material(grounding.indexing)} "
            "to go), and what is indexed so far does not answer this. Ask again in a "
            "minute or two, once it is done.",
            "",
        ]
    else:
        lines += [
            "I could not find an answer to this in the course material, so I will not "
            "guess. It may be outside what this course covers, or the lessons may put it "
            "in other words.",
            "",
        ]
    closest = list(dict.fromkeys(_where(hit) for hit in grounding.sources))[:3]
    if closest:
        lines.append("The closest parts of the course are:")
        lines += [f"- {where}" for where in closest]
    elif grounding.syllabus:
        lines.append("The course covers:")
        lines += [f"- {module}" for module, _ in grounding.syllabus[:8]]
    lines += ["", OFFLINE_NOTE]
    return "\n".join(lines)


async def study_answer(grounding: Grounding, question: str, embedder: Embedder) -> str:
    if not grounding.sources or not grounding.relevant:
        return not_in_material(grounding)
    if grounding.graded:
        return graded_hint(grounding)
    candidates: list[tuple[int, int, str]] = []  # (source number, order, sentence)
    for number, hit in enumerate(grounding.sources[:3], start=1):
        for order, sentence in enumerate(_sentences(hit.text)):
            candidates.append((number, order, sentence))
    if not candidates:
        candidates = [(1, 0, grounding.sources[0].text[:400])]
    vectors = await embedder.encode([question] + [sentence for _, _, sentence in candidates])
    scores = vectors[1:] @ vectors[0]
    ranked = np.argsort(-scores)
    chosen = [int(index) for index in ranked[:MAX_QUOTES] if scores[index] >= MIN_SIMILARITY] or [
        int(ranked[0])
    ]
    chosen.sort(key=lambda index: (candidates[index][0], candidates[index][1]))

    lines = ["Here is what the course material says about this:", ""]
    for index in chosen:
        number, _, sentence = candidates[index]
        lines.append(f"> {sentence} [{number}]")
        lines.append("")
    lines.append("Read more:")
    for number, hit in enumerate(grounding.sources[:3], start=1):
        lines.append(f"- [{number}] {_where(hit)}")
    if grounding.mode.value == "socratic":
        lines += ["", "Which of these passages answers your question, and why?"]
    if grounding.still_indexing and grounding.indexing is not None:
        lines += [
            "",
            f"(Still being indexed: {waiting_material(grounding.indexing)} of this course; "
            "ask again later for an answer that includes them.)",
        ]
    lines += ["", OFFLINE_NOTE]
    return "\n".join(lines)


def catalog_answer(suggestions: list[CourseSuggestion]) -> str:
    if not suggestions:
        return (
            "I could not find a course in the catalog matching that. Browse "
            "/api/v1/courses to see everything on offer.\n\n" + OFFLINE_NOTE
        )
    lines = ["These courses in the catalog fit what you asked:", ""]
    lines += [f"- **{item.title}**: {item.subtitle} ({item.url})" for item in suggestions]
    lines += ["", OFFLINE_NOTE]
    return "\n".join(lines)
