"""Every query of phones, push subscriptions, devices and the channel send log."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.models.channels import ChannelSend, PushDevice, PushSubscription, UserPhone


class ChannelRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # Phones ---------------------------------------------------------------------------

    async def phone_of(self, user_id: uuid.UUID, *, lock: bool = False) -> UserPhone | None:
        query = select(UserPhone).where(UserPhone.user_id == user_id)
        if lock:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def verified_number_taken(self, number: str, user_id: uuid.UUID) -> bool:
        """Whether another account has verified `number`."""
        found = await self.session.execute(
            select(UserPhone.user_id).where(
                UserPhone.number == number,
                UserPhone.verified_at.is_not(None),
                UserPhone.user_id != user_id,
            )
        )
        return found.first() is not None

    async def verified_phone_number(self, user_id: uuid.UUID) -> str | None:
        found = await self.session.execute(
            select(UserPhone.number).where(
                UserPhone.user_id == user_id, UserPhone.verified_at.is_not(None)
            )
        )
        return found.scalar_one_or_none()

    async def delete_phone(self, user_id: uuid.UUID) -> bool:
        result = await self.session.execute(
            delete(UserPhone).where(UserPhone.user_id == user_id).returning(UserPhone.user_id)
        )
        return result.first() is not None

    # Web Push subscriptions -----------------------------------------------------------

    async def save_subscription(
        self, user_id: uuid.UUID, endpoint: str, p256dh: str, auth: str
    ) -> tuple[PushSubscription, bool]:
        """The subscription of `endpoint`, now the caller's with these keys; True when
        new. A browser profile that changes hands (sign-out, sign-in as another user)
        keeps its endpoint: the latest account to register it gets its pushes."""
        inserted = await self.session.execute(
            insert(PushSubscription)
            .values(id=uuid.uuid4(), user_id=user_id, endpoint=endpoint, p256dh=p256dh, auth=auth)
            .on_conflict_do_update(
                index_elements=[PushSubscription.endpoint],
                set_={"user_id": user_id, "p256dh": p256dh, "auth": auth},
            )
            .returning(PushSubscription.id, text("xmax = 0"))
        )
        subscription_id, created = inserted.one()
        row = await self.session.get(PushSubscription, subscription_id, populate_existing=True)
        assert row is not None
        return row, bool(created)

    async def subscriptions_of(self, user_id: uuid.UUID) -> Sequence[PushSubscription]:
        rows = await self.session.execute(
            select(PushSubscription)
            .where(PushSubscription.user_id == user_id)
            .order_by(PushSubscription.created_at, PushSubscription.id)
        )
        return rows.scalars().all()

    async def subscription_of(
        self, user_id: uuid.UUID, subscription_id: uuid.UUID
    ) -> PushSubscription | None:
        rows = await self.session.execute(
            select(PushSubscription).where(
                PushSubscription.id == subscription_id, PushSubscription.user_id == user_id
            )
        )
        return rows.scalar_one_or_none()

    async def delete_subscription(self, subscription_id: uuid.UUID) -> None:
        await self.session.execute(
            delete(PushSubscription).where(PushSubscription.id == subscription_id)
        )

    # FCM devices ------------------------------------------------------------------------

    async def save_device(
        self, user_id: uuid.UUID, token: str, platform: str
    ) -> tuple[PushDevice, bool]:
        inserted = await self.session.execute(
            insert(PushDevice)
            .values(id=uuid.uuid4(), user_id=user_id, token=token, platform=platform)
            .on_conflict_do_update(
                index_elements=[PushDevice.token],
                set_={"user_id": user_id, "platform": platform},
            )
            .returning(PushDevice.id, text("xmax = 0"))
        )
        device_id, created = inserted.one()
        row = await self.session.get(PushDevice, device_id, populate_existing=True)
        assert row is not None
        return row, bool(created)

    async def devices_of(self, user_id: uuid.UUID) -> Sequence[PushDevice]:
        rows = await self.session.execute(
            select(PushDevice)
            .where(PushDevice.user_id == user_id)
            .order_by(PushDevice.created_at, PushDevice.id)
        )
        return rows.scalars().all()

    async def device_of(self, user_id: uuid.UUID, device_id: uuid.UUID) -> PushDevice | None:
        rows = await self.session.execute(
            select(PushDevice).where(PushDevice.id == device_id, PushDevice.user_id == user_id)
        )
        return rows.scalar_one_or_none()

    async def delete_device(self, device_id: uuid.UUID) -> None:
        await self.session.execute(delete(PushDevice).where(PushDevice.id == device_id))

    # The send log -----------------------------------------------------------------------

    async def lock_key(self, key: str) -> None:
        """Serialize the senders of one idempotency key until this transaction ends: a
        second run of the same job waits, then finds what the first one sent."""
        await self.session.execute(
            select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0)))
        )

    async def sends_under(self, key: str) -> dict[str, str | None]:
        """The sends recorded under `key` and its per-target keys (`key:<target>`)."""
        rows = await self.session.execute(
            select(ChannelSend.idempotency_key, ChannelSend.provider_id).where(
                (ChannelSend.idempotency_key == key)
                | ChannelSend.idempotency_key.startswith(key + ":", autoescape=True)
            )
        )
        return {row.idempotency_key: row.provider_id for row in rows}

    async def send_record(self, key: str) -> ChannelSend | None:
        return await self.session.get(ChannelSend, key, populate_existing=True)

    async def complete_send(self, key: str, provider_id: str) -> None:
        await self.session.execute(
            update(ChannelSend)
            .where(ChannelSend.idempotency_key == key)
            .values(provider_id=provider_id)
        )

    async def forget_send(self, key: str) -> None:
        await self.session.execute(delete(ChannelSend).where(ChannelSend.idempotency_key == key))

    async def record_send(
        self, key: str, *, channel: str, user_id: uuid.UUID, provider_id: str | None
    ) -> None:
        await self.session.execute(
            insert(ChannelSend)
            .values(idempotency_key=key, channel=channel, user_id=user_id, provider_id=provider_id)
            .on_conflict_do_nothing(index_elements=[ChannelSend.idempotency_key])
        )
