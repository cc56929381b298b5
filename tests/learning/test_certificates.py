"""Completing a course issues a verifiable certificate, mailed to the learner."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import update

from lyceum.config import Settings
from lyceum.kit.runtime import Runtime
from lyceum.models.identity import Role, User
from tests.conftest import client_for, make_app
from tests.identity.flows_helpers import mails_to
from tests.identity.helpers import PASSWORD, login, unique_email
from tests.support.clock import FrozenClock
from tests.support.jobs import run_jobs


@pytest.fixture
async def live(settings: Settings, runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(settings, runtime, None)
    app.state.clock = FrozenClock()
    async with client_for(app) as http:
        yield http


async def signed_in(
    http: httpx.AsyncClient, runtime: Runtime, *, role: Role, name: str
) -> tuple[uuid.UUID, str, dict[str, str]]:
    email = unique_email(role.value)
    response = await http.post(
        "/api/v1/auth/register", json={"email": email, "password": PASSWORD, "full_name": name}
    )
    user_id = uuid.UUID(response.json()["id"])
    async with runtime.database.engine.begin() as conn:
        await conn.execute(update(User).where(User.id == user_id).values(role=role))
    tokens = await login(http, email)
    return user_id, email, {"Authorization": f"Bearer {tokens['access_token']}"}


async def test_completion_issues_a_certificate(
    live: httpx.AsyncClient, runtime: Runtime, settings: Settings
) -> None:
    _, _, teacher = await signed_in(live, runtime, role=Role.instructor, name="Trần Văn Đức")
    learner_id, learner_email, learner = await signed_in(
        live, runtime, role=Role.student, name="Nguyễn Thị Minh Khai"
    )
    course = (
        await live.post(
            "/api/v1/courses", json={"title": "Lập trình Python cơ bản"}, headers=teacher
        )
    ).json()
    module = (
        await live.post(
            f"/api/v1/courses/{course['id']}/modules", json={"title": "M"}, headers=teacher
        )
    ).json()
    lesson_ids = []
    for title in ("Một", "Hai"):
        lesson = await live.post(
            f"/api/v1/courses/{course['id']}/modules/{module['id']}/lessons",
            json={"title": title, "content": "x"},
            headers=teacher,
        )
        lesson_ids.append(lesson.json()["id"])
    await live.post(f"/api/v1/courses/{course['id']}/publish", headers=teacher)
    assert (
        await live.post(f"/api/v1/courses/{course['id']}/enrollments", headers=learner)
    ).status_code == 201
    for lesson_id in lesson_ids:
        await live.post(f"/api/v1/lessons/{lesson_id}/complete", headers=learner)

    await run_jobs()

    mine = (await live.get("/api/v1/me/certificates", headers=learner)).json()
    assert mine["total"] == 1
    certificate = mine["items"][0]
    assert certificate["learner_name"] == "Nguyễn Thị Minh Khai"
    assert certificate["code"].startswith("LYC-")

    public = await live.get(f"/api/v1/certificates/{certificate['code']}")
    assert public.status_code == 200
    assert public.json() == {
        "code": certificate["code"],
        "learner_name": "Nguyễn Thị Minh Khai",
        "course_title": "Lập trình Python cơ bản",
        "issued_on": certificate["issued_on"],
    }
    assert (await live.get("/api/v1/certificates/LYC-NOPE-NOPE-NOPE")).status_code == 404

    pdf = await live.get(f"/api/v1/me/certificates/{certificate['code']}/pdf", headers=learner)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert (
        await live.get(f"/api/v1/me/certificates/{certificate['code']}/pdf", headers=teacher)
    ).status_code == 404

    subjects = [str(m["Subject"]) for m in mails_to(settings, learner_email)]
    assert "You are enrolled in Lập trình Python cơ bản" in subjects
    assert "Your certificate for Lập trình Python cơ bản" in subjects
    assert learner_id
