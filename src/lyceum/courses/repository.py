"""Every query of courses, modules and lessons."""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    Uuid,
    and_,
    bindparam,
    case,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, REGCONFIG
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from lyceum.kit.markup import HIT_START, HIT_STOP, highlighted
from lyceum.models.content import CourseFile
from lyceum.models.courses import (
    Course,
    CourseInstructor,
    CourseLevel,
    CourseStatChange,
    CourseStats,
    CourseStatus,
    Enrollment,
    EnrollmentStatus,
    Lesson,
    Module,
)
from lyceum.models.identity import User

ACCENT_BLIND = cast(literal("lyceum"), REGCONFIG)
ENGLISH = cast(literal("lyceum_english"), REGCONFIG)
# The shortest word typed that is matched as a prefix ("stat" finds "statistics").
PREFIX_MIN_LENGTH = 3
WORD = re.compile(r"\w+")
# Hits are delimited, not tagged: `highlighted` escapes the course text, then tags them.
SNIPPET_OPTIONS = (
    f"StartSel={HIT_START}, StopSel={HIT_STOP}, MaxWords=30, MinWords=12, MaxFragments=2"
)


def catalog_query(q: str) -> ColumnElement[Any]:
    """The tsquery of a catalog search, matching each course in its own configuration:
    the words as typed, English-stemmed (for English courses: "statistic" finds
    "statistics") or accent-blind (every language), and the last word also as a prefix,
    since people search as they type ("invest" finds "investing")."""
    query = func.websearch_to_tsquery(ENGLISH, q).op("||")(
        func.websearch_to_tsquery(ACCENT_BLIND, q)
    )
    words = WORD.findall(q)
    if words and len(words[-1]) >= PREFIX_MIN_LENGTH and not q.rstrip().endswith('"'):
        head = " ".join(words[:-1])
        prefix = func.to_tsquery(
            ACCENT_BLIND, func.quote_literal(func.lyceum_unaccent(func.lower(words[-1]))) + ":*"
        )
        for config in (ENGLISH, ACCENT_BLIND):
            query = query.op("||")(func.websearch_to_tsquery(config, head).op("&&")(prefix))
    return query


def course_config() -> ColumnElement[Any]:
    """The text search configuration a course is indexed with (see models.courses)."""
    return case((func.lower(Course.language).like("en%"), ENGLISH), else_=ACCENT_BLIND)


@dataclass(frozen=True, slots=True)
class Counters:
    """A course's counters as last folded (see `fold_stat_changes`)."""

    enrollments: int = 0
    ratings: int = 0
    average: float | None = None


NO_COUNTERS = Counters()


@dataclass(frozen=True, slots=True)
class CatalogRow:
    course: Course
    counters: Counters
    snippet: str | None


@dataclass(frozen=True)
class CatalogFilters:
    q: str | None = None
    category: str | None = None
    level: CourseLevel | None = None
    language: str | None = None
    tag: str | None = None
    instructor: uuid.UUID | None = None
    # Drafts and archived courses too (only with `instructor`: the courses one teaches).
    any_status: bool = False
    price: str | None = None  # "free" | "paid"
    sort: str = "relevance"


def _course_and_roles_query() -> Select[Course, bool, bool]:
    """`CourseRepository.course_and_roles`'s statement, built once: it runs for every
    read of a course's material (a lesson, the outline, progress, the tutor, a chat
    room's join), and building it cost more CPU than SQLAlchemy's cached execution."""
    course_id, user_id = bindparam("course", type_=Uuid()), bindparam("user", type_=Uuid())
    teaches = (
        exists()
        .where(CourseInstructor.course_id == course_id, CourseInstructor.user_id == user_id)
        .label("teaches")
    )
    enrolled = (
        exists()
        .where(
            Enrollment.course_id == course_id,
            Enrollment.user_id == user_id,
            Enrollment.status.in_([EnrollmentStatus.active, EnrollmentStatus.completed]),
        )
        .label("enrolled")
    )
    return select(Course, teaches, enrolled).where(Course.id == course_id)


_COURSE_AND_ROLES = _course_and_roles_query()
# A course by id (every course page, progress read and lesson), built once.
_COURSE = select(Course).where(Course.id == bindparam("course_id", type_=Uuid()))
_COURSE_LOCKED = _COURSE.with_for_update()


class CourseRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, entity: object) -> None:
        self.session.add(entity)
        await self.session.flush()

    async def delete(self, entity: Module | Lesson) -> None:
        """The row now (its children go with it: ON DELETE CASCADE)."""
        await self.session.delete(entity)
        await self.session.flush()

    async def course(self, course_id: uuid.UUID, *, for_update: bool = False) -> Course | None:
        query = _COURSE_LOCKED if for_update else _COURSE
        return (await self.session.execute(query, {"course_id": course_id})).scalar_one_or_none()

    # Counters -------------------------------------------------------------------------

    async def counters(self, course_id: uuid.UUID) -> Counters:
        row = (
            await self.session.execute(
                select(
                    CourseStats.enrollment_count,
                    CourseStats.rating_count,
                    CourseStats.rating_average,
                ).where(CourseStats.course_id == course_id)
            )
        ).first()
        return NO_COUNTERS if row is None else Counters(row[0], row[1], row[2])

    async def record_stat_change(
        self,
        course_id: uuid.UUID,
        *,
        enrollments: int = 0,
        ratings: int = 0,
        rating_points: int = 0,
    ) -> None:
        """Append a change to the course's counters (never waits on another writer)."""
        await self.session.execute(
            insert(CourseStatChange).values(
                course_id=course_id,
                enrollments=enrollments,
                ratings=ratings,
                rating_points=rating_points,
            )
        )

    async def fold_stat_changes(self) -> list[uuid.UUID]:
        """Add every appended change to its course's counters and delete it, in one
        statement (a concurrent fold takes disjoint rows). Returns the courses updated."""
        result = await self.session.execute(
            text(
                """
                WITH taken AS (
                    DELETE FROM course_stat_changes
                    RETURNING course_id, enrollments, ratings, rating_points
                ), summed AS (
                    SELECT course_id, sum(enrollments) AS enrollments,
                           sum(ratings) AS ratings, sum(rating_points) AS rating_points
                    FROM taken GROUP BY course_id
                )
                INSERT INTO course_stats AS stats
                    (course_id, enrollment_count, rating_count, rating_points)
                SELECT course_id, enrollments, ratings, rating_points FROM summed
                ON CONFLICT (course_id) DO UPDATE SET
                    enrollment_count = stats.enrollment_count + excluded.enrollment_count,
                    rating_count = stats.rating_count + excluded.rating_count,
                    rating_points = stats.rating_points + excluded.rating_points
                RETURNING course_id
                """
            )
        )
        return [row[0] for row in result]

    async def course_by_slug(self, slug: str) -> Course | None:
        return (
            await self.session.execute(select(Course).where(Course.slug == slug))
        ).scalar_one_or_none()

    async def slug_taken(self, slug: str, *, other_than: uuid.UUID | None = None) -> bool:
        query = select(Course.id).where(Course.slug == slug)
        if other_than is not None:
            query = query.where(Course.id != other_than)
        return (await self.session.execute(query)).first() is not None

    async def is_instructor(self, course_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        query = select(CourseInstructor.user_id).where(
            CourseInstructor.course_id == course_id, CourseInstructor.user_id == user_id
        )
        return (await self.session.execute(query)).first() is not None

    async def has_file(self, course_id: uuid.UUID, file_id: uuid.UUID) -> bool:
        query = select(CourseFile.id).where(
            CourseFile.id == file_id, CourseFile.course_id == course_id
        )
        return (await self.session.execute(query)).first() is not None

    async def course_and_roles(
        self, course_id: uuid.UUID, user_id: uuid.UUID | None
    ) -> tuple[Course, bool, bool] | None:
        """(course, the user teaches it, the user is enrolled in it) in one round trip;
        None if there is no such course."""
        if user_id is None:
            found = await self.course(course_id)
            return None if found is None else (found, False, False)
        row = (
            await self.session.execute(_COURSE_AND_ROLES, {"course": course_id, "user": user_id})
        ).first()
        return None if row is None else (row[0], bool(row[1]), bool(row[2]))

    async def is_learner(self, course_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        query = select(Enrollment.id).where(
            Enrollment.course_id == course_id,
            Enrollment.user_id == user_id,
            Enrollment.status.in_([EnrollmentStatus.active, EnrollmentStatus.completed]),
        )
        return (await self.session.execute(query)).first() is not None

    async def instructors(self, course_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[User]]:
        if not course_ids:
            return {}
        rows = await self.session.execute(
            select(CourseInstructor.course_id, User)
            .join(User, User.id == CourseInstructor.user_id)
            .where(CourseInstructor.course_id.in_(course_ids))
            .order_by(User.full_name)
        )
        found: dict[uuid.UUID, list[User]] = defaultdict(list)
        for course_id, user in rows:
            found[course_id].append(user)
        return found

    async def course_ids_taught_by(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        query = select(CourseInstructor.course_id).where(CourseInstructor.user_id == user_id)
        return list((await self.session.execute(query)).scalars())

    async def add_instructor(self, course_id: uuid.UUID, user_id: uuid.UUID) -> None:
        if not await self.is_instructor(course_id, user_id):
            await self.add(CourseInstructor(course_id=course_id, user_id=user_id))

    async def remove_instructor(self, course_id: uuid.UUID, user_id: uuid.UUID) -> None:
        await self.session.execute(
            delete(CourseInstructor).where(
                CourseInstructor.course_id == course_id, CourseInstructor.user_id == user_id
            )
        )

    # Syllabus -------------------------------------------------------------------------

    async def modules(self, course_id: uuid.UUID) -> list[Module]:
        rows = await self.session.execute(
            select(Module).where(Module.course_id == course_id).order_by(Module.position)
        )
        return list(rows.scalars())

    async def lessons(self, course_id: uuid.UUID) -> list[Lesson]:
        rows = await self.session.execute(
            select(Lesson)
            .join(Module, Module.id == Lesson.module_id)
            .where(Lesson.course_id == course_id)
            .order_by(Module.position, Lesson.position)
        )
        return list(rows.scalars())

    async def module(self, module_id: uuid.UUID) -> Module | None:
        return await self.session.get(Module, module_id)

    async def lesson(self, lesson_id: uuid.UUID) -> Lesson | None:
        return await self.session.get(Lesson, lesson_id)

    async def lessons_of_module(self, module_id: uuid.UUID) -> list[Lesson]:
        rows = await self.session.execute(
            select(Lesson).where(Lesson.module_id == module_id).order_by(Lesson.position)
        )
        return list(rows.scalars())

    async def next_module_position(self, course_id: uuid.UUID) -> int:
        value = await self.session.execute(
            select(func.coalesce(func.max(Module.position), -1) + 1).where(
                Module.course_id == course_id
            )
        )
        return int(value.scalar_one())

    async def next_lesson_position(self, module_id: uuid.UUID) -> int:
        value = await self.session.execute(
            select(func.coalesce(func.max(Lesson.position), -1) + 1).where(
                Lesson.module_id == module_id
            )
        )
        return int(value.scalar_one())

    async def lesson_count(self, course_id: uuid.UUID) -> int:
        value = await self.session.execute(
            select(func.count()).select_from(Lesson).where(Lesson.course_id == course_id)
        )
        return int(value.scalar_one())

    async def refresh_lesson_titles(self, course_id: uuid.UUID) -> None:
        """Keep the search document's lesson-title part in step with the syllabus."""
        titles = (
            select(func.coalesce(func.string_agg(Lesson.title, " "), ""))
            .where(Lesson.course_id == course_id)
            .scalar_subquery()
        )
        await self.session.execute(
            update(Course).where(Course.id == course_id).values(lesson_titles=titles)
        )

    # Catalog --------------------------------------------------------------------------

    def _catalog_conditions(self, filters: CatalogFilters) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if not (filters.any_status and filters.instructor):
            conditions.append(Course.status == CourseStatus.published)
        if filters.category:
            conditions.append(Course.category == filters.category)
        if filters.level:
            conditions.append(Course.level == filters.level)
        if filters.language:
            conditions.append(Course.language == filters.language)
        if filters.tag:
            conditions.append(Course.tags.contains(cast([filters.tag], ARRAY(String(50)))))
        if filters.instructor:
            conditions.append(
                exists().where(
                    and_(
                        CourseInstructor.course_id == Course.id,
                        CourseInstructor.user_id == filters.instructor,
                    )
                )
            )
        if filters.price == "free":
            conditions.append(Course.price_cents == 0)
        elif filters.price == "paid":
            conditions.append(Course.price_cents > 0)
        return conditions

    async def catalog(
        self, filters: CatalogFilters, *, offset: int, limit: int
    ) -> tuple[list[CatalogRow], int]:
        conditions = self._catalog_conditions(filters)
        query_vector: Any = None
        if filters.q:
            query_vector = catalog_query(filters.q)
            conditions.append(Course.search.op("@@")(query_vector))
        # The total rides along on every row (a window count), saving a second scan of
        # the matches; the long text columns stay in the database.
        page = (
            select(
                Course,
                CourseStats.enrollment_count,
                CourseStats.rating_count,
                CourseStats.rating_average,
                func.count().over().label("total"),
            )
            .outerjoin(CourseStats, CourseStats.course_id == Course.id)
            .where(*conditions)
            .options(
                defer(Course.description),
                defer(Course.lesson_titles),
                defer(Course.tags_text),
                defer(Course.search),
            )
        )
        order: list[Any] = []
        if query_vector is not None and filters.sort == "relevance":
            order.append(func.ts_rank_cd(Course.search, query_vector).desc())
        elif filters.sort == "popular":
            order.append(func.coalesce(CourseStats.enrollment_count, 0).desc())
        elif filters.sort == "rating":
            order += [
                CourseStats.rating_average.desc().nulls_last(),
                func.coalesce(CourseStats.rating_count, 0).desc(),
            ]
        order += [Course.published_at.desc().nulls_last(), Course.id]
        result = (
            await self.session.execute(page.order_by(*order).offset(offset).limit(limit))
        ).all()
        rows = [row[0] for row in result]
        if result:
            total = int(result[0].total)
        elif offset:
            # Past the last page: no row carried the count.
            count = select(func.count()).select_from(Course).where(*conditions)
            total = int((await self.session.execute(count)).scalar_one())
        else:
            total = 0
        snippets: dict[uuid.UUID, str] = {}
        if query_vector is not None and rows:
            # Headlines only for this page's rows: ts_headline re-parses the text.
            headlines = await self.session.execute(
                select(
                    Course.id,
                    func.ts_headline(
                        course_config(),
                        Course.title + ". " + Course.subtitle + ". " + Course.description,
                        query_vector,
                        SNIPPET_OPTIONS,
                    ),
                ).where(Course.id.in_([row.id for row in rows]))
            )
            snippets = {course_id: highlighted(snippet) for course_id, snippet in headlines}
        return [
            CatalogRow(
                course=row[0],
                counters=Counters(row[1] or 0, row[2] or 0, row[3]),
                snippet=snippets.get(row[0].id),
            )
            for row in result
        ], total

    async def suggestions(self, q: str, limit: int = 3) -> list[str]:
        """Published titles that look like `q`, accents and case ignored (pg_trgm).
        `<%` (word similarity above the threshold) is what lets the trigram index on
        the unaccented title answer; calling word_similarity() alone scans the table."""
        await self.session.execute(
            select(func.set_config("pg_trgm.word_similarity_threshold", "0.3", True))
        )
        wanted = func.lyceum_unaccent(func.lower(q))
        title = func.lyceum_unaccent(func.lower(Course.title))
        score = func.max(func.word_similarity(wanted, title))
        rows = await self.session.execute(
            select(Course.title)
            .where(Course.status == CourseStatus.published, wanted.op("<%")(title))
            .group_by(Course.title)
            .order_by(score.desc(), Course.title)
            .limit(limit)
        )
        return list(rows.scalars())

    # The catalog's vocabulary (migration 0014), for "did you mean" ------------------------

    async def normalised_words(self, words: list[str]) -> list[str]:
        """The words as the vocabulary holds them: lower case, accents removed."""
        if not words:
            return []
        found = await self.session.execute(
            text(
                "SELECT array(SELECT lyceum_unaccent(lower(word)) "
                "FROM unnest(CAST(:words AS text[])) WITH ORDINALITY AS t(word, n) ORDER BY n)"
            ),
            {"words": words},
        )
        return [str(word) for word in found.scalar_one()]

    async def known_terms(self, terms: list[str]) -> set[str]:
        if not terms:
            return set()
        rows = await self.session.execute(
            text("SELECT term FROM catalog_terms WHERE term = ANY(:terms)"), {"terms": terms}
        )
        return {str(term) for term in rows.scalars()}

    async def similar_terms(self, term: str, limit: int = 12) -> list[tuple[str, int]]:
        """Vocabulary words sharing trigrams with `term` (a transposition such as
        "pyhton" keeps about a quarter of "python"'s), most similar first."""
        await self.session.execute(
            select(func.set_config("pg_trgm.similarity_threshold", "0.2", True))
        )
        rows = await self.session.execute(
            text(
                "SELECT term, documents FROM catalog_terms WHERE term % :term "
                "ORDER BY similarity(term, :term) DESC, documents DESC LIMIT :limit"
            ),
            {"term": term, "limit": limit},
        )
        return [(str(found), int(documents)) for found, documents in rows]

    async def refresh_catalog_terms(self) -> None:
        """Rebuild the vocabulary; searches keep reading the old one meanwhile."""
        await self.session.execute(text("REFRESH MATERIALIZED VIEW CONCURRENTLY catalog_terms"))
