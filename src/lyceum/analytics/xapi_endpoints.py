"""`GET /analytics/xapi/statements`: learning events as xAPI 1.0.3 statements, in the
Statement Resource's own result shape, for LRSs and learning-analytics tools to pull.

The answer is xAPI's StatementResult, `{"statements": [...], "more": "<relative URL>"}`
(xAPI-Data 2.5), not Lyceum's `items` envelope: xAPI clients (and LRS importers) read
that shape, and `more` is how they page. `more` is "" on the last page; otherwise the
path and an opaque `cursor` that carries the query and its position, usable for as long
as the events are kept (no server state).

Paging is stable while events keep arriving: a query's first page fixes a horizon (the
oldest transaction then running) and every page lists only events of transactions
below it, in (stored, id) order; that set can no longer change, so no statement is
skipped or repeated across pages. Events that arrive meanwhile are in the next query
(`since` = the `X-Experience-API-Consistent-Through` answered, or the last `stored`).

Who sees what: admins every statement (or one course's); instructors the statements of
the courses they teach (owner or co-instructor), all of them without `course`, one with
it (403 for a course they do not teach, 404 for an unknown one or another's draft);
learners only their own (the filter is forced; `course` narrows it, and another
learner's statements are never in it whatever the ids asked for).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from typing import Annotated, Any, Literal

from fastapi import Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lyceum.analytics.xapi import XAPI_VERSION, statement, timestamp
from lyceum.analytics.xapi_repository import (
    StatementFilter,
    StatementScope,
    consistent_through,
    horizon,
    statement_events,
)
from lyceum.courses.permissions import Courses
from lyceum.identity.permissions import CurrentUser, RuntimeDep
from lyceum.kit.db import Session
from lyceum.kit.errors import Invalid
from lyceum.kit.routing import Router
from lyceum.kit.validation import IsoDateTime
from lyceum.models.identity import Role, User

router = Router(tags=["analytics"])

MAX_LIMIT = 500
DEFAULT_LIMIT = 100
MAX_CURSOR_CHARS = 600
BIGINT_MAX = 2**63 - 1


# The statement's published shape (xAPI-Data 2.4): what a client generator types. -----


class _XapiModel(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class XapiAccount(_XapiModel):
    """The learner's account on this deployment: never their email address."""

    home_page: str = Field(alias="homePage", description="This deployment's public base URL.")
    name: str = Field(description="The user's id.")


class XapiAgent(_XapiModel):
    object_type: Literal["Agent"] = Field(alias="objectType")
    account: XapiAccount


class XapiVerb(_XapiModel):
    id: str = Field(description="The verb's IRI (ADL's vocabulary where it has one).")
    display: dict[str, str] = Field(description="Language map (`en-US`).")


class XapiActivityDefinition(_XapiModel):
    type: str = Field(description="The activity type's IRI.")


class XapiActivity(_XapiModel):
    object_type: Literal["Activity"] = Field(alias="objectType")
    id: str = Field(description="The activity's IRI, under this deployment's base URL.")
    definition: XapiActivityDefinition | None = None


class XapiScore(_XapiModel):
    raw: float
    min: float | None = None
    max: float | None = None
    scaled: float | None = Field(default=None, description="raw / max, in [0, 1].")


class XapiResult(_XapiModel):
    score: XapiScore | None = None
    success: bool | None = None
    completion: bool | None = None
    response: str | None = None
    duration: str | None = Field(default=None, description="ISO 8601 duration, e.g. PT12.5S.")
    extensions: dict[str, Any] | None = None


class XapiContextActivities(_XapiModel):
    parent: list[XapiActivity] | None = None
    grouping: list[XapiActivity] | None = None


class XapiContext(_XapiModel):
    platform: str
    context_activities: XapiContextActivities | None = Field(
        default=None, alias="contextActivities"
    )
    extensions: dict[str, Any]


class XapiStatement(_XapiModel):
    """One learning event as an xAPI 1.0.3 statement (README: xAPI)."""

    id: uuid.UUID
    actor: XapiAgent
    verb: XapiVerb
    object: XapiActivity
    result: XapiResult | None = None
    context: XapiContext
    timestamp: str = Field(description="When it happened (UTC, ISO 8601).")
    stored: str = Field(description="When Lyceum received it (UTC, ISO 8601).")
    version: Literal["1.0.0"]


class XapiStatementResult(_XapiModel):
    """xAPI's StatementResult: this page's statements and where the next page is."""

    statements: list[XapiStatement]
    more: str = Field(description='The next page\'s relative URL; "" on the last page.')


# The cursor: the query and its position, opaque to clients. ---------------------------


