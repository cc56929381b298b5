"""The authorization matrix of the whole app, generated from its route table.

`WHO` says, for every route the app answers, who may call it; a route missing from it
fails `test_every_route_has_an_entry` with a message naming it. Routes with an id in
their path also need probe rows: here (`MATRIX`, for the routes of identity, courses,
learning, content, tutor and the infrastructure) or in the domain matrices that
predate this one (learning, chat, assessments: `MATRIX_TABLES`), each a request made
by every kind of caller against one world built once per test, every request inside a
savepoint rolled back afterwards.

From `WHO` alone, every route is also called with made-up ids by an anonymous caller
(401 unless the route is open), by an unverified account (403 `email-not-verified`
on the routes for verified accounts) and by a student (403 on the routes for a role).
"""

from __future__ import annotations

import io
import re
import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI
from PIL import Image
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lyceum.app import create_app
from lyceum.config import Settings
from lyceum.identity.permissions import CurrentUser
from lyceum.kit.runtime import Runtime
from lyceum.models.content import CourseFile, FileStatus
from lyceum.models.courses import Certificate
from lyceum.models.identity import Role, User
from tests.analytics import test_authorization_matrix as analytics_matrix
from tests.assessments import test_authorization_matrix as assessments_matrix
from tests.channels import test_authorization_matrix as channels_matrix
from tests.chat import test_authorization_matrix as chat_matrix
from tests.chat.helpers import member_in
from tests.courses.test_courses import published
from tests.identity.helpers import Account, account, login
from tests.learning import test_authorization_matrix as learning_matrix
from tests.notifications import test_authorization_matrix as notifications_matrix
from tests.payments import test_authorization_matrix as payments_matrix
from tests.payments import test_receipt_authorization as receipts_matrix
from tests.recommendations import test_authorization_matrix as recommendations_matrix
from tests.support.authorization import (
    BY_ROLE,
    OPEN,
    VERIFIED_ONLY,
    Route,
    Row,
    Who,
    problems,
    resolve,
    routes_of,
    sample_path,
)
from tests.support.clock import FrozenClock
from tests.web.routes import web_routes
from tests.webhooks import test_authorization_matrix as webhooks_matrix

API = "/api/v1"

