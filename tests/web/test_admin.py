"""The admin pages in a real browser: an admin makes a student an instructor, registers a
webhook endpoint (its secret shown once) and works its deliveries, looks at jobs,
refunds a sandbox order and reads the revenue; a student is refused every admin page."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.web.conftest import WebServer, audit, fits, shot, sign_in
from tests.web.test_live import signed_in_page, verified_learner

ADMIN_PAGES = (
    "/admin",
    "/admin/users",
    "/admin/webhooks",
    "/admin/jobs",
    "/admin/orders",
    "/admin/revenue",
)


class _Receiver(BaseHTTPRequestHandler):
    received: list[bytes] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        _Receiver.received.append(self.rfile.read(length))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"thanks")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    """A webhook receiver on this machine (the web server allows private networks)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hooks/{uuid.uuid4().hex[:6]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_admin_makes_a_student_an_instructor(context: Any, web: WebServer) -> None:
    person = verified_learner(web, "Gia")
    learner = signed_in_page(context, person.email, person.password)
    learner.goto("/catalog")
    expect(learner.get_by_role("link", name="Teach")).to_have_count(0)

    admin = signed_in_page(context, *web.accounts["admin"])
    admin.goto("/admin")
    audit(admin)
    shot(admin, "admin-home")
    admin.get_by_role("link", name="Users").first.click()
    admin.get_by_label("Name or email").fill(person.email)
    admin.get_by_role("button", name="Search", exact=True).click()
    admin.wait_for_url(re.compile(r"q="))
    row = admin.locator("tbody tr", has_text=person.email)
    expect(row).to_have_count(1)
    audit(admin)
    shot(admin, "admin-users")
    row.get_by_label(f"Role of {person.full_name}").select_option("instructor")
    row.get_by_role("button", name=re.compile(r"^Change role")).click()
    admin.get_by_role("status").filter(has_text=person.email).wait_for()
    row = admin.locator("tbody tr", has_text=person.email)
    expect(row.get_by_label(f"Role of {person.full_name}")).to_have_value("instructor")
    audit(admin)

    learner.reload()
    expect(learner.get_by_role("link", name="Teach")).to_be_visible()

    # Deactivate and activate again.
    row.get_by_role("button", name=re.compile(r"^Deactivate")).click()
    admin.get_by_role("status").filter(has_text=person.email).wait_for()
    row = admin.locator("tbody tr", has_text=person.email)
    expect(row.get_by_role("button", name=re.compile(r"^Activate"))).to_be_visible()
    row.get_by_role("button", name=re.compile(r"^Activate")).click()
    admin.locator("tbody tr", has_text=person.email).get_by_role(
        "button", name=re.compile(r"^Deactivate")
    ).wait_for()


def test_webhook_endpoints_and_their_deliveries(
    context: Any, web: WebServer, receiver: str
) -> None:
    admin = signed_in_page(context, *web.accounts["admin"])
    admin.goto("/admin/webhooks")
    audit(admin)
    admin.get_by_label("URL").fill(receiver)
    admin.get_by_label("Description").fill("<i>Test</i> receiver")
    admin.get_by_label("enrollment.created").check()
    admin.get_by_role("button", name="Create endpoint").click()
    secret = admin.locator("#webhook-secret")
    secret.wait_for()
    shown = secret.inner_text().strip()
    assert len(shown) >= 16
    expect(admin.locator("main i")).to_have_count(0)  # the description is text
    audit(admin)
    shot(admin, "admin-webhook-created")

    # Shown once: not on the list again, nor on the endpoint's page.
    admin.goto("/admin/webhooks")
    assert shown not in admin.content()
    admin.get_by_role("link", name=receiver).first.click()
    admin.get_by_role("heading", name="Deliveries").wait_for()
    assert shown not in admin.content()

    # A test event: its delivery is logged, and reaches the receiver.
    admin.get_by_role("button", name="Send a test event").click()
    admin.get_by_role("status").filter(has_text="test event").wait_for()
    admin.locator("tbody tr", has_text="webhook.test").first.wait_for()
    audit(admin)
    shot(admin, "admin-webhook")
    admin.locator("tbody tr", has_text="webhook.test").first.get_by_role(
        "button", name="Redeliver"
    ).click()
    admin.get_by_role("status").filter(has_text="queued again").wait_for()

    # Edit: turn it off, change its events.
    admin.get_by_label("Active").uncheck()
    admin.get_by_label("certificate.issued").check()
    admin.get_by_role("button", name="Save").click()
    admin.get_by_role("status").filter(has_text="Saved").wait_for()
    expect(admin.get_by_label("Active")).not_to_be_checked()
    expect(admin.get_by_label("certificate.issued")).to_be_checked()
    audit(admin)

    # A URL Lyceum will not call is refused on the form.
    admin.goto("/admin/webhooks")
    admin.get_by_label("URL").fill("ftp://example.com/x")
    admin.get_by_label("enrollment.created").check()
    admin.get_by_role("button", name="Create endpoint").click()
    admin.get_by_role("alert").wait_for()
    audit(admin)


def test_jobs_orders_refunds_and_revenue(context: Any, web: WebServer) -> None:
    teacher = web.api(*web.accounts["instructor"])
    created = teacher.post(
        "/courses",
        json={
            "title": f"Priced {uuid.uuid4().hex[:6]}",
            "price": {"amount_cents": 1999, "currency": "USD"},
        },
    )
    assert created.status_code == 201, created.text
    course = created.json()
    module = teacher.post(f"/courses/{course['id']}/modules", json={"title": "M"}).json()
    teacher.post(
        f"/courses/{course['id']}/modules/{module['id']}/lessons",
        json={"title": "L", "content": "text"},
    )
    assert teacher.post(f"/courses/{course['id']}/publish").status_code == 200
    buyer = verified_learner(web, "Hoa")
    order = buyer.api.post(
        f"/courses/{course['id']}/checkout", headers={"Idempotency-Key": str(uuid.uuid4())}
    )
    assert order.status_code == 201, order.text
    buyer_page = signed_in_page(context, buyer.email, buyer.password)
    buyer_page.goto(order.json()["checkout_url"])
    buyer_page.get_by_role("button", name=re.compile(r"^Pay")).click()
    buyer_page.wait_for_load_state()

    admin = signed_in_page(context, *web.accounts["admin"])
    admin.goto("/admin/jobs")
    admin.get_by_role("heading", name="Queues").wait_for()
    audit(admin)
    shot(admin, "admin-jobs")
    admin.get_by_label("Job number").fill("999999999")
    admin.get_by_role("button", name="Cancel job").click()
    admin.get_by_role("alert").wait_for()  # no such job: the API's answer, shown
    audit(admin)

    admin.goto("/admin/orders?status=paid")
    link = admin.get_by_role("link", name=course["title"])
    link.wait_for()
    audit(admin)
    shot(admin, "admin-orders")
    link.click()
    admin.get_by_role("heading", name="Refund this order").wait_for()
    audit(admin)
    admin.get_by_label("Amount in minor units (cents)").fill("500")
    admin.get_by_label("Reason").fill("Part of the course was missing")
    admin.get_by_role("button", name="Refund", exact=True).click()
    admin.locator("tbody tr", has_text="Part of the course was missing").wait_for()
    expect(admin.locator("dl")).to_contain_text("partially_refunded")
    audit(admin)
    shot(admin, "admin-order-refunded")

    admin.goto("/admin/revenue")
    admin.get_by_role("heading", name="Totals").wait_for()
    expect(admin.locator("table", has_text=course["title"]).first).to_be_visible()
    audit(admin)
    shot(admin, "admin-revenue")


def test_students_are_refused_the_admin_pages(context: Any, web: WebServer) -> None:
    student = signed_in_page(context, *web.accounts["student"])
    for path in ADMIN_PAGES:
        answer = student.goto(path)
        assert answer is not None and answer.status == 403, path
    expect(student.get_by_role("link", name="Admin")).to_have_count(0)
    audit(student)
    shot(student, "admin-refused")
    client = httpx.Client(base_url=web.url, timeout=30)
    client.get("/login")
    token = client.cookies["lyceum_csrf"]
    email, password = web.accounts["student"]
    client.post("/login", data={"email": email, "password": password, "csrf_token": token})
    changed = client.post(
        f"/admin/users/{uuid.uuid4()}", data={"role": "admin", "csrf_token": token}
    )
    assert changed.status_code == 403


def test_admin_pages_on_a_phone(context: Any, web: WebServer) -> None:
    page = context(viewport={"width": 375, "height": 740}).new_page()
    sign_in(page, *web.accounts["admin"])
    for path in ADMIN_PAGES:
        page.goto(path)
        page.get_by_role("heading", level=1).wait_for()
        fits(page, 375)
        audit(page)
    page.goto("/admin/users")
    shot(page, "admin-users-phone")
