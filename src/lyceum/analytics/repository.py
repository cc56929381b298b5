"""Every query of event ingest, the server-side facts, the chat copy and the rollups:
each a set-based statement, whatever the number of events it handles."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict, cast

import orjson
import structlog
from sqlalchemy import (
    BindParameter,
    Boolean,
    ColumnElement,
    Insert,
    Table,
    Text,
    Uuid,
    case,
    func,
    insert,
    literal_column,
    select,
    text,
    true,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.analytics.cursor_repository import WINDOW_CLAUSE, Window
from lyceum.analytics.vocabulary import ObjectType, Verb
from lyceum.kit.db import driver_execute, driver_sql
from lyceum.models.analytics import AnalyticsEvent
from lyceum.models.assessments import Quiz

logger = structlog.get_logger("lyceum.analytics")

# Ingest ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Placement:
    """Where an object sits: its course and, when it belongs to one, its lesson (ids in
    canonical text form, as the batch names them)."""

    course_id: str | None
    lesson_id: str | None


# Each kind of object resolved to its course (and lesson), with whether a signed-in
# visitor of a published course may see it without enrolling (the course page itself,
# preview lessons) and whether a learner may see it at all (a published quiz or
# assignment, a file that is ready, a question drawn into one of their attempts); then
# kept only if the caller may see it: editors (the course's
# instructors while they are instructors, and admins) see everything of their courses,
# the others only published courses, and there what is open to visitors or what their
# (not cancelled) enrollment opens.
_VISIBLE_OBJECTS = text(
    """
    WITH wanted AS (
        SELECT DISTINCT kind, id
        FROM unnest(CAST(:kinds AS text[]), CAST(:ids AS uuid[])) AS w(kind, id)
    ),
    placed AS (
        SELECT w.kind, w.id, c.id AS course_id, NULL::uuid AS lesson_id,
               true AS open, true AS shown
        FROM wanted AS w JOIN courses AS c ON c.id = w.id
        WHERE w.kind = 'course'
        UNION ALL
        SELECT w.kind, w.id, l.course_id, l.id, l.is_preview, true
        FROM wanted AS w JOIN lessons AS l ON l.id = w.id
        WHERE w.kind = 'lesson'
        UNION ALL
        SELECT w.kind, w.id, f.course_id, NULL::uuid, false,
               f.status = 'ready'
        FROM wanted AS w JOIN course_files AS f ON f.id = w.id
        WHERE w.kind = 'file_page'
        UNION ALL
        SELECT w.kind, w.id, q.course_id, q.lesson_id, false, q.published
        FROM wanted AS w JOIN quizzes AS q ON q.id = w.id
        WHERE w.kind = 'quiz'
        UNION ALL
        -- A bank question is seen by a learner once it was drawn into one of their
        -- attempts (a question of an unpublished quiz, or one never drawn, is not).
        SELECT w.kind, w.id, b.course_id, NULL::uuid, false, EXISTS (
                   SELECT 1 FROM quiz_attempts AS qa
                   JOIN quiz_attempt_items AS qi ON qi.attempt_id = qa.id
                   WHERE qa.user_id = :user_id AND qa.course_id = b.course_id
                     AND qi.question_id = b.id)
        FROM wanted AS w JOIN assessment_questions AS b ON b.id = w.id
        WHERE w.kind = 'quiz_item'
        UNION ALL
        SELECT w.kind, w.id, a.course_id, a.lesson_id, false, a.published
        FROM wanted AS w JOIN assignments AS a ON a.id = w.id
        WHERE w.kind = 'assignment'
    )
    SELECT p.kind, p.id::text AS id, p.course_id::text AS course_id,
           p.lesson_id::text AS lesson_id
    FROM placed AS p JOIN courses AS c ON c.id = p.course_id
    WHERE :admin
       OR (:instructor AND EXISTS (
            SELECT 1 FROM course_instructors AS ci
            WHERE ci.course_id = c.id AND ci.user_id = :user_id))
       OR (c.status = 'published' AND p.shown AND (p.open OR EXISTS (
            SELECT 1 FROM enrollments AS e
            WHERE e.course_id = c.id AND e.user_id = :user_id AND e.status <> 'cancelled')))
    """
)


async def visible_objects(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    admin: bool,
    instructor: bool,
    objects: Sequence[tuple[str, str]],
) -> dict[tuple[str, str], Placement]:
    """Of `objects` ((kind, id) pairs, ids in canonical lowercase text), those the user
    may see, with where they sit; one query whatever their number. Missing and hidden
    objects are both left out."""
    if not objects:
        return {}
    rows = await session.execute(
        _VISIBLE_OBJECTS,
        {
            "kinds": [kind for kind, _ in objects],
            "ids": [object_id for _, object_id in objects],
            "user_id": user_id,
            "admin": admin,
            "instructor": instructor,
        },
    )
    return {(row.kind, row.id): Placement(row.course_id, row.lesson_id) for row in rows}


class EventRow(TypedDict):
    """One event to store, in the JSON form the insert reads (ids as text)."""

    client_event_id: str
    event_id: str
    occurred_at: dt.datetime
    verb: str
    object_type: str
    object_id: str | None
    course_id: str | None
    lesson_id: str | None
    page: int | None
    duration_ms: int | None
    result: Mapping[str, Any] | None
    context: Mapping[str, Any] | None


# The batch travels as one JSON document (PostgreSQL reads it into rows far faster than
# the driver writes a dozen arrays); the new client ids are claimed first (a repeat
# claims nothing), and only the events whose id was claimed are written (as many as were
# claimed: the rows hold each id once). The same statement says whether a job of the
# given queueing lock waits already (the rollup run ingest asks for): one round trip.
_INSERT_CLIENT_EVENTS = text(
    """
    WITH input AS (
        SELECT *
        FROM json_to_recordset(CAST(:rows AS json)) AS t(
            client_event_id text, event_id uuid, occurred_at timestamptz, verb text,
            object_type text, object_id uuid, course_id uuid, lesson_id uuid,
            page integer, duration_ms bigint, result jsonb, context jsonb)
    ),
    claimed AS (
        INSERT INTO analytics_event_keys (user_id, client_event_id)
        SELECT :user_id, client_event_id FROM input
        ON CONFLICT DO NOTHING
        RETURNING client_event_id
    ),
    written AS (
        INSERT INTO analytics_events (
            occurred_at, event_id, user_id, course_id, lesson_id, source, client_event_id,
            verb, object_type, object_id, page, duration_ms, result, context)
        SELECT i.occurred_at, i.event_id, :user_id, i.course_id, i.lesson_id, 'client',
               i.client_event_id, i.verb, i.object_type, i.object_id, i.page, i.duration_ms,
               i.result, i.context
        FROM input AS i JOIN claimed USING (client_event_id)
    )
    SELECT (SELECT count(*) FROM claimed) AS stored,
           EXISTS (SELECT 1 FROM procrastinate_jobs
                   WHERE queueing_lock = :lock AND status = 'todo') AS job_waiting
    """
)


@dataclass(frozen=True)
class Stored:
    events: int  # how many were new
    job_waiting: bool  # whether a job of the queueing lock asked about waits to run


async def insert_client_events(
    session: AsyncSession, user_id: uuid.UUID, rows: Sequence[EventRow], *, queueing_lock: str
) -> Stored:
    """Store the events whose client id the user has not sent before (`rows` hold each
    id once), and look whether a job of `queueing_lock` waits to run."""
    if not rows:
        return Stored(0, await job_waiting(session, queueing_lock))
    found = (
        await session.execute(
            _INSERT_CLIENT_EVENTS,
            {"user_id": user_id, "rows": orjson.dumps(rows).decode(), "lock": queueing_lock},
        )
    ).one()
    return Stored(int(found.stored), bool(found.job_waiting))


def _json(value: dict[str, Any] | None) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


async def prune_event_keys(session: AsyncSession, before: dt.datetime) -> int:
    """Forget the client ids received before `before`; returns how many."""
    result = await session.execute(
        text("DELETE FROM analytics_event_keys WHERE received_at < :before"), {"before": before}
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def job_waiting(session: AsyncSession, queueing_lock: str) -> bool:
    """Whether a job of this queueing lock waits to run."""
    found = await session.execute(
        text(
            "SELECT 1 FROM procrastinate_jobs"
            " WHERE queueing_lock = :lock AND status = 'todo' LIMIT 1"
        ),
        {"lock": queueing_lock},
    )
    return found.first() is not None


# Server-side facts ----------------------------------------------------------------------

# Only when this month's partition exists: a fact must never fail the enrollment or the
# grade that caused it (a catalog lookup by name, one index probe).
_PARTITION_EXISTS = """EXISTS (
        SELECT 1 FROM pg_catalog.pg_class
        WHERE relname = 'analytics_events_p' || to_char(now() AT TIME ZONE 'UTC', 'YYYYMM')
          AND relnamespace = CAST(current_schema() AS regnamespace))"""


def graded_quiz_fact(payload: BindParameter[Any]) -> Insert:
    """The `passed` or `failed` fact of a graded quiz attempt, from the event's payload
    (`quiz.attempt.graded`: attempt_id, quiz_id, user_id, course_id, score, max_score,
    passed), written by the event row's own INSERT (`kit.events.write_with_event`): the
    same row `insert_server_event` writes (the quiz's lesson looked up, score and
    success in `result`, the attempt in `context`), without a statement of its own."""
    events = cast(Table, AnalyticsEvent.__table__)

    # The payload's keys are written into the SQL (the statement is compiled once,
    # `kit.db.driver_sql`, and holds no bound value of its own).
    def member(key: str) -> ColumnElement[Any]:
        return payload.op("->", return_type=JSONB())(literal_column(f"'{key}'"))

    def member_as(key: str, type_: Any) -> ColumnElement[Any]:
        return sql_cast(payload.op("->>", return_type=Text())(literal_column(f"'{key}'")), type_)

    quiz_id = member_as("quiz_id", Uuid())
    fact = select(
        func.now(),
        func.gen_random_uuid(),
        member_as("user_id", Uuid()),
        member_as("course_id", Uuid()),
        select(Quiz.lesson_id).where(Quiz.id == quiz_id).scalar_subquery(),
        literal_column("'server'"),
        case(
            (member_as("passed", Boolean()), literal_column(f"'{Verb.passed.value}'")),
            else_=literal_column(f"'{Verb.failed.value}'"),
        ),
        literal_column(f"'{ObjectType.quiz.value}'"),
        quiz_id,
        func.jsonb_build_object(
            literal_column("'score'"),
            member("score"),
            literal_column("'max_score'"),
            member("max_score"),
            literal_column("'success'"),
            member("passed"),
            literal_column("'completion'"),
            true(),
        ),
        func.jsonb_build_object(literal_column("'attempt_id'"), member("attempt_id")),
    ).where(text(_PARTITION_EXISTS))
    columns = (
        "occurred_at",
        "event_id",
        "user_id",
        "course_id",
        "lesson_id",
        "source",
        "verb",
        "object_type",
        "object_id",
        "result",
        "context",
    )
    return insert(events).from_select([events.c[name] for name in columns], fact)


_INSERT_SERVER_EVENT = text(
    """
    INSERT INTO analytics_events (
        occurred_at, event_id, user_id, course_id, lesson_id, source, verb, object_type,
        object_id, result, context)
    SELECT
        now(), :event_id, :user_id, :course_id,
        COALESCE(CAST(:lesson_id AS uuid), CASE CAST(:object_type AS text)
            WHEN 'quiz' THEN (SELECT q.lesson_id FROM quizzes AS q WHERE q.id = :object_id)
            WHEN 'assignment' THEN
                (SELECT a.lesson_id FROM assignments AS a WHERE a.id = :object_id)
        END),
        'server', :verb, :object_type, :object_id,
        CAST(:result AS jsonb), CAST(:context AS jsonb)
    WHERE """  # noqa: S608 (two constant strings joined; every value is a bound parameter)
    + _PARTITION_EXISTS
)


# Every graded quiz attempt, enrollment and completion writes one: compiled once and
# sent as a prepared statement on the driver connection (`kit.db.driver_execute`).
_INSERT_SERVER_EVENT_SQL = driver_sql(_INSERT_SERVER_EVENT)


async def insert_server_event(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    verb: str,
    object_type: str,
    object_id: uuid.UUID | None,
    course_id: uuid.UUID | None,
    lesson_id: uuid.UUID | None = None,
    result: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
) -> None:
    """Record a fact of the platform's, occurred now (the transaction's time); a quiz's
    or an assignment's lesson is looked up in the same statement. Without a partition
    for this month (the partition job has not run for months) the fact is dropped and
    logged, never an error for the action that caused it."""
    written = await driver_execute(
        session,
        _INSERT_SERVER_EVENT_SQL,
        {
            "event_id": uuid.uuid4(),
            "user_id": user_id,
            "course_id": course_id,
            "lesson_id": lesson_id,
            "verb": verb,
            "object_type": object_type,
            "object_id": object_id,
            "result": _json(result),
            "context": _json(context),
        },
    )
    if not written.rowcount:
        logger.warning("analytics_partition_missing", verb=verb, object_type=object_type)


# The course chat rooms' messages since the watermark, each once: its key is claimed
# under the sender with a client id no app can send (apps' ids have no spaces).
_COPY_CHAT_MESSAGES = text(
    """
    WITH recent AS (
        SELECT m.id, m.sender_id, m.room_id, r.course_id, m.created_at, m.seq
        FROM chat_rooms AS r
        CROSS JOIN LATERAL (
            SELECT id, sender_id, room_id, created_at, seq
            FROM chat_messages
            WHERE room_id = r.id AND seq > :after_seq AND deleted_at IS NULL
        ) AS m
        WHERE r.kind = 'course' AND r.course_id IS NOT NULL
    ),
    claimed AS (
        INSERT INTO analytics_event_keys (user_id, client_event_id)
        SELECT sender_id, 'chat ' || id::text FROM recent WHERE created_at >= :oldest
        ON CONFLICT DO NOTHING
        RETURNING user_id, client_event_id
    ),
    written AS (
        INSERT INTO analytics_events (
            occurred_at, event_id, user_id, course_id, source, verb, object_type, object_id)
        SELECT m.created_at, gen_random_uuid(), m.sender_id, m.course_id, 'server',
               'commented', 'chat_room', m.room_id
        FROM recent AS m
        JOIN claimed AS c ON c.user_id = m.sender_id AND c.client_event_id = 'chat ' || m.id::text
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM written) AS copied,
           (SELECT max(seq) FROM recent WHERE created_at < :settled_before) AS settled_seq
    """
)


async def copy_chat_messages(
    session: AsyncSession, *, after_seq: int, settled_before: dt.datetime, oldest: dt.datetime
) -> tuple[int, int | None]:
    """Copy the course chat messages with a `seq` above `after_seq` as `commented`
    events (those copied before are skipped); returns (copied, the highest seq among
    the messages written before `settled_before`, None if none). Messages written
    before `oldest` are passed over, not copied: the event store keeps no partition for
    them (a deployment's chat history before analytics existed, or a worker that was
    down longer than an app may post late)."""
    row = (
        await session.execute(
            _COPY_CHAT_MESSAGES,
            {"after_seq": after_seq, "settled_before": settled_before, "oldest": oldest},
        )
    ).one()
    return int(row.copied), None if row.settled_seq is None else int(row.settled_seq)


async def chat_watermark(session: AsyncSession, name: str) -> int:
    """The chat copy's watermark (a chat message `seq`, kept in the cursor's position),
    locked for this transaction; 0 before the first run."""
    await session.execute(
        text(
            "INSERT INTO analytics_cursors (name, position) VALUES (:name, '0'::xid8)"
            " ON CONFLICT (name) DO NOTHING"
        ),
        {"name": name},
    )
    value = (
        await session.execute(
            text("SELECT position::text FROM analytics_cursors WHERE name = :name FOR UPDATE"),
            {"name": name},
        )
    ).scalar_one()
    return int(value)


async def move_chat_watermark(session: AsyncSession, name: str, seq: int) -> None:
    await session.execute(
        text(
            "UPDATE analytics_cursors SET position = CAST(:seq AS xid8), updated_at = now()"
            " WHERE name = :name"
        ),
        {"name": name, "seq": str(seq)},
    )


# Rollups ----------------------------------------------------------------------------------

_DAY = "CAST(occurred_at AT TIME ZONE 'UTC' AS date)"
LESSON_COMPLETED = "verb = 'completed' AND source = 'server' AND object_type = 'lesson'"


@dataclass(frozen=True)
class Rollup:
    """One rollup table: its key, and each column with the aggregate that computes it
    from events and the way an increment merges into the stored row."""

    table: str
    key: tuple[str, ...]
    where: str  # which events it counts
    group_by: tuple[str, ...]  # expressions, in `key` order
    columns: tuple[tuple[str, str, str], ...]  # (name, aggregate, merge)

    def select(self, condition: str) -> str:
        keys = ", ".join(
            f"{expression} AS {name}"
            for name, expression in zip(self.key, self.group_by, strict=True)
        )
        values = ", ".join(f"{aggregate} AS {name}" for name, aggregate, _ in self.columns)
        return (
            f"SELECT {keys}, {values} FROM analytics_events"  # noqa: S608 (constants)
            f" WHERE ({self.where}) AND ({condition})"
            f" GROUP BY {', '.join(str(i + 1) for i in range(len(self.key)))}"
        )

    def upsert(self, condition: str) -> str:
        names = ", ".join([*self.key, *(name for name, _, _ in self.columns)])
        merges = ", ".join(f"{name} = {merge}" for name, _, merge in self.columns)
        return (
            f"INSERT INTO {self.table} AS t ({names}) {self.select(condition)}"
            f" ON CONFLICT ({', '.join(self.key)}) DO UPDATE SET {merges}"
        )

    @property
    def names(self) -> tuple[str, ...]:
        return (*self.key, *(name for name, _, _ in self.columns))


def _sum(name: str) -> str:
    return f"t.{name} + excluded.{name}"


_TIME = "COALESCE(sum(duration_ms), 0)"

ROLLUPS: tuple[Rollup, ...] = (
    Rollup(
        table="analytics_course_daily",
        key=("course_id", "day"),
        where="course_id IS NOT NULL",
        group_by=("course_id", _DAY),
        columns=(
            ("events", "count(*)", _sum("events")),
            ("time_ms", _TIME, _sum("time_ms")),
            ("views", "count(*) FILTER (WHERE verb = 'viewed')", _sum("views")),
            ("completions", f"count(*) FILTER (WHERE {LESSON_COMPLETED})", _sum("completions")),
            ("enrollments", "count(*) FILTER (WHERE verb = 'enrolled')", _sum("enrollments")),
            ("tutor_questions", "count(*) FILTER (WHERE verb = 'asked')", _sum("tutor_questions")),
            ("chat_messages", "count(*) FILTER (WHERE verb = 'commented')", _sum("chat_messages")),
        ),
    ),
    Rollup(
        table="analytics_lesson_daily",
        key=("lesson_id", "day"),
        where="lesson_id IS NOT NULL",
        group_by=("lesson_id", _DAY),
        columns=(
            # A lesson belongs to one course; the aggregate only names it.
            ("course_id", "(array_agg(course_id))[1]", "t.course_id"),
            ("views", "count(*) FILTER (WHERE verb = 'viewed')", _sum("views")),
            ("completions", f"count(*) FILTER (WHERE {LESSON_COMPLETED})", _sum("completions")),
            ("time_ms", _TIME, _sum("time_ms")),
        ),
    ),
    Rollup(
        table="analytics_learner_course",
        key=("user_id", "course_id"),
        where="course_id IS NOT NULL",
        group_by=("user_id", "course_id"),
        columns=(
            ("first_at", "min(occurred_at)", "LEAST(t.first_at, excluded.first_at)"),
            ("last_at", "max(occurred_at)", "GREATEST(t.last_at, excluded.last_at)"),
            ("events", "count(*)", _sum("events")),
            ("time_ms", _TIME, _sum("time_ms")),
            (
                "lessons_completed",
                f"count(*) FILTER (WHERE {LESSON_COMPLETED})",
                _sum("lessons_completed"),
            ),
            ("tutor_questions", "count(*) FILTER (WHERE verb = 'asked')", _sum("tutor_questions")),
        ),
    ),
    Rollup(
        table="analytics_learner_lesson",
        key=("user_id", "lesson_id"),
        where="lesson_id IS NOT NULL",
        group_by=("user_id", "lesson_id"),
        columns=(
            ("course_id", "(array_agg(course_id))[1]", "t.course_id"),
            ("first_at", "min(occurred_at)", "LEAST(t.first_at, excluded.first_at)"),
            ("last_at", "max(occurred_at)", "GREATEST(t.last_at, excluded.last_at)"),
            (
                "completed_at",
                f"min(occurred_at) FILTER (WHERE {LESSON_COMPLETED})",
                "LEAST(t.completed_at, excluded.completed_at)",
            ),
            ("views", "count(*) FILTER (WHERE verb = 'viewed')", _sum("views")),
            ("time_ms", _TIME, _sum("time_ms")),
        ),
    ),
    Rollup(
        table="analytics_learner_daily",
        key=("user_id", "day"),
        where="true",
        group_by=("user_id", _DAY),
        columns=(
            ("events", "count(*)", _sum("events")),
            ("time_ms", _TIME, _sum("time_ms")),
        ),
    ),
)


async def apply_window(session: AsyncSession, window: Window) -> None:
    """Add the events of `window` to every rollup."""
    for rollup in ROLLUPS:
        await session.execute(text(rollup.upsert(WINDOW_CLAUSE)), window.params())


async def rebuild_rollups(session: AsyncSession, window_hi: int) -> None:
    """Rewrite every rollup from the events written by transactions below `window_hi`."""
    params = {"window_lo": "0", "window_hi": str(window_hi)}
    for rollup in ROLLUPS:
        await session.execute(text(f"DELETE FROM {rollup.table}"))  # noqa: S608 (constants)
        await session.execute(text(rollup.upsert(WINDOW_CLAUSE)), params)


async def recomputed_rows(
    session: AsyncSession, rollup: Rollup, user_ids: Sequence[uuid.UUID]
) -> list[tuple[Any, ...]]:
    """A rollup's rows of these users computed from scratch from the stored events,
    ordered by key (rollups keyed by course or lesson: from these users' events only)."""
    keys = ", ".join(str(i + 1) for i in range(len(rollup.key)))
    statement = f"{rollup.select('user_id = ANY(CAST(:user_ids AS uuid[]))')} ORDER BY {keys}"
    rows = await session.execute(text(statement), {"user_ids": list(user_ids)})
    return [tuple(row) for row in rows]


async def stored_rows(
    session: AsyncSession, rollup: Rollup, keys: Sequence[uuid.UUID]
) -> list[tuple[Any, ...]]:
    """A rollup's stored rows whose first key column is one of `keys`, ordered by key."""
    statement = (
        f"SELECT {', '.join(rollup.names)} FROM {rollup.table}"  # noqa: S608 (constants)
        f" WHERE {rollup.key[0]} = ANY(CAST(:keys AS uuid[])) ORDER BY {', '.join(rollup.key)}"
    )
    rows = await session.execute(text(statement), {"keys": list(keys)})
    return [tuple(row) for row in rows]