# Who may call each route ("METHOD path" as the router formats it).
WHO: dict[str, Who] = {
    # infrastructure and pages
    "GET /openapi.json": Who.anyone,
    "GET /health/live": Who.anyone,
    "GET /health/ready": Who.anyone,
    "GET /metrics": Who.metrics_scraper,
    "GET /pages/page.css": Who.anyone,
    "GET /docs": Who.anyone,
    "GET /redoc": Who.anyone,
    # identity
    "POST /api/v1/auth/register": Who.anyone,
    "POST /api/v1/auth/login": Who.anyone,
    "POST /api/v1/auth/token": Who.anyone,
    "POST /api/v1/auth/mfa/verify": Who.anyone,
    "POST /api/v1/auth/refresh": Who.anyone,
    "POST /api/v1/auth/logout": Who.signed_in,
    "GET /api/v1/auth/sessions": Who.signed_in,
    "DELETE /api/v1/auth/sessions/{session_id}": Who.owner,
    "POST /api/v1/auth/verify-email": Who.anyone,
    "POST /api/v1/auth/verify-email/resend": Who.signed_in,
    "POST /api/v1/auth/password/forgot": Who.anyone,
    "POST /api/v1/auth/password/reset": Who.anyone,
    "POST /api/v1/auth/password/change": Who.signed_in,
    "POST /api/v1/auth/mfa/setup": Who.signed_in,
    "POST /api/v1/auth/mfa/enable": Who.signed_in,
    "POST /api/v1/auth/mfa/disable": Who.signed_in,
    "GET /api/v1/users/me": Who.signed_in,
    "PATCH /api/v1/users/me": Who.signed_in,
    "PUT /api/v1/users/me/avatar": Who.signed_in,
    "DELETE /api/v1/users/me": Who.signed_in,
    "GET /api/v1/users/{user_id}/avatar": Who.signed_in,
    "GET /api/v1/users": Who.admin,
    "GET /api/v1/users/{user_id}": Who.admin,
    "PATCH /api/v1/users/{user_id}": Who.admin,
    # courses
    "GET /api/v1/courses": Who.anyone,
    "GET /api/v1/courses/popular": Who.anyone,
    "GET /api/v1/courses/teaching": Who.instructor,
    "POST /api/v1/courses": Who.instructor,
    "GET /api/v1/courses/{course_id}": Who.anyone,
    "PATCH /api/v1/courses/{course_id}": Who.course_editor,
    "POST /api/v1/courses/{course_id}/publish": Who.course_editor,
    "POST /api/v1/courses/{course_id}/archive": Who.course_editor,
    "POST /api/v1/courses/{course_id}/instructors": Who.course_owner,
    "DELETE /api/v1/courses/{course_id}/instructors/{user_id}": Who.course_owner,
    "PUT /api/v1/courses/{course_id}/cover": Who.course_editor,
    "GET /api/v1/courses/{course_id}/cover": Who.anyone,
    "GET /api/v1/courses/{course_id}/modules": Who.anyone,
    "POST /api/v1/courses/{course_id}/modules": Who.course_editor,
    "PUT /api/v1/courses/{course_id}/modules/order": Who.course_editor,
    "PATCH /api/v1/courses/{course_id}/modules/{module_id}": Who.course_editor,
    "DELETE /api/v1/courses/{course_id}/modules/{module_id}": Who.course_editor,
    "POST /api/v1/courses/{course_id}/modules/{module_id}/lessons": Who.course_editor,
    "PUT /api/v1/courses/{course_id}/modules/{module_id}/lessons/order": Who.course_editor,
    # previews: anyone who sees the course; the other lessons: its members
    "GET /api/v1/lessons/{lesson_id}": Who.previews_open,
    "PATCH /api/v1/lessons/{lesson_id}": Who.course_editor,
    "DELETE /api/v1/lessons/{lesson_id}": Who.course_editor,
    # learning
    "POST /api/v1/courses/{course_id}/enrollments": Who.signed_in,
    "DELETE /api/v1/courses/{course_id}/enrollments/me": Who.enrolled_learner,
    "GET /api/v1/courses/{course_id}/enrollments": Who.course_editor,
    "GET /api/v1/me/enrollments": Who.signed_in,
    "GET /api/v1/me/export": Who.signed_in,
    "POST /api/v1/lessons/{lesson_id}/complete": Who.enrolled_learner,
    "GET /api/v1/courses/{course_id}/progress": Who.enrolled_learner,
    "GET /api/v1/certificates/{code}": Who.anyone,
    "GET /api/v1/me/certificates": Who.signed_in,
    "GET /api/v1/me/certificates/{code}/pdf": Who.owner,
    "PUT /api/v1/courses/{course_id}/reviews/me": Who.enrolled_learner,
    "DELETE /api/v1/courses/{course_id}/reviews/me": Who.owner,
    "GET /api/v1/courses/{course_id}/reviews": Who.anyone,
    # content
    "POST /api/v1/courses/{course_id}/files": Who.course_editor,
    "GET /api/v1/courses/{course_id}/files": Who.course_member,
    "GET /api/v1/courses/{course_id}/files/{file_id}": Who.course_member,
    "DELETE /api/v1/courses/{course_id}/files/{file_id}": Who.course_editor,
    "POST /api/v1/courses/{course_id}/files/{file_id}/reindex": Who.course_editor,
    "GET /api/v1/courses/{course_id}/files/{file_id}/download": Who.course_member,
    "GET /api/v1/files/{file_id}/content": Who.signed_link,
    "GET /api/v1/courses/{course_id}/indexing": Who.course_member,
    "GET /api/v1/courses/{course_id}/search": Who.course_member,
    # tutor (verified accounts: it costs money per use)
    "POST /api/v1/tutor/conversations": Who.verified,
    "GET /api/v1/tutor/conversations": Who.verified,
    "GET /api/v1/tutor/conversations/{conversation_id}": Who.verified,
    "PATCH /api/v1/tutor/conversations/{conversation_id}": Who.verified,
    "DELETE /api/v1/tutor/conversations/{conversation_id}": Who.verified,
    "POST /api/v1/tutor/conversations/{conversation_id}/messages": Who.verified,
    "GET /api/v1/tutor/courses/{course_id}/settings": Who.course_editor,
    "PATCH /api/v1/tutor/courses/{course_id}/settings": Who.course_editor,
    "GET /api/v1/tutor/usage": Who.instructor,
    # assessments (probed in tests/assessments/test_authorization_matrix.py)
    "POST /api/v1/courses/{course_id}/questions": Who.course_editor,
    "GET /api/v1/courses/{course_id}/questions": Who.course_editor,
    "GET /api/v1/questions/{question_id}": Who.course_editor,
    "PUT /api/v1/questions/{question_id}": Who.course_editor,
    "DELETE /api/v1/questions/{question_id}": Who.course_editor,
    "POST /api/v1/courses/{course_id}/quizzes": Who.course_editor,
    "GET /api/v1/courses/{course_id}/quizzes": Who.course_member,
    "GET /api/v1/quizzes/{quiz_id}": Who.course_member,
    "GET /api/v1/quizzes/{quiz_id}/definition": Who.course_editor,
    "PATCH /api/v1/quizzes/{quiz_id}": Who.course_editor,
    "DELETE /api/v1/quizzes/{quiz_id}": Who.course_editor,
    "POST /api/v1/quizzes/{quiz_id}/attempts": Who.enrolled_learner,
    "GET /api/v1/quizzes/{quiz_id}/attempts/me": Who.course_member,
    "GET /api/v1/quizzes/{quiz_id}/attempts": Who.course_editor,
    "GET /api/v1/attempts/{attempt_id}": Who.owner,
    "PUT /api/v1/attempts/{attempt_id}/answers": Who.owner,
    "POST /api/v1/attempts/{attempt_id}/submit": Who.owner,
    "GET /api/v1/attempts/{attempt_id}/result": Who.owner,
    "GET /api/v1/attempts/{attempt_id}/review": Who.course_editor,
    "POST /api/v1/attempts/{attempt_id}/grades": Who.course_editor,
    "POST /api/v1/courses/{course_id}/assignments": Who.course_editor,
    "GET /api/v1/courses/{course_id}/assignments": Who.course_member,
    "GET /api/v1/assignments/{assignment_id}": Who.course_member,
    "GET /api/v1/assignments/{assignment_id}/definition": Who.course_editor,
    "PATCH /api/v1/assignments/{assignment_id}": Who.course_editor,
    "DELETE /api/v1/assignments/{assignment_id}": Who.course_editor,
    "POST /api/v1/assignments/{assignment_id}/submissions": Who.enrolled_learner,
    "POST /api/v1/assignments/{assignment_id}/submissions/file": Who.enrolled_learner,
    "GET /api/v1/assignments/{assignment_id}/submissions/me": Who.owner,
    "GET /api/v1/assignments/{assignment_id}/submissions": Who.course_editor,
    "GET /api/v1/courses/{course_id}/review-queue": Who.course_editor,
    "GET /api/v1/submissions/{submission_id}": Who.course_editor,
    "POST /api/v1/submissions/{submission_id}/accept": Who.course_editor,
    "PUT /api/v1/submissions/{submission_id}/grade": Who.course_editor,
    "POST /api/v1/submissions/{submission_id}/release": Who.course_editor,
    "GET /api/v1/courses/{course_id}/assessment-audit": Who.course_editor,
    "GET /api/v1/courses/{course_id}/gradebook": Who.course_editor,
    "GET /api/v1/courses/{course_id}/gradebook.csv": Who.course_editor,
    "GET /api/v1/courses/{course_id}/grades/me": Who.enrolled_learner,
    # chat (verified accounts; probed in tests/chat/test_authorization_matrix.py)
    "GET /api/v1/chat/rooms": Who.verified,
    "POST /api/v1/chat/rooms/direct": Who.verified,
    "GET /api/v1/chat/rooms/{room_id}": Who.verified,
    "GET /api/v1/chat/rooms/{room_id}/messages": Who.verified,
    "GET /api/v1/chat/rooms/{room_id}/presence": Who.verified,
    "GET /api/v1/chat/courses/{course_id}/room": Who.verified,
    "DELETE /api/v1/chat/messages/{message_id}": Who.verified,
    "GET /api/v1/chat/courses/{course_id}/mutes": Who.verified,
    "PUT /api/v1/chat/courses/{course_id}/mutes/{user_id}": Who.verified,
    "DELETE /api/v1/chat/courses/{course_id}/mutes/{user_id}": Who.verified,
    # webhooks (admins; probed in tests/webhooks/test_authorization_matrix.py)
    "POST /api/v1/webhooks/endpoints": Who.admin,
    "GET /api/v1/webhooks/endpoints": Who.admin,
    "GET /api/v1/webhooks/endpoints/{endpoint_id}": Who.admin,
    "PATCH /api/v1/webhooks/endpoints/{endpoint_id}": Who.admin,
    "DELETE /api/v1/webhooks/endpoints/{endpoint_id}": Who.admin,
    "POST /api/v1/webhooks/endpoints/{endpoint_id}/secret": Who.admin,
    "GET /api/v1/webhooks/endpoints/{endpoint_id}/deliveries": Who.admin,
    "POST /api/v1/webhooks/endpoints/{endpoint_id}/deliveries/{delivery_id}/redeliver": Who.admin,
    "POST /api/v1/webhooks/endpoints/{endpoint_id}/test": Who.admin,
    # notifications (probed in tests/notifications/test_authorization_matrix.py)
    "GET /api/v1/me/notifications": Who.signed_in,
    "POST /api/v1/me/notifications/read-all": Who.signed_in,
    "POST /api/v1/me/notifications/{notification_id}/read": Who.owner,
    "DELETE /api/v1/me/notifications/{notification_id}": Who.owner,
    "GET /api/v1/me/notification-preferences": Who.signed_in,
    "PATCH /api/v1/me/notification-preferences": Who.signed_in,
    "GET /api/v1/notifications/unsubscribe": Who.signed_link,
    "POST /api/v1/notifications/unsubscribe": Who.signed_link,
    "POST /api/v1/courses/{course_id}/announcements": Who.course_editor,
    "GET /api/v1/courses/{course_id}/announcements": Who.course_member,
    "GET /api/v1/admin/notification-deliveries": Who.admin,
    # notification channels (probed in tests/channels/test_authorization_matrix.py)
    "PUT /api/v1/me/phone": Who.signed_in,
    "POST /api/v1/me/phone/verify": Who.signed_in,
    "GET /api/v1/me/phone": Who.signed_in,
    "DELETE /api/v1/me/phone": Who.signed_in,
    "GET /api/v1/notifications/push/vapid-public-key": Who.signed_in,
    "POST /api/v1/me/push-subscriptions": Who.signed_in,
    "GET /api/v1/me/push-subscriptions": Who.signed_in,
    "GET /api/v1/me/push-subscriptions/{subscription_id}": Who.owner,
    "DELETE /api/v1/me/push-subscriptions/{subscription_id}": Who.owner,
    "POST /api/v1/me/devices": Who.signed_in,
    "GET /api/v1/me/devices": Who.signed_in,
    "GET /api/v1/me/devices/{device_id}": Who.owner,
    "DELETE /api/v1/me/devices/{device_id}": Who.owner,
    # job operations (admins; also tests/system/test_jobops.py)
    "GET /api/v1/admin/jobs/queues": Who.admin,
    "GET /api/v1/admin/jobs/failed": Who.admin,
    "GET /api/v1/admin/jobs/{job_id}": Who.admin,
    "POST /api/v1/admin/jobs/{job_id}/retry": Who.admin,
    "POST /api/v1/admin/jobs/{job_id}/cancel": Who.admin,
    # payments (probed in tests/payments/test_authorization_matrix.py)
    "POST /api/v1/courses/{course_id}/checkout": Who.signed_in,
    "GET /api/v1/me/orders": Who.signed_in,
    "GET /api/v1/me/orders/{order_id}": Who.owner,
    "GET /api/v1/payments/orders": Who.admin,
    "GET /api/v1/payments/orders/{order_id}": Who.admin,
    "POST /api/v1/payments/orders/{order_id}/refunds": Who.instructor,
    "GET /api/v1/payments/orders/{order_id}/refunds": Who.instructor,
    "POST /api/v1/payments/webhooks/{provider}": Who.anyone,
    "POST /api/v1/coupons": Who.instructor,
    "GET /api/v1/coupons": Who.instructor,
    "GET /api/v1/coupons/{coupon_id}": Who.instructor,
    "PATCH /api/v1/coupons/{coupon_id}": Who.instructor,
    "DELETE /api/v1/coupons/{coupon_id}": Who.instructor,
    "GET /pay/sandbox/{checkout_id}": Who.anyone,
    "POST /pay/sandbox/{checkout_id}": Who.signed_link,
    "GET /pay/done": Who.anyone,
    "GET /pay/canceled": Who.anyone,
    # receipts and payment reports (probed in tests/payments/test_receipt_authorization.py)
    "GET /api/v1/me/orders/{order_id}/receipt": Who.owner,
    "GET /api/v1/payments/reports/revenue": Who.instructor,
    "GET /api/v1/payments/reports/revenue.csv": Who.instructor,
    "GET /api/v1/payments/reports/refunds": Who.instructor,
    "GET /api/v1/payments/reports/refunds.csv": Who.instructor,
    "GET /api/v1/payments/reports/coupons": Who.instructor,
    "GET /api/v1/payments/reports/coupons.csv": Who.instructor,
    # xAPI (probed in tests/analytics/test_authorization_matrix.py, XAPI_ROWS): learners
    # read their own statements, instructors their courses', admins all
    "GET /api/v1/analytics/xapi/statements": Who.signed_in,
    # analytics (probed in tests/analytics/test_authorization_matrix.py)
    "POST /api/v1/analytics/events": Who.signed_in,
    # analytics reports (probed in tests/analytics/test_authorization_matrix.py)
    "GET /api/v1/analytics/courses/{course_id}/overview": Who.instructor,
    "GET /api/v1/analytics/courses/{course_id}/lessons": Who.instructor,
    "GET /api/v1/analytics/courses/{course_id}/tutor": Who.instructor,
    "GET /api/v1/analytics/courses/{course_id}/at-risk": Who.instructor,
    "GET /api/v1/analytics/quizzes/{quiz_id}/items": Who.instructor,
    "GET /api/v1/analytics/assignments/{assignment_id}/rubric": Who.instructor,
    "GET /api/v1/me/analytics": Who.signed_in,
    # recommendations (probed in tests/recommendations/test_authorization_matrix.py)
    "GET /api/v1/me/recommendations": Who.signed_in,
    "GET /api/v1/courses/{course_id}/related": Who.anyone,
}

