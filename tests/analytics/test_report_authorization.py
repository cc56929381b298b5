"""Who reads a course's reports beyond the matrix: a co-instructor does, an instructor
who is only enrolled in the course as a learner does not."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lyceum.models.courses import CourseInstructor
from lyceum.models.identity import Role
from tests.analytics.report_fixtures import add_rows, ago, enroll, taught_course
from tests.identity.helpers import account
from tests.support.clock import FrozenClock

REPORTS = ("overview", "lessons", "tutor", "at-risk")


async def test_co_instructors_read_the_reports_enrolled_instructors_do_not(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    session: AsyncSession,
    clock: FrozenClock,
) -> None:
    world = await taught_course(client, connection, session, clock)
    co = await account(client, connection, role=Role.instructor, prefix="co")
    learner_teacher = await account(client, connection, role=Role.instructor, prefix="lt")
    await add_rows(session, CourseInstructor(course_id=world.course_id, user_id=co.id))
    await enroll(session, world.course_id, learner_teacher.id, enrolled_at=ago(3))
    await session.commit()
    for report in REPORTS:
        path = f"/api/v1/analytics/courses/{world.course_id}/{report}"
        assert (await client.get(path, headers=co.headers)).status_code == 200
        refused = await client.get(path, headers=learner_teacher.headers)
        assert refused.status_code == 403
        assert refused.headers["content-type"] == "application/problem+json"
