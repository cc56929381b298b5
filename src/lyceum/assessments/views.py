"""Rows into response bodies. Each learner view is built field by field from a schema
class that has no key fields, so what a learner receives is decided here, in one
place, and by the quiz's review policy."""

from __future__ import annotations

import datetime as dt
from typing import Any

from lyceum.assessments.schemas.assignments import (
    AssignmentInfo,
    AssignmentOut,
    RubricCriterion,
    RubricCriterionOut,
    RubricLevel,
)
from lyceum.assessments.schemas.attempts import (
    AttemptResult,
    AttemptReview,
    AttemptSheet,
    AttemptSummary,
)
from lyceum.assessments.schemas.questions import Option, QuestionKey, QuestionOut
from lyceum.assessments.schemas.quizzes import QuizInfo, QuizOut, SectionOut
from lyceum.assessments.schemas.submissions import CriterionGrade, MySubmission, ReleasedGrade
from lyceum.models.assessments import (
    Assignment,
    AttemptItem,
    AttemptStatus,
    EssaySubmission,
    Question,
    QuestionKind,
    Quiz,
    QuizAttempt,
    QuizSection,
    ReviewPolicy,
    SubmissionStatus,
)


def question_out(question: Question) -> QuestionOut:
    return QuestionOut(
        id=question.id,
        course_id=question.course_id,
        kind=question.kind,
        prompt=question.prompt,
        points=question.points,
        tags=list(question.tags or []),
        difficulty=question.difficulty,
        explanation=question.explanation,
        options=[Option.model_validate(option) for option in question.options or []],
        key=QuestionKey.model_validate(question.answer_key or {}),
        created_at=question.created_at,
        updated_at=question.updated_at,
    )


def question_count(sections: list[QuizSection]) -> int:
    return sum(1 if section.question_id is not None else section.draw_count for section in sections)


def quiz_info(quiz: Quiz, sections: list[QuizSection]) -> QuizInfo:
    return QuizInfo(
        id=quiz.id,
        course_id=quiz.course_id,
        module_id=quiz.module_id,
        lesson_id=quiz.lesson_id,
        title=quiz.title,
        description=quiz.description,
        time_limit_seconds=quiz.time_limit_seconds,
        max_attempts=quiz.max_attempts,
        pass_percent=quiz.pass_percent,
        review_policy=quiz.review_policy,
        available_from=quiz.available_from,
        available_until=quiz.available_until,
        due_at=quiz.due_at,
        required=quiz.required,
        weight=quiz.weight,
        published=quiz.published,
        question_count=question_count(sections),
    )


def quiz_out(quiz: Quiz, sections: list[QuizSection]) -> QuizOut:
    return QuizOut(
        **quiz_info(quiz, sections).model_dump(),
        shuffle_questions=quiz.shuffle_questions,
        shuffle_options=quiz.shuffle_options,
        sections=[
            SectionOut(
                position=section.position,
                question_id=section.question_id,
                tag=section.tag,
                draw=section.draw_count,
            )
            for section in sections
        ],
        created_at=quiz.created_at,
        updated_at=quiz.updated_at,
    )


def _answer(item: AttemptItem) -> dict[str, Any] | None:
    return item.response or None


def _options(item: AttemptItem) -> list[dict[str, Any]]:
    options: list[dict[str, Any]] = item.snapshot.get("options", [])
    return options


def _question(item: AttemptItem) -> dict[str, Any]:
    """What every view of an item shows: the question as drawn and the saved answer."""
    return {
        "question_id": item.question_id,
        "position": item.position,
        "kind": item.kind,
        "prompt": item.snapshot["prompt"],
        "points": item.points,
        "options": _options(item),
        "answer": _answer(item),
    }


# The attempt views are built as one document and validated by their schema in one call
# (`model_validate`): the nested options, answers and items become their schema classes
# (`Option`: id and text, nothing else of the snapshot) inside pydantic's validator, where
# a constructor call per nested model cost a submission's response ~0.3 ms of CPU.


