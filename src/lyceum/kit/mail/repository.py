"""Every query of the mail delivery log."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.models.mail import MailDelivery


class MailDeliveries:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim(
        self, key: str, *, template: str, recipient: str, message_id: str
    ) -> MailDelivery:
        """The log row of `key`, created if new, locked until the transaction ends: a
        second sender of the same message waits here, then finds it sent."""
        await self.session.execute(
            insert(MailDelivery)
            .values(key=key, template=template, recipient=recipient, message_id=message_id)
            .on_conflict_do_nothing(index_elements=[MailDelivery.key])
        )
        row = await self.session.execute(
            select(MailDelivery).where(MailDelivery.key == key).with_for_update()
        )
        return row.scalar_one()
