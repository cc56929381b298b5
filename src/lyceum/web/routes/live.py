"""Live parts: the course chat room, announcements for learners, the notification centre and its bell.

The chat and the bell run over the API's Socket.IO server (`/socket.io`): the page
scripts (`static/live-bell.js`, `static/live-chat.js`) connect with the short socket
ticket `/live/token` hands out (no key to the REST API), asked again on every
(re)connection. Everything else is
the REST API, as for any app."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query
from starlette.responses import JSONResponse, Response

from lyceum.web.api import ApiProblem
from lyceum.web.context import CsrfRejected, SignedInForm, SignedInPage
from lyceum.web.session import CSRF_HEADER, csrf_valid

router = APIRouter(include_in_schema=False)

HISTORY_SIZE = 50
NOTIFICATIONS_PAGE_SIZE = 20
ANNOUNCEMENTS_PAGE_SIZE = 20
_COURSE_PATH = re.compile(r"^/api/v1/courses/([0-9a-f-]{36})(/.*)?$")


@router.get("/live/token")
async def live_token(page: SignedInPage) -> Response:
    """A socket ticket for this browser session, for the Socket.IO auth payload: it
    signs a connection in and is refused by the REST API, so a page script never holds
    a key to the API. Asked with the page's CSRF token (a script of this site only)."""
    if not csrf_valid(page.request, page.request.headers.get(CSRF_HEADER)):
        raise CsrfRejected()
    response = JSONResponse({"token": page.socket_ticket()}, headers={"Cache-Control": "no-store"})
    return page.finish(response)


# Course chat -----------------------------------------------------------------------------


async def _mutes(page: SignedInPage, course_id: uuid.UUID) -> list[dict[str, Any]] | None:
    """The learners muted in the course's chat now, or None for someone who may not
    moderate it (the API decides: its mutes list answers the course's instructors and
    admins only)."""
    try:
        found = await page.api.get(f"chat/courses/{course_id}/mutes")
    except ApiProblem as problem:
        if problem.status in (403, 404):
            return None
        raise
    items: list[dict[str, Any]] = found["items"]
    return items


@router.get("/live/courses/{course_id:uuid}/chat")
async def course_chat(page: SignedInPage, course_id: uuid.UUID) -> Response:
    room = await page.api.get(f"chat/courses/{course_id}/room")
    history = await page.api.get(
        f"chat/rooms/{room['id']}/messages", params={"limit": HISTORY_SIZE}
    )
    presence = await page.api.get(f"chat/rooms/{room['id']}/presence")
    mutes = await _mutes(page, course_id)
    names = {str(m["sender"]["id"]): m["sender"]["full_name"] for m in history["items"]}
    names.update({str(p["id"]): p["full_name"] for p in presence["online"]})
    return page.render(
        "live/chat.html",
        course_id=course_id,
        room=room,
        messages=list(reversed(history["items"])),
        older=history["next"],
        online=presence["online"],
        moderator=mutes is not None,
        mutes=mutes or [],
        names=names,
    )


@router.post("/live/courses/{course_id:uuid}/chat/mutes/{user_id:uuid}/delete")
async def lift_mute(page: SignedInForm, course_id: uuid.UUID, user_id: uuid.UUID) -> Response:
    await page.api.delete(f"chat/courses/{course_id}/mutes/{user_id}")
    return page.redirect(f"/live/courses/{course_id}/chat")


# Announcements ---------------------------------------------------------------------------


@router.get("/live/courses/{course_id:uuid}/announcements")
async def course_announcements(
    page: SignedInPage,
    course_id: uuid.UUID,
    page_number: Annotated[int, Query(alias="page", ge=1, le=10_000)] = 1,
) -> Response:
    course = await page.api.get(f"courses/{course_id}")
    announcements = await page.api.get(
        f"courses/{course_id}/announcements",
        params={"page": page_number, "size": ANNOUNCEMENTS_PAGE_SIZE},
    )
    return page.render(
        "live/announcements.html",
        course=course,
        announcements=announcements,
        page_number=page_number,
        page_size=ANNOUNCEMENTS_PAGE_SIZE,
    )


