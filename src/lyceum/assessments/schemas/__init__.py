"""Assessment bodies.

Two families, kept apart on purpose. Authoring schemas (`QuestionOut`, `QuizOut`,
`AssignmentOut`, `SubmissionReview`, ...) carry answer keys, explanations, reference
answers and rubric key terms, and are only returned to a course's instructors and
admins. Learner schemas (`AttemptSheet`, `QuizInfo`, `AssignmentInfo`, `MySubmission`,
...) are separate classes that have no such fields, so no code path can put a key in a
learner's response before grading; only `AttemptResult`, served once an attempt is
graded, may carry the correct answers and explanations, as the quiz's review policy
allows.

Request models state their rules as JSON Schema constraints; rules that depend on
stored data (a question id of this course, a rubric whose points add up) are checked by
the services after authorization, and answer 422 naming the field.
"""
