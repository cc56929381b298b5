"""Grading each question kind, and vetting instructors' answer patterns."""

from __future__ import annotations

import time
from typing import Any

import pytest

from lyceum.assessments.grading import (
    MAX_SHORT_ANSWER_CHARS,
    UnsafePattern,
    compile_answer_pattern,
    count_words,
    grade_item,
    late_days,
    parse_number,
)
from lyceum.assessments.scoring import EssayJudgement, ScoringInput, judgement_problems, quoted_in
from lyceum.models.assessments import QuestionKind

SINGLE = {"correct": "b"}
MULTIPLE = {"correct": ["a", "c"], "partial_credit": False}
PARTIAL = {"correct": ["a", "c"], "partial_credit": True}


@pytest.mark.parametrize(
    ("kind", "key", "response", "awarded", "correct"),
    [
        (QuestionKind.single_choice, SINGLE, {"choice": "b"}, 2, True),
        (QuestionKind.single_choice, SINGLE, {"choice": "a"}, 0, False),
        (QuestionKind.single_choice, SINGLE, None, 0, False),
        (QuestionKind.multiple_choice, MULTIPLE, {"choices": ["c", "a"]}, 2, True),
        (QuestionKind.multiple_choice, MULTIPLE, {"choices": ["a"]}, 0, False),
        (QuestionKind.multiple_choice, MULTIPLE, {"choices": ["a", "b", "c"]}, 0, False),
        (QuestionKind.multiple_choice, PARTIAL, {"choices": ["a"]}, 1, False),
        (QuestionKind.multiple_choice, PARTIAL, {"choices": ["a", "b"]}, 0, False),
        (QuestionKind.multiple_choice, PARTIAL, {"choices": ["a", "b", "c"]}, 1, False),
        (QuestionKind.multiple_choice, PARTIAL, {"choices": ["b", "d"]}, 0, False),
        (QuestionKind.true_false, {"correct": False}, {"value": False}, 2, True),
        (QuestionKind.true_false, {"correct": False}, {"value": True}, 0, False),
    ],
)
def test_choice_questions(
    kind: QuestionKind,
    key: dict[str, Any],
    response: dict[str, Any] | None,
    awarded: float,
    correct: bool,
) -> None:
    grade = grade_item(kind, key, 2.0, response)
    assert grade is not None
    assert (grade.awarded, grade.correct) == (awarded, correct)


@pytest.mark.parametrize(
    ("key", "answer", "correct"),
    [
        ({"match": "exact", "accepted": ["Paris"]}, " Paris ", True),
        ({"match": "exact", "accepted": ["Paris"]}, "paris", False),
        ({"match": "exact", "accepted": ["New  York"]}, "New York", True),
        ({"match": "case_insensitive", "accepted": ["Straße"]}, "STRASSE", True),
        ({"match": "case_insensitive", "accepted": ["Hà Nội"]}, "hà nội", True),
        ({"match": "regex", "accepted": [r"mitochondri(on|a)"]}, "Mitochondria", True),
        ({"match": "regex", "accepted": [r"mitochondri(on|a)"]}, "the mitochondria", False),
        ({"match": "regex", "accepted": [r"\d+\s*cm"]}, "12 cm", True),
        (
            {"match": "regex", "accepted": [r"\d+\s*cm"]},
            "1" * (MAX_SHORT_ANSWER_CHARS + 1) + "cm",
            False,
        ),
        ({"match": "numeric", "number": 9.81, "tolerance": 0.05}, "9.8", True),
        ({"match": "numeric", "number": 9.81, "tolerance": 0.05}, "9,85", True),
        ({"match": "numeric", "number": 9.81, "tolerance": 0.05}, "9.9", False),
        ({"match": "numeric", "number": 0.3, "tolerance": 0}, "0.30000000000000004", True),
        ({"match": "numeric", "number": 1000, "tolerance": 0}, "1e3", True),
        ({"match": "numeric", "number": 1000, "tolerance": 0}, "one thousand", False),
        ({"match": "numeric", "number": 1, "tolerance": 0}, "nan", False),
    ],
)
def test_short_answers(key: dict[str, Any], answer: str, correct: bool) -> None:
    grade = grade_item(QuestionKind.short_answer, key, 1.0, {"text": answer})
    assert grade is not None and grade.correct is correct and grade.awarded == float(correct)


def test_essays_wait_for_an_instructor() -> None:
    assert grade_item(QuestionKind.essay, {}, 5.0, {"text": "An answer."}) is None


def test_numbers() -> None:
    assert parse_number("-3.5") == -3.5 and parse_number("3,14") == 3.14
    assert parse_number("1,000.5") is None and parse_number("inf") is None


@pytest.mark.parametrize(
    "pattern",
    [
        r"(a+)+$",
        r"(a*)*b",
        r"(\w+\s?)+$",
        r"(a|aa)+b",
        r"(x+x+)+y",
        r"(\d+)\1",
        r"(?P<n>a)(?P=n)",
        r"\d*\d*\d*\d*\d*\d*!",
        r"[",
        "x" * 201,
        "",
    ],
)
def test_unsafe_or_invalid_patterns_are_refused_quickly(pattern: str) -> None:
    started = time.perf_counter()
    with pytest.raises(UnsafePattern):
        compile_answer_pattern(pattern)
    assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize(
    "pattern",
    [
        r"colou?r",
        r"^\s*(\d+)\s*(cm|centimet(er|re)s?)\s*$",
        r"[a-z]{2,5}\d",
        r"(?i)paris",
        r"(abc){2}",
    ],
)
def test_ordinary_patterns_are_accepted(pattern: str) -> None:
    compile_answer_pattern(pattern)


def test_words_and_lateness() -> None:
    assert count_words("Don't stop — well-known words, 3 of them.") == 7
    assert [late_days(s) for s in (0, 1, 86400, 86401)] == [0, 1, 1, 2]


def _input() -> ScoringInput:
    return ScoringInput(
        prompt="Explain.",
        criteria=[
            {
                "id": "c",
                "title": "Content",
                "levels": [{"title": "No", "points": 0}, {"title": "Yes", "points": 5}],
            }
        ],
        reference_answer="",
        min_words=None,
        max_words=None,
        essay="Plants  make glucose from light.",
    )


def test_a_judgement_must_score_every_criterion_with_real_levels_and_quotes() -> None:
    data = _input()
    good = EssayJudgement.model_validate(
        {
            "criteria": [
                {
                    "criterion_id": "c",
                    "level": 1,
                    "points": 5,
                    "justification": "Yes.",
                    "quote": "“plants make glucose”",
                }
            ],
            "overall_feedback": "Fine.",
            "suggestions": [],
        }
    )
    assert judgement_problems(data, good) == []
    bad = EssayJudgement.model_validate(
        {
            "criteria": [
                {
                    "criterion_id": "c",
                    "level": 1,
                    "points": 3,
                    "justification": "",
                    "quote": "cheese",
                },
                {"criterion_id": "x", "level": 0, "points": 0, "justification": "", "quote": ""},
            ],
            "overall_feedback": "",
            "suggestions": [],
        }
    )
    problems = judgement_problems(data, bad)
    assert "level 1 of 'c' is worth 5 points, not 3" in problems
    assert "the quote for 'c' is not in the essay; copy a passage word for word" in problems
    assert "'x' is not a criterion of this rubric" in problems
    assert quoted_in("make glucose", data.essay) and not quoted_in("", data.essay)
