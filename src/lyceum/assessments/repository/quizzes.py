"""Every query of quizzes, their sections, and learners' attempts at them."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any, cast

import orjson
from sqlalchemy import (
    Table,
    and_,
    bindparam,
    column,
    delete,
    exists,
    func,
    insert,
    inspect,
    literal,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.identity import IdentityMap

from lyceum.assessments.repository.questions import QuestionRepository
from lyceum.kit.db import (
    COURSE_TITLES,
    DriverEntity,
    driver_execute,
    driver_sql,
    driver_statement,
    transaction_memo,
)
from lyceum.kit.events import Alongside
from lyceum.models.assessments import (
    AttemptItem,
    AttemptStatus,
    Question,
    Quiz,
    QuizAttempt,
    QuizSection,
)
from lyceum.models.courses import Course

_GRADED_ITEM_COLUMNS = ("response", "answered_at", "awarded", "is_correct", "comment")
_GRADED_ATTEMPT_COLUMNS = (
    "status",
    "submitted_at",
    "auto_submitted",
    "late",
    "graded_at",
    "score",
    "percent",
    "passed",
)


def _items_document(items: Sequence[AttemptItem], columns: Sequence[str]) -> str:
    """Attempt items as one JSON document, a row per item with `columns`: what the
    set-based statements below read back with `_items_recordset`."""
    return orjson.dumps(
        [{name: getattr(item, name) for name in columns} for item in items]
    ).decode()


def _items_recordset(param: str, columns: Sequence[str], name: str) -> Any:
    """The rows of an `_items_document` bound as `param`, typed as the item table's
    `columns` (`jsonb_to_recordset` turns a JSON null into SQL NULL)."""
    table = cast(Table, AttemptItem.__table__).c
    return (
        func.jsonb_to_recordset(bindparam(param, type_=JSONB))
        .table_valued(*(column(col, table[col].type) for col in columns))
        .render_derived(name=name, with_types=True)
    )


def _save_graded_statement() -> Any:
    """`save_graded`'s statement, built once. `jsonb_to_recordset` turns a JSON null
    into SQL NULL, so a missing answer stays NULL."""
    # On the tables, not the mapped classes: a Core statement, which the ORM does not
    # treat as a bulk update of the objects. No parameter is named like a column: the
    # parameters of an UPDATE named after its columns would become SET clauses.
    item_table = cast(Table, AttemptItem.__table__)
    attempt_table = cast(Table, QuizAttempt.__table__)
    graded = _items_recordset("graded_items", ("position", *_GRADED_ITEM_COLUMNS), "graded")
    items = (
        update(item_table)
        .where(
            item_table.c.attempt_id == bindparam("graded_attempt"),
            item_table.c.position == graded.c.position,
        )
        .values({name: graded.c[name] for name in _GRADED_ITEM_COLUMNS})
        .cte("graded_items")
    )
    return (
        update(attempt_table)
        .where(attempt_table.c.id == bindparam("graded_attempt"))
        .values({name: bindparam(f"graded_{name}") for name in _GRADED_ATTEMPT_COLUMNS})
        .add_cte(items)
    )


_SAVE_GRADED = _save_graded_statement()
# As psycopg runs it: no literal values, so compiled once.
_SAVE_GRADED_SQL = driver_sql(_SAVE_GRADED)

# What saving answers writes of an item.
_ANSWER_COLUMNS = ("response", "answered_at")


def _save_answers_statement() -> Any:
    """`save_answers`' statement, built once: the answered items' UPDATE from one JSON
    document (a JSON null, an answer cleared, becomes SQL NULL)."""
    item_table = cast(Table, AttemptItem.__table__)
    answered = _items_recordset("answered_items", ("position", *_ANSWER_COLUMNS), "answered")
    return (
        update(item_table)
        .where(
            item_table.c.attempt_id == bindparam("answered_attempt"),
            item_table.c.position == answered.c.position,
        )
        .values({name: answered.c[name] for name in _ANSWER_COLUMNS})
    )


_SAVE_ANSWERS_SQL = driver_sql(_save_answers_statement())


# A new attempt's columns (the rest start NULL) and its items' columns, as
# `insert_attempt` writes them.
_NEW_ATTEMPT_COLUMNS = (
    "id",
    "quiz_id",
    "course_id",
    "user_id",
    "number",
    "status",
    "started_at",
    "deadline_at",
    "auto_submitted",
    "late",
    "max_score",
)
_NEW_ITEM_COLUMNS = ("position", "question_id", "kind", "points", "snapshot")


def _insert_attempt_statement() -> Any:
    """`insert_attempt`'s statement, built once: the attempt's INSERT, which does
    nothing when a unique constraint refuses it (another attempt took its number, or is
    in progress already), and in a CTE of it the INSERT of its items from one JSON
    document, made from the attempt's RETURNING (so no attempt, no items). It answers
    how many attempts it wrote: 1 or 0."""
    attempt_table = cast(Table, QuizAttempt.__table__)
    item_table = cast(Table, AttemptItem.__table__)
    attempt = (
        pg_insert(attempt_table)
        .values(
            {
                name: bindparam(f"new_{name}", type_=attempt_table.c[name].type)
                for name in _NEW_ATTEMPT_COLUMNS
            }
        )
        .on_conflict_do_nothing()
        .returning(attempt_table.c.id)
        .cte("new_attempt")
    )
    drawn = _items_recordset("new_items", _NEW_ITEM_COLUMNS, "drawn")
    items = (
        insert(item_table)
        .from_select(
            ["attempt_id", *_NEW_ITEM_COLUMNS, "comment"],
            select(
                attempt.c.id,
                *(drawn.c[name] for name in _NEW_ITEM_COLUMNS),
                literal("", item_table.c.comment.type),
            ).select_from(attempt.join(drawn, true())),
        )
        .cte("new_items")
    )
    return select(func.count()).select_from(attempt).add_cte(items)


_INSERT_ATTEMPT = driver_statement(_insert_attempt_statement())


def _mark_saved(entity: object, columns: Sequence[str], identity_map: IdentityMap) -> None:
    """Tell the session that `columns` of `entity` are written. When nothing else of it
    is waiting to be written, it is marked clean as a flush would (so no later flush
    walks it); otherwise only those columns stop counting as changed. A row not yet
    inserted is left alone: the statement's autoflush inserts it first."""
    state = inspect(entity)
    if not state.persistent:
        return
    if state.committed_state.keys() <= set(columns):
        state._commit_all(state.dict, identity_map)
    else:
        for name in columns:
            set_committed_value(entity, name, state.dict.get(name))


