"""The notification centre, preferences, one-click unsubscribe, announcements and
reactions, through the real API."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lyceum.config import Settings
from lyceum.kit.events import emit
from lyceum.kit.jobs import load_task_modules
from lyceum.models.identity import Role
from lyceum.models.notifications import Category
from lyceum.notifications.service import notify, publish_due, unsubscribe_token
from tests.courses.test_courses import published
from tests.identity.helpers import Account, account
from tests.support.clock import FrozenClock


@pytest.fixture
async def db(connection: AsyncConnection) -> AsyncSession:
    return AsyncSession(bind=connection, join_transaction_mode="create_savepoint")


async def tell(db: AsyncSession, who: Account, title: str, **fields: Any) -> None:
    await notify(
        db,
        user_ids=[who.id],
        category=fields.pop("category", Category.course_activity),
        kind="test",
        title=title,
        body="b",
        url=None,
        template="grade_released",
        context={},
        **fields,
    )
    await db.flush()


async def test_the_centre_lists_marks_and_deletes_only_ones_own(
    client: httpx.AsyncClient, connection: AsyncConnection, db: AsyncSession
) -> None:
    me = await account(client, connection, prefix="me")
    other = await account(client, connection, prefix="other")
    for title in ("first", "second", "third"):
        await tell(db, me, title)
    await tell(db, other, "theirs")

    page = (await client.get("/api/v1/me/notifications", headers=me.headers)).json()
    assert [item["title"] for item in page["items"]] == ["third", "second", "first"]
    assert (page["total"], page["unread_count"]) == (3, 3)
    first_id = page["items"][0]["id"]

    read = await client.post(f"/api/v1/me/notifications/{first_id}/read", headers=me.headers)
    assert read.status_code == 200 and read.json()["read_at"] is not None
    unread = (await client.get("/api/v1/me/notifications?unread=true", headers=me.headers)).json()
    assert (unread["total"], unread["unread_count"]) == (2, 2)

    theirs = (await client.get("/api/v1/me/notifications", headers=other.headers)).json()
    their_id = theirs["items"][0]["id"]
    for method, path in (
        ("POST", f"/api/v1/me/notifications/{their_id}/read"),
        ("DELETE", f"/api/v1/me/notifications/{their_id}"),
    ):
        response = await client.request(method, path, headers=me.headers)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"

    marked = await client.post("/api/v1/me/notifications/read-all", headers=me.headers)
    assert marked.json() == {"marked": 2}
    deleted = await client.delete(f"/api/v1/me/notifications/{first_id}", headers=me.headers)
    assert deleted.status_code == 204
    page = (await client.get("/api/v1/me/notifications", headers=me.headers)).json()
    assert (page["total"], page["unread_count"]) == (2, 0)
    assert (await client.get("/api/v1/me/notifications", headers=other.headers)).json()[
        "unread_count"
    ] == 1


async def test_preferences_defaults_changes_and_the_locked_security_mail(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    me = await account(client, connection)
    defaults = (await client.get("/api/v1/me/notification-preferences", headers=me.headers)).json()
    assert defaults["channels"]["grades"] == {
        "in_app": True,
        "email": True,
        "sms": False,
        "push": True,
    }
    assert defaults["channels"]["course_activity"]["push"] is False
    assert defaults["channels"]["weekly_digest"]["email"] is True
    assert (defaults["quiet_hours"], defaults["time_zone"]) == (None, "UTC")

    changed = await client.patch(
        "/api/v1/me/notification-preferences",
        json={
            "channels": {"grades": {"email": False, "sms": True}},
            "quiet_hours": {"start": "22:00", "end": "07:00"},
            "time_zone": "Asia/Ho_Chi_Minh",
        },
        headers=me.headers,
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["channels"]["grades"]["email"] is False and body["channels"]["grades"]["sms"]
    assert body["channels"]["announcements"]["email"] is True  # untouched
    assert body["quiet_hours"] == {"start": "22:00", "end": "07:00"}
    assert body["time_zone"] == "Asia/Ho_Chi_Minh"

    locked = await client.patch(
        "/api/v1/me/notification-preferences",
        json={"channels": {"security": {"email": False}}},
        headers=me.headers,
    )
    assert locked.status_code == 422
    # The schema says so too (`email` takes only true), so no client is surprised.
    assert [e["field"] for e in locked.json()["errors"]] == ["body.channels.security.email"]
    for bad in (
        {"time_zone": "Mars/Olympus"},
        {"channels": {"nope": {"email": True}}},
        # Quiet hours are wall-clock text in the account's zone: no offset, no seconds
        # count, a real time.
        {"quiet_hours": {"start": "00:00:00Z", "end": "07:00"}},
        {"quiet_hours": {"start": 3600, "end": "07:00"}},
        {"quiet_hours": {"start": "24:00", "end": "07:00"}},
    ):
        response = await client.patch(
            "/api/v1/me/notification-preferences", json=bad, headers=me.headers
        )
        assert response.status_code == 422
    cleared = await client.patch(
        "/api/v1/me/notification-preferences", json={"quiet_hours": None}, headers=me.headers
    )
    assert cleared.json()["quiet_hours"] is None
    assert cleared.json()["channels"]["grades"]["email"] is False


async def test_unsubscribe_without_login_turns_off_only_that_category(
    client: httpx.AsyncClient, connection: AsyncConnection, settings: Settings
) -> None:
    me = await account(client, connection)
    token = unsubscribe_token(settings, me.id, Category.announcements)
    page = await client.get(f"/api/v1/notifications/unsubscribe?token={token}")
    assert page.status_code == 200 and "announcements" in page.text
    assert page.headers["content-type"].startswith("text/html")
    preferences = "/api/v1/me/notification-preferences"
    still = (await client.get(preferences, headers=me.headers)).json()
    assert still["channels"]["announcements"]["email"] is True  # GET changes nothing

    done = await client.post(
        f"/api/v1/notifications/unsubscribe?token={token}",
        content="List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200
    channels = (await client.get(preferences, headers=me.headers)).json()["channels"]
    assert channels["announcements"]["email"] is False
    assert channels["announcements"]["in_app"] is True
    assert channels["grades"]["email"] is True

    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    security = unsubscribe_token(settings, me.id, Category.security)
    for bad in (forged, "nonsense", security):
        response = await client.post(f"/api/v1/notifications/unsubscribe?token={bad}")
        assert response.status_code == 404, bad


async def enrolled_course(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> tuple[dict[str, Any], Account, Account]:
    teacher = await account(client, connection, role=Role.instructor, prefix="teacher")
    course, _ = await published(client, teacher)
    learner = await account(client, connection, prefix="learner")
    enrolled = await client.post(
        f"/api/v1/courses/{course['id']}/enrollments", headers=learner.headers
    )
    assert enrolled.status_code == 201
    # Enrolling told the learner (the enrollment.created reaction); clear it so each
    # test counts only what it causes.
    page = (await client.get("/api/v1/me/notifications", headers=learner.headers)).json()
    assert [n["kind"] for n in page["items"]] == ["enrollment.created"]
    deleted = await client.delete(
        f"/api/v1/me/notifications/{page['items'][0]['id']}", headers=learner.headers
    )
    assert deleted.status_code == 204
    return course, teacher, learner


async def test_an_announcement_reaches_every_enrolled_learner(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    course, teacher, learner = await enrolled_course(client, connection)
    outsider = await account(client, connection, prefix="outsider")
    path = f"/api/v1/courses/{course['id']}/announcements"
    posted = await client.post(
        path,
        json={"title": "Exam moved", "body": "It is on **Friday** <script>x</script>"},
        headers=teacher.headers,
    )
    assert posted.status_code == 201, posted.text
    announcement = posted.json()
    assert posted.headers["location"] == path
    assert "<strong>Friday</strong>" in announcement["body_html"]
    assert "<script>" not in announcement["body_html"]
    assert announcement["published_at"] is not None

    mine = (await client.get("/api/v1/me/notifications", headers=learner.headers)).json()
    [notification] = [n for n in mine["items"] if n["kind"] == "announcement"]
    assert notification["title"] == "Exam moved"
    assert notification["data"]["announcement_id"] == announcement["id"]
    assert (await client.get("/api/v1/me/notifications", headers=outsider.headers)).json()[
        "total"
    ] == 0
    listed = (await client.get(path, headers=learner.headers)).json()
    assert [item["id"] for item in listed["items"]] == [announcement["id"]]
    assert (await client.get(path, headers=outsider.headers)).status_code == 403
    assert (
        await client.post(path, json={"title": "x", "body": "y"}, headers=learner.headers)
    ).status_code == 403
    assert (
        await client.post(path, json={"title": "", "body": "y"}, headers=teacher.headers)
    ).status_code == 422


async def test_a_scheduled_announcement_waits_for_its_job(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    db: AsyncSession,
    clock: FrozenClock,
    settings: Settings,
) -> None:
    course, teacher, learner = await enrolled_course(client, connection)
    path = f"/api/v1/courses/{course['id']}/announcements"
    at = clock.now() + dt.timedelta(hours=2)
    posted = await client.post(
        path,
        json={"title": "Later", "body": "soon", "publish_at": at.isoformat()},
        headers=teacher.headers,
    )
    assert posted.status_code == 201, posted.text
    announcement = posted.json()
    assert announcement["published_at"] is None
    job = (
        await db.execute(
            text(
                "SELECT scheduled_at FROM procrastinate_jobs WHERE task_name = "
                "'lyceum.notifications.publish_announcement' AND args->>'announcement_id' = :id"
            ),
            {"id": announcement["id"]},
        )
    ).one()
    assert job.scheduled_at == at
    assert (await client.get(path, headers=learner.headers)).json()["total"] == 0
    assert (await client.get(path, headers=teacher.headers)).json()["total"] == 1
    assert (await client.get("/api/v1/me/notifications", headers=learner.headers)).json()[
        "total"
    ] == 0

    for _ in range(2):  # the job, run twice, publishes once
        await publish_due(db, uuid.UUID(announcement["id"]), settings=settings, now=at)
        await db.flush()
    assert (await client.get(path, headers=learner.headers)).json()["total"] == 1
    mine = (await client.get("/api/v1/me/notifications", headers=learner.headers)).json()
    assert [n["title"] for n in mine["items"]] == ["Later"]


async def test_reactions_tell_the_learner(
    client: httpx.AsyncClient, connection: AsyncConnection, db: AsyncSession
) -> None:
    course, _, learner = await enrolled_course(client, connection)
    load_task_modules()
    ids = {"user_id": str(learner.id), "course_id": course["id"]}
    await emit(db, "enrollment.created", enrollment_id=str(uuid.uuid4()), **ids)
    await emit(db, "certificate.issued", certificate_id=str(uuid.uuid4()), code="ABC123", **ids)
    await emit(
        db,
        "quiz.attempt.graded",
        attempt_id=str(uuid.uuid4()),
        quiz_id=str(uuid.uuid4()),
        score=8.0,
        max_score=10.0,
        passed=True,
        **ids,
    )
    await emit(
        db,
        "submission.graded",
        submission_id=str(uuid.uuid4()),
        assignment_id=str(uuid.uuid4()),
        score=4.5,
        max_score=5.0,
        **ids,
    )
    await db.flush()
    items = (await client.get("/api/v1/me/notifications", headers=learner.headers)).json()["items"]
    kinds = {item["kind"]: item for item in items}
    assert set(kinds) >= {
        "enrollment.created",
        "certificate.issued",
        "quiz.attempt.graded",
        "submission.graded",
    }
    assert kinds["certificate.issued"]["category"] == "course_activity"
    assert kinds["submission.graded"]["category"] == "grades"
    assert kinds["submission.graded"]["body"] == "You scored 4.5 of 5."
    assert kinds["certificate.issued"]["url"] == "/api/v1/me/certificates/ABC123/pdf"


async def test_admins_query_the_delivery_log(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await account(client, connection, role=Role.admin, prefix="admin")
    learner = await account(client, connection)
    log = "/api/v1/admin/notification-deliveries"
    response = await client.get(
        f"{log}?user_id={learner.id}&channel=email&status=failed", headers=admin.headers
    )
    assert response.status_code == 200 and response.json()["items"] == []
    assert (await client.get(log, headers=learner.headers)).status_code == 403
    assert (await client.get(f"{log}?channel=fax", headers=admin.headers)).status_code == 422


def test_the_preference_schema_names_every_category_channel_and_lock() -> None:
    """`CategorySwitches` is written out field by field (named schemas for clients): it
    must follow the enums, and a locked pair must be the one switch that takes only true."""
    from lyceum.models.notifications import Category, Channel
    from lyceum.notifications.schemas import CategorySwitches, LockedEmailSwitches
    from lyceum.notifications.service import is_locked

    fields = CategorySwitches.model_fields
    assert set(fields) == {category.value for category in Category}
    for category in Category:
        switches = CategorySwitches.model_validate({category.value: {}})
        model = type(getattr(switches, category.value))
        assert set(model.model_fields) == {channel.value for channel in Channel}
        assert (model is LockedEmailSwitches) == is_locked(category, Channel.email)
        assert not any(is_locked(category, c) for c in Channel if c is not Channel.email)
