"""Quiz item analysis and rubric scores against small cases worked out by hand, as JSON
and as CSV."""

from __future__ import annotations

import math
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lyceum.models.assessments import (
    Assignment,
    AttemptItem,
    AttemptStatus,
    EssaySubmission,
    QuestionKind,
    Quiz,
    QuizAttempt,
    SubmissionStatus,
)
from tests.analytics.report_fixtures import (
    add_rows,
    add_user,
    ago,
    get_csv,
    get_json,
    taught_course,
)
from tests.support.clock import FrozenClock

API = "/api/v1/analytics"

SINGLE = {
    "prompt": "Which is the mean of 1, 2, 3?",
    "options": [{"id": "a", "text": "2"}, {"id": "b", "text": "3"}, {"id": "c", "text": "6"}],
    "key": {"correct": "a"},
}
TRUE_FALSE = {
    "prompt": "The median is robust to outliers.",
    "options": [],
    "key": {"correct": True},
}
MULTIPLE = {
    "prompt": "Which measure spread?",
    "options": [
        {"id": "x", "text": "variance"},
        {"id": "y", "text": "range"},
        {"id": "z", "text": "mode"},
    ],
    "key": {"correct": ["x", "y"], "partial_credit": True},
}


async def test_quiz_item_analysis(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    session: AsyncSession,
    clock: FrozenClock,
) -> None:
    world = await taught_course(client, connection, session, clock)
    quiz = Quiz(course_id=world.course_id, title="Check", pass_percent=50, published=True)
    await add_rows(session, quiz)
    q1, q2, q3 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    # Per learner: (Q1 choice, awarded), (Q2 value, awarded), (Q3 choices or None, awarded)
    answers: list[tuple[tuple[str, float], tuple[bool, float], tuple[list[str] | None, float]]] = [
        (("a", 1), (True, 1), (["x", "y"], 2)),  # 4 of 4
        (("a", 1), (True, 1), (["x"], 1)),  # 3 of 4
        (("b", 0), (True, 1), (["x", "z"], 0)),  # 1 of 4
        (("a", 1), (False, 0), (None, 0)),  # 1 of 4
        (("c", 0), (True, 1), (["x", "y"], 2)),  # 3 of 4
    ]
    for index, ((choice, a1), (value, a2), (choices, a3)) in enumerate(answers):
        learner = await add_user(session, f"L{index}")
        first = _attempt(quiz, learner, 1, AttemptStatus.graded)
        await add_rows(session, first)
        await add_rows(
            session,
            _item(first, 0, q1, QuestionKind.single_choice, 1, SINGLE, {"choice": choice}, a1),
            _item(first, 1, q2, QuestionKind.true_false, 1, TRUE_FALSE, {"value": value}, a2),
            _item(
                first,
                2,
                q3,
                QuestionKind.multiple_choice,
                2,
                MULTIPLE,
                None if choices is None else {"choices": choices},
                a3,
            ),
        )
        if index == 0:
            # A second graded attempt and one in progress: neither is counted.
            for number, status in ((2, AttemptStatus.graded), (3, AttemptStatus.in_progress)):
                later = _attempt(quiz, learner, number, status)
                await add_rows(session, later)
                await add_rows(
                    session,
                    _item(later, 0, q1, QuestionKind.single_choice, 1, SINGLE, {"choice": "c"}, 0),
                )
    await session.commit()

    path = f"{API}/quizzes/{quiz.id}/items"
    body = await get_json(client, path, world.teacher)
    assert body["attempts"] == 5
    # In the quiz's order.
    assert [row["question_id"] for row in body["items"]] == [str(q1), str(q2), str(q3)]
    items = {row["question_id"]: row for row in body["items"]}
    single, truth, multiple = items[str(q1)], items[str(q2)], items[str(q3)]

    assert single["attempts"] == 5
    assert single["difficulty"] == pytest.approx(0.6)
    # item x = 1 1 0 1 0, rest-of-test percent y = 1, 2/3, 1/3, 0, 1:
    # sxy = -2/15, sxx = 6/5, syy = 34/45 -> r = -1/sqrt(51)
    assert single["discrimination"] == pytest.approx(-1 / math.sqrt(51))
    # totals (L0..L4) 1 .75 .25 .25 .75 -> groups of ceil(.27 * 5) = 2: lower {L2, L3}
    # 0.5; upper L0 (1) and half of the tied {L1, L4} (mean .5) -> 1.5 / 2 = .75
    assert single["upper_lower"] == pytest.approx(0.25)
    assert {o["option_id"]: (o["chosen"], o["correct"]) for o in single["options"]} == {
        "a": (3, True),
        "b": (1, False),
        "c": (1, False),
    }
    assert single["flags"] == ["negative_discrimination", "few_attempts"]

    assert truth["difficulty"] == pytest.approx(0.8)
    assert truth["upper_lower"] == pytest.approx(0.5)  # lower 1, 0 -> .5; upper 1, 1 -> 1
    assert truth["discrimination"] == pytest.approx(0.294174, abs=1e-6)
    assert {o["option_id"]: (o["chosen"], o["correct"]) for o in truth["options"]} == {
        "true": (4, True),
        "false": (1, False),
    }
    assert truth["flags"] == ["few_attempts"]

    # item x = 1 .5 0 0 1, rest y = 1 1 .5 .5 .5: sxy = .25, sxx = 1, syy = .3
    assert multiple["difficulty"] == pytest.approx(0.5)
    assert multiple["discrimination"] == pytest.approx(0.25 / math.sqrt(0.3))
    assert multiple["upper_lower"] == pytest.approx(0.875)  # upper (1 + (.5 + 1) / 2) / 2
    assert multiple["unanswered"] == 1
    assert {o["option_id"]: o["chosen"] for o in multiple["options"]} == {"x": 4, "y": 2, "z": 1}

    rows = await get_csv(client, path, world.teacher)
    by_id = {row[0]: row for row in rows[1:]}
    assert rows[0][:5] == ["question_id", "kind", "prompt", "attempts", "difficulty"]
    assert float(by_id[str(q1)][4]) == single["difficulty"]
    assert float(by_id[str(q1)][5]) == pytest.approx(single["discrimination"])
    assert by_id[str(q1)][8] == "a=3 b=1 c=1"
    assert by_id[str(q1)][9] == "negative_discrimination few_attempts"
    assert by_id[str(q3)][7] == "1"