# Closed routes that still look an anonymous caller's course up: a course they cannot
# see (a draft, or none) is 404 to them as to everyone outside it; a published one 401.
ANONYMOUS_LOOKUP = frozenset(
    {
        "GET /api/v1/courses/{course_id}/files",
        "GET /api/v1/courses/{course_id}/files/{file_id}",
    }
)


def anonymous_answer_ok(key: str, status: int | None) -> bool:
    if WHO[key] is Who.previews_open:
        return status in (200, 401, 404)
    if WHO[key] in OPEN:
        return status != 401
    return status == 401 or (key in ANONYMOUS_LOOKUP and status == 404)


CALLERS = ["anonymous", "enrolled", "other_learner", "instructor", "other_instructor", "admin"]
# `enrolled` learns in {course} (taught by `instructor`, with co-instructor {co});
# `other_learner` in {other_course} (taught by `other_instructor`). None: not probed
# here (what it costs is covered elsewhere: the tutor's answers, the search model).
N = None
MATRIX: list[Row] = [
    # infrastructure and pages
    ("GET", "/openapi.json", None, [200] * 6),
    ("GET", "/health/live", None, [200] * 6),
    ("GET", "/metrics", None, [200] * 6),
    ("GET", "/docs", None, [200] * 6),
    # identity: one's own logins; accounts by id for admins
    ("DELETE", "/api/v1/auth/sessions/{spare_session}", None, [401, 204, 404, 404, 404, 404]),
    ("GET", "/api/v1/users/{enrolled_id}", None, [401, 403, 403, 403, 403, 200]),
    (
        "PATCH",
        "/api/v1/users/{enrolled_id}",
        {"role": "student"},
        [401, 403, 403, 403, 403, 200],
    ),
    ("GET", "/api/v1/users", None, [401, 403, 403, 403, 403, 200]),
    ("GET", "/api/v1/users/{enrolled_id}/avatar", None, [401, 404, 404, 404, 404, 404]),
    ("GET", "/api/v1/users/me", None, [401, 200, 200, 200, 200, 200]),
    # courses
    ("GET", "/api/v1/courses", None, [200] * 6),
    ("GET", "/api/v1/courses/popular", None, [200] * 6),
    ("POST", "/api/v1/courses", {"title": "New"}, [401, 403, 403, 201, 201, 201]),
    ("GET", "/api/v1/courses/{draft}", None, [404, 404, 404, 200, 404, 200]),
    ("PATCH", "/api/v1/courses/{draft}", {"subtitle": "x"}, [401, 404, 404, 200, 404, 200]),
    ("POST", "/api/v1/courses/{course}/archive", None, [401, 403, 403, 200, 403, 200]),
    ("POST", "/api/v1/courses/{other_course}/archive", None, [401, 403, 403, 403, 200, 200]),
    (
        "DELETE",
        "/api/v1/courses/{course}/instructors/{co}",
        None,
        [401, 403, 403, 204, 403, 204],
    ),
    # Stored objects are not rolled back with a row: read them before the rows that
    # replace or delete them.
    ("GET", "/api/v1/courses/{course}/cover", None, [200] * 6),
    ("PUT", "/api/v1/courses/{course}/cover", "png", [401, 403, 403, 200, 403, 200]),
    ("GET", "/api/v1/courses/{draft}/modules", None, [404, 404, 404, 200, 404, 200]),
    (
        "PUT",
        "/api/v1/courses/{course}/modules/order",
        {"ids": ["{module}"]},
        [401, 403, 403, 204, 403, 204],
    ),
    ("DELETE", "/api/v1/courses/{course}/modules/{module}", None, [401, 403, 403, 204, 403, 204]),
    # another course's module through this course's path: not found
    (
        "DELETE",
        "/api/v1/courses/{course}/modules/{other_module}",
        None,
        [401, 403, 403, 404, 403, 404],
    ),
    (
        "PATCH",
        "/api/v1/courses/{course}/modules/{other_module}",
        {"title": "Mine now"},
        [401, 403, 403, 404, 403, 404],
    ),
    (
        "POST",
        "/api/v1/courses/{course}/modules/{other_module}/lessons",
        {"title": "L"},
        [401, 403, 403, 404, 403, 404],
    ),
    (
        "PUT",
        "/api/v1/courses/{course}/modules/{module}/lessons/order",
        {"ids": "{lessons}"},
        [401, 403, 403, 204, 403, 204],
    ),
    ("GET", "/api/v1/lessons/{other_locked}", None, [401, 403, 200, 403, 200, 200]),
    ("PATCH", "/api/v1/lessons/{other_locked}", {"title": "x"}, [401, 403, 403, 403, 200, 200]),
    ("DELETE", "/api/v1/lessons/{locked}", None, [401, 403, 403, 204, 403, 204]),
    ("DELETE", "/api/v1/lessons/{other_locked}", None, [401, 403, 403, 403, 204, 204]),
    # learning
    ("POST", "/api/v1/courses/{other_course}/enrollments", None, [401, 201, 409, 201, 201, 201]),
    ("POST", "/api/v1/courses/{draft}/enrollments", None, [401, 404, 404, 409, 404, 409]),
    ("DELETE", "/api/v1/courses/{course}/enrollments/me", None, [401, 204, 404, 404, 404, 404]),
    ("GET", "/api/v1/courses/{other_course}/enrollments", None, [401, 403, 403, 403, 200, 200]),
    ("GET", "/api/v1/courses/{other_course}/progress", None, [401, 403, 200, 403, 403, 403]),
    ("POST", "/api/v1/lessons/{other_locked}/complete", None, [401, 403, 200, 403, 403, 403]),
    ("GET", "/api/v1/certificates/{certificate}", None, [200] * 6),
    ("GET", "/api/v1/me/certificates/{certificate}/pdf", None, [401, 200, 404, 404, 404, 404]),
    (
        "PUT",
        "/api/v1/courses/{other_course}/reviews/me",
        {"rating": 3},
        [401, 403, 201, 403, 403, 403],
    ),
    ("DELETE", "/api/v1/courses/{course}/reviews/me", None, [401, 204, 404, 404, 404, 404]),
    ("GET", "/api/v1/courses/{draft}/reviews", None, [404, 404, 404, 200, 404, 200]),
    # content
    ("POST", "/api/v1/courses/{course}/files", "txt", [401, 403, 403, 201, 403, 201]),
    ("GET", "/api/v1/courses/{course}/files", None, [401, 200, 403, 200, 403, 200]),
    ("GET", "/api/v1/courses/{draft}/files", None, [404, 404, 404, 200, 404, 200]),
    ("GET", "/api/v1/courses/{course}/files/{file}", None, [401, 200, 403, 200, 403, 200]),
    # another course's file through this course's path: not found
    ("GET", "/api/v1/courses/{course}/files/{other_file}", None, [401, 404, 403, 404, 403, 404]),
    (
        "GET",
        "/api/v1/courses/{course}/files/{file}/download",
        None,
        [401, 200, 403, 200, 403, 200],
    ),
    (
        "GET",
        "/api/v1/courses/{course}/files/{other_file}/download",
        None,
        [401, 404, 403, 404, 403, 404],
    ),
    ("GET", "/api/v1/files/{file}/content?{signed_query}", None, [200] * 6),
    ("GET", "/api/v1/files/{file}/content?{forged_query}", None, [403] * 6),
    ("DELETE", "/api/v1/courses/{course}/files/{file}", None, [401, 403, 403, 204, 403, 204]),
    (
        "DELETE",
        "/api/v1/courses/{course}/files/{other_file}",
        None,
        [401, 403, 403, 404, 403, 404],
    ),
    (
        "POST",
        "/api/v1/courses/{course}/files/{file}/reindex",
        None,
        [401, 403, 403, 202, 403, 202],
    ),
    ("GET", "/api/v1/courses/{course}/indexing", None, [401, 200, 403, 200, 403, 200]),
    ("GET", "/api/v1/courses/{course}/search?q=cells", None, [401, N, 403, N, 403, N]),
    # tutor
    (
        "POST",
        "/api/v1/tutor/conversations",
        {"course_id": "{course}"},
        [401, 201, 403, 201, 403, 201],
    ),
    ("GET", "/api/v1/tutor/conversations", None, [401, 200, 200, 200, 200, 200]),
    ("GET", "/api/v1/tutor/conversations/{conversation}", None, [401, 200, 404, 404, 404, 404]),
    (
        "PATCH",
        "/api/v1/tutor/conversations/{conversation}",
        {"title": "Mine"},
        [401, 200, 404, 404, 404, 404],
    ),
    (
        "DELETE",
        "/api/v1/tutor/conversations/{conversation}",
        None,
        [401, 204, 404, 404, 404, 404],
    ),
    (
        "POST",
        "/api/v1/tutor/conversations/{conversation}/messages",
        {"content": "What is a cell?"},
        [401, N, 404, 404, 404, 404],
    ),
    ("GET", "/api/v1/tutor/courses/{course}/settings", None, [401, 403, 403, 200, 403, 200]),
    (
        "PATCH",
        "/api/v1/tutor/courses/{course}/settings",
        {"enabled": True},
        [401, 403, 403, 200, 403, 200],
    ),
    ("GET", "/api/v1/tutor/usage", None, [401, 403, 403, 200, 200, 200]),
    # job operations: admins only (no job 999999999999: 404 to them alone)
    ("GET", "/api/v1/admin/jobs/queues", None, [401, 403, 403, 403, 403, 200]),
    ("GET", "/api/v1/admin/jobs/failed", None, [401, 403, 403, 403, 403, 200]),
    ("GET", "/api/v1/admin/jobs/999999999999", None, [401, 403, 403, 403, 403, 404]),
    ("POST", "/api/v1/admin/jobs/999999999999/retry", None, [401, 403, 403, 403, 403, 404]),
    ("POST", "/api/v1/admin/jobs/999999999999/cancel", None, [401, 403, 403, 403, 403, 404]),
]

