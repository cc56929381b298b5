"""The public pages in a real browser: home, catalog search, a course's page, signing in
and out; and the browser session's defences (cookie flags, CSRF, CSP, escaping)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
from playwright.sync_api import expect

from tests.web.conftest import WebServer, audit, fits, shot, sign_in


def test_home_and_catalog_search_in_the_browser(page: Any, web: WebServer) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    audit(page)
    shot(page, "home")
    page.get_by_role("link", name="Catalog").first.click()
    page.get_by_label("Search").fill("python")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"q=python"))
    cards = page.locator(".course-card")
    expect(cards.first).to_be_visible()
    expect(page.locator(".course-card mark").first).to_be_visible()  # hits highlighted
    audit(page)
    shot(page, "catalog-search")
    cards.first.get_by_role("link").click()
    page.get_by_role("heading", name="Syllabus").wait_for()
    audit(page)
    shot(page, "course-page")


def test_sign_in_and_out_with_the_session_cookie(context: Any, web: WebServer) -> None:
    browser_context = context()
    page = browser_context.new_page()
    sign_in(page, *web.accounts["student"])
    cookies = {c["name"]: c for c in browser_context.cookies()}
    session = cookies["lyceum_session"]
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Lax"
    assert cookies["lyceum_csrf"]["httpOnly"] is True
    page.goto("/catalog")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(web.url + "/")
    assert "lyceum_session" not in {c["name"] for c in browser_context.cookies()}
    expect(page.get_by_role("link", name="Sign in").first).to_be_visible()


def test_a_wrong_password_is_shown_on_the_form(page: Any, web: WebServer) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(web.accounts["student"][0])
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_be_visible()
    assert "/login" in page.url
    audit(page)


def _csrf_client(web: WebServer) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=web.url, timeout=30)
    client.get("/login")
    return client, client.cookies["lyceum_csrf"]


def test_state_changing_forms_need_the_csrf_token(web: WebServer) -> None:
    client, token = _csrf_client(web)
    email, password = web.accounts["student"]
    missing = client.post("/login", data={"email": email, "password": password})
    assert missing.status_code == 403
    wrong = client.post(
        "/login", data={"email": email, "password": password, "csrf_token": "x" * 43}
    )
    assert wrong.status_code == 403
    other_site = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": token},
        headers={"Origin": "https://evil.example"},
    )
    assert other_site.status_code == 403
    assert "lyceum_session" not in client.cookies
    ok = client.post("/login", data={"email": email, "password": password, "csrf_token": token})
    assert ok.status_code == 303
    assert "lyceum_session" in client.cookies
    # Signed in, a form without the token still does nothing: sign-out is refused.
    refused = client.post("/logout")
    assert refused.status_code == 403
    assert client.get("/catalog").text.count("Sign out") == 1  # still signed in


def test_pages_carry_a_strict_content_security_policy(web: WebServer) -> None:
    answer = httpx.get(web.url + "/catalog")
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy
    assert "<script>" not in answer.text  # no inline script at all
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", answer.text)
    assert " style=" not in answer.text


def test_a_course_title_with_markup_is_shown_as_text(page: Any, web: WebServer) -> None:
    title = f'<img src=x onerror="document.title=1">Markup {uuid.uuid4().hex[:6]}'
    api = web.api(*web.accounts["instructor"])
    created = api.post(
        "/courses",
        json={"title": title, "description": "<script>alert(1)</script> **bold**"},
    )
    assert created.status_code == 201, created.text
    course_id = created.json()["id"]
    module = api.post(f"/courses/{course_id}/modules", json={"title": "<b>M</b>"}).json()
    lesson = api.post(
        f"/courses/{course_id}/modules/{module['id']}/lessons",
        json={"title": "L <i>1</i>", "content": "text"},
    )
    assert lesson.status_code == 201, lesson.text
    assert api.post(f"/courses/{course_id}/publish").status_code == 200
    page.goto(f"/courses/{course_id}")
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text(title)
    expect(page.locator("main img")).to_have_count(0)
    expect(page.locator("main script")).to_have_count(0)
    expect(page.locator(".description strong")).to_have_text("bold")
    expect(page.locator(".description")).to_contain_text("<script>alert(1)</script>")
    expect(page).not_to_have_title("1")


def test_sign_in_never_redirects_off_the_site(web: WebServer) -> None:
    email, password = web.accounts["student"]
    for target in (
        "//evil.example/x",
        "/\\evil.example",
        "/\t/evil.example",
        "https://evil.example",
    ):
        client, token = _csrf_client(web)
        answer = client.post(
            "/login",
            data={"email": email, "password": password, "csrf_token": token, "next": target},
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/learn", target
        htmx = client.post(
            "/language",
            data={"locale": "en", "csrf_token": token, "next": target},
            headers={"HX-Request": "true"},
        )
        assert htmx.headers["hx-redirect"] == "/", target


def test_pages_fit_a_phone_and_the_menu_opens(context: Any, web: WebServer) -> None:
    phone = context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    page = phone.new_page()
    for path in ("/", "/catalog", "/login"):
        page.goto(path)
        fits(page, 375)
    page.goto("/")
    links = page.locator("#nav-links")
    expect(links).not_to_be_visible()
    page.get_by_role("button", name="Menu").click()
    expect(links).to_be_visible()
    expect(page.get_by_role("button", name="Menu")).to_have_attribute("aria-expanded", "true")
    shot(page, "phone-home-menu")


def test_signing_in_with_the_keyboard_alone(page: Any, web: WebServer) -> None:
    email, password = web.accounts["student"]
    page.goto("/login")
    page.keyboard.press("Tab")
    skip = page.locator(":focus")
    expect(skip).to_have_text("Skip to content")
    page.keyboard.press("Enter")
    expect(page.locator("#main")).to_be_focused()
    page.get_by_label("Email").focus()
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/login" not in url)
    page.goto("/catalog")
    expect(page.get_by_role("button", name="Sign out")).to_have_count(1)


def test_a_right_to_left_page_mirrors_without_overflow(page: Any, web: WebServer) -> None:
    page.goto("/catalog")
    page.evaluate("document.documentElement.dir = 'rtl'")
    brand = page.locator(".brand").bounding_box()
    viewport = page.viewport_size
    assert brand is not None and viewport is not None
    assert brand["x"] > viewport["width"] / 2  # the brand moved to the right
    fits(page, viewport["width"])
