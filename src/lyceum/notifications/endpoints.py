"""Notification centre, preferences, one-click unsubscribe, course announcements, and
the admins' delivery log."""

from __future__ import annotations

import datetime as dt
import uuid
from html import escape
from typing import Annotated

from fastapi import Query, Response, status
from fastapi.responses import HTMLResponse

from lyceum.courses.permissions import EditableCourse, MemberCourse
from lyceum.identity.permissions import AdminUser, CurrentUser, RuntimeDep
from lyceum.kit.clock import ClockDep
from lyceum.kit.db import Session
from lyceum.kit.pagination import Page, Paging
from lyceum.kit.routing import Router
from lyceum.models.notifications import Channel, DeliveryStatus
from lyceum.notifications import schemas
from lyceum.notifications.permissions import MyNotification, Notifications
from lyceum.notifications.service import (
    AnnouncementService,
    preferences_out,
    read_unsubscribe_token,
)
from lyceum.notifications.tasks import schedule_publication

notifications = Router(tags=["notifications"])


@notifications.get(
    "/me/notifications",
    summary="The caller's notifications, newest first, with the unread count",
)
async def list_notifications(
    caller: CurrentUser,
    service: Notifications,
    paging: Paging,
    unread: Annotated[bool, Query(description="Only unread notifications.")] = False,
) -> schemas.NotificationPage:
    items, total, unread_count = await service.page(
        caller, unread=unread, offset=paging.offset, limit=paging.size
    )
    page = Page.of([schemas.NotificationOut.model_validate(n) for n in items], total, paging)
    return schemas.NotificationPage(**page.model_dump(), unread_count=unread_count)


@notifications.post(
    "/me/notifications/read-all", summary="Mark every notification of the caller read"
)
async def read_all_notifications(caller: CurrentUser, service: Notifications) -> schemas.ReadAllOut:
    return schemas.ReadAllOut(marked=await service.mark_all_read(caller))


@notifications.post(
    "/me/notifications/{notification_id:uuid}/read", summary="Mark one notification read"
)
async def read_notification(
    notification: MyNotification, service: Notifications
) -> schemas.NotificationOut:
    return schemas.NotificationOut.model_validate(await service.mark_read(notification))


@notifications.delete(
    "/me/notifications/{notification_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete one notification",
)
async def delete_notification(notification: MyNotification, service: Notifications) -> None:
    await service.delete(notification)


@notifications.get(
    "/me/notification-preferences",
    summary="How the caller wants to be told: per category and channel, quiet hours",
)
async def get_preferences(caller: CurrentUser, service: Notifications) -> schemas.PreferencesOut:
    return preferences_out(await service.preferences(caller))


@notifications.patch(
    "/me/notification-preferences",
    summary="Change channels per category, quiet hours or time zone",
    description="Only what the body names changes. Security and payments mail cannot be "
    "turned off: their `email` switch takes only `true`.",
)
async def update_preferences(
    caller: CurrentUser, service: Notifications, body: schemas.PreferencesIn
) -> schemas.PreferencesOut:
    hours: tuple[dt.time, dt.time] | bool | None = False
    if "quiet_hours" in body.model_fields_set:
        hours = (body.quiet_hours.start, body.quiet_hours.end) if body.quiet_hours else None
    preferences = await service.update_preferences(
        caller,
        choices=body.channels.choices(),
        quiet_hours=hours,
        time_zone=body.time_zone,
    )
    return preferences_out(preferences)


