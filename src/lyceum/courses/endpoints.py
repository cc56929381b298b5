"""Course, module and lesson routes: parse, authorize, call the service."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import File, Query, Response, UploadFile, status

from lyceum.courses import schemas
from lyceum.courses.permissions import (
    Courses,
    EditableCourse,
    EditableLesson,
    EditableModule,
    LockedEditableCourse,
    OwnedCourse,
    ReadableLesson,
    VisibleCourse,
)
from lyceum.courses.repository import CatalogFilters
from lyceum.courses.service import catalog_item, lesson_out
from lyceum.identity.permissions import Identity, ImageUploadQuota, InstructorUser, RuntimeDep
from lyceum.kit.db import reads_only
from lyceum.kit.errors import Invalid, NotFound
from lyceum.kit.pagination import PageParams, Paging
from lyceum.kit.routing import Router
from lyceum.kit.validation import SafeStr
from lyceum.models.courses import CourseLevel

courses = Router(prefix="/courses", tags=["courses"])
lessons = Router(prefix="/lessons", tags=["courses"])


class JSONBytes(Response):
    """A body that is already the response's JSON (a cached catalog page): sent as is."""

    media_type = "application/json"


@courses.get(
    "",
    summary="The catalog: published courses, searched, filtered and sorted",
    response_model=schemas.CatalogPage,
)
async def list_courses(
    service: Courses,
    paging: Paging,
    q: Annotated[
        SafeStr | None,
        Query(max_length=200, description="Full-text search; accents optional."),
    ] = None,
    category: Annotated[str | None, Query(max_length=80)] = None,
    level: CourseLevel | None = None,
    language: Annotated[
        str | None, Query(max_length=12, pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
    ] = None,
    tag: Annotated[SafeStr | None, Query(max_length=50)] = None,
    instructor: uuid.UUID | None = None,
    price: Literal["free", "paid"] | None = None,
    sort: Literal["relevance", "newest", "popular", "rating"] = "relevance",
) -> Response:
    filters = CatalogFilters(
        q=q.strip() if q and q.strip() else None,
        category=category,
        level=level,
        language=language,
        tag=tag,
        instructor=instructor,
        price=price,
        sort=sort,
    )
    return JSONBytes(await service.catalog_json(filters, paging))


@courses.get(
    "/popular",
    summary="The most enrolled published courses (cached)",
    response_model=schemas.CatalogPage,
)
async def popular_courses(
    service: Courses,
    size: Annotated[int, Query(ge=1, le=20, description="How many.")] = 10,
) -> Response:
    page = PageParams(page=1, size=size)
    return JSONBytes(await service.catalog_json(CatalogFilters(sort="popular"), page))


@courses.get(
    "/teaching",
    summary="The courses the caller teaches: drafts, published and archived (instructors)",
    response_model=schemas.CatalogPage,
)
async def teaching_courses(
    caller: InstructorUser, service: Courses, paging: Paging
) -> schemas.CatalogPage:
    return await service.teaching(caller, paging)


@courses.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a course (a draft; instructors and admins)",
)
async def create_course(
    body: schemas.CourseCreate, caller: InstructorUser, service: Courses, response: Response
) -> schemas.CourseDetail:
    course = await service.create(caller, body)
    response.headers["Location"] = f"/api/v1/courses/{course.id}"
    return await service.detail(course)


@courses.get("/{course_id:uuid}", summary="A course with its syllabus")
@reads_only
async def get_course(course: VisibleCourse, service: Courses) -> schemas.CourseDetail:
    return await service.detail(course)


@courses.patch("/{course_id:uuid}", summary="Edit a course (its instructors and admins)")
async def update_course(
    course: LockedEditableCourse, body: schemas.CourseUpdate, service: Courses
) -> schemas.CourseDetail:
    return await service.detail(await service.update(course, body))


@courses.post("/{course_id:uuid}/publish", summary="Publish a course (needs a lesson)")
async def publish_course(course: LockedEditableCourse, service: Courses) -> schemas.CourseDetail:
    return await service.detail(await service.publish(course))


@courses.post("/{course_id:uuid}/archive", summary="Archive a course (out of the catalog)")
async def archive_course(course: LockedEditableCourse, service: Courses) -> schemas.CourseDetail:
    return await service.detail(await service.archive(course))


@courses.post(
    "/{course_id:uuid}/instructors",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Add a co-instructor (the owner and admins)",
)
async def add_instructor(
    course: OwnedCourse, body: schemas.CoInstructor, service: Courses, identity: Identity
) -> None:
    await service.add_co_instructor(course, await identity.get_user(body.user_id))


@courses.delete(
    "/{course_id:uuid}/instructors/{user_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a co-instructor (the owner and admins)",
)
async def remove_instructor(course: OwnedCourse, user_id: uuid.UUID, service: Courses) -> None:
    await service.remove_co_instructor(course, user_id)