# The statements every request on an attempt sends, built once: building a select costs
# more CPU than SQLAlchemy's cached execution of it.
_ATTEMPT_WITH_QUIZ = (
    select(QuizAttempt, Quiz)
    .join(Quiz, Quiz.id == QuizAttempt.quiz_id)
    .where(QuizAttempt.id == bindparam("attempt"))
)
_ATTEMPT_WITH_QUIZ_LOCKED = _ATTEMPT_WITH_QUIZ.with_for_update(of=QuizAttempt)
# An autosave's and a submission's read: on the driver connection, the rows built
# without the ORM's loading (`DriverEntity`), which cost more CPU than the statement
# (an attempt, its quiz and ten items: ~0.9 ms of a submission's ~6).
_HELD_ATTEMPT = DriverEntity.of(QuizAttempt)
_HELD_QUIZ = DriverEntity.of(Quiz)
_HELD_ITEM = DriverEntity.of(AttemptItem)
_QUIZ_AT = len(_HELD_ATTEMPT.keys)
_ITEM_AT = _QUIZ_AT + len(_HELD_QUIZ.keys)
_TITLE_AT = _ITEM_AT + len(_HELD_ITEM.keys)
_ATTEMPT_FOR_ANSWERS = driver_sql(
    select(*_HELD_ATTEMPT.columns, *_HELD_QUIZ.columns, *_HELD_ITEM.columns, Course.title)
    .join(Quiz, Quiz.id == QuizAttempt.quiz_id)
    .join(Course, Course.id == QuizAttempt.course_id)
    .join(AttemptItem, AttemptItem.attempt_id == QuizAttempt.id)
    .where(QuizAttempt.id == bindparam("attempt"))
    .order_by(AttemptItem.position)
    .with_for_update(of=[QuizAttempt, AttemptItem])
)
_ATTEMPT_ITEMS = (
    select(AttemptItem)
    .where(AttemptItem.attempt_id == bindparam("attempt"))
    .order_by(AttemptItem.position)
)
# What a start reads before it draws (a learner's attempt in progress, the number of
# attempts used) and the quiz's sections with their fixed questions of the course.
_OPEN_ATTEMPT = (
    select(QuizAttempt)
    .where(
        QuizAttempt.quiz_id == bindparam("quiz"),
        QuizAttempt.user_id == bindparam("user"),
        QuizAttempt.status == AttemptStatus.in_progress,
    )
    .with_for_update()
)
_ATTEMPTS_USED = select(func.coalesce(func.max(QuizAttempt.number), 0)).where(
    QuizAttempt.quiz_id == bindparam("quiz"), QuizAttempt.user_id == bindparam("user")
)
_SECTIONS_TO_DRAW = (
    select(QuizSection, Question)
    .outerjoin(
        Question,
        and_(Question.id == QuizSection.question_id, Question.course_id == bindparam("course")),
    )
    .where(QuizSection.quiz_id == bindparam("quiz"))
    .order_by(QuizSection.position)
)


