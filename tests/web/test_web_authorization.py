"""The web app's authorization matrix, generated from its route table.

`WEB_WHO` says who may use every page and form. From it alone, every route is called:
- by an anonymous browser: pages for anyone answer (200, or 404 for a made-up id),
  the others send it to the sign-in page (303 to `/login?next=...`);
- every POST without the CSRF token (403), and with it but from another site (403);
- by a signed-in student with made-up ids: never a 500, and the pages for instructors
  and admins refuse (403).

What a page shows is what the API answers its user, so a student who changes an id in
a URL gets the API's refusal; the area tests (`test_<area>.py`) check that with real
objects of another user.
"""

from __future__ import annotations

import re
import uuid
from enum import StrEnum

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.models.identity import Role
from tests.identity.helpers import account
from tests.support.authorization import routes_of, sample_path
from tests.web.routes import web_routes


class WebWho(StrEnum):
    anyone = "anyone"  # a page anyone may see (its data may depend on who asks)
    signed_in = "signed-in users"  # a page or form for any signed-in user
    instructor = "instructors and admins"
    admin = "admins"


# Who may use each route ("METHOD path"). POST routes are forms: all of them need the
# CSRF token, whoever may use them.
WEB_WHO: dict[str, WebWho] = {
    "GET /": WebWho.anyone,
    "GET /login": WebWho.anyone,
    "POST /login": WebWho.anyone,
    "POST /login/mfa": WebWho.anyone,
    "POST /logout": WebWho.signed_in,
    "POST /language": WebWho.anyone,
    "GET /catalog": WebWho.anyone,
    "GET /courses/{course_id}": WebWho.anyone,
    "POST /courses/{course_id}/enroll": WebWho.signed_in,
    "GET /live/token": WebWho.signed_in,
    "GET /live/courses/{course_id}/chat": WebWho.signed_in,
    "GET /live/courses/{course_id}/announcements": WebWho.signed_in,
    "POST /live/courses/{course_id}/chat/mutes/{user_id}/delete": WebWho.signed_in,
    "GET /notifications": WebWho.signed_in,
    "GET /notifications/badge": WebWho.signed_in,
    "POST /notifications/read-all": WebWho.signed_in,
    "POST /notifications/{notification_id}/read": WebWho.signed_in,
    "POST /notifications/{notification_id}/delete": WebWho.signed_in,
    "GET /admin": WebWho.admin,
    "GET /admin/users": WebWho.admin,
    "POST /admin/users/{user_id}": WebWho.admin,
    "GET /admin/webhooks": WebWho.admin,
    "POST /admin/webhooks": WebWho.admin,
    "GET /admin/webhooks/{endpoint_id}": WebWho.admin,
    "POST /admin/webhooks/{endpoint_id}": WebWho.admin,
    "POST /admin/webhooks/{endpoint_id}/test": WebWho.admin,
    "POST /admin/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver": WebWho.admin,
    "GET /admin/jobs": WebWho.admin,
    "POST /admin/jobs/retry": WebWho.admin,
    "POST /admin/jobs/cancel": WebWho.admin,
    "GET /admin/orders": WebWho.admin,
    "GET /admin/orders/{order_id}": WebWho.admin,
    "POST /admin/orders/{order_id}/refund": WebWho.admin,
    "GET /admin/revenue": WebWho.admin,
    "GET /learn": WebWho.signed_in,
    "GET /learn/courses/{course_id}": WebWho.signed_in,
    "GET /learn/courses/{course_id}/files/{file_id}": WebWho.signed_in,
    "GET /learn/lessons/{lesson_id}": WebWho.anyone,
    "POST /learn/lessons/{lesson_id}/complete": WebWho.signed_in,
    "POST /learn/tutor/conversations": WebWho.signed_in,
    "GET /learn/tutor/conversations/{conversation_id}": WebWho.signed_in,
    "POST /learn/tutor/conversations/{conversation_id}/messages": WebWho.signed_in,
    "GET /learn/quizzes/{quiz_id}": WebWho.signed_in,
    "POST /learn/quizzes/{quiz_id}/attempts": WebWho.signed_in,
    "GET /learn/attempts/{attempt_id}": WebWho.signed_in,
    "POST /learn/attempts/{attempt_id}/submit": WebWho.signed_in,
    "GET /learn/attempts/{attempt_id}/result": WebWho.signed_in,
    "GET /learn/assignments/{assignment_id}": WebWho.signed_in,
    "POST /learn/assignments/{assignment_id}/submission": WebWho.signed_in,
    "GET /learn/certificates": WebWho.signed_in,
    "GET /learn/certificates/{code}/pdf": WebWho.signed_in,
    "GET /certificates/{code}": WebWho.anyone,
    # account
    "GET /signup": WebWho.anyone,
    "POST /signup": WebWho.anyone,
    "GET /verify-email": WebWho.anyone,
    "POST /verify-email": WebWho.anyone,
    "POST /account/verify-email/resend": WebWho.signed_in,
    "GET /forgot-password": WebWho.anyone,
    "POST /forgot-password": WebWho.anyone,
    "GET /reset-password": WebWho.anyone,
    "POST /reset-password": WebWho.anyone,
    "GET /account": WebWho.signed_in,
    "POST /account/profile": WebWho.signed_in,
    "POST /account/avatar": WebWho.signed_in,
    "GET /avatars/{user_id}": WebWho.signed_in,
    "GET /account/security": WebWho.signed_in,
    "POST /account/password": WebWho.signed_in,
    "POST /account/mfa/setup": WebWho.signed_in,
    "POST /account/mfa/enable": WebWho.signed_in,
    "POST /account/mfa/disable": WebWho.signed_in,
    "POST /account/sessions/{session_id}/revoke": WebWho.signed_in,
    "POST /account/sessions/revoke-others": WebWho.signed_in,
    "GET /account/notifications": WebWho.signed_in,
    "POST /account/notifications": WebWho.signed_in,
    "GET /account/delete": WebWho.signed_in,
    "POST /account/delete": WebWho.signed_in,
    "GET /account/orders": WebWho.signed_in,
    "GET /account/orders/{order_id}": WebWho.signed_in,
    "GET /account/orders/{order_id}/receipt": WebWho.signed_in,
    "POST /courses/{course_id}/buy": WebWho.signed_in,
    # teach
    "GET /teach": WebWho.instructor,
    "POST /teach/courses": WebWho.instructor,
    "POST /teach/preview": WebWho.instructor,
    "GET /teach/courses/{course_id}": WebWho.instructor,
    "POST /teach/courses/{course_id}": WebWho.instructor,
    "POST /teach/courses/{course_id}/publish": WebWho.instructor,
    "POST /teach/courses/{course_id}/archive": WebWho.instructor,
    "POST /teach/courses/{course_id}/modules": WebWho.instructor,
    "POST /teach/courses/{course_id}/modules/{module_id}/rename": WebWho.instructor,
    "POST /teach/courses/{course_id}/modules/{module_id}/delete": WebWho.instructor,
    "POST /teach/courses/{course_id}/modules/{module_id}/move": WebWho.instructor,
    "POST /teach/courses/{course_id}/modules/{module_id}/lessons": WebWho.instructor,
    "POST /teach/courses/{course_id}/lessons/{lesson_id}/move": WebWho.instructor,
    "GET /teach/lessons/{lesson_id}": WebWho.instructor,
    "POST /teach/lessons/{lesson_id}": WebWho.instructor,
    "POST /teach/lessons/{lesson_id}/delete": WebWho.instructor,
    "GET /teach/courses/{course_id}/files": WebWho.instructor,
    "POST /teach/courses/{course_id}/files": WebWho.instructor,
    "POST /teach/courses/{course_id}/files/{file_id}/delete": WebWho.instructor,
    "GET /teach/courses/{course_id}/tutor": WebWho.instructor,
    "POST /teach/courses/{course_id}/tutor": WebWho.instructor,
    "GET /teach/courses/{course_id}/assessments": WebWho.instructor,
    "POST /teach/courses/{course_id}/questions": WebWho.instructor,
    "POST /teach/courses/{course_id}/questions/{question_id}/delete": WebWho.instructor,
    "POST /teach/courses/{course_id}/quizzes": WebWho.instructor,
    "POST /teach/courses/{course_id}/quizzes/{quiz_id}/publish": WebWho.instructor,
    "POST /teach/courses/{course_id}/assignments": WebWho.instructor,
    "POST /teach/courses/{course_id}/assignments/{assignment_id}/publish": WebWho.instructor,
    "GET /teach/courses/{course_id}/review": WebWho.instructor,
    "GET /teach/courses/{course_id}/submissions/{submission_id}": WebWho.instructor,
    "POST /teach/courses/{course_id}/submissions/{submission_id}/grade": WebWho.instructor,
    "POST /teach/courses/{course_id}/submissions/{submission_id}/accept": WebWho.instructor,
    "POST /teach/courses/{course_id}/submissions/{submission_id}/release": WebWho.instructor,
    "GET /teach/courses/{course_id}/gradebook": WebWho.instructor,
    "GET /teach/courses/{course_id}/gradebook.csv": WebWho.instructor,
    "GET /teach/courses/{course_id}/announcements": WebWho.instructor,
    "POST /teach/courses/{course_id}/announcements": WebWho.instructor,
    "GET /teach/courses/{course_id}/analytics": WebWho.instructor,
    "GET /teach/courses/{course_id}/analytics/{report}.csv": WebWho.instructor,
}


