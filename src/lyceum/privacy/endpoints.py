"""GET /me/export: the signed-in user's own data as a zip."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import Response

from lyceum.assessments.service import learner_export
from lyceum.chat.service import messages_written
from lyceum.identity.permissions import CurrentUser, Identity, RuntimeDep
from lyceum.identity.service import user_out
from lyceum.kit.clock import ClockDep
from lyceum.kit.db import Session
from lyceum.kit.errors import NotFound
from lyceum.kit.routing import Router
from lyceum.kit.storage import attachment_disposition
from lyceum.learning.permissions import Learning
from lyceum.notifications.permissions import Notifications
from lyceum.notifications.service import preferences_out
from lyceum.payments.permissions import Payments
from lyceum.privacy.service import Export, every_page
from lyceum.tutor.permissions import Conversations

privacy = Router(tags=["users"])

ZIP = "application/zip"


@privacy.get(
    "/me/export",
    summary="Download your own data (a zip)",
    description="Everything Lyceum holds about the caller, as `application/zip`: "
    "`profile.json`, `enrollments.json` (with progress), `quiz_attempts.json`, "
    "`essay_submissions.json` (scores and feedback only where the learner-facing routes "
    "show them: released grades, graded attempts of quizzes that allow review), "
    "`tutor_conversations.json` (every turn), `chat_messages.json` (the messages the "
    "caller wrote), `orders.json` (amounts and receipt numbers), "
    "`notification_preferences.json`, a `README.txt` describing them, and `files/` with "
    "the caller's stored uploads (the avatar). Only the caller's own data: there is no "
    "id to choose. Limited to DATA_EXPORT_RATE_LIMIT per user (429 with Retry-After "
    "beyond).",
    response_class=Response,
    responses={
        200: {
            "content": {ZIP: {"schema": {"type": "string", "format": "binary"}}},
            "description": "The zip, as an attachment named lyceum-export-<date>.zip",
        }
    },
)
async def export_my_data(
    caller: CurrentUser,
    runtime: RuntimeDep,
    session: Session,
    clock: ClockDep,
    identity: Identity,
    learning: Learning,
    conversations: Conversations,
    payments: Payments,
    notifications: Notifications,
) -> Response:
    settings = runtime.settings
    await runtime.rate_limiter.check(settings.data_export_rate_limit, "data-export", str(caller.id))
    export = Export()
    export.sections["profile"] = user_out(caller, settings).model_dump(mode="json")
    enrollments = await every_page(
        lambda offset, limit: learning.my_enrollments(caller, offset, limit)
    )
    export.sections["enrollments"] = [item.model_dump(mode="json") for item in enrollments]
    export.sections.update(await learner_export(session, caller))
    export.sections["tutor_conversations"] = await conversations.export(caller)
    export.sections["chat_messages"] = await messages_written(session, caller)
    orders = await every_page(lambda offset, limit: payments.my_orders(caller, offset, limit))
    export.sections["orders"] = [order.model_dump(mode="json") for order in orders]
    preferences = preferences_out(await notifications.preferences(caller))
    export.sections["notification_preferences"] = preferences.model_dump(mode="json")
    with contextlib.suppress(NotFound):  # no avatar, or its file is gone
        export.files["avatar.png"] = await identity.avatar(caller.id)
    now = clock.now()
    data = await asyncio.to_thread(
        export.zip, site=settings.base_url(), email=caller.email, created_at=now
    )
    return Response(
        data,
        media_type=ZIP,
        headers={
            "Content-Disposition": attachment_disposition(f"lyceum-export-{now:%Y-%m-%d}.zip"),
            "Cache-Control": "no-store",
        },
    )