def test_flags_for_extreme_difficulty() -> None:
    from lyceum.analytics.insights import ItemResponse, item_statistics

    everyone = [ItemResponse(1, 1, 1 + k % 2, 2) for k in range(20)]
    assert item_statistics("true_false", everyone).flags == ["too_easy"]
    nobody = [ItemResponse(0, 1, k % 2, 2) for k in range(20)]
    assert item_statistics("true_false", nobody).flags == ["too_hard"]
    # At the thresholds themselves nothing is flagged: p = 0.2 and p = 0.95.
    fifth = [ItemResponse(1 if k < 4 else 0, 1, 1, 2) for k in range(20)]
    assert "too_hard" not in item_statistics("true_false", fifth).flags
    most = [ItemResponse(1 if k < 19 else 0, 1, 1, 2) for k in range(20)]
    assert "too_easy" not in item_statistics("true_false", most).flags


def _attempt(quiz: Quiz, learner: uuid.UUID, number: int, status: AttemptStatus) -> QuizAttempt:
    return QuizAttempt(
        id=uuid.uuid4(),
        quiz_id=quiz.id,
        course_id=quiz.course_id,
        user_id=learner,
        number=number,
        status=status,
        started_at=ago(days=3, hours=-number),
        graded_at=ago(days=2) if status is AttemptStatus.graded else None,
        max_score=4,
    )


