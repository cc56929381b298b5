"""Who may do what with assessments: `Annotated` dependencies that routes put in their
signature, resolved from the path's ids before the endpoint body runs. They build on
the course rules of `courses.permissions`; the services they feed do no access check.

A question, quiz, assignment, attempt or submission that does not exist is 404; then
the course decides, as `courses.permissions` says (a draft course is 404 to those who
do not teach it, a course the caller may not change or does not belong to is 403):

- `EditableQuestion`, `EditableQuiz`, `EditableAssignment`: of a course the caller may
  change (its instructors, admins).
- `ReadableQuiz`, `ReadableAssignment`: published ones for the course's members,
  drafts only for those who may change it (404 for the others).
- `LearnerQuiz`, `LearnerAssignment`, `LearnerCourse`: readable, and the caller is one
  of the course's learners (403 `not-a-learner` for its instructors and admins).
- `OwnAttempt`: the learner's own attempt and its items, locked for answering; 404 for
  everyone else.
  `ReadableAttempt`: the same, and admins may read anyone's.
- `ReviewableAttempt`, `ReviewableSubmission` (and their `Locked...` forms, locked for
  grading): in a course the caller may change.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from lyceum.assessments.repository.essays import EssayRepository
from lyceum.assessments.repository.questions import QuestionRepository
from lyceum.assessments.repository.quizzes import QuizRepository
from lyceum.assessments.service.assignments import AssignmentService
from lyceum.assessments.service.attempts import AttemptOfQuiz, AttemptService
from lyceum.assessments.service.gradebook import GradebookService
from lyceum.assessments.service.questions import QuestionService
from lyceum.assessments.service.quizzes import QuizService
from lyceum.assessments.service.review import ReviewService, SubmissionOfAssignment
from lyceum.assessments.service.submissions import SubmissionService
from lyceum.courses.permissions import Courses, MemberCourse
from lyceum.identity.permissions import CurrentUser, RuntimeDep
from lyceum.kit.clock import ClockDep
from lyceum.kit.db import Session
from lyceum.kit.errors import Forbidden, NotFound
from lyceum.models.assessments import Assignment, Question, Quiz
from lyceum.models.courses import Course
from lyceum.models.identity import Role

# Services -------------------------------------------------------------------------------


async def question_service(session: Session) -> QuestionService:
    return QuestionService(session)


async def quiz_service(session: Session) -> QuizService:
    return QuizService(session)


async def attempt_service(session: Session, runtime: RuntimeDep, clock: ClockDep) -> AttemptService:
    return AttemptService(
        session,
        grace_seconds=runtime.settings.assessment_deadline_grace_seconds,
        now=clock.now(),
    )


async def assignment_service(session: Session) -> AssignmentService:
    return AssignmentService(session)


async def submission_service(
    session: Session, runtime: RuntimeDep, clock: ClockDep
) -> SubmissionService:
    return SubmissionService(session, settings=runtime.settings, now=clock.now())


async def review_service(session: Session, clock: ClockDep) -> ReviewService:
    return ReviewService(session, now=clock.now())


async def gradebook_service(session: Session) -> GradebookService:
    return GradebookService(session)


Questions = Annotated[QuestionService, Depends(question_service)]
Quizzes = Annotated[QuizService, Depends(quiz_service)]
Attempts = Annotated[AttemptService, Depends(attempt_service)]
Assignments = Annotated[AssignmentService, Depends(assignment_service)]
Submissions = Annotated[SubmissionService, Depends(submission_service)]
Reviews = Annotated[ReviewService, Depends(review_service)]
Gradebooks = Annotated[GradebookService, Depends(gradebook_service)]


# Courses --------------------------------------------------------------------------------


def _learner(can_edit: bool, message: str) -> None:
    if can_edit:
        raise Forbidden(message, slug="not-a-learner")


async def learner_course(membership: MemberCourse) -> Course:
    _learner(
        membership.can_edit,
        "Grades are for the course's learners; instructors read the gradebook.",
    )
    return membership.course


LearnerCourse = Annotated[Course, Depends(learner_course)]


# Question bank --------------------------------------------------------------------------


async def editable_question(
    question_id: uuid.UUID, caller: CurrentUser, session: Session, courses: Courses
) -> Question:
    question = await QuestionRepository(session).question(question_id)
    if question is None:
        raise NotFound("No such question.")
    await courses.editable_course(question.course_id, caller)
    return question


EditableQuestion = Annotated[Question, Depends(editable_question)]


# Quizzes and assignments ----------------------------------------------------------------


async def _readable(
    courses: Courses, caller: CurrentUser, item: Quiz | Assignment | None, noun: str
) -> bool:
    """Whether the caller may edit a quiz or assignment they may see: published ones
    for the course's learners, drafts only for its instructors and admins; 404 for
    anyone else."""
    if item is None:
        raise NotFound(f"No such {noun}.")
    _, can_edit = await courses.member_access(item.course_id, caller)
    if not item.published and not can_edit:
        raise NotFound(f"No such {noun}.")
    return can_edit


async def readable_quiz(
    quiz_id: uuid.UUID, caller: CurrentUser, session: Session, courses: Courses
) -> Quiz:
    quiz = await QuizRepository(session).quiz(quiz_id)
    await _readable(courses, caller, quiz, "quiz")
    assert quiz is not None
    return quiz


async def learner_quiz(
    quiz_id: uuid.UUID, caller: CurrentUser, session: Session, courses: Courses
) -> Quiz:
    quiz = await QuizRepository(session).quiz(quiz_id)
    can_edit = await _readable(courses, caller, quiz, "quiz")
    _learner(can_edit, "Only the course's enrolled learners take its quizzes.")
    assert quiz is not None
    return quiz


async def editable_quiz(
    quiz_id: uuid.UUID, caller: CurrentUser, session: Session, courses: Courses
) -> Quiz:
    quiz = await QuizRepository(session).quiz(quiz_id)
    if quiz is None:
        raise NotFound("No such quiz.")
    await courses.editable_course(quiz.course_id, caller)
    return quiz


ReadableQuiz = Annotated[Quiz, Depends(readable_quiz)]
LearnerQuiz = Annotated[Quiz, Depends(learner_quiz)]
EditableQuiz = Annotated[Quiz, Depends(editable_quiz)]


async def readable_assignment(
    assignment_id: uuid.UUID, caller: CurrentUser, session: Session, courses: Courses
) -> Assignment:
    assignment = await EssayRepository(session).assignment(assignment_id)
    await _readable(courses, caller, assignment, "assignment")
    assert assignment is not None
    return assignment


async def learner_assignment(
    assignment_id: uuid.UUID, caller: CurrentUser, session: Session, courses: Courses
) -> Assignment:
    assignment = await EssayRepository(session).assignment(assignment_id)
    can_edit = await _readable(courses, caller, assignment, "assignment")
    _learner(can_edit, "Only the course's enrolled learners submit essays.")
    assert assignment is not None
    return assignment


async def editable_assignment(
    assignment_id: uuid.UUID, caller: CurrentUser, session: Session, courses: Courses
) -> Assignment:
    assignment = await EssayRepository(session).assignment(assignment_id)
    if assignment is None:
        raise NotFound("No such assignment.")
    await courses.editable_course(assignment.course_id, caller)
    return assignment


ReadableAssignment = Annotated[Assignment, Depends(readable_assignment)]
LearnerAssignment = Annotated[Assignment, Depends(learner_assignment)]
EditableAssignment = Annotated[Assignment, Depends(editable_assignment)]


# Attempts -------------------------------------------------------------------------------


async def _own_attempt(
    attempt_id: uuid.UUID, caller: CurrentUser, session: Session, *, admin_reads: bool
) -> AttemptOfQuiz:
    """The learner's own attempt, locked (reading one past its deadline grades it);
    to everyone else it does not exist."""
    found = await QuizRepository(session).attempt_with_quiz(attempt_id, for_update=True)
    if found is None:
        raise NotFound("No such attempt.")
    attempt, quiz = found
    if attempt.user_id != caller.id and not (admin_reads and caller.role is Role.admin):
        raise NotFound("No such attempt.")
    return AttemptOfQuiz(quiz, attempt)


async def readable_attempt(
    attempt_id: uuid.UUID, caller: CurrentUser, session: Session
) -> AttemptOfQuiz:
    return await _own_attempt(attempt_id, caller, session, admin_reads=True)


async def own_attempt(
    attempt_id: uuid.UUID, caller: CurrentUser, session: Session
) -> AttemptOfQuiz:
    """The learner's own attempt, to answer or submit: the attempt and its items come
    locked, in one round trip (`QuizRepository.attempt_for_answers`)."""
    found = await QuizRepository(session).attempt_for_answers(attempt_id)
    if found is None or found[0].user_id != caller.id:
        raise NotFound("No such attempt.")
    attempt, quiz, items = found
    return AttemptOfQuiz(quiz, attempt, items)


async def _reviewable_attempt(
    attempt_id: uuid.UUID,
    caller: CurrentUser,
    session: Session,
    courses: Courses,
    *,
    for_update: bool,
) -> AttemptOfQuiz:
    found = await QuizRepository(session).attempt_with_quiz(attempt_id, for_update=for_update)
    if found is None:
        raise NotFound("No such attempt.")
    attempt, quiz = found
    await courses.editable_course(attempt.course_id, caller)
    return AttemptOfQuiz(quiz, attempt)


async def reviewable_attempt(
    attempt_id: uuid.UUID, caller: CurrentUser, session: Session, courses: Courses
) -> AttemptOfQuiz:
    return await _reviewable_attempt(attempt_id, caller, session, courses, for_update=False)


async def locked_reviewable_attempt(
    attempt_id: uuid.UUID, caller: CurrentUser, session: Session, courses: Courses
) -> AttemptOfQuiz:
    return await _reviewable_attempt(attempt_id, caller, session, courses, for_update=True)


ReadableAttempt = Annotated[AttemptOfQuiz, Depends(readable_attempt)]
OwnAttempt = Annotated[AttemptOfQuiz, Depends(own_attempt)]
ReviewableAttempt = Annotated[AttemptOfQuiz, Depends(reviewable_attempt)]
LockedReviewableAttempt = Annotated[AttemptOfQuiz, Depends(locked_reviewable_attempt)]


# Submissions ----------------------------------------------------------------------------


async def _reviewable_submission(
    submission_id: uuid.UUID,
    caller: CurrentUser,
    session: Session,
    courses: Courses,
    *,
    for_update: bool,
) -> SubmissionOfAssignment:
    repo = EssayRepository(session)
    submission = await repo.submission(submission_id, for_update=for_update)
    if submission is None:
        raise NotFound("No such submission.")
    await courses.editable_course(submission.course_id, caller)
    assignment = await repo.assignment(submission.assignment_id)
    assert assignment is not None  # submissions are deleted with their assignment
    return SubmissionOfAssignment(assignment, submission)


async def reviewable_submission(
    submission_id: uuid.UUID, caller: CurrentUser, session: Session, courses: Courses
) -> SubmissionOfAssignment:
    return await _reviewable_submission(submission_id, caller, session, courses, for_update=False)


async def locked_reviewable_submission(
    submission_id: uuid.UUID, caller: CurrentUser, session: Session, courses: Courses
) -> SubmissionOfAssignment:
    return await _reviewable_submission(submission_id, caller, session, courses, for_update=True)


ReviewableSubmission = Annotated[SubmissionOfAssignment, Depends(reviewable_submission)]
LockedReviewableSubmission = Annotated[
    SubmissionOfAssignment, Depends(locked_reviewable_submission)
]
