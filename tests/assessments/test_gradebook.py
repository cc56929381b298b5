"""The gradebook (weighted totals, CSV safe against formula injection, each learner's
own grades) and course completion gated by required assessments."""

from __future__ import annotations

import codecs
import csv
import io
import uuid

import httpx
import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lyceum.assessments.service.gradebook import csv_safe
from lyceum.assessments.tasks import score
from lyceum.config import Settings
from lyceum.kit.runtime import Runtime
from lyceum.models.courses import Enrollment
from lyceum.models.identity import User
from tests.assessments.helpers import (
    API,
    GOOD_ESSAY,
    Classroom,
    add_assignment,
    add_question,
    add_quiz,
    classroom,
    enrolled_learner,
    in_test_transaction,
    single_choice,
    start,
    true_false,
)


@pytest.fixture
async def room(
    client: httpx.AsyncClient, connection: AsyncConnection, runtime: Runtime
) -> Classroom:
    return await classroom(client, connection, runtime)


async def take(
    client: httpx.AsyncClient, quiz_id: str, question_id: str, who: object, value: bool
) -> dict[str, object]:
    sheet = await start(client, quiz_id, who)  # type: ignore[arg-type]
    result = await client.post(
        f"{API}/attempts/{sheet['id']}/submit",
        json={"answers": [{"question_id": question_id, "value": value}]},
        headers=who.headers,  # type: ignore[attr-defined]
    )
    assert result.status_code == 200, result.text
    body: dict[str, object] = result.json()
    return body


