"""The live parts in a real browser: a course's chat room between two browser contexts
(presence, typing, markup shown as text, moderation), the notification bell and centre,
announcements; and that nobody reads another's notifications."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
from playwright.sync_api import expect

from tests.web.conftest import WebServer, audit, fits, shot, sign_in

MARKUP = "<b>hi</b><img src=x onerror=alert(1)>"


@dataclass
class Person:
    email: str
    password: str
    full_name: str
    api: httpx.Client


def _mark_verified(web: WebServer, email: str) -> None:
    url = web.database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(
            "UPDATE users SET email_verified_at = now() WHERE email = %s", (email.lower(),)
        )


def verified_learner(web: WebServer, name: str) -> Person:
    """A new account (registered through the API), its email verified."""
    email = f"{name.lower()}-{uuid.uuid4().hex[:8]}@live.test"
    password = f"passphrase of {name} {uuid.uuid4().hex[:6]}"
    full_name = f"{name} {uuid.uuid4().hex[:4]}"
    anonymous = web.api()
    answer = anonymous.post(
        "/auth/register", json={"email": email, "password": password, "full_name": full_name}
    )
    assert answer.status_code == 201, answer.text
    # Verified directly (the verification mail's own flow is the account area's test; the
    # worker that sends it may take long on a loaded machine).
    _mark_verified(web, email)
    return Person(email, password, full_name, web.api(email, password))


def published_course(web: WebServer, title: str = "Live course") -> str:
    """A published course of the demo instructor (as its instructor, through the API)."""
    api = web.api(*web.accounts["instructor"])
    created = api.post("/courses", json={"title": f"{title} {uuid.uuid4().hex[:6]}"})
    assert created.status_code == 201, created.text
    course_id: str = created.json()["id"]
    module = api.post(f"/courses/{course_id}/modules", json={"title": "Week 1"}).json()
    lesson = api.post(
        f"/courses/{course_id}/modules/{module['id']}/lessons",
        json={"title": "Hello", "content": "Some text."},
    )
    assert lesson.status_code == 201, lesson.text
    assert api.post(f"/courses/{course_id}/publish").status_code == 200
    return course_id


def enroll(person: Person, course_id: str) -> None:
    answer = person.api.post(f"/courses/{course_id}/enrollments")
    assert answer.status_code in (200, 201), answer.text


def signed_in_page(context: Any, person_email: str, password: str) -> Any:
    page = context().new_page()
    sign_in(page, person_email, password)
    return page


def wait_connected(page: Any) -> None:
    page.wait_for_function(
        "() => !!(window.lyceumLive && window.lyceumLive.socket"
        " && window.lyceumLive.socket.connected)"
    )


def open_chat(page: Any, course_id: str) -> None:
    page.goto(f"/live/courses/{course_id}/chat")
    page.locator("#chat-status").filter(has_text="Connected.").wait_for()


def test_chat_between_two_browsers(context: Any, web: WebServer) -> None:
    course_id = published_course(web, "Chat course")
    ana, binh = verified_learner(web, "Ana"), verified_learner(web, "Binh")
    enroll(ana, course_id)
    enroll(binh, course_id)
    page_a = signed_in_page(context, ana.email, ana.password)
    page_b = signed_in_page(context, binh.email, binh.password)
    open_chat(page_a, course_id)
    open_chat(page_b, course_id)

    # Presence: each sees both.
    for page in (page_a, page_b):
        for person in (ana, binh):
            page.locator("#chat-online li", has_text=person.full_name).wait_for()

    # Typing: Binh types, Ana sees it.
    page_b.get_by_label("Your message").press_sequentially("<b>hi")
    page_a.locator("#chat-typing", has_text=f"{binh.full_name} is typing").wait_for()

    # Binh sends markup: Ana sees it live, as text.
    page_b.get_by_label("Your message").fill(MARKUP)
    page_b.get_by_label("Your message").press("Enter")
    sent = page_a.locator(".chat-message .text", has_text="onerror")
    sent.wait_for()
    expect(sent).to_have_text(MARKUP)
    expect(page_a.locator("#chat-messages b")).to_have_count(0)
    expect(page_a.locator("#chat-messages img")).to_have_count(0)
    expect(page_a.locator("#chat-typing")).to_have_text("")  # the message ended the typing
    # Binh's own copy is there once; the input is cleared.
    page_b.locator(".chat-message .text", has_text="onerror").wait_for()
    expect(page_b.locator(".chat-message .text", has_text="onerror")).to_have_count(1)
    expect(page_b.get_by_label("Your message")).to_have_value("")
    # A learner may delete only their own messages; nobody's is mutable by a learner.
    expect(page_a.locator(".chat-message", has_text="onerror").get_by_role("button")).to_have_count(
        0
    )
    expect(page_a.locator("[data-mute]")).to_have_count(0)
    audit(page_a)
    shot(page_a, "live-chat")

    # A reconnection (the transport dropped) gets a fresh token and joins the room again.
    page_a.evaluate("window.lyceumLive.socket.io.engine.close()")
    page_a.locator("#chat-status").filter(has_text="Connected.").wait_for()
    page_a.get_by_label("Your message").fill("back again")
    page_a.get_by_role("button", name="Send").click()
    page_b.locator(".chat-message .text", has_text="back again").wait_for()

    # History: a reload shows both messages (from the REST API), still as text.
    page_b.reload()
    page_b.locator("#chat-status").filter(has_text="Connected.").wait_for()
    expect(page_b.locator(".chat-message .text", has_text="onerror")).to_have_text(MARKUP)
    expect(page_b.locator("#chat-messages img")).to_have_count(0)

    # The course's instructor moderates: deletes Binh's message, it goes for everyone.
    teacher = signed_in_page(context, *web.accounts["instructor"])
    open_chat(teacher, course_id)
    message = teacher.locator(".chat-message", has_text="onerror")
    expect(message.get_by_role("button", name="Mute for 10 minutes")).to_be_visible()
    audit(teacher)
    shot(teacher, "live-chat-moderator")
    teacher.once("dialog", lambda dialog: dialog.accept())
    message.get_by_role("button", name="Delete").click()
    page_a.locator(".chat-message .text", has_text="onerror").wait_for(state="detached")
    page_b.locator(".chat-message .text", has_text="onerror").wait_for(state="detached")
    expect(teacher.locator(".chat-message", has_text="onerror")).to_have_count(0)

    # And mutes Ana: her next message is refused, with the reason shown.
    teacher.locator(".chat-message", has_text="back again").get_by_role(
        "button", name="Mute for 10 minutes"
    ).click()
    teacher.locator("#chat-status", has_text="was muted").wait_for()
    page_a.locator("#chat-status", has_text="muted").wait_for()
    page_a.get_by_label("Your message").fill("am I muted?")
    page_a.get_by_role("button", name="Send").click()
    page_a.locator("#chat-status", has_text="Not sent").wait_for()
    expect(page_b.locator(".chat-message .text", has_text="am I muted?")).to_have_count(0)

    # The moderator sees who is muted, and lifts it: Ana speaks again.
    teacher.reload()
    muted = teacher.locator(".chat-muted li", has_text=ana.full_name)
    muted.wait_for()
    audit(teacher)
    muted.get_by_role("button", name=re.compile(r"^Unmute")).click()
    teacher.get_by_text("Nobody is muted.").wait_for()
    page_a.get_by_label("Your message").fill("thank you")
    page_a.get_by_role("button", name="Send").click()
    page_b.locator(".chat-message .text", has_text="thank you").wait_for()


def test_the_chat_is_for_course_members(context: Any, web: WebServer) -> None:
    course_id = published_course(web, "Members only")
    outsider = verified_learner(web, "Out")
    page = signed_in_page(context, outsider.email, outsider.password)
    answer = page.goto(f"/live/courses/{course_id}/chat")
    assert answer is not None and answer.status == 403
    expect(page.locator("#chat")).to_have_count(0)
    audit(page)


def _count(page: Any) -> int:
    text = page.locator("#bell .count").all_inner_texts()
    return int(text[0]) if text else 0


def test_the_bell_rings_without_a_reload(context: Any, web: WebServer) -> None:
    course_id = published_course(web, "Bell course")
    learner = verified_learner(web, "Chi")
    enroll(learner, course_id)
    page = signed_in_page(context, learner.email, learner.password)
    page.goto("/notifications")
    wait_connected(page)
    before = _count(page)

    teacher = web.api(*web.accounts["instructor"])
    title = f"Exam moved {uuid.uuid4().hex[:4]}"
    posted = teacher.post(
        f"/courses/{course_id}/announcements",
        json={"title": title, "body": "The exam is **on Friday** now. <script>x</script>"},
    )
    assert posted.status_code == 201, posted.text

    # The badge counts it, and the open list shows it, with no reload.
    page.wait_for_function(
        f"() => {{ const c = document.querySelector('#bell .count');"
        f" return c && Number(c.textContent) > {before}; }}"
    )
    page.locator(".notification", has_text=title).wait_for()
    expect(page.get_by_role("link", name="Notifications")).to_contain_text("unread")
    audit(page)
    shot(page, "live-notifications")

    # Unread filter, then mark it read: the badge follows.
    page.get_by_role("link", name=re.compile(r"^Unread")).click()
    page.wait_for_url(re.compile(r"unread=true"))
    item = page.locator(".notification", has_text=title)
    page.locator("#bell .count").wait_for()  # the badge is loaded after the page
    unread = _count(page)
    item.get_by_role("button", name=re.compile("^Mark read")).click()
    item.wait_for(state="detached")
    page.wait_for_function(
        f"() => {{ const c = document.querySelector('#bell .count');"
        f" return (c ? Number(c.textContent) : 0) < {unread}; }}"
    )
    audit(page)

    # The link goes to the course's announcements, its markdown rendered (no raw HTML).
    page.goto("/notifications")
    page.locator(".notification", has_text=title).get_by_role("link", name=title).click()
    page.wait_for_url(re.compile(rf"/live/courses/{course_id}/announcements"))
    announcement = page.locator(".announcement", has_text=title)
    expect(announcement.locator("strong")).to_have_text("on Friday")
    expect(announcement.locator("script")).to_have_count(0)
    audit(page)
    shot(page, "live-announcements")

    # Delete it; mark all read.
    page.goto("/notifications")
    page.locator(".notification", has_text=title).get_by_role(
        "button", name=re.compile("^Delete")
    ).click()
    page.locator(".notification", has_text=title).wait_for(state="detached")
    if page.get_by_role("button", name="Mark all read").count():
        page.get_by_role("button", name="Mark all read").click()
        page.get_by_role("button", name="Mark all read").wait_for(state="detached")
    page.wait_for_function("() => document.querySelector('#bell .count') === null")
    audit(page)


def _web_client(web: WebServer, person: Person) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=web.url, timeout=30)
    client.get("/login")
    token = client.cookies["lyceum_csrf"]
    signed = client.post(
        "/login", data={"email": person.email, "password": person.password, "csrf_token": token}
    )
    assert signed.status_code == 303, signed.text
    return client, token


def test_nobody_reads_or_changes_anothers_notifications(web: WebServer) -> None:
    course_id = published_course(web, "Private bell")
    owner, other = verified_learner(web, "Dan"), verified_learner(web, "Eve")
    enroll(owner, course_id)
    teacher = web.api(*web.accounts["instructor"])
    title = f"Only for Dan {uuid.uuid4().hex[:4]}"
    teacher.post(f"/courses/{course_id}/announcements", json={"title": title, "body": "x"})
    mine = owner.api.get("/me/notifications").json()["items"]
    notification = next(n for n in mine if n["title"] == title)

    client, token = _web_client(web, other)
    assert title not in client.get("/notifications").text
    for action in ("read", "delete"):
        answer = client.post(
            f"/notifications/{notification['id']}/{action}", data={"csrf_token": token}
        )
        assert answer.status_code == 404, (action, answer.status_code)
        assert title not in answer.text
    still = owner.api.get("/me/notifications").json()["items"]
    assert any(n["id"] == notification["id"] and n["read_at"] is None for n in still)
    # The token route is the caller's own, never cached, asked by this site's scripts
    # only (the CSRF header); what it hands out signs a socket in, never the REST API.
    assert client.get("/live/token").status_code == 403
    answer = client.get("/live/token", headers={"X-CSRF-Token": token})
    assert answer.headers["cache-control"] == "no-store"
    ticket = answer.json()["token"]
    refused = httpx.get(web.url + "/api/v1/users/me", headers={"Authorization": f"Bearer {ticket}"})
    assert refused.status_code == 401


def test_the_chat_and_notifications_on_a_phone(context: Any, web: WebServer) -> None:
    course_id = published_course(web, "Phone chat")
    learner = verified_learner(web, "Phuong")
    enroll(learner, course_id)
    page = context(viewport={"width": 375, "height": 740}).new_page()
    sign_in(page, learner.email, learner.password)
    for path in (f"/live/courses/{course_id}/chat", "/notifications"):
        page.goto(path)
        page.get_by_role("heading", level=1).wait_for()
        fits(page, 375)
        audit(page)
    page.goto(f"/live/courses/{course_id}/chat")
    page.locator("#chat-status").filter(has_text="Connected.").wait_for()
    # The server refuses events of a connection whose token expired (`token-expired`,
    # after 5 minutes): the page reconnects with a fresh token, joins again and sends the
    # message once more. The refusal is simulated on the first send.
    tokens: list[str] = []
    page.on("request", lambda r: tokens.append(r.url) if "/live/token" in r.url else None)
    page.evaluate(
        """() => {
        const socket = window.lyceumLive.socket;
        const emit = socket.emit.bind(socket);
        let refused = false;
        socket.emit = function (event, ...args) {
          if (event === "message" && !refused) {
            refused = true;
            const ack = args[args.length - 1];
            setTimeout(() => ack(null, {ok: false, error: {type: "token-expired",
              detail: "The access token expired: reconnect with a fresh one."}}), 0);
            return socket;
          }
          return emit(event, ...args);
        };
      }"""
    )
    page.get_by_label("Your message").fill("from my phone")
    page.get_by_role("button", name="Send").click()
    page.locator(".chat-message .text", has_text="from my phone").wait_for()
    assert tokens, "no fresh token was asked for"
    expect(page.locator(".chat-message .text", has_text="from my phone")).to_have_count(1)
    expect(page.get_by_label("Your message")).to_have_value("")
    shot(page, "live-chat-phone")