# Every probe row of the app, by where it lives (the domain matrices keep their worlds).
MATRIX_TABLES: dict[str, list[Row]] = {
    "tests/test_authorization_matrix.py": MATRIX,
    "tests/learning/test_authorization_matrix.py": learning_matrix.MATRIX,
    "tests/chat/test_authorization_matrix.py": chat_matrix.MATRIX,
    "tests/assessments/test_authorization_matrix.py": [
        (method, API + path, body, expected)
        for method, path, body, expected in assessments_matrix.MATRIX
    ],
    "tests/webhooks/test_authorization_matrix.py": webhooks_matrix.MATRIX,
    "tests/notifications/test_authorization_matrix.py": notifications_matrix.MATRIX,
    "tests/channels/test_authorization_matrix.py": channels_matrix.MATRIX,
    "tests/payments/test_authorization_matrix.py": payments_matrix.MATRIX,
    "tests/payments/test_receipt_authorization.py": receipts_matrix.MATRIX,
    "tests/analytics/test_authorization_matrix.py": analytics_matrix.MATRIX,
    "tests/recommendations/test_authorization_matrix.py": recommendations_matrix.MATRIX,
}


def _app() -> FastAPI:
    return create_app(Settings(database_url=None, log_level="WARNING"))


@cache
def app_routes() -> tuple[Route, ...]:
    """The app's route table, built once (building the app takes a second or two),
    without the web app's pages: those answer browsers (a redirect to the sign-in page,
    HTML errors) and have their own matrix, `tests/web/test_web_authorization.py`."""
    pages = {route.key for route in routes_of(web_routes())}
    return tuple(route for route in routes_of(_app()) if route.key not in pages)