def _routes() -> list[tuple[str, str, str]]:
    return [(r.key, r.method, sample_path(r)) for r in routes_of(web_routes())]


def test_every_web_route_has_an_entry() -> None:
    keys = {key for key, _, _ in _routes()}
    missing = sorted(keys - WEB_WHO.keys())
    extra = sorted(WEB_WHO.keys() - keys)
    assert not missing, f"web routes without an entry in WEB_WHO: {missing}"
    assert not extra, f"WEB_WHO entries for no route: {extra}"


async def _csrf(client: httpx.AsyncClient) -> str:
    await client.get("/login")
    return str(client.cookies["lyceum_csrf"])


async def test_anonymous_browsers_are_sent_to_sign_in(client: httpx.AsyncClient) -> None:
    token = await _csrf(client)
    wrong = []
    for key, method, path in _routes():
        who = WEB_WHO[key]
        data = {"csrf_token": token} if method == "POST" else None
        response = await client.request(method, path, data=data)
        status = response.status_code
        if who is WebWho.anyone:
            if status >= 500:
                wrong.append(f"{key}: {status} to an anonymous browser")
        else:
            location = response.headers.get("location", "")
            if status != 303 or not location.startswith("/login?next="):
                wrong.append(f"{key}: {status} {location!r} to an anonymous browser")
    assert not wrong, "\n".join(wrong)