def attempt_sheet(attempt: QuizAttempt, items: list[AttemptItem], now: dt.datetime) -> AttemptSheet:
    """The learner's working view: no key, no explanation, no per-item grade."""
    seconds_left = None
    if attempt.deadline_at is not None and attempt.status is AttemptStatus.in_progress:
        seconds_left = max(0, int((attempt.deadline_at - now).total_seconds()))
    return AttemptSheet.model_validate(
        {
            "id": attempt.id,
            "quiz_id": attempt.quiz_id,
            "number": attempt.number,
            "status": attempt.status,
            "started_at": attempt.started_at,
            "deadline_at": attempt.deadline_at,
            "seconds_left": seconds_left,
            "submitted_at": attempt.submitted_at,
            "questions": [
                {
                    **_question(item),
                    "min_words": item.snapshot.get("min_words"),
                    "max_words": item.snapshot.get("max_words"),
                }
                for item in items
            ],
        }
    )


def correct_answer(item: AttemptItem) -> dict[str, Any] | None:
    """The item's correct answer (`CorrectAnswer`'s fields), from its key."""
    key: dict[str, Any] = item.snapshot.get("key", {})
    match item.kind:
        case QuestionKind.single_choice:
            return {"option_ids": [key["correct"]]}
        case QuestionKind.multiple_choice:
            return {"option_ids": list(key["correct"])}
        case QuestionKind.true_false:
            return {"value": bool(key["correct"])}
        case QuestionKind.short_answer:
            if key.get("match") == "numeric":
                return {"number": key.get("number"), "tolerance": key.get("tolerance")}
            return {"accepted": list(key.get("accepted") or [])}
        case QuestionKind.essay:
            return None


def _item_result(item: AttemptItem) -> dict[str, Any]:
    """An item whole (`ItemResult`'s fields): its grade, correct answer, explanation."""
    return {
        **_question(item),
        "awarded": item.awarded,
        "is_correct": item.is_correct,
        "comment": item.comment,
        "correct_answer": correct_answer(item),
        "explanation": item.snapshot.get("explanation") or None,
    }


def _learner_item(item: AttemptItem) -> dict[str, Any]:
    """An item as its learner sees it once the policy shows items: graded items whole;
    an item still waiting for an instructor (an essay) with the learner's answer only,
    its explanation kept back until it is graded."""
    if item.awarded is not None:
        return _item_result(item)
    return {
        **_question(item),
        "awarded": None,
        "is_correct": None,
        "comment": "",
        "correct_answer": None,
        "explanation": None,
    }


def answers_available_at(quiz: Quiz, attempt: QuizAttempt) -> dt.datetime | None:
    """When the quiz's review policy lets the learner see items and answers; None:
    never."""
    match quiz.review_policy:
        case ReviewPolicy.answers_after_submit:
            return attempt.submitted_at
        case ReviewPolicy.answers_after_due:
            return quiz.due_at or quiz.available_until or attempt.submitted_at
        case _:
            return None


def attempt_result(
    quiz: Quiz, attempt: QuizAttempt, items: list[AttemptItem], now: dt.datetime
) -> AttemptResult:
    """A submitted attempt, shown as the review policy allows. The score comes once
    every item is graded; the items (when the policy shows them) as soon as the attempt
    is submitted: the auto-graded ones with their grade and answer, while essay items
    wait for an instructor (`awarded` null)."""
    graded = attempt.status is AttemptStatus.graded
    submitted = attempt.status is not AttemptStatus.in_progress
    show_score = graded and quiz.review_policy is not ReviewPolicy.none
    available = answers_available_at(quiz, attempt)
    show_items = submitted and available is not None and now >= available
    return AttemptResult.model_validate(
        {
            "id": attempt.id,
            "quiz_id": attempt.quiz_id,
            "number": attempt.number,
            "status": attempt.status,
            "review_policy": quiz.review_policy,
            "started_at": attempt.started_at,
            "submitted_at": attempt.submitted_at,
            "auto_submitted": attempt.auto_submitted,
            "late": attempt.late,
            "score": attempt.score if show_score else None,
            "max_score": attempt.max_score if show_score else None,
            "percent": attempt.percent if show_score else None,
            "passed": attempt.passed if show_score else None,
            "items": [_learner_item(item) for item in (items if show_items else [])],
            "answers_available_at": (
                available if available is not None and now < available else None
            ),
        }
    )