# Completeness --------------------------------------------------------------------------


def test_every_route_has_an_entry() -> None:
    found = problems(list(app_routes()), WHO, MATRIX_TABLES)
    assert not found, "\n".join(found)


def test_a_route_without_an_entry_fails_the_check() -> None:
    app = _app()
    extra = APIRouter()

    @extra.get("/api/v1/courses/{course_id:uuid}/secrets")
    async def course_secrets(course_id: uuid.UUID, caller: CurrentUser) -> None:
        """A route nobody said who may call."""

    app.include_router(extra)
    pages = {route.key for route in routes_of(web_routes())}
    api_routes = [route for route in routes_of(app) if route.key not in pages]
    found = problems(api_routes, WHO, MATRIX_TABLES)
    assert found == [
        "GET /api/v1/courses/{course_id}/secrets has no entry in the authorization matrix "
        "(WHO in tests/test_authorization_matrix.py): say who may call it and add probe rows"
    ]
    # An entry alone is not enough for a route that takes an id: it needs probes.
    with_entry = {**WHO, "GET /api/v1/courses/{course_id}/secrets": Who.course_member}
    assert problems(api_routes, with_entry, MATRIX_TABLES) == [
        "GET /api/v1/courses/{course_id}/secrets takes an id in its path but no probe row of "
        "the authorization matrix calls it: add rows showing who reaches which object"
    ]


