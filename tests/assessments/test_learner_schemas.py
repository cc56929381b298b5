"""No answer key can reach a learner before grading: walk the published OpenAPI schema
of every route a learner uses before their work is graded, and find no field that
could carry a key, an explanation, a reference answer or a score proposal. Every
assessments route must be classified, so a new one cannot slip past."""

from __future__ import annotations

from typing import Any

import pytest

from lyceum.app import create_app
from lyceum.config import Settings

KEY_FIELDS = {
    "correct",
    "correct_answer",
    "answer_key",
    "key",
    "accepted",
    "tolerance",
    "partial_credit",
    "explanation",
    "reference_answer",
    "key_terms",
    "is_correct",
    "proposal",
    "similar",
    "signals",
    "scoring_error",
}

# Routes learners use while their work is open or ungraded.
LEARNER_ROUTES = {
    "list_quizzes",
    "get_quiz",
    "start_attempt",
    "my_attempts",
    "get_attempt",
    "save_answers",
    "list_assignments",
    "get_assignment",
    "submit_essay",
    "submit_essay_file",
    "my_submission",
    "my_grades",
    # learning: progress now lists the course's assessments.
    "progress",
    "complete_lesson",
    "enroll",
}
# Served only for a submitted attempt, graded before it answers; what it shows of the
# key follows the quiz's review policy (tests/assessments/test_quizzes.py).
GRADED_RESULT_ROUTES = {"submit_attempt", "attempt_result"}
INSTRUCTOR_ROUTES = {
    "create_question",
    "list_questions",
    "get_question",
    "replace_question",
    "delete_question",
    "create_quiz",
    "get_quiz_definition",
    "update_quiz",
    "delete_quiz",
    "quiz_attempts",
    "review_attempt",
    "grade_attempt_items",
    "create_assignment",
    "get_assignment_definition",
    "update_assignment",
    "delete_assignment",
    "assignment_submissions",
    "review_queue",
    "get_submission",
    "accept_submission",
    "grade_submission",
    "release_submission",
    "assessment_audit",
    "gradebook",
    "gradebook_csv",
}


@pytest.fixture(scope="module")
def openapi(settings: Settings) -> dict[str, Any]:
    """The schema the app publishes (built once: it takes a second or two)."""
    schema: dict[str, Any] = create_app(settings).openapi()
    return schema


def _operations(openapi: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        operation["operationId"]: operation
        for path in openapi["paths"].values()
        for operation in path.values()
        if isinstance(operation, dict) and "operationId" in operation
    }


def _fields(schema: Any, components: dict[str, Any], seen: set[str]) -> set[str]:
    """Every property name reachable from a schema, through refs, arrays, unions."""
    names: set[str] = set()
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if name not in seen:
                seen.add(name)
                names |= _fields(components[name], components, seen)
        for key, value in schema.items():
            if key == "properties" and isinstance(value, dict):
                names |= set(value)
                for item in value.values():
                    names |= _fields(item, components, seen)
            elif key in {"items", "anyOf", "oneOf", "allOf", "additionalProperties"}:
                names |= _fields(value, components, seen)
    elif isinstance(schema, list):
        for item in schema:
            names |= _fields(item, components, seen)
    return names


def _response_fields(operation: dict[str, Any], components: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for status, response in operation.get("responses", {}).items():
        if not status.startswith("2"):
            continue
        for content in response.get("content", {}).values():
            names |= _fields(content.get("schema", {}), components, set())
    return names


def test_every_assessments_route_is_classified(openapi: dict[str, Any]) -> None:
    tagged = {
        operation_id
        for operation_id, operation in _operations(openapi).items()
        if "assessments" in operation.get("tags", [])
    }
    classified = LEARNER_ROUTES | GRADED_RESULT_ROUTES | INSTRUCTOR_ROUTES
    assert tagged == classified - {"progress", "complete_lesson", "enroll"}


def test_learner_responses_cannot_carry_keys(openapi: dict[str, Any]) -> None:
    operations = _operations(openapi)
    components = openapi["components"]["schemas"]
    for operation_id in sorted(LEARNER_ROUTES):
        leaked = _response_fields(operations[operation_id], components) & KEY_FIELDS
        assert not leaked, f"{operation_id} can return {sorted(leaked)}"


def test_the_walk_does_find_keys_where_instructors_read_them(openapi: dict[str, Any]) -> None:
    """The check above is only as good as the walk: it must see through Page[...]
    wrappers, refs and unions to the key fields of the instructor schemas."""
    operations = _operations(openapi)
    components = openapi["components"]["schemas"]
    assert {"key", "correct", "explanation"} <= _response_fields(
        operations["list_questions"], components
    )
    assert {"reference_answer", "key_terms"} <= _response_fields(
        operations["get_assignment_definition"], components
    )
    assert {"correct_answer", "explanation"} <= _response_fields(
        operations["attempt_result"], components
    )