def _item(
    attempt: QuizAttempt,
    position: int,
    question_id: uuid.UUID,
    kind: QuestionKind,
    points: float,
    snapshot: dict[str, Any],
    response: dict[str, Any] | None,
    awarded: float,
) -> AttemptItem:
    return AttemptItem(
        attempt_id=attempt.id,
        position=position,
        question_id=question_id,
        kind=kind,
        points=points,
        snapshot=snapshot,
        response=response,
        awarded=awarded,
        is_correct=awarded == points,
    )


RUBRIC = {
    "criteria": [
        {
            "id": "thesis",
            "title": "Thesis",
            "description": "",
            "key_terms": [],
            "levels": [
                {"title": "Weak", "descriptor": "", "points": 0},
                {"title": "Fair", "descriptor": "", "points": 2},
                {"title": "Strong", "descriptor": "", "points": 4},
            ],
        },
        {
            "id": "evidence",
            "title": "Evidence",
            "description": "",
            "key_terms": [],
            "levels": [
                {"title": "None", "descriptor": "", "points": 0},
                {"title": "Some", "descriptor": "", "points": 3},
                {"title": "Full", "descriptor": "", "points": 6},
            ],
        },
    ]
}


async def test_rubric_scores_per_criterion(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    session: AsyncSession,
    clock: FrozenClock,
) -> None:
    world = await taught_course(client, connection, session, clock)
    assignment = Assignment(
        course_id=world.course_id,
        title="Essay",
        prompt="Argue.",
        rubric=RUBRIC,
        points=10,
        pass_percent=50,
        published=True,
    )
    await add_rows(session, assignment)
    grades: list[tuple[SubmissionStatus, dict[str, float] | None]] = [
        (SubmissionStatus.released, {"thesis": 4, "evidence": 3}),
        (SubmissionStatus.reviewed, {"thesis": 2, "evidence": 6}),  # settled, not released
        (SubmissionStatus.released, {"thesis": 1, "evidence": 3}),  # 1 falls in Weak
        (SubmissionStatus.needs_review, None),  # a proposal only: not a grade
        (SubmissionStatus.scoring, None),
    ]
    for index, (status, final) in enumerate(grades):
        learner = await add_user(session, f"W{index}")
        await add_rows(
            session,
            EssaySubmission(
                assignment_id=assignment.id,
                course_id=world.course_id,
                user_id=learner,
                text="words " * 50,
                word_count=50,
                source="text",
                submitted_at=ago(3),
                status=status,
                proposal={"criteria": [{"criterion_id": "thesis", "points": 4}]},
                final=None
                if final is None
                else {
                    "criteria": [
                        {"criterion_id": key, "points": value, "comment": ""}
                        for key, value in final.items()
                    ],
                    "comment": "",
                },
            ),
        )
    await session.commit()

    path = f"{API}/assignments/{assignment.id}/rubric"
    body = await get_json(client, path, world.teacher)
    assert (body["graded"], body["released"]) == (3, 2)
    thesis, evidence = body["items"]
    assert thesis["criterion_id"] == "thesis"
    assert (thesis["count"], thesis["max_points"], thesis["median"]) == (3, 4, 2)
    assert thesis["mean"] == pytest.approx(7 / 3)
    assert [(lv["title"], lv["count"]) for lv in thesis["levels"]] == [
        ("Weak", 1),
        ("Fair", 1),
        ("Strong", 1),
    ]
    assert (evidence["count"], evidence["mean"], evidence["median"]) == (3, 4, 3)
    assert [lv["count"] for lv in evidence["levels"]] == [0, 2, 1]

    rows = await get_csv(client, path, world.teacher)
    assert rows[0][:6] == ["criterion_id", "criterion", "max_points", "count", "mean", "median"]
    assert [(r[0], r[6], r[8]) for r in rows[1:]] == [
        ("thesis", "Weak", "1"),
        ("thesis", "Fair", "1"),
        ("thesis", "Strong", "1"),
        ("evidence", "None", "0"),
        ("evidence", "Some", "2"),
        ("evidence", "Full", "1"),
    ]
    assert float(rows[1][4]) == pytest.approx(7 / 3)
