"""Every query of the assessments domain, one module per sub-area: the question bank,
quizzes and their attempts, essay assignments and submissions, the audit trail, and
learners' standings (the gradebook, course completion, the tutor's guard)."""
