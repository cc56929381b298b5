"""Learning: courses, progress and completion certificates."""
