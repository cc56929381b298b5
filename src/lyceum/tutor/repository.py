"""Every query of the tutor domain: conversations, messages, per-course settings, the
grounding's syllabus and progress, usage (filtered by whose courses the caller may
see), and the catalog matches of the offline hand-off."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from typing import cast as typed

from sqlalchemy import (
    JSON,
    Date,
    Row,
    Select,
    Table,
    Text,
    Update,
    Uuid,
    bindparam,
    case,
    cast,
    delete,
    exists,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from lyceum.models.courses import (
    Course,
    CourseInstructor,
    Enrollment,
    EnrollmentStatus,
    Lesson,
    LessonCompletion,
    Module,
)
from lyceum.models.tutor import Conversation, Message, MessageRole, MessageStatus, TutorSettings


@dataclass(frozen=True, slots=True)
class TutoredRow:
    """A conversation with its course, what its owner is in that course (what
    `courses.service.CoursesService.member_access_of` decides on), the lessons they
    have completed in it (None if they are not enrolled) and its messages so far."""

    conversation: Conversation
    course: Course
    teaches: bool
    enrolled: bool
    completed_lessons: int | None
    # The conversation's messages in order: (role, content, status) of each.
    history: list[tuple[MessageRole, str, MessageStatus]]


_MESSAGES = typed(Table, Message.__table__)
_FOREIGN_KEY_VIOLATION = "23503"
_CONVERSATIONS = typed(Table, Conversation.__table__)


def _tutored_statement() -> Select[Any]:
    """`TutorRepository.tutored`'s statement, built once: building it (three EXISTS, a
    count, the history's aggregate) cost more CPU than SQLAlchemy's cached execution of
    it, on every question."""
    course_id = Conversation.course_id
    user_id = bindparam("user", type_=Uuid())
    teaches = exists().where(
        CourseInstructor.course_id == course_id, CourseInstructor.user_id == user_id
    )
    enrolled = exists().where(
        Enrollment.course_id == course_id,
        Enrollment.user_id == user_id,
        Enrollment.status.in_([EnrollmentStatus.active, EnrollmentStatus.completed]),
    )
    completed = (
        select(func.count())
        .select_from(LessonCompletion)
        .where(LessonCompletion.course_id == course_id, LessonCompletion.user_id == user_id)
        .scalar_subquery()
    )
    # The completions count only for a learner with an enrollment (of any status).
    done = case(
        (
            exists().where(Enrollment.course_id == course_id, Enrollment.user_id == user_id),
            completed,
        ),
        else_=None,
    )
    history = (
        select(
            func.coalesce(
                func.json_agg(
                    aggregate_order_by(
                        func.json_build_array(Message.role, Message.content, Message.status),
                        Message.seq,
                    )
                ),
                func.json_build_array(),
                type_=JSON,
            )
        )
        .where(Message.conversation_id == Conversation.id)
        .scalar_subquery()
    )
    return (
        select(Conversation, Course, teaches.label("teaches"), enrolled.label("enrolled"))
        .add_columns(done.label("done"), history.label("history"))
        .join(Course, Course.id == course_id)
        .where(
            Conversation.id == bindparam("conversation", type_=Uuid()),
            Conversation.user_id == user_id,
        )
    )


_TUTORED = _tutored_statement()


@functools.cache
def _store_question_statement(changed: tuple[str, ...]) -> Update:
    """`TutorRepository.store_question`'s statement for the conversation's columns
    `changed` (its time always; its title on a first question, its summary when the
    history outgrew the prompt), built once per set of them, the values bound."""
    asked = (
        insert(_MESSAGES)
        .values(
            id=bindparam("message", type_=Uuid()),
            conversation_id=bindparam("conversation", type_=Uuid()),
            course_id=bindparam("course", type_=Uuid()),
            user_id=bindparam("user", type_=Uuid()),
            role=MessageRole.user,
            content=bindparam("content", type_=Text()),
            citations=[],
            tool_calls=[],
            tokens_in=0,
            tokens_out=0,
            status=MessageStatus.complete,
        )
        .returning(_MESSAGES.c.id)
        .cte("asked")
    )
    return (
        update(_CONVERSATIONS)
        .where(_CONVERSATIONS.c.id == bindparam("conversation", type_=Uuid()))
        .values(
            {
                name: bindparam(f"change_{name}", type_=_CONVERSATIONS.c[name].type)
                for name in changed
            }
        )
        .add_cte(asked)
    )


@dataclass(frozen=True, slots=True)
class SyllabusEntry:
    module_id: uuid.UUID
    module_title: str
    lesson_id: uuid.UUID | None
    lesson_title: str | None


_PROGRESS = text(
    """
    SELECT (SELECT count(*) FROM lesson_completions
            WHERE course_id = :course AND user_id = :user) AS done
    FROM enrollments WHERE course_id = :course AND user_id = :user
    """
)

_CATALOG_MATCHES = text(
    """
    WITH q AS (
        SELECT CAST(replace(CAST(plainto_tsquery('lyceum', :q) AS text), ' & ', ' | ')
               AS tsquery) AS query
    )
    SELECT c.id, c.title, c.subtitle
    FROM courses AS c CROSS JOIN q LEFT JOIN course_stats AS s ON s.course_id = c.id
    WHERE c.status = 'published' AND q.query <> CAST('' AS tsquery) AND c.search @@ q.query
    ORDER BY ts_rank_cd(c.search, q.query) DESC, coalesce(s.enrollment_count, 0) DESC
    LIMIT :limit
    """
)

_POPULAR_COURSES = text(
    "SELECT c.id, c.title, c.subtitle FROM courses AS c "
    "LEFT JOIN course_stats AS s ON s.course_id = c.id WHERE c.status = 'published' "
    "ORDER BY coalesce(s.enrollment_count, 0) DESC, c.published_at DESC LIMIT :limit"
)


class TutorRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, row: Conversation | Message | TutorSettings) -> None:
        self.session.add(row)

    async def flush(self) -> None:
        await self.session.flush()

    async def saved(self, conversation: Conversation) -> Conversation:
        """The conversation written, with what the database filled in (its times, which
        the INSERT or UPDATE returns: `eager_defaults`)."""
        await self.session.flush()
        return conversation

    # Conversations and messages -------------------------------------------------------

    async def conversation(self, conversation_id: uuid.UUID) -> Conversation | None:
        return await self.session.get(Conversation, conversation_id)

    async def conversations_of(
        self, user_id: uuid.UUID, course_id: uuid.UUID | None, offset: int, limit: int
    ) -> tuple[list[Conversation], int]:
        conditions = [Conversation.user_id == user_id]
        if course_id is not None:
            conditions.append(Conversation.course_id == course_id)
        total = (
            await self.session.execute(
                select(func.count()).select_from(Conversation).where(*conditions)
            )
        ).scalar_one()
        rows = await self.session.execute(
            select(Conversation)
            .where(*conditions)
            .order_by(Conversation.updated_at.desc(), Conversation.id)
            .offset(offset)
            .limit(limit)
        )
        return list(rows.scalars()), int(total)

    async def tutored(self, conversation_id: uuid.UUID, user_id: uuid.UUID) -> TutoredRow | None:
        """The conversation, if it is `user_id`'s, with its course, whether they teach
        it, are enrolled in it (as `courses` counts a member: active or completed), how
        many of its lessons they have completed and the conversation's messages so far,
        in one round trip (a question's first): None for no such conversation of
        theirs."""
        row = (
            await self.session.execute(_TUTORED, {"conversation": conversation_id, "user": user_id})
        ).first()
        if row is None:
            return None
        return TutoredRow(
            row[0],
            row[1],
            bool(row[2]),
            bool(row[3]),
            row[4],
            [
                (MessageRole(role), content, MessageStatus(status))
                for role, content, status in row[5]
            ],
        )

    async def delete_conversation(self, conversation_id: uuid.UUID) -> None:
        await self.session.execute(delete(Conversation).where(Conversation.id == conversation_id))

    async def store_question(
        self,
        conversation: Conversation,
        *,
        course_id: uuid.UUID,
        user_id: uuid.UUID,
        content: str,
        changes: dict[str, Any],
    ) -> uuid.UUID | None:
        """A learner's question stored in `conversation`, and the conversation's
        `changes` (its time, maybe its title and summary), in one statement (the
        question's INSERT as a CTE of the conversation's UPDATE); `conversation` shows
        the changes as written. Returns the question's id; None when the conversation
        is gone (deleted, in another tab, while the question was being prepared: the
        question's foreign key refuses it, and the transaction must be rolled back)."""
        message_id = uuid.uuid4()
        try:
            result = await self.session.execute(
                _store_question_statement(tuple(sorted(changes))),
                {
                    "message": message_id,
                    "conversation": conversation.id,
                    "course": course_id,
                    "user": user_id,
                    "content": content,
                    **{f"change_{name}": value for name, value in changes.items()},
                },
            )
        except IntegrityError as error:
            if getattr(error.orig, "sqlstate", None) == _FOREIGN_KEY_VIOLATION:
                return None
            raise
        if typed(CursorResult[Any], result).rowcount == 0:
            return None
        for name, value in changes.items():
            set_committed_value(conversation, name, value)
        return message_id

    async def messages(self, conversation_id: uuid.UUID) -> list[Message]:
        rows = await self.session.execute(
            select(Message).where(Message.conversation_id == conversation_id).order_by(Message.seq)
        )
        return list(rows.scalars())

    # Settings and budget --------------------------------------------------------------

    async def settings(
        self, course_id: uuid.UUID, *, for_update: bool = False
    ) -> TutorSettings | None:
        return await self.session.get(TutorSettings, course_id, with_for_update=for_update)

    async def tokens_since(self, course_id: uuid.UUID, since: dt.datetime) -> int:
        total = (
            await self.session.execute(
                select(func.coalesce(func.sum(Message.tokens_in + Message.tokens_out), 0)).where(
                    Message.course_id == course_id, Message.created_at >= since
                )
            )
        ).scalar_one()
        return int(total)

    # Grounding ------------------------------------------------------------------------

    async def syllabus(self, course_id: uuid.UUID) -> list[SyllabusEntry]:
        """Module and lesson titles in course order, in one query (no lesson bodies);
        a module without lessons appears once with no lesson."""
        rows = await self.session.execute(
            select(Module.id, Module.title, Lesson.id, Lesson.title)
            .outerjoin(Lesson, Lesson.module_id == Module.id)
            .where(Module.course_id == course_id)
            .order_by(Module.position, Lesson.position)
        )
        return [SyllabusEntry(row[0], row[1], row[2], row[3]) for row in rows]

    async def completed_lessons(self, course_id: uuid.UUID, user_id: uuid.UUID) -> int | None:
        """Lessons the user has completed in the course; None if not enrolled."""
        done = (
            await self.session.execute(_PROGRESS, {"course": course_id, "user": user_id})
        ).scalar()
        return None if done is None else int(done)

    async def lesson(self, lesson_id: uuid.UUID) -> Lesson | None:
        return await self.session.get(Lesson, lesson_id)

    # Usage ----------------------------------------------------------------------------

    async def usage(
        self,
        *,
        course_ids: Sequence[uuid.UUID] | None,
        taught_by: uuid.UUID | None,
        since: dt.date | None,
        limit: int = 10_000,
    ) -> Sequence[Row[uuid.UUID, uuid.UUID, dt.date, int, int, int]]:
        """Answers, tokens in and out by course, user and UTC day, in the courses
        `course_ids` and those `taught_by` that instructor; neither: every course."""
        day = cast(func.timezone("UTC", Message.created_at), Date)
        query = (
            select(
                Message.course_id,
                Message.user_id,
                day.label("day"),
                func.count().label("messages"),
                func.sum(Message.tokens_in).label("tokens_in"),
                func.sum(Message.tokens_out).label("tokens_out"),
            )
            .where(Message.role == MessageRole.assistant)
            .group_by(Message.course_id, Message.user_id, day)
            .order_by(day.desc(), Message.course_id, Message.user_id)
        )
        if course_ids is not None:
            query = query.where(Message.course_id.in_(course_ids))
        if taught_by is not None:
            taught = select(CourseInstructor.course_id).where(CourseInstructor.user_id == taught_by)
            query = query.where(Message.course_id.in_(taught))
        if since is not None:
            query = query.where(day >= since)
        return (await self.session.execute(query.limit(limit))).all()

    # Catalog --------------------------------------------------------------------------

    async def catalog_matches(
        self, question: str, limit: int = 3
    ) -> Sequence[Row[tuple[uuid.UUID, str, str]]]:
        """Published courses whose search document shares words with the question, best
        first; the most popular ones when nothing matches."""
        found = (
            await self.session.execute(_CATALOG_MATCHES, {"q": question, "limit": limit})
        ).all()
        if not found:
            found = (await self.session.execute(_POPULAR_COURSES, {"limit": limit})).all()
        return found
