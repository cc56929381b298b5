"""Assessment rules, one module per sub-area: the question bank (`questions`), quizzes
(`quizzes`), taking and grading attempts (`attempts`, `closing`), essay assignments
(`assignments`), submissions (`submissions`), their scoring and review (`proposals`,
`grades`, `review`), and the gradebook (`gradebook`).

Other domains do not call into assessments: a passed assessment is announced with the
`assessment.passed` event (`service.common.passed`), which `learning` reacts to, and
learning reads a learner's standings on the course's assessments from the tables
itself (`learning.repository`)."""
