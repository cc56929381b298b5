"""A fake Learning Record Store over real HTTP on a loopback port: the Statement
Resource of xAPI 1.0.3 (`POST /statements` with one statement or an array, `PUT
/statements?statementId=...`), written from the specification (adlnet/xAPI-Spec,
xAPI-Data.md and xAPI-Communication.md), not from Lyceum's mapping.

It refuses what the specification tells an LRS to refuse, with `400` and the reason:
a missing `actor`, `verb` or `object`; keys the specification does not define (at any
level but inside `extensions`); `null` anywhere but inside extensions; wrong JSON types
(a string where a number or a boolean goes); an Agent without exactly one inverse
functional identifier; relative or space-holding IRIs (ids, verb ids, activity types,
extension keys, `account.homePage`); ids not in UUID string form; a `version` not
starting with `1.0.`; timestamps that are not ISO 8601 date-times with a zone; durations
not in the ISO 8601 duration format (4.4.3.2); `score.scaled` outside [-1, 1], `raw`
outside [min, max], `min` not below `max`; language map keys that are not RFC 5646 tags;
`platform` or `revision` on a statement whose object is not an Activity; two statements
of one id in a batch. It checks HTTP Basic credentials (`401`) and the
`X-Experience-API-Version` header (`400` unless `1.0.x`).

A statement id it already stores is not stored again (the specification forbids any
change): the same statement again is accepted, a different one under that id is `409`
and the whole batch is refused. `conflict_on_known=True` makes it answer `409` to any
batch holding a known id, as some LRSs do. `fail(n)` makes the next `n` requests answer
`503` (the LRS down), `refuse(id)` refuses one statement as a stricter LRS would; each
accepted batch is recorded in `batches`.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import urllib.parse
import uuid
from dataclasses import dataclass
from typing import Any

from tests.support.channel_fakes import Answer, _FakeServer, _json

STATEMENT_KEYS = {
    "id",
    "actor",
    "verb",
    "object",
    "result",
    "context",
    "timestamp",
    "stored",
    "authority",
    "version",
    "attachments",
}
AGENT_KEYS = {"objectType", "name", "mbox", "mbox_sha1sum", "openid", "account"}
IFI_KEYS = ("mbox", "mbox_sha1sum", "openid", "account")
ACTIVITY_KEYS = {"objectType", "id", "definition"}
DEFINITION_KEYS = {
    "name",
    "description",
    "type",
    "moreInfo",
    "extensions",
    "interactionType",
    "correctResponsesPattern",
    "choices",
    "scale",
    "source",
    "target",
    "steps",
}
RESULT_KEYS = {"score", "success", "completion", "response", "duration", "extensions"}
SCORE_KEYS = {"scaled", "raw", "min", "max"}
CONTEXT_KEYS = {
    "registration",
    "instructor",
    "team",
    "contextActivities",
    "revision",
    "platform",
    "language",
    "statement",
    "extensions",
}
CONTEXT_ACTIVITY_KEYS = {"parent", "grouping", "category", "other"}

UUID_FORM = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
IRI_FORM = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]+$")
LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")
TIMESTAMP_FORM = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+\-]\d{2}:\d{2})$")
# ISO 8601:2004 4.4.3.2: PnYnMnDTnHnMnS (a fraction on the last part only), or PnW alone.
DURATION_FORM = re.compile(
    r"^P(?:\d+(?:\.\d+)?W|(?=\d|T\d)(?:\d+Y)?(?:\d+M)?(?:\d+D)?"
    r"(?:T(?=\d)(?:\d+H)?(?:\d+M)?(?:\d+(?:\.\d+)?S)?)?)$"
)


class Refused(Exception):
    """A statement the LRS must not store; the message says why."""


def _object(value: Any, where: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Refused(f"{where} must be an object")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise Refused(f"{where} has keys xAPI does not define: {', '.join(unknown)}")
    for key, item in value.items():
        if item is None:
            raise Refused(f"{where}.{key} is null")
    if not value:
        raise Refused(f"{where} is an empty object")
    return value


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise Refused(f"{where} must be a string")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Refused(f"{where} must be a number")
    return float(value)


def _boolean(value: Any, where: str) -> None:
    if not isinstance(value, bool):
        raise Refused(f"{where} must be a boolean")


def _iri(value: Any, where: str) -> None:
    if not IRI_FORM.match(_string(value, where)):
        raise Refused(f"{where} is not an absolute IRI: {value!r}")


def _uuid(value: Any, where: str) -> None:
    if not UUID_FORM.match(_string(value, where)):
        raise Refused(f"{where} is not a UUID in standard string form: {value!r}")


def _timestamp(value: Any, where: str) -> None:
    text = _string(value, where)
    if not TIMESTAMP_FORM.match(text):
        raise Refused(f"{where} is not an ISO 8601 date-time with a time zone: {text!r}")
    try:
        dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Refused(f"{where} is not a real date-time: {text!r}") from None


def _language_map(value: Any, where: str) -> None:
    if not isinstance(value, dict) or not value:
        raise Refused(f"{where} must be a non-empty language map")
    for tag, text in value.items():
        if not LANGUAGE_TAG.match(tag):
            raise Refused(f"{where} key {tag!r} is not an RFC 5646 language tag")
        _string(text, f"{where}.{tag}")


def _extensions(value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise Refused(f"{where} must be an object")
    for key in value:
        _iri(key, f"{where} key")


def _agent(value: Any, where: str) -> None:
    agent = _object(value, where, AGENT_KEYS)
    if agent.get("objectType", "Agent") != "Agent":
        raise Refused(f"{where}.objectType must be Agent (Groups are not used here)")
    identifiers = [key for key in IFI_KEYS if key in agent]
    if len(identifiers) != 1:
        raise Refused(f"{where} must have exactly one inverse functional identifier")
    if "name" in agent:
        _string(agent["name"], f"{where}.name")
    if "mbox" in agent and not _string(agent["mbox"], f"{where}.mbox").startswith("mailto:"):
        raise Refused(f"{where}.mbox must be a mailto IRI")
    if "account" in agent:
        account = _object(agent["account"], f"{where}.account", {"homePage", "name"})
        if set(account) != {"homePage", "name"}:
            raise Refused(f"{where}.account needs homePage and name")
        _iri(account["homePage"], f"{where}.account.homePage")
        _string(account["name"], f"{where}.account.name")


def _activity(value: Any, where: str) -> None:
    activity = _object(value, where, ACTIVITY_KEYS)
    if activity.get("objectType", "Activity") != "Activity":
        raise Refused(f"{where}.objectType must be Activity")
    if "id" not in activity:
        raise Refused(f"{where}.id is required")
    _iri(activity["id"], f"{where}.id")
    if "definition" in activity:
        definition = _object(activity["definition"], f"{where}.definition", DEFINITION_KEYS)
        for key in ("name", "description"):
            if key in definition:
                _language_map(definition[key], f"{where}.definition.{key}")
        for key in ("type", "moreInfo"):
            if key in definition:
                _iri(definition[key], f"{where}.definition.{key}")
        if "extensions" in definition:
            _extensions(definition["extensions"], f"{where}.definition.extensions")


def _score(value: Any) -> None:
    score = _object(value, "result.score", SCORE_KEYS)
    numbers = {key: _number(item, f"result.score.{key}") for key, item in score.items()}
    if "scaled" in numbers and not -1 <= numbers["scaled"] <= 1:
        raise Refused("result.score.scaled must be between -1 and 1")
    low, high = numbers.get("min"), numbers.get("max")
    if low is not None and high is not None and not low < high:
        raise Refused("result.score.min must be below result.score.max")
    raw = numbers.get("raw")
    if raw is not None and ((low is not None and raw < low) or (high is not None and raw > high)):
        raise Refused("result.score.raw must be between min and max")


def _result(value: Any) -> None:
    result = _object(value, "result", RESULT_KEYS)
    if "score" in result:
        _score(result["score"])
    for key in ("success", "completion"):
        if key in result:
            _boolean(result[key], f"result.{key}")
    if "response" in result:
        _string(result["response"], "result.response")
    if "duration" in result and not DURATION_FORM.match(_string(result["duration"], "duration")):
        raise Refused(f"result.duration is not an ISO 8601 duration: {result['duration']!r}")
    if "extensions" in result:
        _extensions(result["extensions"], "result.extensions")


def _context(value: Any, object_is_activity: bool) -> None:
    context = _object(value, "context", CONTEXT_KEYS)
    if "registration" in context:
        _uuid(context["registration"], "context.registration")
    if "instructor" in context:
        _agent(context["instructor"], "context.instructor")
    for key in ("platform", "revision"):
        if key in context:
            _string(context[key], f"context.{key}")
            if not object_is_activity:
                raise Refused(f"context.{key} is only for statements about an Activity")
    if "language" in context and not LANGUAGE_TAG.match(_string(context["language"], "language")):
        raise Refused("context.language is not an RFC 5646 language tag")
    if "contextActivities" in context:
        activities = _object(
            context["contextActivities"], "context.contextActivities", CONTEXT_ACTIVITY_KEYS
        )
        for kind, items in activities.items():
            listed = items if isinstance(items, list) else [items]
            for index, item in enumerate(listed):
                _activity(item, f"context.contextActivities.{kind}[{index}]")
    if "extensions" in context:
        _extensions(context["extensions"], "context.extensions")


def check_statement(statement: Any) -> None:
    """Raise `Refused` if an LRS must refuse `statement` (xAPI 1.0.3, Data 2.2-2.4, 4)."""
    body = _object(statement, "statement", STATEMENT_KEYS)
    for required in ("actor", "verb", "object"):
        if required not in body:
            raise Refused(f"statement.{required} is required")
    if "id" in body:
        _uuid(body["id"], "statement.id")
    _agent(body["actor"], "actor")
    verb = _object(body["verb"], "verb", {"id", "display"})
    if "id" not in verb:
        raise Refused("verb.id is required")
    _iri(verb["id"], "verb.id")
    if "display" in verb:
        _language_map(verb["display"], "verb.display")
    target = body["object"]
    is_activity = isinstance(target, dict) and target.get("objectType", "Activity") == "Activity"
    if not is_activity:
        raise Refused("object: only Activities are expected from Lyceum")
    _activity(target, "object")
    if "result" in body:
        _result(body["result"])
    if "context" in body:
        _context(body["context"], is_activity)
    for key in ("timestamp", "stored"):
        if key in body:
            _timestamp(body[key], key)
    if "version" in body and not _string(body["version"], "version").startswith("1.0."):
        raise Refused(f"version {body['version']!r} does not start with 1.0.")


@dataclass
class Batch:
    """One accepted request: the statements it carried, in order."""

    method: str
    statements: list[dict[str, Any]]


class FakeLRS(_FakeServer):
    def __init__(
        self,
        username: str = "lyceum",
        password: str = "lrs-secret",  # noqa: S107 (a fake's credential)
        *,
        conflict_on_known: bool = False,
    ) -> None:
        super().__init__()
        self.username = username
        self.password = password
        self.conflict_on_known = conflict_on_known
        self.stored: dict[str, dict[str, Any]] = {}
        self.batches: list[Batch] = []
        self.answers: list[int] = []  # every request's status, in order
        self.refusals: list[str] = []  # the body of every 400
        self._failures = 0
        self._failure_status = 503
        self._healthy_before_failing = 0
        self._refused_ids: set[str] = set()
        # xAPI stores single statements with PUT: this server's handler takes it too.
        handler = self.server.RequestHandlerClass
        handler.do_PUT = handler.do_POST  # type: ignore[attr-defined]

    def fail(self, times: int, status: int = 503, *, after: int = 0) -> None:
        """After `after` more requests, the next `times` answer `status` (the LRS down
        or overloaded)."""
        with self.lock:
            self._healthy_before_failing = after
            self._failures = times
            self._failure_status = status

    def refuse(self, *statement_ids: str) -> None:
        """Refuse these statements (400) as an LRS with rules of its own (a profile's)
        would, however valid they are."""
        with self.lock:
            self._refused_ids.update(statement_ids)

    @property
    def statements_url(self) -> str:
        return self.base_url + "/statements"

    def received_ids(self) -> list[str]:
        """Every statement id of every accepted batch, in order, repeats included."""
        return [statement["id"] for batch in self.batches for statement in batch.statements]

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        with self.lock:
            answer = self._answer(method, path, headers, body)
            self.answers.append(answer.status)
            if answer.status == 400:
                self.refusals.append(answer.body.decode())
            return answer

    def _answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        route = urllib.parse.urlsplit(path)
        if route.path != "/statements" or method not in ("POST", "PUT"):
            return _json(404, {"error": f"no {method} {route.path} here"})
        if self._failures > 0:
            if self._healthy_before_failing > 0:
                self._healthy_before_failing -= 1
            else:
                self._failures -= 1
                return _json(self._failure_status, {"error": "temporarily unavailable"})
        expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        if headers.get("authorization") != f"Basic {expected}":
            return _json(401, {"error": "bad or missing Basic credentials"})
        version = headers.get("x-experience-api-version", "")
        if not re.fullmatch(r"1\.0\.\d+", version):
            return _json(400, {"error": f"X-Experience-API-Version {version!r} is not 1.0.x"})
        if not headers.get("content-type", "").startswith("application/json"):
            return _json(400, {"error": "Content-Type must be application/json"})
        try:
            document = json.loads(body)
        except ValueError:
            return _json(400, {"error": "the body is not JSON"})
        if method == "PUT":
            statement_id = urllib.parse.parse_qs(route.query).get("statementId", [""])[0]
            if not isinstance(document, dict) or document.get("id", statement_id) != statement_id:
                return _json(400, {"error": "statementId must match the statement's id"})
            document = {**document, "id": statement_id}
        statements = document if isinstance(document, list) else [document]
        if not statements:
            return _json(400, {"error": "no statements"})
        for index, statement in enumerate(statements):
            try:
                check_statement(statement)
                if statement.get("id") in self._refused_ids:
                    raise Refused(f"statement {statement['id']} breaks this LRS's profile")
            except Refused as error:
                return _json(400, {"error": f"statement {index}: {error}"})
        with_ids = [{"id": str(uuid.uuid4()), **statement} for statement in statements]
        ids = [statement["id"].lower() for statement in with_ids]
        if len(set(ids)) != len(ids):
            return _json(400, {"error": "two statements of the batch share an id"})
        for statement_id, statement in zip(ids, with_ids, strict=True):
            known = self.stored.get(statement_id)
            if known is None:
                continue
            if self.conflict_on_known or _comparable(known) != _comparable(statement):
                return _json(409, {"error": f"statement {statement_id} is already stored"})
        for statement_id, statement in zip(ids, with_ids, strict=True):
            self.stored.setdefault(statement_id, statement)
        self.batches.append(Batch(method, with_ids))
        if method == "PUT":
            return Answer(204)
        return _json(200, ids)


def _comparable(statement: dict[str, Any]) -> dict[str, Any]:
    """What two statements of one id must share (Data 2.3.1: not `stored`, `authority`,
    `version`)."""
    return {
        key: value
        for key, value in statement.items()
        if key not in ("stored", "authority", "version")
    }
