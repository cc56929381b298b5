"""Every `201 Created` carries a `Location` naming the created resource. The route table
says which operations can answer 201; the test makes each of them do so through the real
app and follows the Location it got. A new 201 route fails here until it is driven too."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lyceum.config import Settings
from lyceum.kit.runtime import Runtime
from lyceum.models.identity import Role
from tests.assessments.helpers import GOOD_ESSAY, assignment_body, single_choice
from tests.conftest import client_for, make_app
from tests.content.helpers import Person, pdf_pages, person
from tests.identity.helpers import unique_email
from tests.payments.helpers import pay_on_page
from tests.support.channel_fakes import browser_keys
from tests.support.clock import FrozenClock
from tests.support.jobs import run_jobs, with_settings

API = "/api/v1"


def operations_answering_201(schema: dict[str, Any]) -> set[str]:
    return {
        operation["operationId"]
        for item in schema["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict) and "201" in operation.get("responses", {})
    }


@pytest.fixture
async def http(settings: Settings, runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The app on committed data: the tutor stores its answer on a connection of its own."""
    await runtime.rate_limiter.reset()
    app = make_app(settings, runtime, None)
    app.state.clock = FrozenClock()
    async with client_for(app) as client:
        yield client
    await run_jobs()  # the mails, indexing and scoring this test queued


