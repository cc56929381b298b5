"""Authoring, visibility, the syllabus, catalog search and its cache."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lyceum.courses.service import fold_counters
from lyceum.kit.cache import Cache
from lyceum.kit.db import unit_of_work
from lyceum.models.identity import Role
from tests.identity.helpers import Account, account
from tests.support.clock import FrozenClock
from tests.support.words import search_marker


async def new_course(client: httpx.AsyncClient, who: Account, **fields: Any) -> dict[str, Any]:
    body = {"title": f"Course {uuid.uuid4().hex[:8]}", **fields}
    response = await client.post("/api/v1/courses", json=body, headers=who.headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def with_lessons(
    client: httpx.AsyncClient, who: Account, course: dict[str, Any], titles: list[str]
) -> tuple[str, list[str]]:
    module = await client.post(
        f"/api/v1/courses/{course['id']}/modules", json={"title": "Basics"}, headers=who.headers
    )
    assert module.status_code == 201, module.text
    ids = []
    for index, title in enumerate(titles):
        lesson = await client.post(
            f"/api/v1/courses/{course['id']}/modules/{module.json()['id']}/lessons",
            json={"title": title, "content": f"Body of {title}", "is_preview": index == 0},
            headers=who.headers,
        )
        assert lesson.status_code == 201, lesson.text
        ids.append(lesson.json()["id"])
    return module.json()["id"], ids


async def fold(connection: AsyncConnection, cache: Cache) -> None:
    """Run what the periodic `fold_course_stats` job does, inside the test's transaction."""
    async with (
        AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as session,
        unit_of_work(session),
    ):
        await fold_counters(session, cache)


async def published(
    client: httpx.AsyncClient, who: Account, **fields: Any
) -> tuple[dict[str, Any], list[str]]:
    course = await new_course(client, who, **fields)
    _, lesson_ids = await with_lessons(client, who, course, ["Welcome", "Deeper", "Wrap-up"])
    response = await client.post(f"/api/v1/courses/{course['id']}/publish", headers=who.headers)
    assert response.status_code == 200, response.text
    return response.json(), lesson_ids


@pytest.fixture
async def teacher(client: httpx.AsyncClient, connection: AsyncConnection) -> Account:
    return await account(client, connection, role=Role.instructor, prefix="teacher")


