"""Course rules: who may see and edit what, the syllabus, publishing, and the cached
catalog."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import uuid
from dataclasses import replace

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.courses import schemas
from lyceum.courses.repository import WORD, CatalogFilters, Counters, CourseRepository
from lyceum.courses.spelling import best_correction
from lyceum.kit.cache import Cache, bump_after_commit, get_json, set_json, version_of
from lyceum.kit.db import after_commit
from lyceum.kit.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from lyceum.kit.events import emit
from lyceum.kit.images import fit_image, in_sandbox
from lyceum.kit.pagination import PageParams
from lyceum.kit.sandbox import Sandbox
from lyceum.kit.storage import Storage, delete_after_commit, put_for_transaction
from lyceum.models.courses import Course, CourseStatus, Lesson, LessonKind, Module
from lyceum.models.identity import Role, User

# Every cached catalog page is keyed on this version (kit.responsecache); a course's
# cached detail on its own version. Both are bumped after the commit of a change.
CATALOG_VERSION_KEY = "catalog:version"
# The catalog version the vocabulary was last rebuilt for.
VOCABULARY_VERSION_KEY = "catalog:vocabulary-version"


def course_version_key(course_id: uuid.UUID) -> str:
    return f"course:{course_id}:version"


# The roles that may edit a course (an instructor only the courses they teach).
TEACHING_ROLES = frozenset({Role.instructor, Role.admin})
COVER_SIZE = (1280, 720)
# Titles offered when a search finds nothing, and the words of a query corrected at most.
SUGGESTIONS = 3
MAX_CORRECTED_WORDS = 8


async def refresh_vocabulary(session: AsyncSession, cache: Cache) -> bool:
    """Rebuild the catalog's vocabulary ("did you mean") if the catalog changed since
    the last rebuild; True if it did."""
    version = await version_of(cache, CATALOG_VERSION_KEY)
    if await cache.get(VOCABULARY_VERSION_KEY) == version.encode():
        return False
    await CourseRepository(session).refresh_catalog_terms()

    async def remember() -> None:
        await cache.set(VOCABULARY_VERSION_KEY, version.encode())

    after_commit(session, remember)
    return True


async def fold_counters(session: AsyncSession, cache: Cache) -> int:
    """Fold the appended enrollment and review changes into the courses' counters; the
    cached details of the courses that changed go stale after the commit (catalog pages
    keep theirs until they expire: a count there may lag by CACHE_TTL_SECONDS)."""
    changed = await CourseRepository(session).fold_stat_changes()
    bump_after_commit(session, cache, *(course_version_key(course_id) for course_id in changed))
    return len(changed)


def _can_see(course: Course, teaches: bool, caller: User | None) -> bool:
    """Whether `caller` edits `course` (admins, and instructors who teach it); a course
    they do not edit that is not published does not exist for them (404)."""
    can_edit = caller is not None and (
        caller.role is Role.admin or (teaches and caller.role is Role.instructor)
    )
    if course.status is not CourseStatus.published and not can_edit:
        raise NotFound("No such course.")
    return can_edit


def slugify(title: str) -> str:
    """ "Lập trình Python cơ bản" -> "lap-trinh-python-co-ban"."""
    text = title.replace("đ", "d").replace("Đ", "D")
    ascii_only = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_only.lower()).strip("-")
    return slug[:100] or "course"


def _people(users: list[User]) -> list[schemas.InstructorOut]:
    return [schemas.InstructorOut(id=user.id, full_name=user.full_name) for user in users]


def catalog_item(
    course: Course, instructors: list[User], counters: Counters, snippet: str | None = None
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
        enrollment_count=counters.enrollments,
        rating_average=counters.average,
        rating_count=counters.ratings,
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


async def course_by_id(session: AsyncSession, course_id: uuid.UUID) -> Course | None:
    """For other domains' jobs (certificates): the course, whatever its state."""
    return await CourseRepository(session).course(course_id)


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

    # For other domains (learning, the demo loader) ------------------------------------

    async def course_by_slug(self, slug: str) -> Course | None:
        return await self.repo.course_by_slug(slug)

    async def lesson(self, lesson_id: uuid.UUID) -> Lesson | None:
        return await self.repo.lesson(lesson_id)

    async def lessons(self, course_id: uuid.UUID) -> list[Lesson]:
        """The course's lessons in course order (module, then lesson position)."""
        return await self.repo.lessons(course_id)

    async def is_learner(self, course_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        """Enrolled (active or completed)."""
        return await self.repo.is_learner(course_id, user_id)

    async def record_stat_change(
        self,
        course_id: uuid.UUID,
        *,
        enrollments: int = 0,
        ratings: int = 0,
        rating_points: int = 0,
    ) -> None:
        """A change to the course's enrollment and rating counters (folded later)."""
        await self.repo.record_stat_change(
            course_id, enrollments=enrollments, ratings=ratings, rating_points=rating_points
        )

    # Access ---------------------------------------------------------------------------

    async def can_edit(self, course: Course, caller: User | None) -> bool:
        """Admins, and the course's instructors while their account is an instructor's:
        authority is the current role (read from the user row on every request) and
        the membership together, so a demoted instructor edits nothing."""
        if caller is None or caller.role not in TEACHING_ROLES:
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
        return course, _can_see(course, teaches, caller), enrolled

    async def member_access(self, course_id: uuid.UUID, caller: User | None) -> tuple[Course, bool]:
        """(course, can_edit) for the course's members: its enrolled learners (published
        courses), its instructors and admins. Course material and the tutor are theirs;
        drafts stay invisible (404) to everyone else."""
        course, can_edit, enrolled = await self._membership(course_id, caller)
        return self._member(course, can_edit, enrolled, caller)

    def member_access_of(
        self, course: Course, *, teaches: bool, enrolled: bool, caller: User
    ) -> tuple[Course, bool]:
        """`member_access`'s rule, for a course another domain has read with the
        caller's roles in it (the tutor reads a conversation's course in the same round
        trip as the conversation): whether the caller teaches it, and is enrolled in it
        (an active or completed enrollment)."""
        return self._member(course, _can_see(course, teaches, caller), enrolled, caller)

    @staticmethod
    def _member(
        course: Course, can_edit: bool, enrolled: bool, caller: User | None
    ) -> tuple[Course, bool]:
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

    async def owned_course(self, course_id: uuid.UUID, caller: User) -> Course:
        """An editable course whose owner the caller is, or any for an admin: only they
        change who teaches it."""
        course = await self.editable_course(course_id, caller)
        if caller.role is not Role.admin and caller.id != course.owner_id:
            raise Forbidden("Only the course's owner and admins may change its instructors.")
        return course

    async def visible_lesson(self, lesson_id: uuid.UUID, caller: User) -> tuple[Course, Lesson]:
        """A lesson of a course the caller may see, with that course."""
        lesson = await self.repo.lesson(lesson_id)
        if lesson is None:
            raise NotFound("No such lesson.")
        return await self.visible_course(lesson.course_id, caller), lesson

    # Cache ----------------------------------------------------------------------------

    def invalidate(self, course: Course, *, catalog: bool = True) -> None:
        """Once this transaction commits: the course's cached detail goes stale and,
        with `catalog` (a change to what catalog pages show, of a course they list),
        every cached catalog page. Drafts are in no catalog page."""
        keys = [course_version_key(course.id)]
        if catalog and course.status is CourseStatus.published:
            keys.append(CATALOG_VERSION_KEY)
        bump_after_commit(self.session, self.cache, *keys)

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
        self.invalidate(course)
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
        self.invalidate(course)
        return course

    async def archive(self, course: Course) -> Course:
        was_listed = course.status is CourseStatus.published
        course.status = CourseStatus.archived
        await self.session.flush()
        bump_after_commit(
            self.session,
            self.cache,
            course_version_key(course.id),
            *([CATALOG_VERSION_KEY] if was_listed else []),
        )
        return course

    async def add_co_instructor(self, course: Course, user: User) -> None:
        if not user.is_active:
            raise NotFound("No such user.")
        if user.role not in {Role.instructor, Role.admin}:
            raise Conflict("Only instructors can teach a course.", field="body.user_id")
        await self.repo.add_instructor(course.id, user.id)
        self.invalidate(course)

    async def remove_co_instructor(self, course: Course, user_id: uuid.UUID) -> None:
        if user_id == course.owner_id:
            raise Conflict("The owner cannot be removed from their course.")
        await self.repo.remove_instructor(course.id, user_id)
        self.invalidate(course)

    async def set_cover(
        self, course: Course, data: bytes, storage: Storage, sandbox: Sandbox, max_pixels: int
    ) -> Course:
        encoded = await in_sandbox(sandbox, fit_image, data, COVER_SIZE, "WEBP", max_pixels)
        key = f"covers/{course.id}/{uuid.uuid4().hex}.webp"
        await put_for_transaction(self.session, storage, key, encoded, "image/webp")
        previous, course.cover_key = course.cover_key, key
        await self.session.flush()
        delete_after_commit(self.session, storage, previous)
        self.invalidate(course)
        return course

    # Syllabus -------------------------------------------------------------------------

    async def add_module(self, course: Course, title: str) -> Module:
        module = Module(
            course_id=course.id,
            title=title,
            position=await self.repo.next_module_position(course.id),
        )
        await self.repo.add(module)
        self.invalidate(course, catalog=False)
        return module

    async def editable_module(self, module_id: uuid.UUID, course: Course) -> Module:
        module = await self.repo.module(module_id)
        if module is None or module.course_id != course.id:
            raise NotFound("No such module in this course.")
        return module

    async def rename_module(self, course: Course, module: Module, title: str) -> Module:
        module.title = title
        await self.session.flush()
        self.invalidate(course, catalog=False)
        return module

    async def delete_module(self, course: Course, module: Module) -> None:
        await self.repo.delete(module)
        await self.repo.refresh_lesson_titles(course.id)
        self.invalidate(course)  # its lessons' titles were searchable

    async def reorder_modules(self, course: Course, ids: list[uuid.UUID]) -> None:
        modules = await self.repo.modules(course.id)
        _check_same_ids({m.id for m in modules}, ids)
        by_id = {m.id: m for m in modules}
        for position, module_id in enumerate(ids):
            by_id[module_id].position = position
        await self.session.flush()
        self.invalidate(course, catalog=False)

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
        self.invalidate(course)
        await emit(self.session, "lesson.changed", lesson_id=str(lesson.id))
        return lesson

    async def _check_course_file(self, course: Course, file_id: uuid.UUID) -> None:
        if not await self.repo.has_file(course.id, file_id):
            raise Invalid("No such file in this course.", field="body.file_id")

    async def reorder_lessons(self, course: Course, module: Module, ids: list[uuid.UUID]) -> None:
        lessons = await self.repo.lessons_of_module(module.id)
        _check_same_ids({lesson.id for lesson in lessons}, ids)
        by_id = {lesson.id: lesson for lesson in lessons}
        for position, lesson_id in enumerate(ids):
            by_id[lesson_id].position = position
        await self.session.flush()
        self.invalidate(course, catalog=False)

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
        self.invalidate(course, catalog="title" in data.model_fields_set)
        if data.model_fields_set & {"title", "content"}:
            # The course material index follows the lesson's text (content.tasks).
            await emit(self.session, "lesson.changed", lesson_id=str(lesson.id))
        return lesson

    async def delete_lesson(self, course: Course, lesson: Lesson) -> None:
        await self.repo.delete(lesson)
        await self.repo.refresh_lesson_titles(course.id)
        self.invalidate(course)

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
        version = await version_of(self.cache, course_version_key(course.id))
        key = f"course:{course.id}:detail:v{version}"
        if course.status is CourseStatus.published:
            cached = await get_json(self.cache, key)
            if cached is not None:
                return schemas.CourseDetail.model_validate(cached)
        modules = await self.repo.modules(course.id)
        lessons = await self.repo.lessons(course.id)
        instructors = await self.repo.instructors([course.id])
        counters = await self.repo.counters(course.id)
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
        item = catalog_item(course, instructors.get(course.id, []), counters)
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
        """A catalog page as the JSON the client receives. Whole responses of the public
        catalog routes are cached by `kit.responsecache` (the one cache layer of the
        catalog), keyed on the catalog version."""
        page = await self._catalog_page(filters, paging)
        return page.__pydantic_serializer__.to_json(page)

    async def teaching(self, caller: User, paging: PageParams) -> schemas.CatalogPage:
        """The courses `caller` teaches, whatever their status, newest first."""
        filters = CatalogFilters(instructor=caller.id, any_status=True, sort="newest")
        return await self._catalog_page(filters, paging)

    async def _catalog_page(
        self, filters: CatalogFilters, paging: PageParams
    ) -> schemas.CatalogPage:
        rows, total = await self.repo.catalog(filters, offset=paging.offset, limit=paging.size)
        instructors = await self.repo.instructors([row.course.id for row in rows])
        items = [
            catalog_item(row.course, instructors.get(row.course.id, []), row.counters, row.snippet)
            for row in rows
        ]
        pages = (total + paging.size - 1) // paging.size
        page = schemas.CatalogPage(
            items=items, total=total, page=paging.page, size=paging.size, pages=pages
        )
        if filters.q and total == 0:
            corrected = await self._corrected(filters.q)
            if corrected is not None:
                found, _ = await self.repo.catalog(
                    replace(filters, q=corrected), offset=0, limit=SUGGESTIONS
                )
                if found:
                    page.did_you_mean = corrected
                    page.suggestions = [row.course.title for row in found]
            if not page.suggestions:
                page.suggestions = await self.repo.suggestions(filters.q, SUGGESTIONS)
        return page

    async def _corrected(self, q: str) -> str | None:
        """`q` with each word the catalog does not know replaced by the closest word it
        does ("pyhton" -> "python"), or None when there is nothing to correct."""
        words = WORD.findall(q)[:MAX_CORRECTED_WORDS]
        normalised = await self.repo.normalised_words(words)
        known = await self.repo.known_terms(normalised)
        corrected, changed = [], False
        for typed, word in zip(words, normalised, strict=True):
            replacement = None
            if word not in known:
                replacement = best_correction(word, await self.repo.similar_terms(word))
            corrected.append(replacement or typed)
            changed = changed or replacement is not None
        return " ".join(corrected) if changed else None


def _check_same_ids(existing: set[uuid.UUID], ids: list[uuid.UUID]) -> None:
    if len(ids) != len(set(ids)) or set(ids) != existing:
        raise Invalid("ids must list every item of the collection exactly once.", field="body.ids")