class QuizRepository(QuestionRepository):
    """Quizzes draw from the question bank, so this reads the bank too."""

    async def quiz(self, quiz_id: uuid.UUID, *, for_update: bool = False) -> Quiz | None:
        return await self.session.get(Quiz, quiz_id, with_for_update=for_update)

    async def quizzes(
        self, course_id: uuid.UUID, *, published_only: bool, offset: int, limit: int
    ) -> tuple[list[Quiz], int]:
        return await self._course_page(Quiz, course_id, published_only, offset, limit)

    async def sections(self, quiz_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[QuizSection]]:
        found: dict[uuid.UUID, list[QuizSection]] = {quiz_id: [] for quiz_id in quiz_ids}
        if not quiz_ids:
            return found
        rows = await self.session.execute(
            select(QuizSection)
            .where(QuizSection.quiz_id.in_(set(quiz_ids)))
            .order_by(QuizSection.quiz_id, QuizSection.position)
        )
        for section in rows.scalars():
            found[section.quiz_id].append(section)
        return found

    async def sections_to_draw(self, quiz: Quiz) -> list[tuple[QuizSection, Question | None]]:
        """A quiz's sections in order, each with its fixed question when it names one
        that is still in the quiz's course (None for a section drawn by tag, or whose
        question is gone): what a start draws from, in one round trip."""
        rows = await self.session.execute(
            _SECTIONS_TO_DRAW, {"quiz": quiz.id, "course": quiz.course_id}
        )
        return [(row[0], row[1]) for row in rows]

    async def replace_sections(self, quiz_id: uuid.UUID, sections: list[QuizSection]) -> None:
        await self.session.execute(delete(QuizSection).where(QuizSection.quiz_id == quiz_id))
        await self.add_all(sections)

    async def quiz_has_attempts(self, quiz_id: uuid.UUID) -> bool:
        query = select(exists().where(QuizAttempt.quiz_id == quiz_id))
        return bool((await self.session.execute(query)).scalar_one())

    # Attempts -------------------------------------------------------------------------

    async def attempt(
        self, attempt_id: uuid.UUID, *, for_update: bool = False
    ) -> QuizAttempt | None:
        return await self.session.get(QuizAttempt, attempt_id, with_for_update=for_update)

    async def attempt_with_quiz(
        self, attempt_id: uuid.UUID, *, for_update: bool = False
    ) -> tuple[QuizAttempt, Quiz] | None:
        """The attempt (locked if asked) and its quiz, in one round trip."""
        query = _ATTEMPT_WITH_QUIZ_LOCKED if for_update else _ATTEMPT_WITH_QUIZ
        row = (await self.session.execute(query, {"attempt": attempt_id})).first()
        return (row[0], row[1]) if row is not None else None

    async def attempt_for_answers(
        self, attempt_id: uuid.UUID
    ) -> tuple[QuizAttempt, Quiz, list[AttemptItem]] | None:
        """The attempt, its quiz and its items in one round trip, the rows of the
        attempt and of its items locked (the attempt's first, as everywhere else).
        Locking the items is what makes reading them in the same statement safe: a
        statement that waited for the attempt's lock keeps the snapshot it started
        with, but PostgreSQL reads the newest version of every row it locks, so items
        that the request holding the lock changed are read as it left them.

        The objects are transient (`kit.db.DriverEntity`): the callers write what they
        change with their own statements (`save_answers`, `save_graded`)."""
        rows = (
            await driver_execute(self.session, _ATTEMPT_FOR_ANSWERS, {"attempt": attempt_id})
        ).rows
        if not rows:
            return None
        first = rows[0]
        attempt = _HELD_ATTEMPT.build(first)
        # The course's title comes along for the notification a graded attempt sends
        # (`NotificationRepository.course_title`): one statement fewer per submission.
        transaction_memo(self.session, COURSE_TITLES)[attempt.course_id] = first[_TITLE_AT]
        items = [_HELD_ITEM.build(row, _ITEM_AT) for row in rows]
        return attempt, _HELD_QUIZ.build(first, _QUIZ_AT), items

    async def insert_attempt(self, attempt: QuizAttempt, items: Sequence[AttemptItem]) -> bool:
        """Write a new attempt and its items in one statement: False, and nothing
        written, when a unique constraint refuses the attempt (a second start racing the
        first for its number, or an attempt already in progress). The objects are not
        added to the session: they stay transient, as the response reads them; reading
        the attempt again (`attempt_for_answers`) loads it from the row. Against the
        unit of work's flush of 1 + N objects (a savepoint, the attempt's INSERT, an
        INSERT per item, the savepoint's release), one round trip."""
        document = _items_document(items, _NEW_ITEM_COLUMNS)
        params: dict[str, Any] = {
            f"new_{name}": getattr(attempt, name) for name in _NEW_ATTEMPT_COLUMNS
        }
        params["new_status"] = attempt.status.value
        params["new_items"] = document
        found = await driver_execute(
            self.session, _INSERT_ATTEMPT.sql, {**_INSERT_ATTEMPT.constants, **params}
        )
        return bool(found.rows[0][0])

    async def open_attempt(self, quiz_id: uuid.UUID, user_id: uuid.UUID) -> QuizAttempt | None:
        rows = await self.session.execute(_OPEN_ATTEMPT, {"quiz": quiz_id, "user": user_id})
        return rows.scalar_one_or_none()

    async def attempts_used(self, quiz_id: uuid.UUID, user_id: uuid.UUID) -> int:
        rows = await self.session.execute(_ATTEMPTS_USED, {"quiz": quiz_id, "user": user_id})
        return int(rows.scalar_one())

    async def items(self, attempt_id: uuid.UUID) -> list[AttemptItem]:
        rows = await self.session.execute(_ATTEMPT_ITEMS, {"attempt": attempt_id})
        return list(rows.scalars())

    async def save_graded(self, attempt: QuizAttempt, items: Sequence[AttemptItem]) -> None:
        """Write an attempt's items (answers, grades, comments) and its totals in one
        statement (`graded_write`), sent on its own: an attempt left waiting for an
        instructor, which has no event to carry it."""
        write = self.graded_write(attempt, items)
        await driver_execute(self.session, _SAVE_GRADED_SQL, dict(write.params))

    def graded_write(self, attempt: QuizAttempt, items: Sequence[AttemptItem]) -> Alongside:
        """The statement that writes an attempt's items (answers, grades, comments) and
        its totals, with its parameters: a set-based UPDATE of the items from one JSON
        document (a row per item, written by orjson), in a CTE of the attempt's UPDATE,
        where the unit of work sent an UPDATE per item and another for the attempt. A
        graded attempt's goes in its `quiz.attempt.graded` event's INSERT
        (`kit.events.Alongside`); `save_graded` sends it alone. Either way it runs on
        the driver connection of the session's transaction, as a prepared statement,
        and the objects are marked as saved now, so the session does not write them
        again."""
        document = _items_document(items, ("position", *_GRADED_ITEM_COLUMNS))
        params: dict[str, Any] = {
            f"graded_{name}": getattr(attempt, name) for name in _GRADED_ATTEMPT_COLUMNS
        }
        params["graded_status"] = attempt.status.value
        params["graded_attempt"] = attempt.id
        params["graded_items"] = document
        # Marked as saved first, so that the flush the statement's execution starts
        # with (which sends anything else pending, as an autoflush would before a
        # statement) does not write them.
        identity_map = self.session.sync_session.identity_map
        for item in items:
            _mark_saved(item, _GRADED_ITEM_COLUMNS, identity_map)
        _mark_saved(attempt, _GRADED_ATTEMPT_COLUMNS, identity_map)
        return Alongside(_SAVE_GRADED, params)

    async def save_answers(self, attempt_id: uuid.UUID, items: Sequence[AttemptItem]) -> None:
        """Write the answers of `items` (an autosave of some of an attempt's answers)
        in one statement, where the unit of work sent an UPDATE per item: learners save
        as they go, so this is a quiz's most frequent write. The items are marked as
        saved, as `save_graded` marks them."""
        if not items:
            return
        document = _items_document(items, ("position", *_ANSWER_COLUMNS))
        identity_map = self.session.sync_session.identity_map
        for item in items:
            _mark_saved(item, _ANSWER_COLUMNS, identity_map)
        await driver_execute(
            self.session,
            _SAVE_ANSWERS_SQL,
            {"answered_attempt": attempt_id, "answered_items": document},
        )

    async def attempts(
        self,
        quiz_id: uuid.UUID,
        *,
        user_id: uuid.UUID | None,
        offset: int,
        limit: int,
    ) -> tuple[list[QuizAttempt], int]:
        conditions: list[Any] = [QuizAttempt.quiz_id == quiz_id]
        if user_id is not None:
            conditions.append(QuizAttempt.user_id == user_id)
        return await self._page(
            QuizAttempt,
            conditions,
            (QuizAttempt.started_at.desc(), QuizAttempt.id),
            offset,
            limit,
        )

    async def attempts_of_learner(self, user_id: uuid.UUID) -> list[tuple[QuizAttempt, Quiz]]:
        """Every attempt of one learner, with its quiz, oldest first (their data export)."""
        rows = await self.session.execute(
            select(QuizAttempt, Quiz)
            .join(Quiz, Quiz.id == QuizAttempt.quiz_id)
            .where(QuizAttempt.user_id == user_id)
            .order_by(QuizAttempt.started_at, QuizAttempt.id)
        )
        return [(attempt, quiz) for attempt, quiz in rows]

    async def expired_attempt_ids(self, before: dt.datetime, limit: int) -> list[uuid.UUID]:
        """Attempts in progress whose deadline (with its grace) has passed."""
        rows = await self.session.execute(
            select(QuizAttempt.id)
            .where(
                QuizAttempt.status == AttemptStatus.in_progress,
                QuizAttempt.deadline_at < before,
            )
            .order_by(QuizAttempt.deadline_at)
            .limit(limit)
        )
        return list(rows.scalars())