def test_probe_rows_agree_with_the_entries() -> None:
    """A row's anonymous column says what `WHO` says: 401 unless the route is open, and
    a non-admin never gets into an admin's route."""
    routes = list(app_routes())
    wrong = []
    for table, rows in MATRIX_TABLES.items():
        for method, template, _, expected in rows:
            route = resolve(routes, method, template)
            assert route is not None
            anonymous = expected[0]
            if not anonymous_answer_ok(route.key, anonymous):
                wrong.append(f"{table}: {method} {template} answers anonymous {anonymous}")
            if WHO[route.key] is Who.admin and any(
                status is not None and status < 400 for status in expected[:-1]
            ):
                wrong.append(f"{table}: {method} {template} lets a non-admin in")
    assert not wrong, "\n".join(wrong)


# Generated probes: every route, made-up ids ---------------------------------------------


async def test_every_closed_route_refuses_anonymous_callers(client: httpx.AsyncClient) -> None:
    wrong = []
    for route in app_routes():
        response = await client.request(route.method, sample_path(route))
        if not anonymous_answer_ok(route.key, response.status_code):
            wrong.append(f"{route.key}: {response.status_code} to an anonymous caller")
        if response.status_code == 401:
            assert response.headers["content-type"] == "application/problem+json"
    assert not wrong, "\n".join(wrong)


