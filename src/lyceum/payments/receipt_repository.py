"""Every query of receipts: numbering a paid order's receipt without gaps, and reading
what a receipt shows."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.models.courses import Course
from lyceum.models.identity import User
from lyceum.models.payments import Coupon, Order, ReceiptCounter


@dataclass(frozen=True)
class ReceiptRow:
    """A numbered order with the names its receipt prints."""

    order: Order
    course_title: str
    buyer_name: str
    buyer_email: str
    coupon_code: str | None


class ReceiptRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_for_numbering(
        self, order_id: uuid.UUID
    ) -> tuple[str | None, dt.datetime | None] | None:
        """The order's receipt number and payment time as committed, the row locked
        until the transaction ends (a concurrent numbering of the same order waits, then
        sees the number); None if there is no such order."""
        row = (
            await self.session.execute(
                select(Order.receipt_number, Order.paid_at)
                .where(Order.id == order_id)
                .with_for_update()
            )
        ).one_or_none()
        return None if row is None else (row.receipt_number, row.paid_at)

    async def next_number(self, year: int) -> int:
        """The year's next receipt number: the counter row is incremented (created at 1)
        and stays locked until the transaction ends, so numbers follow commit order and a
        rolled-back payment gives its number back."""
        statement = (
            insert(ReceiptCounter)
            .values(year=year, last_number=1)
            .on_conflict_do_update(
                index_elements=[ReceiptCounter.year],
                set_={"last_number": ReceiptCounter.last_number + 1},
            )
            .returning(ReceiptCounter.last_number)
        )
        return int((await self.session.execute(statement)).scalar_one())

    async def set_number(self, order_id: uuid.UUID, number: str) -> None:
        # Through the session's own Order (the paying code may hold it): only the number
        # is written, and whoever holds the object sees it.
        order = await self.session.get(Order, order_id)
        assert order is not None  # locked by lock_for_numbering in this transaction
        order.receipt_number = number
        await self.session.flush()

    async def order(self, order_id: uuid.UUID) -> Order | None:
        return await self.session.get(Order, order_id)

    async def course_title(self, course_id: uuid.UUID) -> str:
        return await self.session.scalar(select(Course.title).where(Course.id == course_id)) or ""

    async def receipt_of(self, order_id: uuid.UUID, buyer_id: uuid.UUID) -> ReceiptRow | None:
        """The buyer's order with a receipt number, with its course, buyer and coupon;
        None for anyone else's order or one not numbered (not paid)."""
        row = (
            await self.session.execute(
                select(Order, Course.title, User.full_name, User.email, Coupon.code)
                .join(Course, Course.id == Order.course_id)
                .join(User, User.id == Order.user_id)
                .outerjoin(Coupon, Coupon.id == Order.coupon_id)
                .where(
                    Order.id == order_id,
                    Order.user_id == buyer_id,
                    Order.receipt_number.is_not(None),
                )
            )
        ).one_or_none()
        if row is None:
            return None
        order, title, name, email, code = row
        return ReceiptRow(order, title, name, email, code)