# Notification centre ----------------------------------------------------------------------


def notification_link(notification: dict[str, Any]) -> str | None:
    """Where a notification points, as a page of this web app (its `url` is an API
    path)."""
    data = notification.get("data") or {}
    course_id = data.get("course_id") if isinstance(data, dict) else None
    if notification.get("kind") == "announcement" and course_id:
        return f"/live/courses/{course_id}/announcements"
    url = notification.get("url") or ""
    match = _COURSE_PATH.match(url)
    if match:
        rest = match.group(2) or ""
        if rest.startswith("/announcements"):
            return f"/live/courses/{match.group(1)}/announcements"
        return f"/courses/{match.group(1)}"
    if course_id:
        return f"/courses/{course_id}"
    return None


async def _notifications(page: SignedInPage, unread: bool, page_number: int) -> dict[str, Any]:
    found: dict[str, Any] = await page.api.get(
        "me/notifications",
        params={"unread": unread, "page": page_number, "size": NOTIFICATIONS_PAGE_SIZE},
    )
    return found


def _list_url(unread: bool, page_number: int) -> str:
    query = [f"page={page_number}"] if page_number > 1 else []
    if unread:
        query.insert(0, "unread=true")
    return "/notifications" + ("?" + "&".join(query) if query else "")


def _safe_back(value: str) -> str:
    if value.startswith("/notifications") and not value.startswith("//"):
        return value
    return "/notifications"


@router.get("/notifications")
async def notification_centre(
    page: SignedInPage,
    unread: bool = False,
    page_number: Annotated[int, Query(alias="page", ge=1, le=10_000)] = 1,
) -> Response:
    found = await _notifications(page, unread, page_number)
    template = "live/_notifications.html" if page.htmx else "live/notifications.html"
    return page.render(
        template,
        found=found,
        unread=unread,
        page_number=page_number,
        page_size=NOTIFICATIONS_PAGE_SIZE,
        back=_list_url(unread, page_number),
        link=notification_link,
    )


@router.get("/notifications/badge")
async def notification_badge(page: SignedInPage) -> Response:
    found = await page.api.get("me/notifications", params={"unread": True, "size": 1})
    return page.render("live/_badge.html", unread_count=found["unread_count"])


async def _after_change(page: SignedInForm, back: str) -> Response:
    """Back to the list: for htmx, the list re-rendered (and the bell told to refresh)."""
    back = _safe_back(back)
    if not page.htmx:
        return page.redirect(back)
    unread = "unread=true" in back
    match = re.search(r"page=(\d+)", back)
    page_number = int(match.group(1)) if match else 1
    found = await _notifications(page, unread, page_number)
    if not found["items"] and page_number > 1:
        page_number -= 1
        found = await _notifications(page, unread, page_number)
    return page.render(
        "live/_notifications.html",
        headers={"HX-Trigger": "lyceum:notification"},
        found=found,
        unread=unread,
        page_number=page_number,
        page_size=NOTIFICATIONS_PAGE_SIZE,
        back=_list_url(unread, page_number),
        link=notification_link,
    )


@router.post("/notifications/read-all")
async def read_all(
    page: SignedInForm, back: Annotated[str, Form(max_length=200)] = "/notifications"
) -> Response:
    await page.api.post("me/notifications/read-all")
    return await _after_change(page, back)


@router.post("/notifications/{notification_id:uuid}/read")
async def read_one(
    page: SignedInForm,
    notification_id: uuid.UUID,
    back: Annotated[str, Form(max_length=200)] = "/notifications",
) -> Response:
    await page.api.post(f"me/notifications/{notification_id}/read")
    return await _after_change(page, back)


@router.post("/notifications/{notification_id:uuid}/delete")
async def delete_one(
    page: SignedInForm,
    notification_id: uuid.UUID,
    back: Annotated[str, Form(max_length=200)] = "/notifications",
) -> Response:
    await page.api.delete(f"me/notifications/{notification_id}")
    return await _after_change(page, back)