async def test_role_and_verification_gates_come_before_any_lookup(
    client: httpx.AsyncClient, connection: AsyncConnection, runtime: Runtime, clock: FrozenClock
) -> None:
    unverified = await member_in(connection, runtime.tokens, clock.now(), Role.student, "Uno")
    await connection.execute(
        update(User).where(User.id == unverified.id).values(email_verified_at=None)
    )
    student = await member_in(connection, runtime.tokens, clock.now(), Role.student, "Stu")
    wrong = []
    for route in app_routes():
        who = WHO[route.key]
        if who in VERIFIED_ONLY:
            response = await client.request(
                route.method, sample_path(route), headers=unverified.headers
            )
            slug = response.json().get("type", "") if response.status_code == 403 else ""
            if not slug.endswith("email-not-verified"):
                wrong.append(f"{route.key}: {response.status_code} to an unverified account")
        if who in BY_ROLE:
            response = await client.request(
                route.method, sample_path(route), headers=student.headers
            )
            if response.status_code != 403:
                wrong.append(f"{route.key}: {response.status_code} to a student")
    assert not wrong, "\n".join(wrong)


# The world and its rows ------------------------------------------------------------------


@dataclass
class World:
    ids: dict[str, Any]
    people: dict[str, Account | None]


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 36), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


