"""Who may touch which notification: `Annotated` dependencies for the routes.

- `MyNotification`: one of the caller's own notifications (404 for anyone else's: no
  notification is reachable by guessing its id).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from lyceum.identity.permissions import CurrentUser
from lyceum.kit.clock import ClockDep
from lyceum.kit.db import Session
from lyceum.models.notifications import Notification
from lyceum.notifications.service import NotificationService


async def notification_service(session: Session, clock: ClockDep) -> NotificationService:
    return NotificationService(session, now=clock.now())


Notifications = Annotated[NotificationService, Depends(notification_service)]


async def my_notification(
    notification_id: uuid.UUID, caller: CurrentUser, service: Notifications
) -> Notification:
    return await service.mine(caller, notification_id)


MyNotification = Annotated[Notification, Depends(my_notification)]