class _Cursor(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    h: int = Field(ge=0, le=BIGINT_MAX)  # the horizon (a transaction id)
    r: dt.datetime  # the last stored time listed
    i: int = Field(ge=0, le=BIGINT_MAX)  # the last event id listed
    s: dt.datetime | None = None
    u: dt.datetime | None = None
    c: uuid.UUID | None = None
    n: int = Field(ge=1, le=MAX_LIMIT)


def _encode(cursor: _Cursor) -> str:
    raw = cursor.model_dump_json(exclude_none=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(value: str) -> _Cursor:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        return _Cursor.model_validate(json.loads(raw))
    except (binascii.Error, ValueError, ValidationError, UnicodeDecodeError):
        raise _invalid_cursor() from None


def _invalid_cursor() -> Invalid:
    return Invalid(
        "Not a cursor this feed made: follow `more` as it was answered.",
        field="query.cursor",
        slug="invalid-cursor",
    )


async def _scope(caller: User, courses: Courses, course_id: uuid.UUID | None) -> StatementScope:
    """What the caller may read (the module docstring says who sees what)."""
    course_ids = [course_id] if course_id is not None else None
    if caller.role is Role.student:
        return StatementScope(user_id=caller.id, course_ids=course_ids, as_learner=True)
    if course_id is not None:
        await courses.editable_course(course_id, caller)  # 404 or 403 to anyone else
        return StatementScope(course_ids=course_ids)
    if caller.role is Role.admin:
        return StatementScope()
    return StatementScope(taught_by=caller.id)


@router.get(
    "/analytics/xapi/statements",
    summary="Learning events as xAPI 1.0.3 statements (StatementResult, paged by `more`)",
    description=(
        "Learners get their own statements, instructors those of the courses they teach "
        "(all of them, or `course`), admins every statement. Ordered by `stored` then id; "
        "the answer is xAPI's StatementResult, `{statements, more}`: follow `more` (a "
        'relative URL, "" on the last page) for the next page; no statement is skipped '
        "or repeated across pages while events keep arriving. Headers: "
        "`X-Experience-API-Version: 1.0.3` and `X-Experience-API-Consistent-Through` "
        "(every statement stored before it is in the feed)."
    ),
    response_class=Response,
    responses={
        200: {
            "model": XapiStatementResult,
            "description": "One page of statements",
            "headers": {
                "X-Experience-API-Version": {"schema": {"type": "string"}},
                "X-Experience-API-Consistent-Through": {
                    "schema": {"type": "string", "format": "date-time"}
                },
            },
        }
    },
)
async def xapi_statements(
    request: Request,
    caller: CurrentUser,
    courses: Courses,
    session: Session,
    runtime: RuntimeDep,
    since: Annotated[
        IsoDateTime | None,
        Query(description="Only statements stored after this time (ISO 8601, exclusive)."),
    ] = None,
    until: Annotated[
        IsoDateTime | None,
        Query(description="Only statements stored at or before this time (ISO 8601)."),
    ] = None,
    course: Annotated[uuid.UUID | None, Query(description="One course's statements.")] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="Statements per page (1-500).")
    ] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        Query(
            max_length=MAX_CURSOR_CHARS,
            pattern="^[A-Za-z0-9_-]+$",
            description="The next page, as `more` gives it (it carries the query).",
        ),
    ] = None,
) -> Response:
    if cursor is not None:
        position = _decode(cursor)
        if position.h > await horizon(session):
            # A horizon no first page can have made: past it lie rows of transactions
            # still running (a forged cursor would page them and fake Consistent-Through).
            raise _invalid_cursor()
        since, until, course, limit = position.s, position.u, position.c, position.n
        page = StatementFilter(
            horizon=position.h,
            since=since,
            until=until,
            after=(position.r, position.i),
            limit=limit,
        )
    else:
        page = StatementFilter(
            horizon=await horizon(session), since=since, until=until, after=None, limit=limit
        )
    scope = await _scope(caller, courses, course)
    events = await statement_events(session, scope, page)
    listed = events[:limit]
    more = ""
    if len(events) > limit:
        last = listed[-1]
        following = _Cursor(
            h=page.horizon,
            r=last.event.received_at,
            i=last.event.id,
            s=since,
            u=until,
            c=course,
            n=limit,
        )
        more = f"{request.url.path}?cursor={_encode(following)}"
    base_url = runtime.settings.base_url()
    body = {
        "statements": [
            statement(row.event, base_url=base_url, hide_score=row.hide_score) for row in listed
        ],
        "more": more,
    }
    through = await consistent_through(session, page.horizon)
    return Response(
        json.dumps(body, separators=(",", ":")),
        media_type="application/json",
        headers={
            "X-Experience-API-Version": XAPI_VERSION,
            "X-Experience-API-Consistent-Through": timestamp(through),
        },
    )
