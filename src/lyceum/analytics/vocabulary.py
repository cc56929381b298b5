"""The analytics event vocabulary: what a learner did (`Verb`) to what (`ObjectType`).

Apps post the client verbs (`CLIENT_VERBS`); the platform records the server verbs
itself, in the transaction of the fact (an enrollment, a graded quiz, ...), so a report
never depends on an app having said so. Each verb and object type names the xAPI IRI
it is published under (ADL's vocabulary where it has one, then the community profiles
registered with it: TinCan, xAPI Video, ACRossX).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Source(enum.StrEnum):
    client = "client"
    server = "server"


class Verb(enum.StrEnum):
    # Sent by apps.
    viewed = "viewed"
    started = "started"
    paused = "paused"
    resumed = "resumed"
    answered = "answered"
    searched = "searched"
    downloaded = "downloaded"
    # Recorded by the platform.
    enrolled = "enrolled"
    completed = "completed"
    passed = "passed"
    failed = "failed"
    scored = "scored"
    asked = "asked"
    commented = "commented"


class ObjectType(enum.StrEnum):
    course = "course"
    lesson = "lesson"
    file_page = "file_page"
    quiz = "quiz"
    quiz_item = "quiz_item"
    assignment = "assignment"
    catalog = "catalog"
    chat_room = "chat_room"


@dataclass(frozen=True)
class VerbInfo:
    iri: str
    display: str
    description: str


VERBS: dict[Verb, VerbInfo] = {
    Verb.viewed: VerbInfo(
        "http://id.tincanapi.com/verb/viewed",
        "viewed",
        "The learner looked at a course page, a lesson or a file page (with the time spent).",
    ),
    Verb.started: VerbInfo(
        "http://adlnet.gov/expapi/verbs/attempted",
        "started",
        "The learner started a lesson's video or reading, or a quiz.",
    ),
    Verb.paused: VerbInfo(
        "https://w3id.org/xapi/video/verbs/paused",
        "paused",
        "The learner paused a lesson's video or reading (duration: time since started).",
    ),
    Verb.resumed: VerbInfo(
        "http://adlnet.gov/expapi/verbs/resumed",
        "resumed",
        "The learner came back to a paused lesson.",
    ),
    Verb.answered: VerbInfo(
        "http://adlnet.gov/expapi/verbs/answered",
        "answered",
        "The learner answered a quiz item in the app (the graded answer is the server's).",
    ),
    Verb.searched: VerbInfo(
        "https://w3id.org/xapi/acrossx/verbs/searched",
        "searched",
        "The learner searched the catalog or a course (the terms in context.query).",
    ),
    Verb.downloaded: VerbInfo(
        "http://id.tincanapi.com/verb/downloaded",
        "downloaded",
        "The learner downloaded a course file.",
    ),
    Verb.enrolled: VerbInfo(
        "http://adlnet.gov/expapi/verbs/registered",
        "enrolled",
        "The learner enrolled in a course (recorded by the platform).",
    ),
    Verb.completed: VerbInfo(
        "http://adlnet.gov/expapi/verbs/completed",
        "completed",
        "The learner completed a lesson or a whole course (recorded by the platform).",
    ),
    Verb.passed: VerbInfo(
        "http://adlnet.gov/expapi/verbs/passed",
        "passed",
        "A quiz attempt was graded as passed, with its score (recorded by the platform).",
    ),
    Verb.failed: VerbInfo(
        "http://adlnet.gov/expapi/verbs/failed",
        "failed",
        "A quiz attempt was graded as failed, with its score (recorded by the platform).",
    ),
    Verb.scored: VerbInfo(
        "http://adlnet.gov/expapi/verbs/scored",
        "scored",
        "An essay's grade was released, with its score (recorded by the platform).",
    ),
    Verb.asked: VerbInfo(
        "http://adlnet.gov/expapi/verbs/asked",
        "asked",
        "The learner asked the tutor; result.answered says whether the course material had"
        " the answer (recorded by the platform).",
    ),
    Verb.commented: VerbInfo(
        "http://adlnet.gov/expapi/verbs/commented",
        "commented",
        "The learner wrote in a course chat room (recorded by the platform).",
    ),
}

CLIENT_VERBS: frozenset[Verb] = frozenset(
    {
        Verb.viewed,
        Verb.started,
        Verb.paused,
        Verb.resumed,
        Verb.answered,
        Verb.searched,
        Verb.downloaded,
    }
)
SERVER_VERBS: frozenset[Verb] = frozenset(Verb) - CLIENT_VERBS

ACTIVITY_TYPES: dict[ObjectType, str] = {
    ObjectType.course: "http://adlnet.gov/expapi/activities/course",
    ObjectType.lesson: "http://adlnet.gov/expapi/activities/lesson",
    ObjectType.file_page: "http://id.tincanapi.com/activitytype/document",
    ObjectType.quiz: "http://adlnet.gov/expapi/activities/assessment",
    ObjectType.quiz_item: "http://adlnet.gov/expapi/activities/cmi.interaction",
    ObjectType.assignment: "http://adlnet.gov/expapi/activities/assessment",
    ObjectType.catalog: "http://id.tincanapi.com/activitytype/search-engine",
    ObjectType.chat_room: "http://id.tincanapi.com/activitytype/chat-channel",
}