_UNSUBSCRIBE_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Unsubscribe</title></head>
<body><main><h1>{heading}</h1><p>{text}</p>{form}</main></body></html>"""


def _page(heading: str, text: str, form: str = "") -> HTMLResponse:
    return HTMLResponse(
        _UNSUBSCRIBE_PAGE.format(heading=escape(heading), text=escape(text), form=form)
    )


@notifications.get(
    "/notifications/unsubscribe",
    summary="The unsubscribe link of a mail: a confirmation page (changes nothing)",
    response_class=HTMLResponse,
    description="The link is signed for one user and one category; no sign-in needed.",
)
async def unsubscribe_page(
    runtime: RuntimeDep,
    token: Annotated[str, Query(max_length=200, description="The signed token of the link.")],
) -> HTMLResponse:
    _, category = read_unsubscribe_token(runtime.settings, token)
    label = category.value.replace("_", " ")
    form = (
        f'<form method="post" action="?token={escape(token)}">'
        f'<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        f'<button type="submit">Unsubscribe from {escape(label)} mail</button></form>'
    )
    return _page("Unsubscribe", f"Stop mail about {label}? Other mail is not affected.", form)


@notifications.post(
    "/notifications/unsubscribe",
    summary="One-click unsubscribe (RFC 8058): turn off mail of the link's category",
    response_class=HTMLResponse,
    description="Mail clients POST `List-Unsubscribe=One-Click` here; the signed token is "
    "the credential.",
)
async def unsubscribe(
    runtime: RuntimeDep,
    service: Notifications,
    token: Annotated[str, Query(max_length=200, description="The signed token of the link.")],
) -> HTMLResponse:
    user_id, category = read_unsubscribe_token(runtime.settings, token)
    await service.unsubscribe(user_id, category)
    label = category.value.replace("_", " ")
    return _page("Unsubscribed", f"You will no longer get mail about {label}.")


@notifications.post(
    "/courses/{course_id:uuid}/announcements",
    status_code=status.HTTP_201_CREATED,
    summary="Post an announcement to a course's learners (now or at `publish_at`)",
)
async def post_announcement(
    course: EditableCourse,
    caller: CurrentUser,
    body: schemas.AnnouncementIn,
    session: Session,
    runtime: RuntimeDep,
    clock: ClockDep,
    response: Response,
) -> schemas.AnnouncementOut:
    service = AnnouncementService(session, settings=runtime.settings, now=clock.now())
    announcement, published = await service.post(
        course, caller, title=body.title, body=body.body, publish_at=body.publish_at
    )
    if not published:
        await schedule_publication(session, announcement.id, announcement.publish_at)
    response.headers["Location"] = f"/api/v1/courses/{course.id}/announcements"
    return schemas.AnnouncementOut.model_validate(announcement)


@notifications.get(
    "/courses/{course_id:uuid}/announcements",
    summary="A course's announcements, newest first",
    description="Learners see the published ones; instructors and admins also the scheduled ones.",
)
async def list_announcements(
    membership: MemberCourse,
    session: Session,
    runtime: RuntimeDep,
    clock: ClockDep,
    paging: Paging,
) -> Page[schemas.AnnouncementOut]:
    service = AnnouncementService(session, settings=runtime.settings, now=clock.now())
    items, total = await service.page(
        membership.course, editor=membership.can_edit, offset=paging.offset, limit=paging.size
    )
    return Page.of([schemas.AnnouncementOut.model_validate(a) for a in items], total, paging)


@notifications.get(
    "/admin/notification-deliveries",
    summary="The delivery log: every send per notification and channel",
)
async def list_deliveries(
    admin: AdminUser,
    service: Notifications,
    paging: Paging,
    user_id: Annotated[uuid.UUID | None, Query(description="Only this user's.")] = None,
    channel: Annotated[Channel | None, Query(description="Only this channel.")] = None,
    delivery_status: Annotated[
        DeliveryStatus | None, Query(alias="status", description="Only this status.")
    ] = None,
    notification_id: Annotated[
        uuid.UUID | None, Query(description="Only this notification's.")
    ] = None,
) -> Page[schemas.DeliveryOut]:
    items, total = await service.deliveries(
        user_id=user_id,
        channel=channel,
        status=delivery_status,
        notification_id=notification_id,
        offset=paging.offset,
        limit=paging.size,
    )
    return Page.of([schemas.DeliveryOut.model_validate(d) for d in items], total, paging)
