"""Every verb on every kind of object maps to an xAPI 1.0.3 statement that a fake LRS
validating the specification's rules accepts; the fake refuses statements that break
them (so its acceptance means something)."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import itertools
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from lyceum.analytics.vocabulary import ACTIVITY_TYPES, VERBS, ObjectType, Verb
from lyceum.analytics.xapi import COLLECTIONS, duration, statement
from tests.support.fake_lrs import FakeLRS, Refused, check_statement

BASE = "https://learn.example.org"
WHEN = dt.datetime(2026, 12, 4, 10, 30, 15, 123456, tzinfo=dt.UTC)


@dataclass
class Event:
    """An `analytics_events` row as the mapping reads it."""

    verb: str = Verb.viewed.value
    object_type: str = ObjectType.lesson.value
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)
    user_id: uuid.UUID = field(default_factory=uuid.uuid4)
    course_id: uuid.UUID | None = field(default_factory=uuid.uuid4)
    lesson_id: uuid.UUID | None = field(default_factory=uuid.uuid4)
    source: str = "client"
    object_id: uuid.UUID | None = field(default_factory=uuid.uuid4)
    page: int | None = None
    duration_ms: int | None = None
    result: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    occurred_at: dt.datetime = WHEN
    received_at: dt.datetime = WHEN + dt.timedelta(seconds=2)
    id: int = 0


# What each verb carries in practice (ingest and the platform's facts).
RESULTS: dict[Verb, dict[str, Any]] = {
    Verb.answered: {"response": "b", "success": True},
    Verb.completed: {"completion": True},
    Verb.passed: {"score": 8, "max_score": 10, "success": True, "completion": True},
    Verb.failed: {"score": 3.5, "max_score": 10, "success": False, "completion": True},
    Verb.scored: {"score": 17, "max_score": 20},
    Verb.asked: {"answered": False},
}


def sample(verb: Verb, kind: ObjectType) -> Event:
    return Event(
        verb=verb.value,
        object_type=kind.value,
        source="client" if verb in {Verb.viewed, Verb.started, Verb.searched} else "server",
        page=3 if kind is ObjectType.file_page else None,
        object_id=None if kind is ObjectType.catalog else uuid.uuid4(),
        duration_ms=12_345 if verb in {Verb.viewed, Verb.paused} else None,
        result=RESULTS.get(verb),
        context={"platform": "ios", "app_version": "2.1.0", "session_id": "s-1", "query": "cells"}
        if verb is Verb.searched
        else None,
    )


ALL_PAIRS = list(itertools.product(Verb, ObjectType))


@pytest.mark.parametrize(("verb", "kind"), ALL_PAIRS, ids=[f"{v}-{k}" for v, k in ALL_PAIRS])
def test_every_verb_on_every_object_is_a_valid_statement(verb: Verb, kind: ObjectType) -> None:
    event = sample(verb, kind)
    body = statement(event, base_url=BASE)
    check_statement(body)
    assert body["id"] == str(event.event_id)
    assert body["verb"] == {"id": VERBS[verb].iri, "display": {"en-US": VERBS[verb].display}}
    assert body["object"]["definition"] == {"type": ACTIVITY_TYPES[kind]}
    assert body["object"]["id"].startswith(f"{BASE}/{COLLECTIONS[kind]}")
    assert body["context"]["platform"] == "Lyceum"


def test_every_object_type_has_a_place_under_the_base_url() -> None:
    assert set(COLLECTIONS) == set(ObjectType)


def test_the_learner_is_an_opaque_account_never_an_email() -> None:
    event = sample(Verb.completed, ObjectType.lesson)
    body = statement(event, base_url=BASE + "/")
    assert body["actor"] == {
        "objectType": "Agent",
        "account": {"homePage": BASE, "name": str(event.user_id)},
    }
    assert "mbox" not in str(body) and "@" not in str(body)


def test_times_ids_and_version() -> None:
    event = sample(Verb.viewed, ObjectType.lesson)
    body = statement(event, base_url=BASE)
    assert body["timestamp"] == "2026-12-04T10:30:15.123Z"
    assert body["stored"] == "2026-12-04T10:30:17.123Z"
    # Data 2.4.10: a provider that sets the version sets 1.0.0 (the header says 1.0.3).
    assert body["version"] == "1.0.0"
    assert "stored" not in statement(event, base_url=BASE, stored=False)


def test_objects_and_their_context() -> None:
    page = sample(Verb.viewed, ObjectType.file_page)
    body = statement(page, base_url=BASE)
    assert body["object"]["id"] == f"{BASE}/files/{page.object_id}#page=3"
    assert body["context"]["contextActivities"] == {
        "parent": [
            {
                "objectType": "Activity",
                "id": f"{BASE}/lessons/{page.lesson_id}",
                "definition": {"type": "http://adlnet.gov/expapi/activities/lesson"},
            }
        ],
        "grouping": [
            {
                "objectType": "Activity",
                "id": f"{BASE}/courses/{page.course_id}",
                "definition": {"type": "http://adlnet.gov/expapi/activities/course"},
            }
        ],
    }
    # A lesson's parent is its course; a course has no parent.
    lesson = statement(sample(Verb.completed, ObjectType.lesson), base_url=BASE)
    assert [
        a["id"].rsplit("/", 2)[1] for a in lesson["context"]["contextActivities"]["parent"]
    ] == ["courses"]
    enrolled = Event(verb="enrolled", object_type="course", object_id=None, lesson_id=None)
    course = statement(enrolled, base_url=BASE)
    assert course["object"]["id"] == f"{BASE}/courses/{enrolled.course_id}"
    assert "contextActivities" not in course["context"]
    catalog = statement(sample(Verb.searched, ObjectType.catalog), base_url=BASE)
    assert catalog["object"]["id"] == f"{BASE}/courses"
    assert catalog["context"]["extensions"] == {
        f"{BASE}/xapi/extensions/source": "client",
        f"{BASE}/xapi/extensions/platform": "ios",
        f"{BASE}/xapi/extensions/app-version": "2.1.0",
        f"{BASE}/xapi/extensions/session-id": "s-1",
        f"{BASE}/xapi/extensions/query": "cells",
    }


def test_results_carry_only_what_applies() -> None:
    passed = statement(sample(Verb.passed, ObjectType.quiz), base_url=BASE)
    assert passed["result"] == {
        "score": {"raw": 8, "min": 0, "max": 10, "scaled": 0.8},
        "success": True,
        "completion": True,
    }
    viewed = statement(sample(Verb.viewed, ObjectType.lesson), base_url=BASE)
    assert viewed["result"] == {"duration": "PT12.34S"}
    assert "result" not in statement(sample(Verb.enrolled, ObjectType.course), base_url=BASE)
    asked = statement(sample(Verb.asked, ObjectType.lesson), base_url=BASE)
    assert asked["result"] == {
        "extensions": {f"{BASE}/xapi/extensions/answered-from-material": False}
    }
    # A score above its maximum (bad data) is sent raw only: never an invalid score.
    odd = sample(Verb.scored, ObjectType.assignment)
    odd.result = {"score": 25, "max_score": 20, "success": "yes"}
    result = statement(odd, base_url=BASE)["result"]
    assert result == {"score": {"raw": 25}}
    check_statement(statement(odd, base_url=BASE))


@pytest.mark.parametrize(
    ("milliseconds", "expected"),
    [
        (0, "PT0S"),
        (9, "PT0S"),
        (1000, "PT1S"),
        (1500, "PT1.5S"),
        (12_345, "PT12.34S"),
        (3_600_000, "PT3600S"),
        (-5, "PT0S"),
    ],
)
def test_durations_are_iso_8601_to_a_hundredth(milliseconds: int, expected: str) -> None:
    assert duration(milliseconds) == expected


def test_an_unknown_verb_still_makes_a_valid_statement() -> None:
    body = statement(Event(verb="rated", object_type="widget"), base_url=BASE)
    check_statement(body)
    assert body["verb"]["id"] == f"{BASE}/xapi/verbs/rated"
    assert "definition" not in body["object"]


# The fake LRS refuses what the specification refuses ---------------------------------


def _valid() -> dict[str, Any]:
    return statement(sample(Verb.passed, ObjectType.quiz_item), base_url=BASE)


def _broken(path: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(_valid())
    *parents, last = path.split(".")
    node = body
    for key in parents:
        node = node[key]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return body


BROKEN = {
    "no actor": _broken("actor", KeyError),
    "no verb": _broken("verb", KeyError),
    "no object": _broken("object", KeyError),
    "unknown top-level key": {**_valid(), "score": 3},
    "null value": _broken("result.response", None),
    "id not a uuid": _broken("id", "42"),
    "relative verb iri": _broken("verb.id", "verbs/passed"),
    "relative activity iri": _broken("object.id", "/quizzes/1"),
    "iri with a space": _broken("object.id", "https://x.org/a b"),
    "two identifiers": _broken("actor.mbox", "mailto:ada@example.org"),
    "no identifier": _broken("actor.account", KeyError),
    "bad language tag": _broken("verb.display", {"english!": "passed"}),
    "scaled above 1": _broken("result.score.scaled", 1.5),
    "raw above max": _broken("result.score.raw", 11),
    "min not below max": _broken("result.score.min", 10),
    "score as a string": _broken("result.score.raw", "8"),
    "success as a string": _broken("result.success", "true"),
    "bad duration": _broken("result.duration", "12 seconds"),
    "alternative duration format": _broken("result.duration", "PT00:00:12"),
    "timestamp without zone": _broken("timestamp", "2026-12-04T10:30:15"),
    "not a timestamp": _broken("timestamp", "yesterday"),
    "version 2": _broken("version", "2.0.0"),
    "extension key not an iri": _broken("context.extensions", {"source": "client"}),
    "unknown context key": _broken("context.mood", "calm"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_the_fake_lrs_refuses_what_the_spec_refuses(case: str) -> None:
    with pytest.raises(Refused):
        check_statement(BROKEN[case])


def _headers(lrs: FakeLRS, version: str = "1.0.3") -> dict[str, str]:
    token = base64.b64encode(f"{lrs.username}:{lrs.password}".encode()).decode()
    return {"Authorization": f"Basic {token}", "X-Experience-API-Version": version}


def test_the_fake_lrs_stores_every_statement_over_http() -> None:
    bodies = [statement(sample(verb, kind), base_url=BASE) for verb, kind in ALL_PAIRS]
    with FakeLRS() as lrs:
        answer = httpx.post(lrs.statements_url, json=bodies, headers=_headers(lrs))
        assert answer.status_code == 200, answer.text
        assert answer.json() == [body["id"] for body in bodies]
        assert len(lrs.stored) == len(bodies)
        # The same batch again changes nothing and is accepted; another statement under
        # a stored id is a conflict.
        again = httpx.post(lrs.statements_url, json=bodies, headers=_headers(lrs))
        assert again.status_code == 200
        changed = {**bodies[0], "verb": bodies[-1]["verb"]}
        conflict = httpx.post(lrs.statements_url, json=[changed], headers=_headers(lrs))
        assert conflict.status_code == 409
        single = statement(sample(Verb.viewed, ObjectType.course), base_url=BASE)
        put = httpx.put(
            lrs.statements_url,
            params={"statementId": single["id"]},
            json=single,
            headers=_headers(lrs),
        )
        assert put.status_code == 204
        assert len(lrs.stored) == len(bodies) + 1


def test_the_fake_lrs_checks_credentials_version_and_batches() -> None:
    body = _valid()
    with FakeLRS() as lrs:
        assert httpx.post(lrs.statements_url, json=[body]).status_code == 401
        wrong = httpx.post(lrs.statements_url, json=[body], headers=_headers(lrs, "0.95"))
        assert wrong.status_code == 400
        twice = httpx.post(lrs.statements_url, json=[body, body], headers=_headers(lrs))
        assert twice.status_code == 400 and "share an id" in twice.text
        bad = httpx.post(
            lrs.statements_url, json=[body, BROKEN["bad duration"]], headers=_headers(lrs)
        )
        assert bad.status_code == 400 and "statement 1" in bad.text
        assert lrs.stored == {}  # a refused batch stores nothing
        lrs.fail(2)
        assert [
            httpx.post(lrs.statements_url, json=[body], headers=_headers(lrs)).status_code
            for _ in range(3)
        ] == [503, 503, 200]


def test_a_tutor_question_is_never_in_a_statement() -> None:
    # An `asked` row written before the question was left out of events still holds it.
    old = sample(Verb.asked, ObjectType.lesson)
    old.result = {"answered": True, "response": "Is my diagnosis serious?"}
    body = statement(old, base_url=BASE)
    assert "response" not in body["result"]
    assert "Is my diagnosis serious?" not in json.dumps(body)
    assert body["result"]["extensions"] == {f"{BASE}/xapi/extensions/answered-from-material": True}
    # An answer to a quiz item keeps its response.
    answered = sample(Verb.answered, ObjectType.quiz_item)
    assert statement(answered, base_url=BASE)["result"]["response"] == "b"


def test_a_hidden_score_leaves_out_score_and_success_of_graded_verbs_only() -> None:
    for verb in (Verb.passed, Verb.failed):
        hidden = statement(sample(verb, ObjectType.quiz), base_url=BASE, hide_score=True)
        assert "score" not in hidden["result"]
        assert "success" not in hidden["result"]
        assert hidden["result"]["completion"] is True
        shown = statement(sample(verb, ObjectType.quiz), base_url=BASE)
        assert "score" in shown["result"] and "success" in shown["result"]
    scored = statement(sample(Verb.scored, ObjectType.assignment), base_url=BASE, hide_score=True)
    assert scored["result"]["score"]["raw"] == 17