def excel_rows(response: httpx.Response) -> list[list[str]]:
    """The CSV as Excel reads it: UTF-8 when the file starts with a byte order mark,
    the machine's ANSI code page (Windows-1252 in the West) when it does not."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    raw = response.content
    encoding = "utf-8-sig" if raw.startswith(codecs.BOM_UTF8) else "cp1252"
    return list(csv.reader(io.StringIO(raw.decode(encoding, errors="replace"), newline="")))


def test_csv_cells_that_would_run_as_formulas_are_defused() -> None:
    assert csv_safe('=HYPERLINK("http://evil")') == '\'=HYPERLINK("http://evil")'
    assert [csv_safe(v) for v in ("+1", "-2", "@SUM(A1)", "\tx", "Ada")] == [
        "'+1",
        "'-2",
        "'@SUM(A1)",
        "'\tx",
        "Ada",
    ]


async def test_gradebook_totals_weights_and_csv(
    client: httpx.AsyncClient,
    room: Classroom,
    connection: AsyncConnection,
    session: AsyncSession,
    settings: Settings,
    runtime: Runtime,
) -> None:
    question = await add_question(client, room, true_false())
    quiz = await add_quiz(client, room, [question["id"]], weight=1, max_attempts=2)
    assignment = await add_assignment(client, room, weight=3)
    draft = await client.post(
        f"{API}/courses/{room.course_id}/quizzes",
        json={"title": "Draft", "sections": [{"question_id": question["id"]}]},
        headers=room.teacher.headers,
    )
    assert draft.status_code == 201
    other = await enrolled_learner(client, connection, runtime, room, "mallory")
    await connection.execute(
        update(User).where(User.id == other.id).values(full_name="=cmd|' /C calc'!A0")
    )
    # The learner fails, then passes: the best attempt counts.
    await take(client, quiz["id"], question["id"], room.learner, False)
    await take(client, quiz["id"], question["id"], room.learner, True)
    await take(client, quiz["id"], question["id"], other, False)
    essay = await client.post(
        f"{API}/assignments/{assignment['id']}/submissions",
        json={"text": GOOD_ESSAY},
        headers=room.learner.headers,
    )
    await score(
        uuid.UUID(essay.json()["id"]),
        settings=settings.model_copy(update={"ai_provider": "offline"}),
        last_try=False,
        sessions=in_test_transaction(session),
    )
    graded = await client.put(
        f"{API}/submissions/{essay.json()['id']}/grade",
        json={
            "criteria": [
                {"criterion_id": "content", "points": 3},
                {"criterion_id": "clarity", "points": 4},
            ],
            "release": True,
        },
        headers=room.teacher.headers,
    )
    assert graded.json()["percent"] == 70

    book = (
        await client.get(f"{API}/courses/{room.course_id}/gradebook", headers=room.teacher.headers)
    ).json()
    assert [c["title"] for c in book["columns"]] == ["Checkpoint", "How plants make food"]
    rows = {row["user_id"]: row for row in book["items"]}
    mine = rows[str(room.learner.id)]
    assert [c["percent"] for c in mine["cells"]] == [100, 70]
    assert mine["weighted_total"] == pytest.approx((1 * 100 + 3 * 70) / 4)
    theirs = rows[str(other.id)]
    assert [c["percent"] for c in theirs["cells"]] == [0, None]
    assert theirs["weighted_total"] == 0 and book["total"] == 2

    exported = await client.get(
        f"{API}/courses/{room.course_id}/gradebook.csv", headers=room.teacher.headers
    )
    table = excel_rows(exported)
    assert table[0][0] == "learner" and table[0][-1] == "weighted total"
    by_name = {line[0]: line for line in table[1:]}
    assert by_name["'=cmd|' /C calc'!A0"][2:] == ["0.00", "", "0.00"]
    assert by_name["Ada Lovelace"][2:] == ["100.00", "70.00", "77.50"]

    own = (
        await client.get(f"{API}/courses/{room.course_id}/grades/me", headers=room.learner.headers)
    ).json()
    assert [c["percent"] for c in own["cells"]] == [100, 70] and own["weighted_total"] == 77.5
    assert "email" not in own
    for who in (room.learner, other):
        refused = await client.get(f"{API}/courses/{room.course_id}/gradebook", headers=who.headers)
        assert refused.status_code == 403


async def test_completion_waits_for_every_required_assessment(
    client: httpx.AsyncClient, room: Classroom, session: AsyncSession, settings: Settings
) -> None:
    question = await add_question(client, room, single_choice())
    quiz = await add_quiz(client, room, [question["id"]], required=True, pass_percent=100)
    assignment = await add_assignment(client, room, required=True, pass_percent=50)
    optional_question = await add_question(client, room, true_false())
    await add_quiz(client, room, [optional_question["id"]], required=False)

    for lesson in room.lessons:
        progress = await client.post(
            f"{API}/lessons/{lesson}/complete", headers=room.learner.headers
        )
    body = progress.json()
    assert body["status"] == "active" and body["percent"] == 100  # lessons alone are not enough
    assert sorted((a["kind"], a["required"], a["passed"]) for a in body["assessments"]) == [
        ("assignment", True, False),
        ("quiz", False, False),
        ("quiz", True, False),
    ]

    # Failing the required quiz changes nothing; passing it leaves the essay.
    sheet = await start(client, quiz["id"], room.learner)
    await client.post(
        f"{API}/attempts/{sheet['id']}/submit",
        json={"answers": [{"question_id": question["id"], "choice": "a"}]},
        headers=room.learner.headers,
    )
    sheet = await start(client, quiz["id"], room.learner)
    await client.post(
        f"{API}/attempts/{sheet['id']}/submit",
        json={"answers": [{"question_id": question["id"], "choice": "b"}]},
        headers=room.learner.headers,
    )
    progress = (
        await client.get(f"{API}/courses/{room.course_id}/progress", headers=room.learner.headers)
    ).json()
    standing = {a["id"]: a for a in progress["assessments"]}
    assert progress["status"] == "active" and standing[quiz["id"]]["passed"] is True

    essay = await client.post(
        f"{API}/assignments/{assignment['id']}/submissions",
        json={"text": GOOD_ESSAY},
        headers=room.learner.headers,
    )
    await score(
        uuid.UUID(essay.json()["id"]),
        settings=settings.model_copy(update={"ai_provider": "offline"}),
        last_try=False,
        sessions=in_test_transaction(session),
    )
    accepted = await client.post(
        f"{API}/submissions/{essay.json()['id']}/accept",
        json={"release": True},
        headers=room.teacher.headers,
    )
    assert accepted.json()["passed"] is True
    progress = (
        await client.get(f"{API}/courses/{room.course_id}/progress", headers=room.learner.headers)
    ).json()
    assert progress["status"] == "completed"
    # Completion emitted course.completed once: the certificate job is queued.
    enrollment = (
        await session.execute(
            select(Enrollment).where(
                Enrollment.course_id == uuid.UUID(room.course_id),
                Enrollment.user_id == room.learner.id,
            )
        )
    ).scalar_one()
    jobs = await session.scalar(
        text(
            "SELECT count(*) FROM procrastinate_jobs WHERE task_name = "
            "'lyceum.learning.issue_certificate' AND args->>'enrollment_id' = :id"
        ),
        {"id": str(enrollment.id)},
    )
    assert jobs == 1


async def test_passing_the_last_required_quiz_after_the_lessons_completes_the_course(
    client: httpx.AsyncClient, room: Classroom, session: AsyncSession
) -> None:
    question = await add_question(client, room, true_false())
    quiz = await add_quiz(client, room, [question["id"]], required=True)
    for lesson in room.lessons:
        await client.post(f"{API}/lessons/{lesson}/complete", headers=room.learner.headers)
    result = await take(client, quiz["id"], question["id"], room.learner, True)
    assert result["passed"] is True
    progress = (
        await client.get(f"{API}/courses/{room.course_id}/progress", headers=room.learner.headers)
    ).json()
    assert progress["status"] == "completed"
    jobs = await session.scalar(
        text(
            "SELECT count(*) FROM procrastinate_jobs j JOIN enrollments e "
            "ON e.id::text = j.args->>'enrollment_id' WHERE j.task_name = "
            "'lyceum.learning.issue_certificate' AND e.user_id = :user"
        ),
        {"user": room.learner.id},
    )
    assert jobs == 1


async def test_gradebook_csv_opens_in_excel_with_vietnamese_names_intact(
    client: httpx.AsyncClient, room: Classroom, connection: AsyncConnection, runtime: Runtime
) -> None:
    question = await add_question(client, room, true_false())
    quiz = await add_quiz(client, room, [question["id"]], title="Kiểm tra giữa kỳ")
    learner = await enrolled_learner(client, connection, runtime, room, "lan")
    await connection.execute(
        update(User).where(User.id == learner.id).values(full_name="Nguyễn Thị Lan")
    )
    await connection.execute(
        update(User).where(User.id == room.learner.id).values(full_name="-Trần Đức")
    )
    await take(client, quiz["id"], question["id"], learner, True)

    exported = await client.get(
        f"{API}/courses/{room.course_id}/gradebook.csv", headers=room.teacher.headers
    )
    assert exported.content.startswith(codecs.BOM_UTF8)
    header, *rows = excel_rows(exported)
    assert header == ["learner", "email", "Kiểm tra giữa kỳ (quiz, weight 1)", "weighted total"]
    by_name = {row[0]: row for row in rows}
    assert by_name["Nguyễn Thị Lan"][1:] == [learner.email, "100.00", "100.00"]
    # Formula-injection safety holds under the BOM: a leading '-' is still defused.
    assert by_name["'-Trần Đức"][2:] == ["", "0.00"]