async def _upload_text(client: httpx.AsyncClient, course_id: str, who: Account) -> str:
    response = await client.post(
        f"/api/v1/courses/{course_id}/files",
        files={
            "file": (
                f"notes-{uuid.uuid4().hex[:6]}.txt",
                io.BytesIO(b"Cells divide."),
                "text/plain",
            )
        },
        headers=who.headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def build_world(
    client: httpx.AsyncClient, connection: AsyncConnection, runtime: Runtime
) -> World:
    teacher = await account(client, connection, role=Role.instructor, prefix="teacher")
    other_teacher = await account(client, connection, role=Role.instructor, prefix="oi")
    enrolled = await account(client, connection, prefix="enrolled")
    other = await account(client, connection, prefix="other")
    admin = await account(client, connection, role=Role.admin, prefix="admin")
    co = await account(client, connection, role=Role.instructor, prefix="co")
    course, lessons = await published(client, teacher)
    other_course, other_lessons = await published(client, other_teacher)
    draft = await client.post("/api/v1/courses", json={"title": "Draft"}, headers=teacher.headers)
    for who, where in ((enrolled, course), (other, other_course)):
        joined = await client.post(
            f"/api/v1/courses/{where['id']}/enrollments", headers=who.headers
        )
        assert joined.status_code == 201, joined.text
    added = await client.post(
        f"/api/v1/courses/{course['id']}/instructors",
        json={"user_id": str(co.id)},
        headers=teacher.headers,
    )
    assert added.status_code == 204, added.text
    cover = await client.put(
        f"/api/v1/courses/{course['id']}/cover",
        files={"file": ("cover.png", io.BytesIO(_png()), "image/png")},
        headers=teacher.headers,
    )
    assert cover.status_code == 200, cover.text
    file_id = await _upload_text(client, course["id"], teacher)
    other_file = await _upload_text(client, other_course["id"], other_teacher)
    await connection.execute(
        update(CourseFile)
        .where(CourseFile.id.in_([uuid.UUID(file_id), uuid.UUID(other_file)]))
        .values(status=FileStatus.ready)
    )
    review = await client.put(
        f"/api/v1/courses/{course['id']}/reviews/me", json={"rating": 5}, headers=enrolled.headers
    )
    assert review.status_code == 201, review.text
    code = f"LYC-{uuid.uuid4().hex[:4].upper()}-TEST-0001"
    key = f"certificates/{code}.pdf"
    await runtime.storage.put(key, b"%PDF-1.4 test", "application/pdf")
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as db:
        db.add(
            Certificate(
                code=code,
                user_id=enrolled.id,
                course_id=uuid.UUID(course["id"]),
                learner_name="Ada Lovelace",
                course_title=course["title"],
                instructor_name="Grace",
                issued_at=FrozenClock().now(),
                storage_key=key,
            )
        )
        await db.commit()
    conversation = await client.post(
        "/api/v1/tutor/conversations", json={"course_id": course["id"]}, headers=enrolled.headers
    )
    assert conversation.status_code == 201, conversation.text
    await login(client, enrolled.email)  # a second login of the learner's, to revoke
    sessions = await client.get("/api/v1/auth/sessions", headers=enrolled.headers)
    spare = next(s["id"] for s in sessions.json()["items"] if not s["current"])
    link = await client.get(
        f"/api/v1/courses/{course['id']}/files/{file_id}/download", headers=enrolled.headers
    )
    assert link.status_code == 200, link.text
    signed_query = httpx.URL(link.json()["url"]).query.decode()
    forged_query = re.sub(r"signature=[^&]+", "signature=forged", signed_query)
    modules = course["modules"]
    other_modules = other_course["modules"]
    people: dict[str, Account | None] = {
        "anonymous": None,
        "enrolled": enrolled,
        "other_learner": other,
        "instructor": teacher,
        "other_instructor": other_teacher,
        "admin": admin,
    }
    ids: dict[str, Any] = {
        "course": course["id"],
        "other_course": other_course["id"],
        "draft": draft.json()["id"],
        "module": modules[0]["id"],
        "other_module": other_modules[0]["id"],
        "lessons": lessons,
        "locked": lessons[1],
        "other_locked": other_lessons[1],
        "co": str(co.id),
        "enrolled_id": str(enrolled.id),
        "file": file_id,
        "other_file": other_file,
        "certificate": code,
        "conversation": conversation.json()["id"],
        "spare_session": spare,
        "signed_query": signed_query,
        "forged_query": forged_query,
    }
    return World(ids, people)


def _fill(value: Any, ids: dict[str, Any]) -> Any:
    if isinstance(value, str):
        whole = re.fullmatch(r"{(\w+)}", value)
        if whole and not isinstance(ids[whole.group(1)], str):
            return ids[whole.group(1)]
        return value.format(**ids)
    if isinstance(value, dict):
        return {key: _fill(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, ids) for item in value]
    return value


async def _call(
    client: httpx.AsyncClient, method: str, path: str, body: Any, who: Account | None
) -> httpx.Response:
    headers = who.headers if who is not None else {}
    if body == "png":
        files = {"file": ("cover.png", io.BytesIO(_png()), "image/png")}
        return await client.request(method, path, files=files, headers=headers)
    if body == "txt":
        files = {"file": ("more.txt", io.BytesIO(b"Mitochondria."), "text/plain")}
        return await client.request(method, path, files=files, headers=headers)
    return await client.request(method, path, json=body, headers=headers)


async def test_authorization_matrix(
    client: httpx.AsyncClient, connection: AsyncConnection, runtime: Runtime
) -> None:
    world = await build_world(client, connection, runtime)
    mismatches = []
    for method, template, body, expected in MATRIX:
        path = _fill(template, world.ids)
        filled = _fill(body, world.ids) if body not in ("png", "txt") else body
        for who, status in zip(CALLERS, expected, strict=True):
            if status is None:
                continue
            row = await connection.begin_nested()
            try:
                response = await _call(client, method, path, filled, world.people[who])
            finally:
                await row.rollback()
            if response.status_code >= 400:
                assert response.headers["content-type"] == "application/problem+json", path
            if response.status_code != status:
                mismatches.append(
                    f"{method} {template} as {who}: {response.status_code}, expected {status} "
                    f"({response.text[:160]})"
                )
    assert not mismatches, "\n".join(mismatches)