def attempt_summary(attempt: QuizAttempt, *, hide_score: bool = False) -> AttemptSummary:
    return AttemptSummary(
        id=attempt.id,
        quiz_id=attempt.quiz_id,
        user_id=attempt.user_id,
        number=attempt.number,
        status=attempt.status,
        started_at=attempt.started_at,
        deadline_at=attempt.deadline_at,
        submitted_at=attempt.submitted_at,
        auto_submitted=attempt.auto_submitted,
        late=attempt.late,
        score=None if hide_score else attempt.score,
        max_score=attempt.max_score,
        percent=None if hide_score else attempt.percent,
        passed=None if hide_score else attempt.passed,
    )


def attempt_review(attempt: QuizAttempt, items: list[AttemptItem]) -> AttemptReview:
    return AttemptReview.model_validate(
        {**attempt_summary(attempt).model_dump(), "items": [_item_result(item) for item in items]}
    )


# Assignments ----------------------------------------------------------------------------


def _assignment_fields(assignment: Assignment) -> dict[str, Any]:
    return {
        "id": assignment.id,
        "course_id": assignment.course_id,
        "module_id": assignment.module_id,
        "lesson_id": assignment.lesson_id,
        "title": assignment.title,
        "prompt": assignment.prompt,
        "points": assignment.points,
        "min_words": assignment.min_words,
        "max_words": assignment.max_words,
        "due_at": assignment.due_at,
        "late_policy": assignment.late_policy,
        "late_penalty_percent_per_day": assignment.late_penalty_percent_per_day,
        "required": assignment.required,
        "weight": assignment.weight,
        "pass_percent": assignment.pass_percent,
        "published": assignment.published,
    }


def assignment_info(assignment: Assignment) -> AssignmentInfo:
    return AssignmentInfo(
        **_assignment_fields(assignment),
        rubric=[
            RubricCriterion(
                id=criterion["id"],
                title=criterion["title"],
                description=criterion.get("description", ""),
                levels=[RubricLevel.model_validate(level) for level in criterion["levels"]],
            )
            for criterion in assignment.rubric["criteria"]
        ],
    )


def assignment_out(assignment: Assignment) -> AssignmentOut:
    return AssignmentOut(
        **_assignment_fields(assignment),
        rubric=[
            RubricCriterionOut.model_validate(criterion)
            for criterion in assignment.rubric["criteria"]
        ],
        reference_answer=assignment.reference_answer,
        auto_release=assignment.auto_release,
        created_at=assignment.created_at,
        updated_at=assignment.updated_at,
    )


def graded_criteria(assignment: Assignment, submission: EssaySubmission) -> list[CriterionGrade]:
    """The final points per criterion, with the scorer's level, justification and quote
    where the final grade kept them."""
    proposed = {
        item["criterion_id"]: item for item in (submission.proposal or {}).get("criteria", [])
    }
    final = {item["criterion_id"]: item for item in (submission.final or {}).get("criteria", [])}
    grades = []
    for criterion in assignment.rubric["criteria"]:
        scored = proposed.get(criterion["id"], {})
        settled = final.get(criterion["id"], {})
        grades.append(
            CriterionGrade(
                criterion_id=criterion["id"],
                title=criterion["title"],
                points=float(settled.get("points", 0.0)),
                max_points=float(criterion["levels"][-1]["points"]),
                level=scored.get("level"),
                justification=scored.get("justification", ""),
                quote=scored.get("quote", ""),
                comment=settled.get("comment", ""),
            )
        )
    return grades


def my_submission(assignment: Assignment, submission: EssaySubmission) -> MySubmission:
    grade = None
    if submission.status is SubmissionStatus.released and submission.released_at is not None:
        proposal = submission.proposal or {}
        grade = ReleasedGrade(
            points=submission.points or 0.0,
            max_points=assignment.points,
            percent=submission.percent or 0.0,
            passed=bool(submission.passed),
            penalty_percent=submission.penalty_percent,
            criteria=graded_criteria(assignment, submission),
            overall_feedback=proposal.get("overall_feedback", ""),
            suggestions=list(proposal.get("suggestions", [])),
            comment=(submission.final or {}).get("comment", ""),
            released_at=submission.released_at,
        )
    return MySubmission(
        id=submission.id,
        assignment_id=submission.assignment_id,
        status=submission.status,
        text=submission.text,
        word_count=submission.word_count,
        source=submission.source,
        file_name=submission.file_name,
        submitted_at=submission.submitted_at,
        late_days=submission.late_days,
        penalty_percent=submission.penalty_percent,
        grade=grade,
    )