async def test_instructor_creates_a_draft_with_a_derived_slug(
    client: httpx.AsyncClient, teacher: Account
) -> None:
    response = await client.post(
        "/api/v1/courses",
        json={
            "title": "Lập trình Python cơ bản",
            "language": "vi",
            "tags": ["python", "python", "lập trình"],
            "price": {"amount_cents": 0, "currency": "VND"},
        },
        headers=teacher.headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"/api/v1/courses/{body['id']}"
    assert body["slug"].startswith("lap-trinh-python-co-ban")
    assert body["status"] == "draft"
    assert body["tags"] == ["python", "lập trình"]
    assert [i["id"] for i in body["instructors"]] == [str(teacher.id)]
    assert body["modules"] == []


async def test_students_cannot_author(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    student = await account(client, connection)
    response = await client.post("/api/v1/courses", json={"title": "Mine"}, headers=student.headers)
    assert response.status_code == 403
    assert (await client.post("/api/v1/courses", json={"title": "Anon"})).status_code == 401


async def test_duplicate_slug_is_409(client: httpx.AsyncClient, teacher: Account) -> None:
    slug = f"unique-{uuid.uuid4().hex[:8]}"
    await new_course(client, teacher, slug=slug)
    again = await client.post(
        "/api/v1/courses", json={"title": "Other", "slug": slug}, headers=teacher.headers
    )
    assert again.status_code == 409
    assert again.json()["errors"][0]["field"] == "body.slug"


async def test_drafts_are_invisible_to_everyone_but_their_teachers(
    client: httpx.AsyncClient, connection: AsyncConnection, teacher: Account
) -> None:
    course = await new_course(client, teacher)
    _, lessons = await with_lessons(client, teacher, course, ["One"])
    other_teacher = await account(client, connection, role=Role.instructor, prefix="other")
    student = await account(client, connection)
    admin = await account(client, connection, role=Role.admin, prefix="admin")
    path = f"/api/v1/courses/{course['id']}"
    assert (await client.get(path)).status_code == 404
    assert (await client.get(path, headers=student.headers)).status_code == 404
    assert (await client.get(path, headers=other_teacher.headers)).status_code == 404
    assert (await client.get(path, headers=teacher.headers)).status_code == 200
    assert (await client.get(path, headers=admin.headers)).status_code == 200
    assert (await client.get(f"/api/v1/lessons/{lessons[0]}")).status_code == 404
    edit = await client.patch(path, json={"title": "Hijack"}, headers=other_teacher.headers)
    assert edit.status_code == 404


async def test_publishing_needs_a_lesson(client: httpx.AsyncClient, teacher: Account) -> None:
    course = await new_course(client, teacher)
    empty = await client.post(f"/api/v1/courses/{course['id']}/publish", headers=teacher.headers)
    assert empty.status_code == 409
    assert "lesson" in empty.json()["detail"]


async def test_editing_someone_elses_published_course_is_403(
    client: httpx.AsyncClient, connection: AsyncConnection, teacher: Account
) -> None:
    course, lessons = await published(client, teacher)
    other = await account(client, connection, role=Role.instructor, prefix="other")
    path = f"/api/v1/courses/{course['id']}"
    assert (
        await client.patch(path, json={"title": "Mine now"}, headers=other.headers)
    ).status_code == 403
    assert (
        await client.patch(
            f"/api/v1/lessons/{lessons[0]}", json={"title": "x"}, headers=other.headers
        )
    ).status_code == 403
    assert (
        await client.post(f"{path}/modules", json={"title": "x"}, headers=other.headers)
    ).status_code == 403
    # A co-instructor may edit once the owner adds them.
    added = await client.post(
        f"{path}/instructors", json={"user_id": str(other.id)}, headers=teacher.headers
    )
    assert added.status_code == 204
    renamed = await client.patch(path, json={"title": "Co-taught"}, headers=other.headers)
    assert renamed.status_code == 200
    assert {i["id"] for i in renamed.json()["instructors"]} == {str(teacher.id), str(other.id)}
    # ...but cannot change who teaches.
    removal = await client.delete(f"{path}/instructors/{teacher.id}", headers=other.headers)
    assert removal.status_code == 403


async def test_syllabus_order_and_reordering(client: httpx.AsyncClient, teacher: Account) -> None:
    course = await new_course(client, teacher)
    module_id, lessons = await with_lessons(client, teacher, course, ["A", "B", "C"])
    second = await client.post(
        f"/api/v1/courses/{course['id']}/modules",
        json={"title": "Advanced"},
        headers=teacher.headers,
    )
    reorder = await client.put(
        f"/api/v1/courses/{course['id']}/modules/{module_id}/lessons/order",
        json={"ids": [lessons[2], lessons[0], lessons[1]]},
        headers=teacher.headers,
    )
    assert reorder.status_code == 204
    modules_order = await client.put(
        f"/api/v1/courses/{course['id']}/modules/order",
        json={"ids": [second.json()["id"], module_id]},
        headers=teacher.headers,
    )
    assert modules_order.status_code == 204
    detail = (await client.get(f"/api/v1/courses/{course['id']}", headers=teacher.headers)).json()
    assert [m["title"] for m in detail["modules"]] == ["Advanced", "Basics"]
    assert [lesson["title"] for lesson in detail["modules"][1]["lessons"]] == ["C", "A", "B"]
    incomplete = await client.put(
        f"/api/v1/courses/{course['id']}/modules/{module_id}/lessons/order",
        json={"ids": [lessons[0]]},
        headers=teacher.headers,
    )
    assert incomplete.status_code == 422


async def test_lesson_bodies_preview_versus_locked(
    client: httpx.AsyncClient, connection: AsyncConnection, teacher: Account
) -> None:
    _, lessons = await published(client, teacher)
    student = await account(client, connection)
    preview = await client.get(f"/api/v1/lessons/{lessons[0]}")
    assert preview.status_code == 200
    assert preview.json()["content"] == "Body of Welcome"
    locked = await client.get(f"/api/v1/lessons/{lessons[1]}", headers=student.headers)
    assert locked.status_code == 403
    assert "content" not in locked.text or "Body of" not in locked.text
    assert (
        await client.get(f"/api/v1/lessons/{lessons[1]}", headers=teacher.headers)
    ).status_code == 200
    assert (await client.get(f"/api/v1/lessons/{uuid.uuid4()}")).status_code == 404


async def test_video_lessons_need_a_url_to_publish(
    client: httpx.AsyncClient, teacher: Account
) -> None:
    course = await new_course(client, teacher)
    module_id, _ = await with_lessons(client, teacher, course, [])
    path = f"/api/v1/courses/{course['id']}/modules/{module_id}/lessons"
    draft = await client.post(
        path, json={"title": "Clip", "kind": "video"}, headers=teacher.headers
    )
    assert draft.status_code == 201
    refused = await client.post(f"/api/v1/courses/{course['id']}/publish", headers=teacher.headers)
    assert refused.status_code == 409
    assert "Clip" in refused.json()["detail"]
    await client.delete(f"/api/v1/lessons/{draft.json()['id']}", headers=teacher.headers)
    ok = await client.post(
        path,
        json={
            "title": "Clip",
            "kind": "video",
            "video_url": "https://v.example.com/1.mp4",
            "duration_seconds": 90,
        },
        headers=teacher.headers,
    )
    assert ok.status_code == 201
    assert ok.json()["video_url"] == "https://v.example.com/1.mp4"


# Catalog ------------------------------------------------------------------------------


async def test_search_is_accent_insensitive_ranked_and_highlighted(
    client: httpx.AsyncClient, teacher: Account
) -> None:
    marker = search_marker()
    vietnamese, _ = await published(
        client,
        teacher,
        title=f"Lập trình Python {marker}",
        language="vi",
        subtitle="Học lập trình từ đầu",
    )
    await published(
        client, teacher, title=f"Gardening {marker}", description="Lập trình is not here"
    )
    found = await client.get("/api/v1/courses", params={"q": f"lap trinh {marker}"})
    assert found.status_code == 200
    body = found.json()
    assert body["items"][0]["id"] == vietnamese["id"]
    assert "<mark>" in body["items"][0]["snippet"]
    assert "Lập" in body["items"][0]["snippet"]
    assert {"id", "title", "slug", "language", "price"} <= body["items"][0].keys()


async def test_no_results_come_with_suggestions(
    client: httpx.AsyncClient, teacher: Account
) -> None:
    marker = search_marker()
    await published(client, teacher, title=f"Photosynthesis explained {marker}")
    response = await client.get("/api/v1/courses", params={"q": f"photosinthesys {marker}x"})
    body = response.json()
    assert body["total"] == 0
    assert any("Photosynthesis" in title for title in body["suggestions"])


async def test_filters_sorting_and_pagination(
    client: httpx.AsyncClient, teacher: Account, clock: FrozenClock
) -> None:
    category = f"cat-{uuid.uuid4().hex[:6]}"
    free, _ = await published(client, teacher, category=category, level="beginner", tags=["x1"])
    clock.advance(minutes=1)
    paid, _ = await published(
        client,
        teacher,
        category=category,
        level="advanced",
        price={"amount_cents": 1900, "currency": "USD"},
    )
    everything = (await client.get("/api/v1/courses", params={"category": category})).json()
    assert everything["total"] == 2
    assert [i["id"] for i in everything["items"]] == [paid["id"], free["id"]]  # newest first
    assert (
        await client.get("/api/v1/courses", params={"category": category, "price": "free"})
    ).json()["items"][0]["id"] == free["id"]
    assert (
        await client.get("/api/v1/courses", params={"category": category, "level": "advanced"})
    ).json()["total"] == 1
    assert (await client.get("/api/v1/courses", params={"category": category, "tag": "x1"})).json()[
        "total"
    ] == 1
    by_teacher = await client.get(
        "/api/v1/courses", params={"category": category, "instructor": str(teacher.id)}
    )
    assert by_teacher.json()["total"] == 2
    page = (
        await client.get("/api/v1/courses", params={"category": category, "size": 1, "page": 2})
    ).json()
    assert page["pages"] == 2 and len(page["items"]) == 1


@pytest.mark.parametrize(
    "params",
    [
        {"level": "expert"},
        {"price": "cheap"},
        {"sort": "random"},
        {"size": 0},
        {"instructor": "nope"},
        {"language": "English!"},
    ],
)
async def test_invalid_filters_are_422(client: httpx.AsyncClient, params: dict[str, str]) -> None:
    for _ in range(2):  # a refusal is never cached: the second answer is validated again
        response = await client.get("/api/v1/courses", params=params)
        assert response.status_code == 422
        assert response.headers["x-cache"] == "miss"


async def test_catalog_cache_never_shows_stale_data(
    client: httpx.AsyncClient, teacher: Account
) -> None:
    category = f"cache-{uuid.uuid4().hex[:6]}"
    course, _ = await published(client, teacher, category=category, title="Before")
    first_response = await client.get("/api/v1/courses", params={"category": category})
    again = await client.get("/api/v1/courses", params={"category": category})
    assert first_response.headers["x-cache"] == "miss" and again.headers["x-cache"] == "hit"
    assert again.content == first_response.content
    assert again.headers["content-type"] == "application/json"
    assert again.headers["x-request-id"]  # the hit still goes through the request context
    first = again.json()
    detail = (await client.get(f"/api/v1/courses/{course['id']}")).json()
    assert first["items"][0]["title"] == "Before" and detail["title"] == "Before"
    await client.patch(
        f"/api/v1/courses/{course['id']}", json={"title": "After"}, headers=teacher.headers
    )
    second_response = await client.get("/api/v1/courses", params={"category": category})
    assert second_response.headers["x-cache"] == "miss"
    second = second_response.json()
    assert second["items"][0]["title"] == "After"
    assert (await client.get(f"/api/v1/courses/{course['id']}")).json()["title"] == "After"
    await client.post(f"/api/v1/courses/{course['id']}/archive", headers=teacher.headers)
    assert (await client.get("/api/v1/courses", params={"category": category})).json()["total"] == 0
    assert (await client.get(f"/api/v1/courses/{course['id']}")).status_code == 404


async def test_cover_image_is_reencoded_and_served(
    client: httpx.AsyncClient, connection: AsyncConnection, teacher: Account
) -> None:
    import io

    from PIL import Image

    course, _ = await published(client, teacher)
    source = io.BytesIO()
    Image.new("RGB", (2000, 900), (10, 120, 200)).save(source, format="JPEG")
    path = f"/api/v1/courses/{course['id']}/cover"
    uploaded = await client.put(
        path, files={"file": ("c.jpg", source.getvalue(), "image/jpeg")}, headers=teacher.headers
    )
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["cover_url"].startswith(path)
    served = await client.get(path)
    assert served.headers["content-type"] == "image/webp"
    with Image.open(io.BytesIO(served.content)) as cover:
        assert cover.size == (1280, 720)
    student = await account(client, connection)
    refused = await client.put(
        path, files={"file": ("c.jpg", source.getvalue(), "image/jpeg")}, headers=student.headers
    )
    assert refused.status_code == 403
    not_image = await client.put(
        path, files={"file": ("c.jpg", b"plain text", "image/jpeg")}, headers=teacher.headers
    )
    assert not_image.status_code == 422