class Created:
    """Each 201 answer, by operation id, with who made it."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.answers: dict[str, tuple[httpx.Response, dict[str, str]]] = {}

    async def expect(
        self, operation: str, method: str, url: str, who: Person | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        headers = who.headers if who else {}
        response = await self.http.request(method, url, headers=headers, **kwargs)
        assert response.status_code == 201, (operation, response.text)
        self.answers[operation] = (response, headers)
        body: dict[str, Any] = response.json()
        return body


async def test_every_created_answer_says_where_the_resource_is(
    http: httpx.AsyncClient, runtime: Runtime, tmp_path: Path
) -> None:
    created = Created(http)
    await created.expect(
        "register",
        "POST",
        f"{API}/auth/register",
        json={"email": unique_email(), "password": "a long passphrase", "full_name": "Ada"},
    )
    teacher = await person(http, runtime, Role.instructor)
    learner = await person(http, runtime)
    # An account's URL is for admins to read.
    admin = await person(http, runtime, Role.admin)
    created.answers["register"] = (created.answers["register"][0], admin.headers)

    course = await created.expect(
        "create_course", "POST", f"{API}/courses", teacher, json={"title": "Optics"}
    )
    module = await created.expect(
        "add_module", "POST", f"{API}/courses/{course['id']}/modules", teacher, json={"title": "A"}
    )
    await created.expect(
        "add_lesson",
        "POST",
        f"{API}/courses/{course['id']}/modules/{module['id']}/lessons",
        teacher,
        json={"title": "Light", "content": "Light travels in straight lines."},
    )
    await created.expect(
        "upload_file",
        "POST",
        f"{API}/courses/{course['id']}/files",
        teacher,
        files={"file": ("notes.txt", b"Refraction bends light.", "text/plain")},
    )
    question = await created.expect(
        "create_question",
        "POST",
        f"{API}/courses/{course['id']}/questions",
        teacher,
        json=single_choice(),
    )
    quiz = await created.expect(
        "create_quiz",
        "POST",
        f"{API}/courses/{course['id']}/quizzes",
        teacher,
        json={"title": "Check", "published": True, "sections": [{"question_id": question["id"]}]},
    )
    text_essay = await created.expect(
        "create_assignment",
        "POST",
        f"{API}/courses/{course['id']}/assignments",
        teacher,
        json=assignment_body(),
    )
    published = await http.post(f"{API}/courses/{course['id']}/publish", headers=teacher.headers)
    assert published.status_code == 200, published.text

    await created.expect("enroll", "POST", f"{API}/courses/{course['id']}/enrollments", learner)
    await created.expect(
        "put_review", "PUT", f"{API}/courses/{course['id']}/reviews/me", learner, json={"rating": 5}
    )
    await created.expect("start_attempt", "POST", f"{API}/quizzes/{quiz['id']}/attempts", learner)
    await created.expect(
        "submit_essay",
        "POST",
        f"{API}/assignments/{text_essay['id']}/submissions",
        learner,
        json={"text": GOOD_ESSAY},
    )
    file_essay = await http.post(
        f"{API}/courses/{course['id']}/assignments",
        json=assignment_body(title="The same, as a file"),
        headers=teacher.headers,
    )
    await created.expect(
        "submit_essay_file",
        "POST",
        f"{API}/assignments/{file_essay.json()['id']}/submissions/file",
        learner,
        files={"file": ("essay.pdf", pdf_pages([GOOD_ESSAY]), "application/pdf")},
    )
    conversation = await created.expect(
        "start_conversation",
        "POST",
        f"{API}/tutor/conversations",
        learner,
        json={"course_id": course["id"]},
    )
    await created.expect(
        "ask",
        "POST",
        f"{API}/tutor/conversations/{conversation['id']}/messages",
        learner,
        json={"content": "Does light bend?"},
    )
    await created.expect(
        "open_direct_room",
        "POST",
        f"{API}/chat/rooms/direct",
        learner,
        json={"user_id": str(teacher.id)},
    )
    await created.expect(
        "post_announcement",
        "POST",
        f"{API}/courses/{course['id']}/announcements",
        teacher,
        json={"title": "Welcome", "body": "Hello"},
    )
    await created.expect(
        "mute_chat_user",
        "PUT",
        f"{API}/chat/courses/{course['id']}/mutes/{learner.id}",
        teacher,
        json={"minutes": 5},
    )
    await created.expect(
        "create_webhook_endpoint",
        "POST",
        f"{API}/webhooks/endpoints",
        admin,
        # Inactive: no other test's events are delivered to it.
        json={
            "url": "https://hooks.example.com/created",
            "event_types": ["announcement.published"],
            "is_active": False,
        },
    )
    # Paid courses: a priced course bought on the sandbox, refunded, and a coupon for it.
    priced = await created.expect(
        "create_course",
        "POST",
        f"{API}/courses",
        teacher,
        json={"title": "Paid optics", "price": {"amount_cents": 1500, "currency": "EUR"}},
    )
    priced_module = await http.post(
        f"{API}/courses/{priced['id']}/modules", json={"title": "A"}, headers=teacher.headers
    )
    await http.post(
        f"{API}/courses/{priced['id']}/modules/{priced_module.json()['id']}/lessons",
        json={"title": "Prisms", "content": "Prisms split light."},
        headers=teacher.headers,
    )
    opened = await http.post(f"{API}/courses/{priced['id']}/publish", headers=teacher.headers)
    assert opened.status_code == 200, opened.text
    await created.expect(
        "create_coupon",
        "POST",
        f"{API}/coupons",
        teacher,
        json={"code": "CREATED10", "kind": "percent", "percent_off": 10, "course_id": priced["id"]},
    )
    bought = await http.post(
        f"{API}/courses/{priced['id']}/checkout",
        json={},
        headers={**learner.headers, "Idempotency-Key": "created-checkout"},
    )
    assert bought.status_code == 201, bought.text
    created.answers["checkout_course"] = (bought, learner.headers)
    await pay_on_page(http, bought.json()["checkout_url"])
    refunded = await http.post(
        f"{API}/payments/orders/{bought.json()['id']}/refunds",
        json={"amount": 500, "reason": "created test"},
        headers={**admin.headers, "Idempotency-Key": "created-refund"},
    )
    assert refunded.status_code == 201, refunded.text
    created.answers["refund_order"] = (refunded, admin.headers)

    await created.expect(
        "add_push_subscription",
        "POST",
        f"{API}/me/push-subscriptions",
        learner,
        json={
            "endpoint": "https://push.example.org/send/created-test",
            "keys": browser_keys(),
        },
    )
    # Devices register only where FCM is configured: that app, on the same database.
    fcm_runtime = with_settings(
        runtime, fcm_service_account_file=tmp_path / "firebase-service-account.json"
    )
    fcm_app = make_app(fcm_runtime.settings, fcm_runtime, None)
    fcm_app.state.clock = FrozenClock()
    async with client_for(fcm_app) as with_fcm:
        answer = await with_fcm.post(
            f"{API}/me/devices",
            json={"token": "created-test-" + "x" * 40, "platform": "android"},
            headers=learner.headers,
        )
    assert answer.status_code == 201, answer.text
    created.answers["add_device"] = (answer, learner.headers)

    await created.expect(
        "post_announcement",
        "POST",
        f"{API}/courses/{course['id']}/announcements",
        teacher,
        json={"title": "Welcome", "body": "The first lesson is *open*."},
    )

    schema = (await http.get("/openapi.json")).json()
    assert created.answers.keys() == operations_answering_201(schema)
    for operation, (response, headers) in created.answers.items():
        location = response.headers.get("location")
        assert location and location.startswith(f"{API}/"), operation
        # The created resource is there: read it back, or (for a resource written with
        # PUT or PATCH that has no GET of its own) its route answers with what it allows.
        followed = await http.get(location, headers=headers)
        if followed.status_code == 405:
            assert followed.headers["allow"], operation
        else:
            assert followed.status_code == 200, (operation, location, followed.text)
    # The subscription's push service is not there: the announcement's push, run when
    # the test is done, finds nothing to send to instead of retrying for minutes.
    subscription, headers = created.answers["add_push_subscription"]
    removed = await http.delete(subscription.headers["location"], headers=headers)
    assert removed.status_code == 204, removed.text


def test_the_route_table_is_read_from_the_schema() -> None:
    schema = {
        "paths": {
            "/a": {"post": {"operationId": "make_a", "responses": {"201": {}, "4XX": {}}}},
            "/b": {"get": {"operationId": "read_b", "responses": {"200": {}}}},
            "/c": {"parameters": [], "put": {"operationId": "put_c", "responses": {"201": {}}}},
        }
    }
    assert operations_answering_201(schema) == {"make_a", "put_c"}
