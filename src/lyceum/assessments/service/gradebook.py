"""The gradebook: a course's learners x its published quizzes and assignments, with a
weighted total, as JSON for instructors, as CSV, and each learner's own row."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.assessments.repository.standings import StandingRepository
from lyceum.assessments.schemas import gradebook as schemas
from lyceum.models.assessments import Assignment, Quiz, ReviewPolicy
from lyceum.models.courses import Course
from lyceum.models.identity import User

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection);
# such a cell is prefixed with an apostrophe, which spreadsheets show as text.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")
CSV_PAGE = 1000
# Excel reads a CSV file without a byte order mark in the machine's ANSI code page
# (Windows-1252 in the West), which garbles every non-Latin-1 letter ("Nguyá»…n"); with
# the UTF-8 BOM it reads UTF-8. Other spreadsheets and csv readers accept the BOM.
UTF8_BOM = "\ufeff"


def csv_safe(value: str) -> str:
    return f"'{value}" if value.startswith(FORMULA_TRIGGERS) else value


def _columns(quizzes: list[Quiz], assignments: list[Assignment]) -> list[schemas.GradebookColumn]:
    return [
        schemas.GradebookColumn(
            id=quiz.id,
            kind="quiz",
            title=quiz.title,
            weight=quiz.weight,
            required=quiz.required,
            pass_percent=quiz.pass_percent,
        )
        for quiz in quizzes
    ] + [
        schemas.GradebookColumn(
            id=assignment.id,
            kind="assignment",
            title=assignment.title,
            weight=assignment.weight,
            required=assignment.required,
            pass_percent=assignment.pass_percent,
        )
        for assignment in assignments
    ]


def weighted_total(
    columns: Sequence[schemas.GradebookColumn], cells: Sequence[schemas.GradeCell]
) -> float:
    weights = sum(column.weight for column in columns)
    if not weights:
        return 0.0
    earned = sum(
        column.weight * (cell.percent or 0.0) for column, cell in zip(columns, cells, strict=True)
    )
    return round(earned / weights, 2)


class GradebookService:
    """Works on courses the caller teaches, or learns in for their own grades
    (`assessments.permissions`)."""

    def __init__(self, session: AsyncSession) -> None:
        self.repo = StandingRepository(session)

    async def _rows(
        self, course_id: uuid.UUID, learners: list[User], columns: list[schemas.GradebookColumn]
    ) -> list[schemas.GradebookRow]:
        ids = [user.id for user in learners]
        quiz_results = await self.repo.best_quiz_results(course_id, ids)
        essay_results = await self.repo.released_results(course_id, ids)
        rows = []
        for user in learners:
            cells = []
            for column in columns:
                results = quiz_results if column.kind == "quiz" else essay_results
                found = results.get((column.id, user.id))
                cells.append(
                    schemas.GradeCell(
                        assessment_id=column.id,
                        percent=found[0] if found else None,
                        passed=found[1] if found else None,
                    )
                )
            rows.append(
                schemas.GradebookRow(
                    user_id=user.id,
                    full_name=user.full_name,
                    email=user.email,
                    cells=cells,
                    weighted_total=weighted_total(columns, cells),
                )
            )
        return rows

    async def gradebook(self, course: Course, page: int, size: int) -> schemas.Gradebook:
        quizzes, assignments = await self.repo.published_assessments(course.id)
        columns = _columns(quizzes, assignments)
        learners, total = await self.repo.learners(course.id, (page - 1) * size, size)
        return schemas.Gradebook(
            columns=columns,
            items=await self._rows(course.id, learners, columns),
            total=total,
            page=page,
            size=size,
            pages=(total + size - 1) // size,
        )

    async def csv(self, course: Course) -> str:
        """Every learner, a page of them at a time: name, email, one percent per
        assessment (empty: not graded), weighted total. UTF-8 with a byte order mark,
        so Excel shows Vietnamese (or any) names as they are."""
        quizzes, assignments = await self.repo.published_assessments(course.id)
        columns = _columns(quizzes, assignments)
        out = io.StringIO()
        out.write(UTF8_BOM)
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(
            ["learner", "email"]
            + [
                csv_safe(f"{column.title} ({column.kind}, weight {column.weight:g})")
                for column in columns
            ]
            + ["weighted total"]
        )
        offset = 0
        while True:
            learners, total = await self.repo.learners(course.id, offset, CSV_PAGE)
            for row in await self._rows(course.id, learners, columns):
                writer.writerow(
                    [csv_safe(row.full_name), csv_safe(row.email)]
                    + ["" if cell.percent is None else f"{cell.percent:.2f}" for cell in row.cells]
                    + [f"{row.weighted_total:.2f}"]
                )
            offset += CSV_PAGE
            if offset >= total or not learners:
                break
        return out.getvalue()

    async def mine(self, course: Course, learner: User) -> schemas.MyGrades:
        quizzes, assignments = await self.repo.published_assessments(course.id)
        columns = _columns(quizzes, assignments)
        (row,) = await self._rows(course.id, [learner], columns)
        hidden = {quiz.id for quiz in quizzes if quiz.review_policy is ReviewPolicy.none}
        cells = [
            schemas.GradeCell(assessment_id=cell.assessment_id, percent=None, passed=cell.passed)
            if cell.assessment_id in hidden
            else cell
            for cell in row.cells
        ]
        return schemas.MyGrades(
            course_id=course.id,
            columns=columns,
            cells=cells,
            weighted_total=weighted_total(columns, row.cells),
        )