async def test_every_form_needs_the_csrf_token(client: httpx.AsyncClient) -> None:
    token = await _csrf(client)
    wrong = []
    for key, method, path in _routes():
        if method != "POST":
            continue
        without = await client.post(path, data={"x": "1"})
        cross = await client.post(
            path, data={"csrf_token": token}, headers={"Origin": "https://evil.example"}
        )
        for name, response in (("no token", without), ("another site", cross)):
            # A signed-in-only form may send an anonymous caller to sign in first.
            if response.status_code not in (403, 303):
                wrong.append(f"{key}: {response.status_code} with {name}")
            if response.status_code == 303 and WEB_WHO[key] is WebWho.anyone:
                wrong.append(f"{key}: 303 with {name}: the form ran")
    assert not wrong, "\n".join(wrong)


async def _signed_in(client: httpx.AsyncClient, connection: AsyncConnection) -> str:
    """Sign a new student in through the web form; answers its CSRF token."""
    student = await account(client, connection, role=Role.student, prefix="web")
    token = await _csrf(client)
    answer = await client.post(
        "/login",
        data={"email": student.email, "password": student.password, "csrf_token": token},
    )
    assert answer.status_code == 303, answer.text
    return token


async def test_signed_in_students_with_made_up_ids(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    token = await _signed_in(client, connection)
    wrong = []
    for key, method, path in _routes():
        if key in ("POST /logout",):
            continue
        data = {"csrf_token": token} if method == "POST" else None
        response = await client.request(method, path, data=data)
        status = response.status_code
        if status >= 500:
            wrong.append(f"{key}: {status}")
        elif WEB_WHO[key] in (WebWho.instructor, WebWho.admin) and status != 403:
            wrong.append(f"{key}: {status} to a student (expected 403)")
        elif status == 303 and response.headers.get("location", "").startswith("/login"):
            wrong.append(f"{key}: a signed-in student was sent to sign in")
        has_id = re.search(r"{\w+(:\w+)?}", key) is not None
        if has_id and status == 200 and method == "GET" and WEB_WHO[key] is not WebWho.anyone:
            wrong.append(f"{key}: 200 for a made-up id")
    assert not wrong, "\n".join(wrong)


async def test_a_page_for_a_course_that_does_not_exist_is_a_404_page(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(f"/courses/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
