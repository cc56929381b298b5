"""The demo catalog: real courses, idempotent, searchable, logins that work."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.demo import loader
from lyceum.kit.db import commit
from lyceum.kit.runtime import Runtime
from tests.support.clock import FrozenClock


def test_six_courses_two_languages_enough_text() -> None:
    courses = loader.demo_courses()
    assert len(courses) >= 6
    assert {course["language"] for course in courses} >= {"en", "vi"}
    for course in courses:
        lessons = [lesson for module in course["modules"] for lesson in module["lessons"]]
        words = sum(len(lesson["content"].split()) for lesson in lessons)
        assert words >= 1500, (course["slug"], words)
        assert lessons[0]["preview"] is True


async def test_load_is_idempotent_and_published(
    session: AsyncSession, runtime: Runtime, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    first = await loader.load_demo(session, cache=runtime.cache, now=clock.now())
    second = await loader.load_demo(session, cache=runtime.cache, now=clock.now())
    await session.flush()
    slugs = {course["slug"] for course in loader.demo_courses()}
    assert set(first.created) | set(first.existing) == slugs
    assert second.created == [] and set(second.existing) == slugs

    found = (await client.get("/api/v1/courses", params={"q": "lap trinh python"})).json()
    assert any(item["slug"] == "lap-trinh-python-co-ban" for item in found["items"])
    login = await client.post(
        "/api/v1/auth/login",
        json={"email": loader.STUDENT_EMAIL, "password": loader.STUDENT_PASSWORD},
    )
    assert login.status_code == 200


@pytest.mark.parametrize("slug", ["python-foundations", "dia-ly-viet-nam"])
async def test_demo_course_has_a_readable_syllabus(
    session: AsyncSession,
    runtime: Runtime,
    client: httpx.AsyncClient,
    clock: FrozenClock,
    slug: str,
) -> None:
    await loader.load_demo(session, cache=runtime.cache, now=clock.now())
    await commit(session)  # (a savepoint of the test's transaction) and its after-commit work
    items = (await client.get("/api/v1/courses", params={"size": 100})).json()["items"]
    course_id = next(item["id"] for item in items if item["slug"] == slug)
    detail = (await client.get(f"/api/v1/courses/{course_id}")).json()
    assert len(detail["modules"]) >= 3
    preview = detail["modules"][0]["lessons"][0]
    lesson = (await client.get(f"/api/v1/lessons/{preview['id']}")).json()
    assert len(lesson["content"].split()) > 150


async def test_demo_has_an_admin_a_priced_course_a_quiz_and_an_essay(
    session: AsyncSession, runtime: Runtime, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    first = await loader.load_demo(session, cache=runtime.cache, now=clock.now())
    second = await loader.load_demo(session, cache=runtime.cache, now=clock.now())
    await commit(session)
    assert second.assessments == []  # idempotent: found by title, not added twice
    assert set(first.assessments) <= {
        "python-foundations: Checkpoint: Types, Conditions and Loops",
        "python-foundations: Essay: Why Small Functions?",
    }

    async def sign_in(email: str, password: str) -> dict[str, str]:
        login = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert login.status_code == 200, login.text
        return {"Authorization": f"Bearer {login.json()['access_token']}"}

    admin = await sign_in(loader.ADMIN_EMAIL, loader.ADMIN_PASSWORD)
    assert (await client.get("/api/v1/users/me", headers=admin)).json()["role"] == "admin"

    items = (await client.get("/api/v1/courses", params={"size": 100})).json()["items"]
    by_slug = {item["slug"]: item for item in items}
    assert by_slug["personal-finance"]["price"] == {"amount_cents": 1900, "currency": "USD"}

    # The demo student is enrolled in Python Foundations: they see both, published.
    student = await sign_in(loader.STUDENT_EMAIL, loader.STUDENT_PASSWORD)
    course_id = by_slug["python-foundations"]["id"]
    listed = await client.get(f"/api/v1/courses/{course_id}/quizzes", headers=student)
    quizzes = listed.json()["items"]
    assert [quiz["title"] for quiz in quizzes] == ["Checkpoint: Types, Conditions and Loops"]
    assert quizzes[0]["question_count"] == 4 and quizzes[0]["lesson_id"] is not None
    assert quizzes[0]["time_limit_seconds"] == 600
    listed = await client.get(f"/api/v1/courses/{course_id}/assignments", headers=student)
    assignments = listed.json()["items"]
    assert [item["title"] for item in assignments] == ["Essay: Why Small Functions?"]
    assert assignments[0]["points"] == 10 and len(assignments[0]["rubric"]) == 3
    assert assignments[0]["published"] is True
