"""Course rules: who may see and edit what, the syllabus, publishing, and the cached
catalog."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
import uuid
from dataclasses import astuple

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.courses import schemas
from lyceum.courses.repository import CatalogFilters, CourseRepository
from lyceum.kit.cache import Cache, get_json, set_json
from lyceum.kit.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from lyceum.kit.events import emit
from lyceum.kit.images import fit_image, in_sandbox
from lyceum.kit.pagination import PageParams
from lyceum.kit.sandbox import Sandbox
from lyceum.kit.storage import Storage, delete_after_commit, put_for_transaction
from lyceum.models.courses import Course, CourseStatus, Lesson, LessonKind, Module
from lyceum.models.identity import Role, User

CATALOG_VERSION_KEY = "catalog:version"
COVER_SIZE = (1280, 720)


def slugify(title: str) -> str:
    """ "Lập trình Python cơ bản" -> "lap-trinh-python-co-ban"."""
    text = title.replace("đ", "d").replace("Đ", "D")
    ascii_only = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_only.lower()).strip("-")
    return slug[:100] or "course"


def _people(users: list[User]) -> list[schemas.InstructorOut]:
    return [schemas.InstructorOut(id=user.id, full_name=user.full_name) for user in users]


def catalog_item(
    course: Course, instructors: list[User], snippet: str | None = None
) -> schemas.CatalogItem:
    return schemas.CatalogItem(
        id=course.id,
        slug=course.slug,
        title=course.title,
        subtitle=course.subtitle,
        language=course.language,
        level=course.level,
        category=course.category,
        tags=list(course.tags or []),
        price=schemas.Price(amount_cents=course.price_cents, currency=course.currency),
        status=course.status,
        instructors=_people(instructors),
        enrollment_count=course.enrollment_count,
        rating_average=course.rating_average,
        rating_count=course.rating_count,
        published_at=course.published_at,
        cover_url=f"/api/v1/courses/{course.id}/cover?v={course.cover_key.rsplit('/', 1)[-1][:8]}"
        if course.cover_key
        else None,
        snippet=snippet,
    )


def lesson_out(lesson: Lesson) -> schemas.LessonOut:
    return schemas.LessonOut(
        id=lesson.id,
        title=lesson.title,
        kind=lesson.kind,
        estimated_minutes=lesson.estimated_minutes,
        is_preview=lesson.is_preview,
        position=lesson.position,
        course_id=lesson.course_id,
        module_id=lesson.module_id,
        content=lesson.content,
        video_url=lesson.video_url,
        duration_seconds=lesson.duration_seconds,
        file_id=lesson.file_id,
        updated_at=lesson.updated_at,
    )


class CourseService:
    def __init__(
        self,
        session: AsyncSession,
        *,
        cache: Cache,
        cache_ttl: float,
        now: dt.datetime,
    ) -> None:
        self.session = session
        self.repo = CourseRepository(session)
        self.cache = cache
        self.cache_ttl = cache_ttl
        self.now = now

    # Access ---------------------------------------------------------------------------

    async def can_edit(self, course: Course, caller: User | None) -> bool:
        if caller is None:
            return False
        if caller.role is Role.admin:
            return True
        return await self.repo.is_instructor(course.id, caller.id)

    async def visible_course(self, course_id: uuid.UUID, caller: User | None) -> Course:
        """A published course for anyone; drafts and archived ones only for their
        instructors and admins (everyone else gets 404, as if it did not exist)."""
        course = await self.repo.course(course_id)
        if course is None:
            raise NotFound("No such course.")
        if course.status is not CourseStatus.published and not await self.can_edit(course, caller):
            raise NotFound("No such course.")
        return course

    async def _membership(
        self, course_id: uuid.UUID, caller: User | None
    ) -> tuple[Course, bool, bool]:
        """(course, caller can edit it, caller is enrolled) in one query: it is on the
        path of every tutor turn, lesson read and material request. A course the caller
        may not see (a draft they do not teach) is 404."""
        found = await self.repo.course_and_roles(course_id, caller.id if caller else None)
        if found is None:
            raise NotFound("No such course.")
        course, teaches, enrolled = found
        can_edit = caller is not None and (caller.role is Role.admin or teaches)
        if course.status is not CourseStatus.published and not can_edit:
            raise NotFound("No such course.")
        return course, can_edit, enrolled

    async def member_access(self, course_id: uuid.UUID, caller: User | None) -> tuple[Course, bool]:
        """(course, can_edit) for the course's members: its enrolled learners (published
        courses), its instructors and admins. Course material and the tutor are theirs;
        drafts stay invisible (404) to everyone else."""
        course, can_edit, enrolled = await self._membership(course_id, caller)
        if can_edit:
            return course, True
        if caller is None:
            raise Unauthorized("Sign in and enroll in the course to use its material.")
        if enrolled:
            return course, False
        raise Forbidden("Enroll in the course to use its material.", slug="not-enrolled")

    async def editable_course(
        self, course_id: uuid.UUID, caller: User, *, for_update: bool = False
    ) -> Course:
        course = await self.repo.course(course_id, for_update=for_update)
        if course is None:
            raise NotFound("No such course.")
        if not await self.can_edit(course, caller):
            if course.status is not CourseStatus.published:
                raise NotFound("No such course.")
            raise Forbidden("Only this course's instructors and admins may change it.")
        return course

    # Cache ----------------------------------------------------------------------------

    async def _catalog_version(self) -> int:
        raw = await self.cache.get(CATALOG_VERSION_KEY)
        return int(raw) if raw else 0

    async def invalidate(self) -> None:
        """Any change to any course: every cached catalog page and detail goes stale at
        once (their keys carry the version)."""
        await self.cache.incr(CATALOG_VERSION_KEY)

    # Authoring ------------------------------------------------------------------------

    async def create(self, caller: User, data: schemas.CourseCreate) -> Course:
        slug = data.slug or slugify(data.title)
        if await self.repo.slug_taken(slug):
            if data.slug:
                raise Conflict(f"The slug {slug!r} is taken.", field="body.slug")
            slug = f"{slug}-{uuid.uuid4().hex[:6]}"
        course = Course(
            slug=slug,
            title=data.title,
            subtitle=data.subtitle,
            description=data.description,
            language=data.language,
            level=data.level,
            category=data.category,
            tags=list(dict.fromkeys(data.tags)),
            tags_text=" ".join(data.tags),
            lesson_titles="",
            price_cents=data.price.amount_cents,
            currency=data.price.currency,
            status=CourseStatus.draft,
            owner_id=caller.id,
        )
        try:
            async with self.session.begin_nested():
                await self.repo.add(course)
        except IntegrityError:
            raise Conflict(f"The slug {slug!r} is taken.", field="body.slug") from None
        await self.repo.add_instructor(course.id, caller.id)
        return course

    async def update(self, course: Course, data: schemas.CourseUpdate) -> Course:
        fields = {name for name in data.model_fields_set if getattr(data, name) is not None}
        if "slug" in fields and data.slug != course.slug:
            assert data.slug is not None
            if await self.repo.slug_taken(data.slug, other_than=course.id):
                raise Conflict(f"The slug {data.slug!r} is taken.", field="body.slug")
            course.slug = data.slug
        for name in ("title", "subtitle", "description", "language", "level", "category"):
            if name in fields:
                setattr(course, name, getattr(data, name))
        if data.tags is not None:
            course.tags = list(dict.fromkeys(data.tags))
            course.tags_text = " ".join(course.tags)
        if data.price is not None:
            course.price_cents = data.price.amount_cents
            course.currency = data.price.currency
        await self.session.flush()
        await self.invalidate()
        return course

    async def publish(self, course: Course) -> Course:
        if course.status is CourseStatus.published:
            return course
        lessons = await self.repo.lessons(course.id)
        if not lessons:
            raise Conflict("A course needs at least one lesson before it can be published.")
        missing = [
            lesson.title
            for lesson in lessons
            if lesson.kind is LessonKind.video and not lesson.video_url
        ]
        if missing:
            raise Conflict(f"These video lessons have no video URL yet: {', '.join(missing)}.")
        fileless = [
            lesson.title
            for lesson in lessons
            if lesson.kind is LessonKind.file and not lesson.file_id
        ]
        if fileless:
            raise Conflict(f"These file lessons have no file yet: {', '.join(fileless)}.")
        course.status = CourseStatus.published
        course.published_at = course.published_at or self.now
        await self.session.flush()
        await self.invalidate()
        return course

    async def archive(self, course: Course) -> Course:
        course.status = CourseStatus.archived
        await self.session.flush()
        await self.invalidate()
        return course

    async def add_co_instructor(self, course: Course, caller: User, user: User | None) -> None:
        if caller.role is not Role.admin and caller.id != course.owner_id:
            raise Forbidden("Only the course's owner and admins may change its instructors.")
        if user is None or not user.is_active:
            raise NotFound("No such user.")
        if user.role not in {Role.instructor, Role.admin}:
            raise Conflict("Only instructors can teach a course.", field="body.user_id")
        await self.repo.add_instructor(course.id, user.id)
        await self.invalidate()

    async def remove_co_instructor(self, course: Course, caller: User, user_id: uuid.UUID) -> None:
        if caller.role is not Role.admin and caller.id != course.owner_id:
            raise Forbidden("Only the course's owner and admins may change its instructors.")
        if user_id == course.owner_id:
            raise Conflict("The owner cannot be removed from their course.")
        await self.repo.remove_instructor(course.id, user_id)
        await self.invalidate()

    async def set_cover(
        self, course: Course, data: bytes, storage: Storage, sandbox: Sandbox, max_pixels: int
    ) -> Course:
        encoded = await in_sandbox(sandbox, fit_image, data, COVER_SIZE, "WEBP", max_pixels)
        key = f"covers/{course.id}/{uuid.uuid4().hex}.webp"
        await put_for_transaction(self.session, storage, key, encoded, "image/webp")
        previous, course.cover_key = course.cover_key, key
        await self.session.flush()
        delete_after_commit(self.session, storage, previous)
        await self.invalidate()
        return course

    # Syllabus -------------------------------------------------------------------------

    async def add_module(self, course: Course, title: str) -> Module:
        module = Module(
            course_id=course.id,
            title=title,
            position=await self.repo.next_module_position(course.id),
        )
        await self.repo.add(module)
        await self.invalidate()
        return module

    async def editable_module(self, module_id: uuid.UUID, course: Course) -> Module:
        module = await self.repo.module(module_id)
        if module is None or module.course_id != course.id:
            raise NotFound("No such module in this course.")
        return module

    async def rename_module(self, module: Module, title: str) -> Module:
        module.title = title
        await self.session.flush()
        await self.invalidate()
        return module

    async def delete_module(self, course: Course, module: Module) -> None:
        await self.session.delete(module)
        await self.session.flush()
        await self.repo.refresh_lesson_titles(course.id)
        await self.invalidate()

    async def reorder_modules(self, course: Course, ids: list[uuid.UUID]) -> None:
        modules = await self.repo.modules(course.id)
        _check_same_ids({m.id for m in modules}, ids)
        by_id = {m.id: m for m in modules}
        for position, module_id in enumerate(ids):
            by_id[module_id].position = position
        await self.session.flush()
        await self.invalidate()

    async def add_lesson(
        self, course: Course, module: Module, data: schemas.LessonCreate
    ) -> Lesson:
        if data.file_id is not None:
            await self._check_course_file(course, data.file_id)
        lesson = Lesson(
            module_id=module.id,
            course_id=course.id,
            title=data.title,
            kind=LessonKind(data.kind),
            content=data.content,
            video_url=str(data.video_url) if data.video_url else None,
            duration_seconds=data.duration_seconds,
            file_id=data.file_id,
            estimated_minutes=data.estimated_minutes,
            is_preview=data.is_preview,
            position=await self.repo.next_lesson_position(module.id),
        )
        await self.repo.add(lesson)
        await self.repo.refresh_lesson_titles(course.id)
        await self.invalidate()
        await emit(self.session, "lesson.changed", lesson_id=str(lesson.id))
        return lesson

    async def _check_course_file(self, course: Course, file_id: uuid.UUID) -> None:
        if not await self.repo.has_file(course.id, file_id):
            raise Invalid("No such file in this course.", field="body.file_id")

    async def reorder_lessons(self, module: Module, ids: list[uuid.UUID]) -> None:
        lessons = await self.repo.lessons_of_module(module.id)
        _check_same_ids({lesson.id for lesson in lessons}, ids)
        by_id = {lesson.id: lesson for lesson in lessons}
        for position, lesson_id in enumerate(ids):
            by_id[lesson_id].position = position
        await self.session.flush()
        await self.invalidate()

    async def lesson_for_editing(self, lesson_id: uuid.UUID, caller: User) -> tuple[Course, Lesson]:
        lesson = await self.repo.lesson(lesson_id)
        if lesson is None:
            raise NotFound("No such lesson.")
        course = await self.editable_course(lesson.course_id, caller)
        return course, lesson

    async def update_lesson(
        self, course: Course, lesson: Lesson, data: schemas.LessonUpdate
    ) -> Lesson:
        if data.file_id is not None:
            await self._check_course_file(course, data.file_id)
        for name in data.model_fields_set:
            value = getattr(data, name)
            if value is None and name not in {"video_url", "duration_seconds", "file_id"}:
                continue
            setattr(lesson, name, str(value) if name == "video_url" and value else value)
        await self.session.flush()
        await self.session.refresh(lesson)  # updated_at is set by the database
        if "title" in data.model_fields_set:
            await self.repo.refresh_lesson_titles(course.id)
        await self.invalidate()
        if data.model_fields_set & {"title", "content"}:
            # The course material index follows the lesson's text (content.tasks).
            await emit(self.session, "lesson.changed", lesson_id=str(lesson.id))
        return lesson

    async def delete_lesson(self, course: Course, lesson: Lesson) -> None:
        await self.session.delete(lesson)
        await self.session.flush()
        await self.repo.refresh_lesson_titles(course.id)
        await self.invalidate()

    async def readable_lesson(self, lesson_id: uuid.UUID, caller: User | None) -> Lesson:
        """The body is for enrolled learners, the course's instructors and admins; a
        preview lesson of a published course is for everyone."""
        lesson = await self.repo.lesson(lesson_id)
        if lesson is None:
            raise NotFound("No such lesson.")
        # A course the caller cannot edit is published here (else 404).
        _, can_edit, enrolled = await self._membership(lesson.course_id, caller)
        if lesson.is_preview or can_edit or enrolled:
            return lesson
        if caller is None:
            raise Unauthorized("Sign in and enroll in the course to read this lesson.")
        raise Forbidden("Enroll in the course to read this lesson.", slug="not-enrolled")

    # Reading --------------------------------------------------------------------------

    async def detail(self, course: Course) -> schemas.CourseDetail:
        key = f"course:{course.id}:v{await self._catalog_version()}"
        if course.status is CourseStatus.published:
            cached = await get_json(self.cache, key)
            if cached is not None:
                return schemas.CourseDetail.model_validate(cached)
        modules = await self.repo.modules(course.id)
        lessons = await self.repo.lessons(course.id)
        instructors = await self.repo.instructors([course.id])
        by_module: dict[uuid.UUID, list[schemas.LessonSummary]] = {m.id: [] for m in modules}
        for lesson in lessons:
            by_module[lesson.module_id].append(
                schemas.LessonSummary(
                    id=lesson.id,
                    title=lesson.title,
                    kind=lesson.kind,
                    estimated_minutes=lesson.estimated_minutes,
                    is_preview=lesson.is_preview,
                    position=lesson.position,
                )
            )
        item = catalog_item(course, instructors.get(course.id, []))
        detail = schemas.CourseDetail(
            **item.model_dump(),
            description=course.description,
            modules=[
                schemas.ModuleOut(
                    id=m.id, title=m.title, position=m.position, lessons=by_module[m.id]
                )
                for m in modules
            ],
            lesson_count=len(lessons),
            total_minutes=sum(lesson.estimated_minutes for lesson in lessons),
        )
        if course.status is CourseStatus.published:
            await set_json(self.cache, key, detail.model_dump(mode="json"), self.cache_ttl)
        return detail

    async def catalog_json(self, filters: CatalogFilters, paging: PageParams) -> bytes:
        """A catalog page as the JSON the client receives. Cached as those bytes, so a
        hit is two cache reads and no decoding, validation or re-encoding."""
        version = await self._catalog_version()
        fingerprint = hashlib.blake2b(
            repr((*astuple(filters), paging.page, paging.size)).encode(), digest_size=16
        ).hexdigest()
        key = f"catalog:v{version}:{fingerprint}"
        cached = await self.cache.get(key)
        if cached is not None:
            return cached
        page = await self._catalog_page(filters, paging)
        body = page.__pydantic_serializer__.to_json(page)
        await self.cache.set(key, body, self.cache_ttl)
        return body

    async def _catalog_page(
        self, filters: CatalogFilters, paging: PageParams
    ) -> schemas.CatalogPage:
        rows, total = await self.repo.catalog(filters, offset=paging.offset, limit=paging.size)
        instructors = await self.repo.instructors([course.id for course, _ in rows])
        items = [
            catalog_item(course, instructors.get(course.id, []), snippet)
            for course, snippet in rows
        ]
        pages = (total + paging.size - 1) // paging.size
        page = schemas.CatalogPage(
            items=items, total=total, page=paging.page, size=paging.size, pages=pages
        )
        if filters.q and total == 0:
            page.suggestions = await self.repo.suggestions(filters.q)
        return page


def _check_same_ids(existing: set[uuid.UUID], ids: list[uuid.UUID]) -> None:
    if len(ids) != len(set(ids)) or set(ids) != existing:
        raise Invalid("ids must list every item of the collection exactly once.", field="body.ids")
