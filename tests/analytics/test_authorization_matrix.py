"""Probe rows of the analytics routes, by helper block (the integrator unions them)."""

from __future__ import annotations

from typing import Any

API = "/api/v1"

# --- xAPI (helper C) -------------------------------------------------------------------
# GET /analytics/xapi/statements has no id in its path: these rows show who reaches which
# course's statements through `course`. `enrolled` learns in {course} (taught by
# `instructor`), `other_learner` in {other_course} (taught by `other_instructor`).
# Learners always get 200 with only their own statements (the filter is forced, so
# another course's id shows them nothing of anyone else's); instructors get 403 for a
# course they do not teach; 404 for a course that does not exist (instructors, admins);
# a cursor the feed did not make is 422. Run by
# tests/analytics/test_xapi_endpoints.py::test_the_xapi_authorization_rows.
XAPI_CALLERS = ["anonymous", "enrolled", "other_learner", "instructor", "other_instructor", "admin"]
XAPI_ROWS: list[tuple[str, str, Any, list[int]]] = [
    ("GET", API + "/analytics/xapi/statements", None, [401, 200, 200, 200, 200, 200]),
    (
        "GET",
        API + "/analytics/xapi/statements?course={course}",
        None,
        [401, 200, 200, 200, 403, 200],
    ),
    (
        "GET",
        API + "/analytics/xapi/statements?course={other_course}",
        None,
        [401, 200, 200, 403, 200, 200],
    ),
    (
        "GET",
        API + "/analytics/xapi/statements?course={made_up}",
        None,
        [401, 200, 200, 404, 404, 404],
    ),
    (
        "GET",
        API + "/analytics/xapi/statements?cursor=bm90LWEtY3Vyc29y",
        None,
        [401, 422, 422, 422, 422, 422],
    ),
]
# --- end xAPI ------------------------------------------------------------------------------
