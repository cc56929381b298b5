"""Receipts: `order.paid` numbers the order's receipt from its payment year's counter,
gapless under concurrent payments and after a rollback, once per order; the buyer is
told in the app and by mail in their language (payments mail cannot be turned off);
`order.refunded` confirms each refunded total once; the PDF is the buyer's alone.

Orders are written straight into the database, as the checkout and webhooks leave them,
and the events emitted with `kit.events.emit` as the payments service does."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lyceum.kit.db import unit_of_work
from lyceum.kit.events import emit
from lyceum.kit.jobs import Queue
from lyceum.kit.runtime import Runtime
from lyceum.models.courses import Course
from lyceum.models.identity import Role, User
from lyceum.models.notifications import Category, Notification
from lyceum.models.payments import Order, OrderStatus, ReceiptCounter
from lyceum.payments.receipts import assign_receipt_number
from tests.identity.helpers import Account, account
from tests.kit.test_mail import Inbox, parts, smtp_server  # noqa: F401 (fixture)
from tests.learning.test_certificate_pdf import AR_TITLE
from tests.learning.test_certificate_pdf import _assert_arabic as assert_arabic
from tests.learning.test_certificate_pdf import _tool as tool
from tests.payments import order_rows
from tests.payments.helpers import API, bought, priced_course
from tests.support.jobs import run_jobs, with_settings


def a_year() -> int:
    """A payment year no other test numbers receipts in (the counter is per year)."""
    return random.randint(3000, 9000)


def paid_in(year: int) -> dt.datetime:
    return dt.datetime(year, 3, 14, 9, 0, tzinfo=dt.UTC)


async def notifications_of(session: AsyncSession, user_id: uuid.UUID) -> list[Notification]:
    rows = await session.scalars(
        select(Notification).where(Notification.user_id == user_id).order_by(Notification.kind)
    )
    return list(rows)


# In the test's transaction -------------------------------------------------------------


async def test_a_paid_order_is_numbered_once_from_its_payment_year(session: AsyncSession) -> None:
    year = a_year()
    teacher = await order_rows.person(session, role=Role.instructor, name="Grace")
    buyer = await order_rows.person(session)
    course = await order_rows.course(session, teacher.id, title="Optics")
    first = await order_rows.order(session, buyer.id, course.id, paid_at=paid_in(year))
    second = await order_rows.order(session, buyer.id, course.id, paid_at=paid_in(year))

    await emit(session, "order.paid", **order_rows.paid_payload(first))
    assert first.receipt_number == f"{year}-000001"
    # The same event again (a redelivered webhook's emit): the number stays, nothing new.
    await emit(session, "order.paid", **order_rows.paid_payload(first))
    assert first.receipt_number == f"{year}-000001"
    await emit(session, "order.paid", **order_rows.paid_payload(second))
    assert second.receipt_number == f"{year}-000002"
    assert (
        await session.scalar(select(ReceiptCounter.last_number).where(ReceiptCounter.year == year))
        == 2
    )

    notes = await notifications_of(session, buyer.id)
    assert [(n.category, n.kind) for n in notes] == [(Category.payments, "order.paid")] * 2
    mine = next(n for n in notes if n.data["order_id"] == str(first.id))
    assert mine.title == f"Receipt {year}-000001: Optics"
    assert mine.body == "You paid 12.345 KWD for Optics. Your receipt is ready."
    assert mine.url == f"/api/v1/me/orders/{first.id}/receipt"
    assert mine.data["receipt_number"] == f"{year}-000001"


async def test_an_unknown_order_is_left_alone(session: AsyncSession) -> None:
    assert await assign_receipt_number(session, uuid.uuid4()) is None


async def test_each_refunded_total_is_confirmed_once(session: AsyncSession) -> None:
    teacher = await order_rows.person(session, role=Role.instructor)
    buyer = await order_rows.person(session)
    course = await order_rows.course(session, teacher.id, title="Optics")
    row = await order_rows.order(session, buyer.id, course.id, amount=10_000, currency="USD")
    await emit(session, "order.paid", **order_rows.paid_payload(row))

    async def refunded(total: int, *, full: bool) -> None:
        row.refunded_amount = total
        row.status = OrderStatus.refunded if full else OrderStatus.partially_refunded
        await session.flush()
        await emit(
            session,
            "order.refunded",
            **order_rows.paid_payload(row),
            refunded_amount=total,
            full=full,
        )

    await refunded(2_500, full=False)
    await refunded(2_500, full=False)  # redelivered: no second notification
    await refunded(10_000, full=True)
    refunds = [n for n in await notifications_of(session, buyer.id) if n.kind == "order.refunded"]
    assert sorted((n.title, n.body) for n in refunds) == [
        ("Partial refund: Optics", "25.00 USD of 100.00 USD for Optics was refunded to you."),
        ("Refund: Optics", "100.00 USD of 100.00 USD for Optics was refunded to you."),
    ]
    assert {n.url for n in refunds} == {f"/api/v1/me/orders/{row.id}/receipt"}
    assert all(n.category is Category.payments for n in refunds)


async def test_payments_mail_cannot_be_turned_off(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    me = await account(client, connection)
    current = await client.get("/api/v1/me/notification-preferences", headers=me.headers)
    assert current.json()["channels"]["payments"]["email"] is True
    refused = await client.patch(
        "/api/v1/me/notification-preferences",
        json={"channels": {"payments": {"email": False}}},
        headers=me.headers,
    )
    assert refused.status_code == 422
    # The schema says so too (`email` takes only true), so no client is surprised.
    assert [e["field"] for e in refused.json()["errors"]] == ["body.channels.payments.email"]
    allowed = await client.patch(
        "/api/v1/me/notification-preferences",
        json={"channels": {"payments": {"push": False}}},
        headers=me.headers,
    )
    assert allowed.status_code == 200, allowed.text


# Committed: concurrent transactions, and the mail job ------------------------------------


@dataclass
class Committed:
    """Rows written in transactions of their own, deleted after the test."""

    runtime: Runtime
    users: list[uuid.UUID] = field(default_factory=list)
    courses: list[uuid.UUID] = field(default_factory=list)
    years: list[int] = field(default_factory=list)

    async def world(self, buyers: int, *, locale: str = "en", title: str = "Optics") -> Any:
        async with self.runtime.database.sessionmaker() as session, unit_of_work(session):
            teacher = await order_rows.person(session, role=Role.instructor)
            people = [
                await order_rows.person(session, name="Nguyễn Thị Minh Khai", locale=locale)
                for _ in range(buyers)
            ]
            course = await order_rows.course(session, teacher.id, title=title)
        self.users += [teacher.id, *(p.id for p in people)]
        self.courses.append(course.id)
        return people, course

    async def orders(self, buyers: list[User], course: Course, year: int) -> list[Order]:
        self.years.append(year)
        async with self.runtime.database.sessionmaker() as session, unit_of_work(session):
            return [
                await order_rows.order(session, buyer.id, course.id, paid_at=paid_in(year))
                for buyer in buyers
            ]

    async def numbers(self, orders: list[Order]) -> dict[uuid.UUID, str | None]:
        async with self.runtime.database.sessionmaker() as session:
            rows = await session.execute(
                select(Order.id, Order.receipt_number).where(Order.id.in_([o.id for o in orders]))
            )
            return {row.id: row.receipt_number for row in rows}


@pytest.fixture
async def committed(runtime: Runtime) -> AsyncIterator[Committed]:
    made = Committed(runtime)
    yield made
    # The mail jobs these notifications queued run first (to the dev outbox), so that
    # no other test's worker meets them later.
    await run_jobs([Queue.mail.value], runtime=runtime)
    async with runtime.database.sessionmaker() as session, unit_of_work(session):
        await session.execute(delete(Notification).where(Notification.user_id.in_(made.users)))
        await session.execute(delete(Order).where(Order.course_id.in_(made.courses)))
        await session.execute(delete(Course).where(Course.id.in_(made.courses)))
        await session.execute(delete(User).where(User.id.in_(made.users)))
        await session.execute(delete(ReceiptCounter).where(ReceiptCounter.year.in_(made.years)))


class PaymentRolledBack(Exception):
    pass


async def test_numbers_are_gapless_under_concurrent_payments_and_a_rollback(
    committed: Committed, runtime: Runtime
) -> None:
    year = a_year()
    buyers, course = await committed.world(8)
    orders = await committed.orders(buyers, course, year)
    doomed = orders[3]
    start = asyncio.Event()

    async def pay(row: Order) -> None:
        await start.wait()
        async with runtime.database.sessionmaker() as session, unit_of_work(session):
            await emit(session, "order.paid", **order_rows.paid_payload(row))
            await asyncio.sleep(0.01)  # hold the counter while the others queue behind it
            if row is doomed:
                raise PaymentRolledBack  # e.g. the enrollment failed after the receipt

    payments = [asyncio.create_task(pay(row)) for row in orders]
    start.set()
    results = await asyncio.gather(*payments, return_exceptions=True)
    assert [type(r) for r in results].count(PaymentRolledBack) == 1
    assert all(r is None or isinstance(r, PaymentRolledBack) for r in results)

    numbers = await committed.numbers(orders)
    assert numbers[doomed.id] is None
    given = sorted(n for n in numbers.values() if n is not None)
    assert given == [f"{year}-{n:06d}" for n in range(1, 8)]  # the rolled-back one gave its back

    # The payment retried later takes the next number: still no gap, no repeat.
    async with runtime.database.sessionmaker() as session, unit_of_work(session):
        await emit(session, "order.paid", **order_rows.paid_payload(doomed))
    assert (await committed.numbers([doomed]))[doomed.id] == f"{year}-000008"


async def test_the_buyer_is_mailed_the_receipt_in_their_language_without_unsubscribe(
    committed: Committed,
    runtime: Runtime,
    smtp_server: tuple[int, Inbox],  # noqa: F811
) -> None:
    port, inbox = smtp_server
    smtp_runtime = with_settings(runtime, smtp_host="127.0.0.1", smtp_port=port)
    year = a_year()
    [buyer], course = await committed.world(1, locale="vi-VN", title="Lập trình Python")
    [row] = await committed.orders([buyer], course, year)
    async with runtime.database.sessionmaker() as session, unit_of_work(session):
        await emit(session, "order.paid", **order_rows.paid_payload(row))
    await run_jobs([Queue.mail.value], runtime=smtp_runtime)

    [message] = [m for envelope, m in inbox.messages if envelope.rcpt_tos == [buyer.email]]
    assert message["Subject"] == f"Biên lai {year}-000001 cho khóa học Lập trình Python"
    assert message["List-Unsubscribe"] is None  # payments mail is not optional
    text, html = parts(message)
    link = f"http://lyceum.test/api/v1/me/orders/{row.id}/receipt"
    assert "Xin chào Nguyễn Thị Minh Khai" in text
    assert "Số tiền đã thanh toán: 12,345 KWD" in text  # Vietnamese decimal comma
    assert f"Số biên lai: {year}-000001" in text
    assert link in text and f'href="{link}"' in html
    assert "nsubscribe" not in text and "Hủy đăng ký" not in html

    async with runtime.database.sessionmaker() as session, unit_of_work(session):
        await session.execute(
            update(Order)
            .where(Order.id == row.id)
            .values(refunded_amount=2_345, status=OrderStatus.partially_refunded)
        )
        await emit(
            session,
            "order.refunded",
            **order_rows.paid_payload(row),
            refunded_amount=2_345,
            full=False,
        )
    await run_jobs([Queue.mail.value], runtime=smtp_runtime)
    refunds = [
        m
        for envelope, m in inbox.messages
        if envelope.rcpt_tos == [buyer.email] and m is not message
    ]
    assert [m["Subject"] for m in refunds] == [
        "Hoàn tiền một phần đơn hàng khóa học Lập trình Python"
    ]
    assert "Đã hoàn đến nay: 2,345 KWD trên 12,345 KWD" in parts(refunds[0])[0]


# The PDF ----------------------------------------------------------------------------------


def pdf_text(pdf: bytes, tmp_path: Any) -> str:
    path = tmp_path / "receipt.pdf"
    path.write_bytes(pdf)
    result = subprocess.run(
        [tool("pdftotext"), "-layout", "-enc", "UTF-8", str(path), "-"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return result.stdout.decode("utf-8")


async def test_the_receipt_pdf_is_the_buyer_s_alone(
    client: httpx.AsyncClient, connection: AsyncConnection, session: AsyncSession, tmp_path: Any
) -> None:
    buyer = await account(client, connection, prefix="buyer")
    other = await account(client, connection, prefix="other")
    admin = await account(client, connection, role=Role.admin, prefix="admin")
    teacher = await order_rows.person(session, role=Role.instructor)
    course = await order_rows.course(session, teacher.id, title=AR_TITLE)
    year = a_year()
    coupon = await order_rows.coupon(session, "SPRING")
    row = await order_rows.order(
        session,
        buyer.id,
        course.id,
        amount=12_345,
        discount_amount=1_000,
        coupon_id=coupon.id,
        tax_rate_bp=500,
        tax_amount=588,
        paid_at=paid_in(year),
    )
    unpaid = await order_rows.order(
        session, buyer.id, course.id, status=OrderStatus.pending, paid_at=None
    )
    await emit(session, "order.paid", **order_rows.paid_payload(row))
    await session.commit()

    answer = await client.get(f"/api/v1/me/orders/{row.id}/receipt", headers=buyer.headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.headers["content-disposition"] == (
        f'attachment; filename="receipt-{year}-000001.pdf"'
    )
    text = pdf_text(answer.content, tmp_path)
    flat = " ".join(text.split())
    assert_arabic(AR_TITLE, text)
    assert f"Receipt number: {year}-000001" in flat
    assert "Total paid 12.345 KWD" in flat
    assert "Includes VAT at 5% 0.588 KWD" in flat
    assert f"Discount (coupon {coupon.code}) -1.000 KWD" in flat
    assert "Lyceum" in flat  # RECEIPT_SELLER_NAME's default

    for who, order_id in (
        (other, row.id),  # another's order
        (admin, row.id),  # admins too: a receipt is the buyer's document
        (buyer, unpaid.id),  # never paid: no receipt number
        (buyer, uuid.uuid4()),
    ):
        refused = await client.get(f"/api/v1/me/orders/{order_id}/receipt", headers=who.headers)
        assert refused.status_code == 404, (who.email, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
    anonymous = await client.get(f"/api/v1/me/orders/{row.id}/receipt")
    assert anonymous.status_code == 401


# Through the core's flow ------------------------------------------------------------------


async def test_a_sandbox_purchase_and_refund_end_in_a_receipt_and_notifications(
    client: httpx.AsyncClient,
    teacher: Account,
    buyer: Account,
    admin: Account,
    tmp_path: Any,
) -> None:
    """Checkout, pay on the sandbox page (its signed webhook), refund part of it: the
    order is numbered, the buyer hears of both in the app, and the PDF shows the refund."""
    course = await priced_course(client, teacher, 12_345, "KWD")
    order = await bought(client, buyer, course["id"])
    listed = await client.get(f"{API}/me/orders/{order['id']}", headers=buyer.headers)
    # The order names its receipt, so an app links to it without building the path.
    assert listed.json()["receipt_url"] == f"{API}/me/orders/{order['id']}/receipt"
    receipt = await client.get(listed.json()["receipt_url"], headers=buyer.headers)
    assert receipt.status_code == 200, receipt.text
    number = receipt.headers["content-disposition"].split('"')[1].removeprefix("receipt-")
    year = dt.datetime.now(dt.UTC).year
    assert number == f"{listed.json()['receipt_number']}.pdf"
    assert number.startswith(f"{year}-") and number.endswith(".pdf")
    assert "Total paid 12.345 KWD" in " ".join(pdf_text(receipt.content, tmp_path).split())

    refunded = await client.post(
        f"{API}/payments/orders/{order['id']}/refunds",
        json={"amount": 2_345},
        headers={**admin.headers, "Idempotency-Key": "part"},
    )
    assert refunded.status_code == 201, refunded.text
    page = await client.get("/api/v1/me/notifications", headers=buyer.headers)
    kinds = {(n["kind"], n["category"], n["url"]) for n in page.json()["items"]}
    link = f"{API}/me/orders/{order['id']}/receipt"
    assert ("order.paid", "payments", link) in kinds
    assert ("order.refunded", "payments", link) in kinds
    after = await client.get(link, headers=buyer.headers)
    flat = " ".join(pdf_text(after.content, tmp_path).split())
    assert "Refunded so far -2.345 KWD" in flat and "Net paid 10.000 KWD" in flat
    # The same number: the receipt is the order's, whatever happened since.
    assert after.headers["content-disposition"] == receipt.headers["content-disposition"]