@courses.put(
    "/{course_id:uuid}/cover",
    summary="Upload a cover image (stored as 1280x720 WebP)",
    description="Up to twice AVATAR_MAX_BYTES and IMAGE_MAX_PIXELS (checked from the "
    "image's header before decoding; 422 beyond). Image uploads (avatars and covers) are "
    "limited per user to IMAGE_UPLOAD_RATE_LIMIT (429 with Retry-After beyond).",
)
async def put_cover(
    quota: ImageUploadQuota,
    course: LockedEditableCourse,
    file: Annotated[UploadFile, File(description="PNG, JPEG or WebP.")],
    service: Courses,
    runtime: RuntimeDep,
) -> schemas.CourseDetail:
    settings = runtime.settings
    limit = settings.avatar_max_bytes * 2
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise Invalid(f"The image exceeds {limit} bytes.", field="body.file")
    covered = await service.set_cover(
        course, data, runtime.storage, runtime.sandbox, settings.image_max_pixels
    )
    return await service.detail(covered)


@courses.get(
    "/{course_id:uuid}/cover",
    summary="A course's cover image",
    response_class=Response,
    responses={200: {"content": {"image/webp": {}}, "description": "The cover"}},
)
async def get_cover(course: VisibleCourse, runtime: RuntimeDep) -> Response:
    data = await runtime.storage.get(course.cover_key) if course.cover_key else None
    if data is None:
        raise NotFound("This course has no cover image.")
    return Response(
        data, media_type="image/webp", headers={"Cache-Control": "public, max-age=86400"}
    )


# Modules ------------------------------------------------------------------------------


@courses.get("/{course_id:uuid}/modules", summary="The syllabus: modules and lesson titles")
@reads_only
async def list_modules(course: VisibleCourse, service: Courses) -> list[schemas.ModuleOut]:
    return (await service.detail(course)).modules


@courses.post(
    "/{course_id:uuid}/modules",
    status_code=status.HTTP_201_CREATED,
    summary="Add a module at the end",
)
async def add_module(
    course: EditableCourse, body: schemas.ModuleCreate, service: Courses, response: Response
) -> schemas.ModuleOut:
    module = await service.add_module(course, body.title)
    response.headers["Location"] = f"/api/v1/courses/{course.id}/modules/{module.id}"
    return schemas.ModuleOut(id=module.id, title=module.title, position=module.position, lessons=[])


@courses.put(
    "/{course_id:uuid}/modules/order",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Reorder the modules",
)
async def reorder_modules(course: EditableCourse, body: schemas.Reorder, service: Courses) -> None:
    await service.reorder_modules(course, body.ids)


@courses.patch("/{course_id:uuid}/modules/{module_id:uuid}", summary="Rename a module")
async def rename_module(
    course: EditableCourse, module: EditableModule, body: schemas.ModuleUpdate, service: Courses
) -> schemas.ModuleOut:
    await service.rename_module(course, module, body.title)
    detail = await service.detail(course)
    return next(m for m in detail.modules if m.id == module.id)


@courses.delete(
    "/{course_id:uuid}/modules/{module_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a module and its lessons",
)
async def delete_module(course: EditableCourse, module: EditableModule, service: Courses) -> None:
    await service.delete_module(course, module)


@courses.post(
    "/{course_id:uuid}/modules/{module_id:uuid}/lessons",
    status_code=status.HTTP_201_CREATED,
    summary="Add a lesson at the end of a module",
)
async def add_lesson(
    course: EditableCourse,
    module: EditableModule,
    body: schemas.LessonCreate,
    service: Courses,
    response: Response,
) -> schemas.LessonOut:
    lesson = await service.add_lesson(course, module, body)
    response.headers["Location"] = f"/api/v1/lessons/{lesson.id}"
    return lesson_out(lesson)


@courses.put(
    "/{course_id:uuid}/modules/{module_id:uuid}/lessons/order",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Reorder a module's lessons",
)
async def reorder_lessons(
    course: EditableCourse, module: EditableModule, body: schemas.Reorder, service: Courses
) -> None:
    await service.reorder_lessons(course, module, body.ids)


# Lessons ------------------------------------------------------------------------------


@lessons.get(
    "/{lesson_id:uuid}",
    summary="A lesson with its body (enrolled learners, instructors, admins; previews: all)",
)
@reads_only
async def get_lesson(lesson: ReadableLesson) -> schemas.LessonOut:
    return lesson_out(lesson)


@lessons.patch("/{lesson_id:uuid}", summary="Edit a lesson")
async def update_lesson(
    edited: EditableLesson, body: schemas.LessonUpdate, service: Courses
) -> schemas.LessonOut:
    return lesson_out(await service.update_lesson(edited.course, edited.lesson, body))


@lessons.delete(
    "/{lesson_id:uuid}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a lesson"
)
async def delete_lesson(edited: EditableLesson, service: Courses) -> None:
    await service.delete_lesson(edited.course, edited.lesson)


__all__ = ["catalog_item", "courses", "lessons"]
