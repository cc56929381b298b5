"""Essay assignments: rubric checks, submissions (text, DOCX, PDF) with word limits and
late policies, the offline scorer, similarity flags, and the instructor's review with
its audit trail."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from typing import Any

import docx
import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lyceum.assessments.tasks import score
from lyceum.config import Settings
from lyceum.kit.runtime import Runtime
from lyceum.models.assessments import EssaySubmission
from tests.assessments.helpers import (
    API,
    GOOD_ESSAY,
    Classroom,
    add_assignment,
    assignment_body,
    classroom,
    enrolled_learner,
    in_test_transaction,
    rubric,
)
from tests.assessments.test_quizzes import problem
from tests.content.helpers import pdf_pages
from tests.support.clock import FrozenClock


@pytest.fixture
async def room(
    client: httpx.AsyncClient, connection: AsyncConnection, runtime: Runtime
) -> Classroom:
    return await classroom(client, connection, runtime)


async def submit(
    client: httpx.AsyncClient, assignment_id: str, who: Any, text: str = GOOD_ESSAY
) -> httpx.Response:
    return await client.post(
        f"{API}/assignments/{assignment_id}/submissions", json={"text": text}, headers=who.headers
    )


def docx_bytes(paragraphs: list[str]) -> bytes:
    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


# Rubrics ----------------------------------------------------------------------------------


async def test_levels_out_of_order_are_refused(client: httpx.AsyncClient, room: Classroom) -> None:
    bad = rubric()
    bad["criteria"][0]["levels"][2]["points"] = 2  # below the level before it
    response = await client.post(
        f"{API}/courses/{room.course_id}/assignments",
        json=assignment_body(rubric=bad),
        headers=room.teacher.headers,
    )
    body = problem(response, 422, "rubric-levels-out-of-order")
    assert body["errors"][0]["field"] == "body.rubric.criteria.0.levels.2.points"


async def test_points_that_do_not_add_up_are_refused(
    client: httpx.AsyncClient, room: Classroom
) -> None:
    response = await client.post(
        f"{API}/courses/{room.course_id}/assignments",
        json=assignment_body(points=12),
        headers=room.teacher.headers,
    )
    body = problem(response, 422, "rubric-points-mismatch")
    assert "add up to 10" in body["detail"] and body["errors"][0]["field"] == "body.points"
    listed = await client.get(
        f"{API}/courses/{room.course_id}/assignments", headers=room.teacher.headers
    )
    assert listed.json()["total"] == 0


async def test_learners_see_the_rubric_but_not_the_key_terms_or_reference(
    client: httpx.AsyncClient, room: Classroom
) -> None:
    assignment = await add_assignment(client, room)
    seen = await client.get(f"{API}/assignments/{assignment['id']}", headers=room.learner.headers)
    body = seen.json()
    assert body["rubric"][0]["levels"][2]["title"] == "Complete"
    assert "key_terms" not in body["rubric"][0] and "reference_answer" not in body
    hidden = await client.get(
        f"{API}/assignments/{assignment['id']}/definition", headers=room.learner.headers
    )
    problem(hidden, 403)


# Submitting -------------------------------------------------------------------------------


async def test_word_limits_are_enforced_and_nothing_is_stored(
    client: httpx.AsyncClient, room: Classroom, session: AsyncSession
) -> None:
    assignment = await add_assignment(client, room, min_words=50, max_words=60)
    short = await submit(client, assignment["id"], room.learner, "Too short to count.")
    assert "has 4 words" in problem(short, 422, "word-limit")["detail"]
    long = await submit(client, assignment["id"], room.learner, "word " * 61)
    problem(long, 422, "word-limit")
    count = await session.scalar(select(func.count()).select_from(EssaySubmission))
    assert count == 0


async def test_one_submission_per_learner(client: httpx.AsyncClient, room: Classroom) -> None:
    assignment = await add_assignment(client, room)
    first = await submit(client, assignment["id"], room.learner)
    assert first.status_code == 201, first.text
    assert first.headers["location"].endswith("/submissions/me")
    assert first.json()["status"] == "scoring" and first.json()["grade"] is None
    again = await submit(client, assignment["id"], room.learner)
    problem(again, 409, "already-submitted")


async def test_late_work_is_refused_or_penalised_per_policy(
    client: httpx.AsyncClient, room: Classroom, clock: FrozenClock, connection: AsyncConnection
) -> None:
    due = (clock.now() - dt.timedelta(days=2, hours=1)).isoformat()
    strict = await add_assignment(client, room, due_at=due)
    refused = await submit(client, strict["id"], room.learner)
    problem(refused, 409, "deadline-passed")
    lenient = await add_assignment(
        client, room, due_at=due, late_policy="penalty", late_penalty_percent_per_day=10
    )
    accepted = await submit(client, lenient["id"], room.learner)
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["late_days"] == 3 and accepted.json()["penalty_percent"] == 30


async def test_a_docx_upload_is_extracted(client: httpx.AsyncClient, room: Classroom) -> None:
    assignment = await add_assignment(client, room)
    data = docx_bytes(GOOD_ESSAY.split(". "))
    response = await client.post(
        f"{API}/assignments/{assignment['id']}/submissions/file",
        files={"file": ("essay.docx", data, "application/octet-stream")},
        headers=room.learner.headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["source"] == "docx" and body["file_name"] == "essay.docx"
    assert "chlorophyll absorbs sunlight" in body["text"] and body["word_count"] > 40


async def test_a_pdf_upload_is_extracted_and_other_files_refused(
    client: httpx.AsyncClient, room: Classroom, connection: AsyncConnection, runtime: Runtime
) -> None:
    assignment = await add_assignment(client, room)
    pdf = await client.post(
        f"{API}/assignments/{assignment['id']}/submissions/file",
        files={"file": ("essay.pdf", pdf_pages([GOOD_ESSAY]), "application/pdf")},
        headers=room.learner.headers,
    )
    assert pdf.status_code == 201, pdf.text
    assert pdf.json()["source"] == "pdf" and "photosynthesis" in pdf.json()["text"]
    other = await enrolled_learner(client, connection, runtime, room)
    text_file = await client.post(
        f"{API}/assignments/{assignment['id']}/submissions/file",
        files={"file": ("essay.txt", GOOD_ESSAY.encode(), "text/plain")},
        headers=other.headers,
    )
    problem(text_file, 422, "unsupported-file")
    disguised = await client.post(
        f"{API}/assignments/{assignment['id']}/submissions/file",
        files={"file": ("essay.pdf", b"MZ\x90\x00 not a pdf", "application/pdf")},
        headers=other.headers,
    )
    problem(disguised, 422, "unsupported-file")


# Scoring and review -----------------------------------------------------------------------


async def test_the_offline_estimate_is_transparent_and_waits_for_review(
    client: httpx.AsyncClient, room: Classroom, session: AsyncSession, settings: Settings
) -> None:
    assignment = await add_assignment(client, room, auto_release=True)
    submitted = (await submit(client, assignment["id"], room.learner)).json()
    offline = settings.model_copy(update={"ai_provider": "offline"})
    outcome = await score(
        uuid.UUID(submitted["id"]),
        settings=offline,
        last_try=False,
        sessions=in_test_transaction(session),
    )
    assert outcome == "scored"
    review = await client.get(f"{API}/submissions/{submitted['id']}", headers=room.teacher.headers)
    body = review.json()
    assert body["status"] == "needs_review"  # an estimate is never released on its own
    proposal = body["proposal"]
    assert proposal["estimate"] is True and proposal["scorer"] == "offline-estimate"
    assert "Offline estimate, not a grade" in proposal["overall_feedback"]
    content = proposal["criteria"][0]
    assert content["level"] == "Complete" and content["points"] == 6
    assert "3 of 3 key terms" in content["justification"]
    assert content["quote"] in GOOD_ESSAY
    assert proposal["signals"]["word_count"] == submitted["word_count"] == 54
    # Scoring again changes nothing.
    again = await score(
        uuid.UUID(submitted["id"]),
        settings=offline,
        last_try=False,
        sessions=in_test_transaction(session),
    )
    assert again == "nothing to score"
    mine = await client.get(
        f"{API}/assignments/{assignment['id']}/submissions/me", headers=room.learner.headers
    )
    assert mine.json()["grade"] is None and "proposal" not in mine.json()


async def test_the_offline_estimate_marks_missing_key_terms(
    client: httpx.AsyncClient, room: Classroom, session: AsyncSession, settings: Settings
) -> None:
    assignment = await add_assignment(client, room, min_words=40)
    essay = "Plants grow in the sun and they need water from the ground every day to stay green and tall."
    submitted = await submit(client, assignment["id"], room.learner, essay)
    problem(submitted, 422, "word-limit")
    lenient = await add_assignment(client, room, min_words=5)
    submitted = await submit(client, lenient["id"], room.learner, essay)
    await score(
        uuid.UUID(submitted.json()["id"]),
        settings=settings.model_copy(update={"ai_provider": "offline"}),
        last_try=False,
        sessions=in_test_transaction(session),
    )
    review = (
        await client.get(
            f"{API}/submissions/{submitted.json()['id']}", headers=room.teacher.headers
        )
    ).json()
    content = review["proposal"]["criteria"][0]
    assert (
        content["points"] == 0
        and "missing: photosynthesis, chlorophyll, glucose" in (content["justification"])
    )
    assert any("address photosynthesis" in s for s in review["proposal"]["suggestions"])


async def test_override_and_release_are_audited_and_shown_to_the_learner(
    client: httpx.AsyncClient, room: Classroom, session: AsyncSession, settings: Settings
) -> None:
    assignment = await add_assignment(client, room, pass_percent=50)
    submitted = (await submit(client, assignment["id"], room.learner)).json()
    early_release = await client.post(
        f"{API}/submissions/{submitted['id']}/release", headers=room.teacher.headers
    )
    problem(early_release, 409, "not-reviewed")
    await score(
        uuid.UUID(submitted["id"]),
        settings=settings.model_copy(update={"ai_provider": "offline"}),
        last_try=False,
        sessions=in_test_transaction(session),
    )
    queue = await client.get(
        f"{API}/courses/{room.course_id}/review-queue", headers=room.teacher.headers
    )
    assert [item["id"] for item in queue.json()["items"]] == [submitted["id"]]
    too_much = await client.put(
        f"{API}/submissions/{submitted['id']}/grade",
        json={"criteria": [{"criterion_id": "clarity", "points": 5}]},
        headers=room.teacher.headers,
    )
    assert problem(too_much, 422)["errors"][0]["field"] == "body.criteria.0.points"
    unknown = await client.put(
        f"{API}/submissions/{submitted['id']}/grade",
        json={"criteria": [{"criterion_id": "style", "points": 1}]},
        headers=room.teacher.headers,
    )
    problem(unknown, 422)
    overridden = await client.put(
        f"{API}/submissions/{submitted['id']}/grade",
        json={
            "criteria": [{"criterion_id": "clarity", "points": 2, "comment": "Some jumps."}],
            "comment": "Solid work.",
        },
        headers=room.teacher.headers,
    )
    assert overridden.status_code == 200, overridden.text
    review = overridden.json()
    assert review["status"] == "reviewed"
    final = {item["criterion_id"]: item["points"] for item in review["final"]}
    assert final["clarity"] == 2 and final["content"] == review["proposal"]["criteria"][0]["points"]
    mine = await client.get(
        f"{API}/assignments/{assignment['id']}/submissions/me", headers=room.learner.headers
    )
    assert mine.json()["grade"] is None  # reviewed, not released
    released = await client.post(
        f"{API}/submissions/{submitted['id']}/release", headers=room.teacher.headers
    )
    assert released.json()["status"] == "released"
    grade = (
        await client.get(
            f"{API}/assignments/{assignment['id']}/submissions/me", headers=room.learner.headers
        )
    ).json()["grade"]
    assert grade["points"] == review["points"] and grade["comment"] == "Solid work."
    assert grade["criteria"][1]["comment"] == "Some jumps."
    trail = (
        await client.get(
            f"{API}/courses/{room.course_id}/assessment-audit?subject_id={submitted['id']}",
            headers=room.teacher.headers,
        )
    ).json()["items"]
    assert [entry["action"] for entry in trail] == ["release", "override"]
    override = trail[1]
    assert (
        override["before"]["status"] == "needs_review"
        and override["after"]["criteria"]["clarity"] == 2
    )
    assert override["actor_name"] == "Ada Lovelace" and override["comment"] == "Solid work."
    learner_view = await client.get(
        f"{API}/courses/{room.course_id}/assessment-audit", headers=room.learner.headers
    )
    problem(learner_view, 403)


async def test_accepting_a_proposal_with_release_applies_the_late_penalty(
    client: httpx.AsyncClient,
    room: Classroom,
    session: AsyncSession,
    settings: Settings,
    clock: FrozenClock,
) -> None:
    due = (clock.now() - dt.timedelta(hours=1)).isoformat()
    assignment = await add_assignment(
        client, room, due_at=due, late_policy="penalty", late_penalty_percent_per_day=20
    )
    submitted = (await submit(client, assignment["id"], room.learner)).json()
    await score(
        uuid.UUID(submitted["id"]),
        settings=settings.model_copy(update={"ai_provider": "offline"}),
        last_try=False,
        sessions=in_test_transaction(session),
    )
    accepted = await client.post(
        f"{API}/submissions/{submitted['id']}/accept",
        json={"release": True, "comment": "Late, but good."},
        headers=room.teacher.headers,
    )
    body = accepted.json()
    assert body["status"] == "released"
    assert body["points"] == pytest.approx(body["points_raw"] * 0.8)
    again = await client.post(
        f"{API}/submissions/{submitted['id']}/accept", json={}, headers=room.teacher.headers
    )
    problem(again, 409, "already-released")


async def test_near_duplicate_essays_are_flagged_for_the_instructor(
    client: httpx.AsyncClient,
    room: Classroom,
    session: AsyncSession,
    settings: Settings,
    connection: AsyncConnection,
    runtime: Runtime,
) -> None:
    assignment = await add_assignment(client, room, auto_release=True)
    copier = await enrolled_learner(client, connection, runtime, room, "copier")
    honest = await enrolled_learner(client, connection, runtime, room, "honest")
    original = (await submit(client, assignment["id"], room.learner)).json()
    copied = (
        await submit(client, assignment["id"], copier, GOOD_ESSAY.replace("Green plants", "Plants"))
    ).json()
    other_text = (
        "Leaves hold chlorophyll, a pigment that captures light energy. With it the plant "
        "splits water and fixes carbon dioxide into sugars such as glucose in the Calvin "
        "cycle; this whole process is called photosynthesis and it releases oxygen."
    )
    distinct = (await submit(client, assignment["id"], honest, other_text)).json()
    offline = settings.model_copy(update={"ai_provider": "offline"})
    for item in (original, copied, distinct):
        await score(
            uuid.UUID(item["id"]),
            settings=offline,
            last_try=False,
            sessions=in_test_transaction(session),
        )
    reviews = {
        item["id"]: (
            await client.get(f"{API}/submissions/{item['id']}", headers=room.teacher.headers)
        ).json()
        for item in (original, copied, distinct)
    }
    assert [s["submission_id"] for s in reviews[copied["id"]]["similar"]] == [original["id"]]
    assert [s["submission_id"] for s in reviews[original["id"]]["similar"]] == [copied["id"]]
    assert reviews[copied["id"]]["similar"][0]["similarity"] >= 0.95
    assert reviews[distinct["id"]]["similar"] == []
    queue = (
        await client.get(
            f"{API}/assignments/{assignment['id']}/submissions", headers=room.teacher.headers
        )
    ).json()
    assert {item["id"]: item["flagged"] for item in queue["items"]} == {
        original["id"]: True,
        copied["id"]: True,
        distinct["id"]: False,
    }
