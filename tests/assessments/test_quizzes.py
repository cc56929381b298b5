"""Question banks and quizzes through the API: authoring checks, drawing, saving and
submitting answers against the server's clock, review policies, attempt limits."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lyceum.assessments.service.closing import close_expired_attempts
from lyceum.kit.runtime import Runtime
from lyceum.models.assessments import AttemptItem, QuizAttempt
from tests.assessments.helpers import (
    API,
    Classroom,
    add_question,
    add_quiz,
    classroom,
    essay_question,
    multiple_choice,
    short_answer,
    single_choice,
    start,
    true_false,
)
from tests.support.clock import FrozenClock


@pytest.fixture
async def room(
    client: httpx.AsyncClient, connection: AsyncConnection, runtime: Runtime
) -> Classroom:
    return await classroom(client, connection, runtime)


def problem(response: httpx.Response, status: int, slug: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    if slug is not None:
        assert body["type"].endswith("/" + slug), body
    return body


# Authoring --------------------------------------------------------------------------------


async def test_every_question_kind_is_stored_with_its_key(
    client: httpx.AsyncClient, room: Classroom
) -> None:
    numeric = short_answer(match="numeric", accepted=[], number=9.81, tolerance=0.05)
    regex = short_answer(match="regex", accepted=[r"mitochondri(on|a)"])
    created = [
        await add_question(client, room, body)
        for body in (
            single_choice(tags=["Cells", "cells", " energy "]),
            multiple_choice(partial_credit=True),
            true_false(),
            numeric,
            regex,
            essay_question(min_words=10, max_words=200),
        )
    ]
    assert [q["kind"] for q in created] == [
        "single_choice",
        "multiple_choice",
        "true_false",
        "short_answer",
        "short_answer",
        "essay",
    ]
    assert created[0]["tags"] == ["cells", "energy"] and created[0]["key"]["correct"] == "b"
    assert created[1]["key"] == {**created[1]["key"], "correct": ["2", "3"], "partial_credit": True}
    assert [o["id"] for o in created[2]["options"]] == ["true", "false"]
    assert created[3]["key"]["number"] == 9.81 and created[3]["key"]["tolerance"] == 0.05
    listed = await client.get(
        f"{API}/courses/{room.course_id}/questions?tag=cells", headers=room.teacher.headers
    )
    assert listed.json()["total"] == 1


BAD_QUESTIONS: list[tuple[dict[str, Any], str, str | None]] = [
    (short_answer(match="regex", accepted=["(a+)+$"]), "body.accepted.0", "unsafe-pattern"),
    (short_answer(match="regex", accepted=["ok", "(a|ab)*c"]), "body.accepted.1", "unsafe-pattern"),
    (short_answer(match="regex", accepted=["([unclosed"]), "body.accepted.0", "unsafe-pattern"),
    (
        short_answer(match="regex", accepted=[r"\d*\d*\d*\d*\d*x"]),
        "body.accepted.0",
        "unsafe-pattern",
    ),
    (short_answer(match="numeric", accepted=[]), "body.number", None),
    (short_answer(accepted=[]), "body.accepted", None),
    (single_choice(correct="z"), "body.correct", None),
    (
        single_choice(options=[{"id": "a", "text": "x"}, {"id": "a", "text": "y"}], correct="a"),
        "body.options",
        None,
    ),
    (multiple_choice(correct=["2", "2"]), "body.correct", None),
    (essay_question(min_words=50, max_words=10), "body.min_words", None),
    # Non-finite numbers and lone surrogates: PostgreSQL's JSONB and text refuse them.
    (short_answer(match="numeric", number=float("inf")), "body.short_answer.number", None),
    (
        short_answer(match="numeric", number=1, tolerance=float("nan")),
        "body.short_answer.tolerance",
        None,
    ),
    (single_choice(prompt="Which \ud800?"), "body.single_choice.prompt", None),
]


async def test_bad_questions_are_refused_naming_the_field(
    client: httpx.AsyncClient, room: Classroom
) -> None:
    for body, field, slug in BAD_QUESTIONS:
        # Python's encoder, as a careless client would: NaN, Infinity and \ud800 escapes.
        response = await client.post(
            f"{API}/courses/{room.course_id}/questions",
            content=json.dumps(body),
            headers={**room.teacher.headers, "Content-Type": "application/json"},
        )
        problem_body = problem(response, 422, slug)
        assert problem_body["errors"][0]["field"] == field, (body, problem_body)
    listed = await client.get(
        f"{API}/courses/{room.course_id}/questions", headers=room.teacher.headers
    )
    assert listed.json()["total"] == 0


async def test_quiz_sections_are_checked_against_the_bank(
    client: httpx.AsyncClient, room: Classroom
) -> None:
    question = await add_question(client, room, single_choice(tags=["cells"]))
    url = f"{API}/courses/{room.course_id}/quizzes"
    too_many = await client.post(
        url,
        json={"title": "Q", "sections": [{"tag": "cells", "draw": 2}]},
        headers=room.teacher.headers,
    )
    assert problem(too_many, 422)["errors"][0]["field"] == "body.sections.0.draw"
    both = await client.post(
        url,
        json={"title": "Q", "sections": [{"tag": "cells", "question_id": question["id"]}]},
        headers=room.teacher.headers,
    )
    assert problem(both, 422)["errors"][0]["field"] == "body.sections.0"
    empty = await client.post(
        url, json={"title": "Q", "published": True}, headers=room.teacher.headers
    )
    problem(empty, 409, "quiz-empty")
    ancient = await client.post(
        url,
        json={"title": "Q", "due_at": "0001-01-01T00:00:00+14:00"},
        headers=room.teacher.headers,
    )
    assert problem(ancient, 422)["errors"][0]["field"] == "body.due_at"
    backwards = await client.post(
        url,
        json={
            "title": "Q",
            "available_from": "2030-01-02T00:00:00Z",
            "available_until": "2030-01-01T00:00:00Z",
        },
        headers=room.teacher.headers,
    )
    assert problem(backwards, 422)["errors"][0]["field"] == "body.available_until"
    in_use = await add_quiz(client, room, [question["id"]])
    refused = await client.delete(f"{API}/questions/{question['id']}", headers=room.teacher.headers)
    problem(refused, 409, "question-in-use")
    assert in_use["sections"][0]["question_id"] == question["id"]


# Taking a quiz ----------------------------------------------------------------------------


async def test_a_learner_takes_a_quiz_and_every_kind_is_graded(
    client: httpx.AsyncClient, room: Classroom
) -> None:
    questions = [
        await add_question(client, room, body)
        for body in (
            single_choice(),
            multiple_choice(partial_credit=True),
            true_false(),
            short_answer(),
            short_answer(match="numeric", accepted=[], number=3.14, tolerance=0.01),
            short_answer(match="regex", accepted=[r"mitochondri(on|a)"], prompt="Powerhouse?"),
        )
    ]
    quiz = await add_quiz(client, room, [q["id"] for q in questions], pass_percent=50)
    sheet = await start(client, quiz["id"], room.learner)
    assert len(sheet["questions"]) == 6
    assert all("correct" not in q and "explanation" not in q for q in sheet["questions"])
    ids = [q["id"] for q in questions]
    answers = [
        {"question_id": ids[0], "choice": "b"},
        {"question_id": ids[1], "choices": ["2", "4"]},
        {"question_id": ids[2], "value": True},
        {"question_id": ids[3], "text": "  paris "},
        {"question_id": ids[4], "text": "3,145"},
        {"question_id": ids[5], "text": "Mitochondria"},
    ]
    saved = await client.put(
        f"{API}/attempts/{sheet['id']}/answers",
        json={"answers": answers[:3]},
        headers=room.learner.headers,
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["questions"][0]["answer"]["choice"] == "b"
    result = await client.post(
        f"{API}/attempts/{sheet['id']}/submit",
        json={"answers": answers[3:]},
        headers=room.learner.headers,
    )
    assert result.status_code == 200, result.text
    body = result.json()
    awarded = {item["question_id"]: item["awarded"] for item in body["items"]}
    # Multiple choice with partial credit: one right (+2), one wrong (-2) of 4 points.
    assert awarded == {ids[0]: 2, ids[1]: 0, ids[2]: 1, ids[3]: 1, ids[4]: 1, ids[5]: 1}
    assert body["score"] == 6 and body["max_score"] == 10
    assert body["percent"] == 60 and body["passed"] is True
    first = body["items"][0]
    assert first["correct_answer"]["option_ids"] == ["b"]
    assert first["explanation"] == "Mitochondria run oxidative phosphorylation."
    again = await client.post(f"{API}/attempts/{sheet['id']}/submit", headers=room.learner.headers)
    problem(again, 409, "already-submitted")


async def test_answers_outside_the_attempt_save_nothing(
    client: httpx.AsyncClient, room: Classroom
) -> None:
    inside = await add_question(client, room, single_choice())
    outside = await add_question(client, room, true_false())
    quiz = await add_quiz(client, room, [inside["id"]])
    sheet = await start(client, quiz["id"], room.learner)
    response = await client.put(
        f"{API}/attempts/{sheet['id']}/answers",
        json={
            "answers": [
                {"question_id": inside["id"], "choice": "b"},
                {"question_id": outside["id"], "value": True},
            ]
        },
        headers=room.learner.headers,
    )
    assert problem(response, 422, "not-in-attempt")["errors"][0]["field"] == (
        "body.answers.1.question_id"
    )
    wrong_shape = await client.put(
        f"{API}/attempts/{sheet['id']}/answers",
        json={"answers": [{"question_id": inside["id"], "value": True}]},
        headers=room.learner.headers,
    )
    problem(wrong_shape, 422)
    unknown_option = await client.put(
        f"{API}/attempts/{sheet['id']}/answers",
        json={"answers": [{"question_id": inside["id"], "choice": "zz"}]},
        headers=room.learner.headers,
    )
    problem(unknown_option, 422)
    current = await client.get(f"{API}/attempts/{sheet['id']}", headers=room.learner.headers)
    assert current.json()["questions"][0]["answer"] is None


async def test_questions_are_drawn_from_tagged_pools_and_shuffled(
    client: httpx.AsyncClient, room: Classroom, session: AsyncSession
) -> None:
    pool = [
        await add_question(client, room, single_choice(prompt=f"Pool question {n}?", tags=["pool"]))
        for n in range(6)
    ]
    fixed = await add_question(client, room, true_false())
    response = await client.post(
        f"{API}/courses/{room.course_id}/quizzes",
        json={
            "title": "Drawn",
            "published": True,
            "shuffle_options": True,
            "sections": [{"question_id": fixed["id"]}, {"tag": "pool", "draw": 3}],
        },
        headers=room.teacher.headers,
    )
    assert response.status_code == 201, response.text
    quiz = response.json()
    assert quiz["question_count"] == 4
    sheet = await start(client, quiz["id"], room.learner)
    drawn = [q["question_id"] for q in sheet["questions"]]
    assert drawn[0] == fixed["id"] and len(set(drawn)) == 4
    assert set(drawn[1:]) <= {q["id"] for q in pool}
    # The server recorded exactly what it drew.
    stored = (
        await session.execute(
            select(AttemptItem.question_id).where(AttemptItem.attempt_id == sheet["id"])
        )
    ).scalars()
    assert sorted(str(q) for q in stored) == sorted(drawn)
    # Options come in each attempt's own order, but they are the question's options.
    assert {o["id"] for o in sheet["questions"][1]["options"]} == {"a", "b", "c"}


async def test_attempts_beyond_the_allowed_count_are_refused(
    client: httpx.AsyncClient, room: Classroom
) -> None:
    question = await add_question(client, room, true_false())
    quiz = await add_quiz(client, room, [question["id"]], max_attempts=1)
    sheet = await start(client, quiz["id"], room.learner)
    resumed = await client.post(
        f"{API}/quizzes/{quiz['id']}/attempts", headers=room.learner.headers
    )
    assert resumed.status_code == 200 and resumed.json()["id"] == sheet["id"]
    await client.post(f"{API}/attempts/{sheet['id']}/submit", headers=room.learner.headers)
    second = await client.post(f"{API}/quizzes/{quiz['id']}/attempts", headers=room.learner.headers)
    problem(second, 409, "no-attempts-left")
    mine = await client.get(f"{API}/quizzes/{quiz['id']}/attempts/me", headers=room.learner.headers)
    assert mine.json()["total"] == 1


async def test_the_availability_window_is_enforced(
    client: httpx.AsyncClient, room: Classroom, clock: FrozenClock
) -> None:
    # Minutes, not hours: the learner's access token lives 30 minutes of this clock.
    question = await add_question(client, room, true_false())
    opens = clock.now() + dt.timedelta(minutes=10)
    closes = opens + dt.timedelta(minutes=15)
    quiz = await add_quiz(
        client,
        room,
        [question["id"]],
        available_from=opens.isoformat(),
        available_until=closes.isoformat(),
    )
    early = await client.post(f"{API}/quizzes/{quiz['id']}/attempts", headers=room.learner.headers)
    problem(early, 409, "quiz-not-open")
    clock.advance(minutes=20)
    sheet = await start(client, quiz["id"], room.learner)
    # The closing time caps the deadline even without a time limit.
    assert dt.datetime.fromisoformat(sheet["deadline_at"]) == closes
    clock.advance(minutes=6)
    late = await client.put(
        f"{API}/attempts/{sheet['id']}/answers",
        json={"answers": [{"question_id": question["id"], "value": True}]},
        headers=room.learner.headers,
    )
    problem(late, 409, "time-up")
    closed = await client.post(f"{API}/quizzes/{quiz['id']}/attempts", headers=room.learner.headers)
    problem(closed, 409, "quiz-closed")


# The server's clock -----------------------------------------------------------------------


async def test_answers_after_the_time_limit_are_refused_and_the_saved_ones_graded(
    client: httpx.AsyncClient, room: Classroom, clock: FrozenClock
) -> None:
    first = await add_question(client, room, true_false())
    second = await add_question(client, room, single_choice())
    quiz = await add_quiz(client, room, [first["id"], second["id"]], time_limit_seconds=600)
    sheet = await start(client, quiz["id"], room.learner)
    assert sheet["seconds_left"] == 600
    clock.advance(seconds=590)
    saved = await client.put(
        f"{API}/attempts/{sheet['id']}/answers",
        json={"answers": [{"question_id": first["id"], "value": True}]},
        headers=room.learner.headers,
    )
    assert saved.status_code == 200 and saved.json()["seconds_left"] == 10
    clock.advance(seconds=30)  # past the deadline and its 2 s grace
    refused = await client.post(
        f"{API}/attempts/{sheet['id']}/submit",
        json={"answers": [{"question_id": second["id"], "choice": "b"}]},
        headers=room.learner.headers,
    )
    problem(refused, 409, "time-up")
    result = await client.get(f"{API}/attempts/{sheet['id']}/result", headers=room.learner.headers)
    assert result.status_code == 200, result.text
    body = result.json()
    assert body["status"] == "graded" and body["auto_submitted"] is True
    assert body["score"] == 1  # only the answer saved in time counts
    assert body["submitted_at"] == sheet["deadline_at"]


async def test_an_answer_within_the_grace_period_is_accepted(
    client: httpx.AsyncClient, room: Classroom, clock: FrozenClock
) -> None:
    question = await add_question(client, room, true_false())
    quiz = await add_quiz(client, room, [question["id"]], time_limit_seconds=60)
    sheet = await start(client, quiz["id"], room.learner)
    clock.advance(seconds=61)
    result = await client.post(
        f"{API}/attempts/{sheet['id']}/submit",
        json={"answers": [{"question_id": question["id"], "value": True}]},
        headers=room.learner.headers,
    )
    assert result.status_code == 200 and result.json()["score"] == 1


async def test_an_expired_attempt_is_graded_when_next_read_and_by_the_sweep(
    client: httpx.AsyncClient,
    room: Classroom,
    clock: FrozenClock,
    session: AsyncSession,
    connection: AsyncConnection,
    runtime: Runtime,
) -> None:
    from tests.assessments.helpers import enrolled_learner

    question = await add_question(client, room, true_false())
    quiz = await add_quiz(client, room, [question["id"]], time_limit_seconds=60)
    touched = await start(client, quiz["id"], room.learner)
    other = await enrolled_learner(client, connection, runtime, room)
    swept = await start(client, quiz["id"], other)
    await client.put(
        f"{API}/attempts/{swept['id']}/answers",
        json={"answers": [{"question_id": question["id"], "value": True}]},
        headers=other.headers,
    )
    clock.advance(minutes=5)
    read = await client.get(f"{API}/attempts/{touched['id']}", headers=room.learner.headers)
    assert read.status_code == 200 and read.json()["status"] == "graded"
    closed = await close_expired_attempts(session, clock.now(), grace_seconds=2)
    assert closed == 1
    attempt = await session.get(QuizAttempt, swept["id"], populate_existing=True)
    assert attempt is not None and attempt.auto_submitted and attempt.score == 1
    # Nothing is graded twice: a second sweep finds nothing.
    assert await close_expired_attempts(session, clock.now(), grace_seconds=2) == 0
    open_count = (
        await session.execute(
            select(func.count())
            .select_from(QuizAttempt)
            .where(QuizAttempt.quiz_id == quiz["id"], QuizAttempt.status == "in_progress")
        )
    ).scalar_one()
    assert open_count == 0


# Review policies --------------------------------------------------------------------------


async def test_the_review_policy_decides_what_a_result_shows(
    client: httpx.AsyncClient, room: Classroom
) -> None:
    question = await add_question(client, room, single_choice())
    for policy, score_shown, items_shown in (
        ("none", False, False),
        ("score_only", True, False),
        ("answers_after_submit", True, True),
    ):
        quiz = await add_quiz(client, room, [question["id"]], review_policy=policy)
        sheet = await start(client, quiz["id"], room.learner)
        result = await client.post(
            f"{API}/attempts/{sheet['id']}/submit",
            json={"answers": [{"question_id": question["id"], "choice": "a"}]},
            headers=room.learner.headers,
        )
        body = result.json()
        assert (body["score"] is not None) is score_shown, policy
        assert bool(body["items"]) is items_shown, policy
        mine = await client.get(
            f"{API}/quizzes/{quiz['id']}/attempts/me", headers=room.learner.headers
        )
        assert (mine.json()["items"][0]["percent"] is not None) is score_shown, policy
        # Instructors see the key whatever the policy.
        review = await client.get(
            f"{API}/attempts/{sheet['id']}/review", headers=room.teacher.headers
        )
        assert review.json()["items"][0]["correct_answer"]["option_ids"] == ["b"]


async def test_answers_after_due_wait_for_the_due_date(
    client: httpx.AsyncClient, room: Classroom, clock: FrozenClock
) -> None:
    question = await add_question(client, room, single_choice())
    due = clock.now() + dt.timedelta(minutes=10)
    quiz = await add_quiz(
        client, room, [question["id"]], review_policy="answers_after_due", due_at=due.isoformat()
    )
    sheet = await start(client, quiz["id"], room.learner)
    submitted = await client.post(
        f"{API}/attempts/{sheet['id']}/submit",
        json={"answers": [{"question_id": question["id"], "choice": "b"}]},
        headers=room.learner.headers,
    )
    body = submitted.json()
    assert body["score"] == 2 and body["items"] == []
    assert body["answers_available_at"] is not None
    clock.advance(minutes=10, seconds=1)
    later = await client.get(f"{API}/attempts/{sheet['id']}/result", headers=room.learner.headers)
    assert later.json()["items"][0]["explanation"] == "Mitochondria run oxidative phosphorylation."


async def test_essay_items_wait_for_an_instructor_who_grades_them_with_an_audit(
    client: httpx.AsyncClient, room: Classroom
) -> None:
    objective = await add_question(client, room, true_false())
    essay = await add_question(client, room, essay_question(explanation="Shorter waves."))
    quiz = await add_quiz(client, room, [objective["id"], essay["id"]], pass_percent=50)
    sheet = await start(client, quiz["id"], room.learner)
    submitted = await client.post(
        f"{API}/attempts/{sheet['id']}/submit",
        json={
            "answers": [
                {"question_id": objective["id"], "value": True},
                {"question_id": essay["id"], "text": "Rayleigh scattering of blue light."},
            ]
        },
        headers=room.learner.headers,
    )
    body = submitted.json()
    assert body["status"] == "needs_review" and body["score"] is None
    # The auto-graded item is shown graded (the policy shows answers after submit); the
    # essay waits, with the learner's answer and no grade or explanation yet.
    shown = {item["question_id"]: item for item in body["items"]}
    assert shown[objective["id"]]["awarded"] == 1 and shown[objective["id"]]["is_correct"]
    assert shown[objective["id"]]["correct_answer"]["value"] is True
    assert shown[objective["id"]]["explanation"] == "At 1 atm."
    pending = shown[essay["id"]]
    assert pending["awarded"] is None and pending["is_correct"] is None
    assert pending["explanation"] is None and pending["comment"] == ""
    assert pending["answer"]["text"] == "Rayleigh scattering of blue light."
    result = await client.get(f"{API}/attempts/{sheet['id']}/result", headers=room.learner.headers)
    assert result.json()["items"] == body["items"]
    too_many = await client.post(
        f"{API}/attempts/{sheet['id']}/grades",
        json={"grades": [{"question_id": essay["id"], "points": 9}]},
        headers=room.teacher.headers,
    )
    problem(too_many, 422)
    graded = await client.post(
        f"{API}/attempts/{sheet['id']}/grades",
        json={"grades": [{"question_id": essay["id"], "points": 4, "comment": "Good."}]},
        headers=room.teacher.headers,
    )
    assert graded.status_code == 200, graded.text
    assert graded.json()["status"] == "graded" and graded.json()["score"] == 5
    final = await client.get(f"{API}/attempts/{sheet['id']}/result", headers=room.learner.headers)
    essay_result = {item["question_id"]: item for item in final.json()["items"]}[essay["id"]]
    assert essay_result["awarded"] == 4 and essay_result["comment"] == "Good."
    assert essay_result["explanation"] == "Shorter waves."
    trail = await client.get(
        f"{API}/courses/{room.course_id}/assessment-audit?subject_id={sheet['id']}",
        headers=room.teacher.headers,
    )
    (entry,) = trail.json()["items"]
    assert entry["action"] == "grade_items" and entry["before"]["status"] == "needs_review"
    assert entry["after"]["score"] == 5 and entry["actor_id"] == str(room.teacher.id)


@pytest.mark.parametrize("policy", ["none", "score_only", "answers_after_due"])
async def test_items_waiting_for_an_essay_grade_still_follow_the_review_policy(
    client: httpx.AsyncClient, room: Classroom, clock: FrozenClock, policy: str
) -> None:
    objective = await add_question(client, room, true_false())
    essay = await add_question(client, room, essay_question())
    due = (clock.now() + dt.timedelta(days=1)).isoformat()
    quiz = await add_quiz(
        client, room, [objective["id"], essay["id"]], review_policy=policy, due_at=due
    )
    sheet = await start(client, quiz["id"], room.learner)
    submitted = await client.post(
        f"{API}/attempts/{sheet['id']}/submit",
        json={
            "answers": [
                {"question_id": objective["id"], "value": True},
                {"question_id": essay["id"], "text": "Rayleigh scattering."},
            ]
        },
        headers=room.learner.headers,
    )
    body = submitted.json()
    assert body["status"] == "needs_review" and body["items"] == []
    assert (body["answers_available_at"] is not None) == (policy == "answers_after_due")
