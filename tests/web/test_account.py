"""The account pages in a real browser: signing up and verifying by the mailed link,
resetting a forgotten password, MFA, signing out everywhere, buying a course with the
sandbox provider, and another student's order staying out of reach."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import httpx
import pyotp
from playwright.sync_api import expect

from tests.web.conftest import WebServer, audit, fits, shot, sign_in


def _password() -> str:
    return f"learner passphrase {uuid.uuid4().hex[:10]}"


def _new_account(web: WebServer, name: str = "Web Learner") -> tuple[str, str]:
    """A fresh student registered through the API: (email, password)."""
    email = f"acct-{uuid.uuid4().hex[:10]}@web.test"
    password = _password()
    answer = web.api().post(
        "/auth/register", json={"email": email, "password": password, "full_name": name}
    )
    assert answer.status_code == 201, answer.text
    return email, password


def _priced_course(web: WebServer, cents: int = 1990) -> dict[str, Any]:
    """A published course with a price, made by the demo instructor through the API."""
    api = web.api(*web.accounts["instructor"])
    title = f"Paid course {uuid.uuid4().hex[:8]}"
    course = api.post(
        "/courses",
        json={
            "title": title,
            "description": "A course that costs money.",
            "price": {"amount_cents": cents, "currency": "USD"},
        },
    )
    assert course.status_code == 201, course.text
    course_id = course.json()["id"]
    module = api.post(f"/courses/{course_id}/modules", json={"title": "Only module"})
    assert module.status_code == 201, module.text
    lesson = api.post(
        f"/courses/{course_id}/modules/{module.json()['id']}/lessons",
        json={"title": "Only lesson", "content": "# Hello\n\nThe lesson."},
    )
    assert lesson.status_code == 201, lesson.text
    published = api.post(f"/courses/{course_id}/publish")
    assert published.status_code == 200, published.text
    return dict(course.json())


def test_a_new_learner_signs_up_and_verifies_by_the_mailed_link(page: Any, web: WebServer) -> None:
    email = f"signup-{uuid.uuid4().hex[:10]}@web.test"
    page.goto("/")
    page.get_by_role("link", name="Sign up").click()
    page.wait_for_url(re.compile(r"/signup"))
    audit(page)
    shot(page, "account-signup")
    page.get_by_label("Full name").fill("Ada <b>Lovelace</b>")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(_password())
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url(re.compile(r"/account\?welcome=1"))
    expect(page.locator(".badge.unverified")).to_be_visible()
    # The name is text, not markup.
    expect(page.get_by_label("Full name")).to_have_value("Ada <b>Lovelace</b>")
    expect(page.locator("header.site").get_by_text("Ada <b>Lovelace</b>")).to_be_visible()
    audit(page)
    shot(page, "account-profile-unverified")

    link = web.link_in_mail(email, "Confirm your email", "/verify-email")
    page.goto(link)
    audit(page)
    shot(page, "account-verify-email")
    page.get_by_role("button", name="Confirm my email").click()
    expect(
        page.get_by_role("status").get_by_text("Your email address is confirmed.")
    ).to_be_visible()
    audit(page)
    page.get_by_role("link", name="Go to your account").click()
    page.wait_for_url(re.compile(r"/account$"))
    expect(page.locator(".badge.verified")).to_have_text("Verified")
    expect(page.get_by_text(email)).to_be_visible()
    audit(page)
    shot(page, "account-profile")


def test_a_used_verification_link_says_so(page: Any, web: WebServer) -> None:
    page.goto("/verify-email?token=" + "x" * 40)
    page.get_by_role("button", name="Confirm my email").click()
    expect(page.get_by_role("alert")).to_be_visible()
    audit(page)


def test_forgot_and_reset_password_through_the_mail(page: Any, web: WebServer) -> None:
    email, _old = _new_account(web)
    page.goto("/login")
    page.get_by_role("link", name="Forgot your password?").click()
    page.wait_for_url(re.compile(r"/forgot-password"))
    audit(page)
    shot(page, "account-forgot-password")
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("status")).to_be_visible()
    audit(page)

    link = web.link_in_mail(email, "Reset your", "/reset-password")
    page.goto(link)
    audit(page)
    shot(page, "account-reset-password")
    new_password = _password()
    page.get_by_label("New password").fill(new_password)
    page.get_by_role("button", name="Set the new password").click()
    expect(page.get_by_role("status")).to_be_visible()
    audit(page)
    sign_in(page, email, new_password)
    page.goto("/account")
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_profile_and_notification_preferences(page: Any, web: WebServer) -> None:
    email, password = _new_account(web)
    sign_in(page, email, password)
    page.goto("/account")
    page.get_by_label("About you").fill("I like <script>alert(1)</script> proofs.")
    page.get_by_label("Time zone").select_option("Asia/Ho_Chi_Minh")
    page.get_by_role("button", name="Save profile").click()
    page.wait_for_url(re.compile(r"/account\?saved=1"))
    expect(page.get_by_label("About you")).to_have_value("I like <script>alert(1)</script> proofs.")
    expect(page.get_by_label("Time zone")).to_have_value("Asia/Ho_Chi_Minh")

    # A picture: a tiny PNG made here.
    png = _png()
    page.get_by_label("New picture (PNG, JPEG or WebP)").set_input_files(
        {"name": "me.png", "mimeType": "image/png", "buffer": png}
    )
    # The image is decoded and resized in a sandboxed process: slow on a busy machine.
    page.get_by_role("button", name="Upload picture").click(timeout=90_000)
    page.wait_for_url(re.compile(r"/account\?saved=1"), timeout=90_000)
    avatar = page.get_by_role("img", name="Your picture")
    avatar.wait_for()
    # Decoded, not a broken image: waited for, the picture may still be arriving.
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=avatar.element_handle()
    )
    audit(page)

    page.get_by_role("link", name="Notifications", exact=True).last.click()
    page.wait_for_url(re.compile(r"/account/notifications"))
    audit(page)
    shot(page, "account-notifications")
    page.get_by_label("Weekly digest: Email").uncheck()
    page.get_by_label("Hold notifications during quiet hours").check()
    page.get_by_label("From").fill("21:30")
    page.get_by_label("Until").fill("06:45")
    page.get_by_role("button", name="Save notification settings").click()
    page.wait_for_url(re.compile(r"saved=1"))
    expect(page.get_by_label("Weekly digest: Email")).not_to_be_checked()
    expect(page.get_by_label("Security: Email")).to_be_disabled()
    expect(page.get_by_label("From")).to_have_value("21:30")
    expect(page.get_by_label("Time zone")).to_have_value("Asia/Ho_Chi_Minh")
    audit(page)


def test_mfa_enable_then_sign_in_with_a_code(context: Any, web: WebServer) -> None:
    email, password = _new_account(web)
    page = context().new_page()
    sign_in(page, email, password)
    page.goto("/account/security")
    audit(page)
    page.get_by_role("button", name="Set up two-factor authentication").click()
    secret = page.locator("#mfa-secret").inner_text().strip()
    expect(page.get_by_role("img", name="QR code of your two-factor secret")).to_be_visible()
    audit(page)
    shot(page, "account-mfa-setup")
    totp = pyotp.TOTP(secret)
    page.get_by_label("The 6-digit code the app shows").fill(
        "000000" if totp.now() != "000000" else "111111"
    )
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("alert")).to_be_visible()  # a wrong code: the same secret again
    expect(page.locator("#mfa-secret")).to_have_text(secret)
    # The password is asked again: a wrong one turns nothing on.
    page.get_by_label("The 6-digit code the app shows").fill(totp.now())
    page.get_by_label("Password").fill("not my password")
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("alert")).to_contain_text("password is incorrect")
    expect(page.locator("#mfa-secret")).to_have_text(secret)
    page.get_by_label("The 6-digit code the app shows").fill(totp.now())
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Turn on").click()
    expect(page.locator(".codes li")).to_have_count(10)
    recovery_code = page.locator(".codes li").first.inner_text().strip()
    audit(page)
    shot(page, "account-mfa-codes")

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(web.url + "/")
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Two-step sign-in").wait_for()
    # The next step's code (each step is usable once; the enabling code used this one).
    page.get_by_label("Code").fill(totp.at(time.time() + 30))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(lambda url: "/login" not in url)
    page.goto("/account/security")
    expect(page.get_by_text("Signing in asks for a code")).to_be_visible()
    audit(page)
    # Turned off again with the password and a recovery code.
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_label("Code from your app, or a recovery code").fill(recovery_code)
    page.get_by_role("button", name="Turn off two-factor authentication").click()
    expect(
        page.get_by_role("status").get_by_text("Two-factor authentication is off.")
    ).to_be_visible()


def test_sign_out_everywhere_ends_the_other_browser(context: Any, web: WebServer) -> None:
    email, password = _new_account(web)
    first = context().new_page()
    second = context().new_page()
    sign_in(first, email, password)
    sign_in(second, email, password)
    second.goto("/account")
    expect(second.get_by_role("heading", name="Your account")).to_be_visible()

    first.goto("/account/security")
    expect(first.locator(".session").nth(1)).to_be_visible()  # two sessions or more
    expect(first.get_by_text("This browser")).to_have_count(1)
    audit(first)
    shot(first, "account-security")
    first.get_by_role("button", name="Sign out everywhere else").click()
    expect(
        first.get_by_role("status").get_by_text("Every other session is signed out.")
    ).to_be_visible()
    expect(first.locator(".session")).to_have_count(1)

    second.goto("/account")
    second.wait_for_url(re.compile(r"/login\?next="))
    expect(second.get_by_role("heading", name="Sign in")).to_be_visible()
    first.goto("/account")
    expect(first.get_by_role("heading", name="Your account")).to_be_visible()


def test_buying_a_priced_course_with_the_sandbox(context: Any, web: WebServer) -> None:
    course = _priced_course(web, cents=1990)
    email, password = _new_account(web)
    page = context(accept_downloads=True).new_page()
    sign_in(page, email, password)
    page.goto(f"/courses/{course['id']}")
    buy = page.get_by_role("button", name=re.compile(r"Buy for .*19\.90"))
    audit(page)
    shot(page, "account-course-buy")
    buy.click()
    page.wait_for_url(re.compile(r"/pay/sandbox/"))
    shot(page, "account-sandbox-checkout")
    page.get_by_role("button", name=re.compile(r"^Pay")).click()
    page.wait_for_url(re.compile(r"/pay/done"))
    page.get_by_role("link", name="Your orders").click()
    page.wait_for_url(re.compile(r"/account/orders\?paid="))
    expect(page.get_by_role("status").get_by_text("You are enrolled")).to_be_visible()
    row = page.locator("table.orders tbody tr", has_text=course["title"])
    expect(row.get_by_text("Paid", exact=True)).to_be_visible()
    expect(row).to_contain_text("19.90")
    audit(page)
    shot(page, "account-orders")

    with page.expect_download() as download_info:
        row.get_by_role("link", name=re.compile(r"Receipt")).click()
    download = download_info.value
    with open(download.path(), "rb") as handle:
        assert handle.read(5) == b"%PDF-"

    row.get_by_role("link", name=course["title"]).click()
    page.wait_for_url(re.compile(r"/account/orders/[0-9a-f-]{36}$"))
    audit(page)
    shot(page, "account-order")

    page.goto(f"/courses/{course['id']}")
    expect(page.get_by_role("link", name="Continue learning")).to_be_visible()
    orders = web.api(email, password).get("/me/orders").json()["items"]
    assert [o["status"] for o in orders] == ["paid"]  # one order, paid


def test_a_double_submitted_buy_form_is_one_checkout(web: WebServer) -> None:
    course = _priced_course(web)
    email, password = _new_account(web)
    browser = httpx.Client(base_url=web.url, timeout=30)
    browser.get("/login")
    token = browser.cookies["lyceum_csrf"]
    signed = browser.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}
    )
    assert signed.status_code == 303
    key = uuid.uuid4().hex
    first = browser.post(f"/courses/{course['id']}/buy", data={"csrf_token": token, "key": key})
    second = browser.post(f"/courses/{course['id']}/buy", data={"csrf_token": token, "key": key})
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert "/pay/sandbox/" in first.headers["location"]
    orders = web.api(email, password).get("/me/orders").json()["items"]
    assert len(orders) == 1 and orders[0]["status"] == "pending"


def _paid_order(web: WebServer, email: str, password: str) -> dict[str, Any]:
    """A paid order of this student, bought through the API and the sandbox's form."""
    course = _priced_course(web)
    api = web.api(email, password)
    order = api.post(
        f"/courses/{course['id']}/checkout",
        json={},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert order.status_code == 201, order.text
    checkout_url = order.json()["checkout_url"]
    plain = httpx.Client(timeout=30)
    form = plain.get(checkout_url).text
    match = re.search(r'name="token" value="([^"]+)"', form)
    assert match
    paid = plain.post(checkout_url, data={"token": match.group(1), "action": "pay"})
    assert paid.status_code == 303
    return dict(api.get(f"/me/orders/{order.json()['id']}").json())


def test_another_students_order_and_receipt_are_refused(context: Any, web: WebServer) -> None:
    owner = _new_account(web, "Order Owner")
    order = _paid_order(web, *owner)
    assert order["status"] == "paid"
    other = context().new_page()
    sign_in(other, *_new_account(web, "Curious Student"))
    for path in (f"/account/orders/{order['id']}", f"/account/orders/{order['id']}/receipt"):
        response = other.goto(path)
        assert response is not None and response.status in (403, 404), path
        assert order["course_title"] not in other.content()
    audit(other)
    shot(other, "account-order-refused")
    mine = context().new_page()
    sign_in(mine, *owner)
    response = mine.goto(f"/account/orders/{order['id']}")
    assert response is not None and response.status == 200
    expect(mine.get_by_role("heading", name=re.compile(order["course_title"]))).to_be_visible()


def _png() -> bytes:
    import struct
    import zlib

    width = height = 32
    raw = b"".join(b"\x00" + b"\x1d\x4e\xd8" * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def test_change_the_password_then_delete_the_account(page: Any, web: WebServer) -> None:
    email, password = _new_account(web)
    sign_in(page, email, password)
    page.goto("/account/security")
    new_password = _password()
    page.get_by_label("Current password").fill("not my password")
    page.get_by_label("New password").fill(new_password)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("alert")).to_be_visible()
    audit(page)
    page.get_by_label("Current password").fill(password)
    page.get_by_label("New password").fill(new_password)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("status").get_by_text("Your password is changed.")).to_be_visible()

    page.goto("/account")
    page.get_by_role("link", name="Delete my account…").click()
    page.wait_for_url(re.compile(r"/account/delete"))
    audit(page)
    shot(page, "account-delete")
    # The password is asked again: a wrong one deletes nothing.
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Delete my account").click()
    expect(page.get_by_role("alert")).to_contain_text("password is incorrect")
    page.get_by_label("Password").fill(new_password)
    page.get_by_role("button", name="Delete my account").click()
    page.wait_for_url(re.compile(r"/\?deleted=1"))
    expect(page.get_by_role("link", name="Sign in").first).to_be_visible()
    refused = web.api().post("/auth/login", json={"email": email, "password": new_password})
    assert refused.status_code == 401


def test_account_pages_speak_vietnamese(web: WebServer) -> None:
    plain = httpx.Client(base_url=web.url, timeout=30)
    for path, text in (
        ("/signup", "Họ và tên"),
        ("/forgot-password", "Gửi liên kết"),
        ("/reset-password?token=" + "x" * 40, "Đặt mật khẩu mới"),
        ("/verify-email?token=" + "x" * 40, "Xác nhận email của tôi"),
    ):
        response = plain.get(path, headers={"Accept-Language": "vi"})
        assert response.status_code == 200, path
        assert text in response.text, path
        assert "script-src 'self'" in response.headers["content-security-policy"]


def test_account_pages_fit_a_phone(context: Any, web: WebServer) -> None:
    email, password = _new_account(web)
    page = context(viewport={"width": 375, "height": 800}).new_page()
    sign_in(page, email, password)
    for path in ("/account", "/account/security", "/account/notifications", "/account/orders"):
        page.goto(path)
        fits(page, 375)
        audit(page)
    shot(page, "account-orders-phone")
