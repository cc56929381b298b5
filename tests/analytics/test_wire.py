"""The ingest fast path (`schemas.read_wire`) takes only batches `EventBatch` accepts,
and reads them to the same values; whatever it leaves is read by `EventBatch`."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest

from lyceum.analytics import schemas

LESSON = str(uuid.uuid4())
WHEN = "2026-12-04T10:00:00.250Z"


def _ok(**fields: Any) -> dict[str, Any]:
    return {
        "id": "ev-1",
        "verb": "viewed",
        "object": {"type": "lesson", "id": LESSON},
        "timestamp": WHEN,
    } | fields


# (event, whether the fast path takes it)
CASES: list[tuple[dict[str, Any], bool]] = [
    (_ok(), True),
    (_ok(duration_ms=61_000, context={"platform": "ios", "app_version": "3.2.1"}), True),
    (_ok(verb="searched", object={"type": "catalog"}, context={"query": "cells\tand\\ATP"}), True),
    (_ok(verb="downloaded", object={"type": "file_page", "id": LESSON, "page": 3}), True),
    (_ok(verb="answered", object={"type": "quiz_item", "id": LESSON}, result={"score": 3}), True),
    (_ok(result={"score": 2.5, "max_score": 4, "success": True, "response": "b"}), True),
    (_ok(course_id=str(uuid.uuid4()), lesson_id=LESSON), True),
    (_ok(timestamp="2026-12-04T10:00:00+07:00"), True),
    (_ok(context={}, result={}), True),
    # taken by EventBatch only: other spellings of the same values
    (_ok(object={"type": "lesson", "id": LESSON.upper()}), False),
    (_ok(object={"type": "lesson", "id": LESSON.replace("-", "")}), False),
    (_ok(duration_ms=61_000.0), False),
    (_ok(object={"type": "file_page", "id": LESSON, "page": 2.0}), False),
    (_ok(course_id=None, lesson_id=None, duration_ms=None, result=None, context=None), False),
    (_ok(context={"platform": None}), False),
    (_ok(object={"type": "catalog", "id": None}, verb="searched"), False),
    # refused by both (EventBatch names the field)
    (_ok(id=""), False),
    (_ok(id="has space"), False),
    (_ok(verb="completed"), False),
    (_ok(object={"type": "user", "id": LESSON}), False),
    (_ok(object={"type": "lesson"}), False),
    (_ok(object={"type": "catalog", "id": LESSON}, verb="searched"), False),
    (_ok(object={"type": "lesson", "id": LESSON, "page": 2}), False),
    (_ok(verb="answered"), False),
    (_ok(timestamp="2026-12-04T10:00:00"), False),
    (_ok(timestamp="2026-12-04 10:00:00Z"), False),
    (_ok(timestamp=1733306400), False),
    (_ok(duration_ms=-1), False),
    (_ok(duration_ms="10"), False),
    (_ok(duration_ms=True), False),
    (_ok(result={"score": 5, "max_score": 4}), False),
    (_ok(result={"score": True}), False),
    (_ok(result={"success": "yes"}), False),
    (_ok(result={"response": "a\x00b"}), False),
    (_ok(context={"query": "a\x00b"}), False),
    (_ok(context={"platform": "i os"}), False),
    (_ok(context={"device_id": "abc"}), False),
    (_ok(user_id=str(uuid.uuid4())), False),
    (_ok(actor={"mbox": "mailto:someone@example.com"}), False),
]


def _full(body: bytes) -> list[schemas.WireEvent] | None:
    try:
        batch = schemas.EventBatch.model_validate(json.loads(body))
    except ValueError:
        return None
    return [schemas.wire_event(event) for event in batch.events]


@pytest.mark.parametrize(("event", "fast"), CASES)
def test_the_fast_path_takes_a_subset_and_reads_the_same_values(
    event: dict[str, Any], fast: bool
) -> None:
    body = json.dumps({"events": [event, _ok(id="ev-2")]}).encode()
    read = schemas.read_wire(body)
    assert (read is not None) is fast
    if read is not None:
        assert read == _full(body)


@pytest.mark.parametrize(
    "body",
    [
        b'{"events": [], "x": 1}',
        b'{"events": []}',
        b'{"events": {}}',
        b"[]",
        b'{"events": [{"id": "a", "verb": "viewed", "object": {"type": "catalog"}, '
        b'"timestamp": "2026-12-04T10:00:00Z", "duration_ms": NaN}]}',
        b'{"events": [{"id": "a", "verb": "searched", "object": {"type": "catalog"}, '
        b'"timestamp": "2026-12-04T10:00:00Z", "context": {"query": "\\ud800"}}]}',
        b'{"events": [{"id": "a", "verb": "viewed", "object": {"type": "catalog"}, '
        b'"timestamp": "2026-12-04T10:00:00Z", "result": {"score": 1e400}}]}',
        '\ufeff{"events": []}'.encode(),
        b'{"events": [',
    ],
)
def test_what_the_fast_path_leaves(body: bytes) -> None:
    assert schemas.read_wire(body) is None


def test_a_full_batch_and_repeats() -> None:
    events = [_ok(id=f"ev-{n % 400}", duration_ms=n) for n in range(500)]
    body = json.dumps({"events": events}).encode()
    read = schemas.read_wire(body)
    assert read is not None and read == _full(body)
    assert read[0]["timestamp"] == dt.datetime(2026, 12, 4, 10, 0, 0, 250_000, tzinfo=dt.UTC)
    assert schemas.read_wire(json.dumps({"events": [*events, _ok()]}).encode()) is None
