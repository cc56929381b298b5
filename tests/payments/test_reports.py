"""Payment reports against hand-built orders: revenue by day, course and currency (paid,
partially refunded, refunded; pending, failed and out-of-period orders left out), refunds
by the day they were made, coupon use; an instructor sees only their own courses, a
learner nothing; CSV with the currency's decimals and formula cells escaped."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lyceum.models.identity import Role
from lyceum.models.payments import OrderStatus, Refund, RefundStatus
from lyceum.payments.reports import csv_safe, money_text, period_of
from tests.identity.helpers import Account, account
from tests.payments import order_rows

DAY_1 = dt.datetime(2026, 11, 10, 8, 0, tzinfo=dt.UTC)
DAY_1_LATE = dt.datetime(2026, 11, 10, 23, 59, 59, tzinfo=dt.UTC)
DAY_2 = dt.datetime(2026, 11, 11, 0, 0, tzinfo=dt.UTC)
BEFORE = dt.datetime(2026, 11, 9, 23, 59, 59, tzinfo=dt.UTC)
PERIOD = "from=2026-11-10&to=2026-11-11"
# A title a spreadsheet would run as a formula.
HOSTILE_TITLE = '=HYPERLINK("http://evil.example","Astronomy")'


@dataclass
class World:
    admin: Account
    teacher: Account
    other_teacher: Account
    learner: Account
    course: str  # the teacher's
    other_course: str  # the other teacher's
    coupon: str


@pytest.fixture
async def world(
    client: httpx.AsyncClient, connection: AsyncConnection, session: AsyncSession
) -> World:
    admin = await account(client, connection, role=Role.admin, prefix="admin")
    teacher = await account(client, connection, role=Role.instructor, prefix="teacher")
    other_teacher = await account(client, connection, role=Role.instructor, prefix="oi")
    learner = await account(client, connection, prefix="learner")
    buyer = await order_rows.person(session)
    course = await order_rows.course(session, teacher.id, title=HOSTILE_TITLE)
    other_course = await order_rows.course(session, other_teacher.id, title="Zoology")
    coupon = await order_rows.coupon(session, "AUTUMN")

    def order(course_id: uuid.UUID, **fields: Any) -> Any:
        return order_rows.order(session, buyer.id, course_id, **fields)

    await order(
        course.id,
        amount=12_345,
        discount_amount=1_000,
        coupon_id=coupon.id,
        tax_rate_bp=500,
        tax_amount=588,
        paid_at=DAY_1,
    )
    partial = await order(
        course.id,
        amount=10_000,
        status=OrderStatus.partially_refunded,
        refunded_amount=2_500,
        paid_at=DAY_1_LATE,
    )
    refunded = await order(
        course.id,
        amount=5_000,
        currency="USD",
        status=OrderStatus.refunded,
        refunded_amount=5_000,
        paid_at=DAY_1,
    )
    await order(course.id, amount=20_000, paid_at=DAY_2)
    # Left out: not paid, or paid before the period.
    await order(course.id, amount=99_000, status=OrderStatus.pending, paid_at=None)
    await order(course.id, amount=99_000, status=OrderStatus.failed, paid_at=None)
    await order(course.id, amount=99_000, paid_at=BEFORE)
    # The other teacher's course.
    await order(
        other_course.id, amount=7_000, discount_amount=700, coupon_id=coupon.id, paid_at=DAY_1
    )
    session.add_all(
        [
            Refund(
                order_id=partial.id,
                amount=2_500,
                currency="KWD",
                status=RefundStatus.succeeded,
                idempotency_key="r1",
                created_at=DAY_2,
            ),
            Refund(
                order_id=refunded.id,
                amount=5_000,
                currency="USD",
                status=RefundStatus.succeeded,
                idempotency_key="r2",
                created_at=DAY_2,
            ),
            # Asked for and refused by the provider: not a refund.
            Refund(
                order_id=partial.id,
                amount=1_000,
                currency="KWD",
                status=RefundStatus.failed,
                idempotency_key="r3",
                created_at=DAY_2,
            ),
        ]
    )
    await session.flush()
    return World(
        admin,
        teacher,
        other_teacher,
        learner,
        str(course.id),
        str(other_course.id),
        coupon.code,
    )


def revenue(course: str, title: str, day: str, currency: str, *numbers: int) -> dict[str, Any]:
    orders, gross, discounts, tax, refunded, net = numbers
    return {
        "day": day,
        "course_id": course,
        "course_title": title,
        "currency": currency,
        "decimals": {"KWD": 3, "USD": 2}[currency],
        "orders": orders,
        "gross": gross,
        "discounts": discounts,
        "tax": tax,
        "refunded": refunded,
        "net": net,
    }


async def test_revenue_by_day_course_and_currency_for_the_course_s_instructor(
    client: httpx.AsyncClient, world: World
) -> None:
    answer = await client.get(
        f"/api/v1/payments/reports/revenue?{PERIOD}", headers=world.teacher.headers
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["period"] == {"first_day": "2026-11-10", "last_day": "2026-11-11"}
    mine = (world.course, HOSTILE_TITLE)
    assert body["items"] == [
        revenue(*mine, "2026-11-10", "KWD", 2, 22_345, 1_000, 588, 2_500, 19_845),
        revenue(*mine, "2026-11-10", "USD", 1, 5_000, 0, 0, 5_000, 0),
        revenue(*mine, "2026-11-11", "KWD", 1, 20_000, 0, 0, 0, 20_000),
    ]


async def test_admins_see_every_course_and_can_pick_one(
    client: httpx.AsyncClient, world: World
) -> None:
    answer = await client.get(
        f"/api/v1/payments/reports/revenue?{PERIOD}", headers=world.admin.headers
    )
    rows = [
        r for r in answer.json()["items"] if r["course_id"] in (world.course, world.other_course)
    ]
    assert len(rows) == 4
    assert (
        revenue(world.other_course, "Zoology", "2026-11-10", "KWD", 1, 7_000, 700, 0, 0, 7_000)
        in rows
    )
    one = await client.get(
        f"/api/v1/payments/reports/revenue?{PERIOD}&course_id={world.other_course}",
        headers=world.admin.headers,
    )
    assert [r["course_id"] for r in one.json()["items"]] == [world.other_course]


async def test_refunds_fall_on_the_day_they_were_made(
    client: httpx.AsyncClient, world: World
) -> None:
    answer = await client.get(
        f"/api/v1/payments/reports/refunds?{PERIOD}", headers=world.teacher.headers
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["items"] == [
        {
            "day": "2026-11-11",
            "course_id": world.course,
            "course_title": HOSTILE_TITLE,
            "currency": currency,
            "decimals": decimals,
            "refunds": 1,
            "orders": 1,
            "amount": amount,
        }
        for currency, decimals, amount in (("KWD", 3, 2_500), ("USD", 2, 5_000))
    ]
    # The day before: the payments, but no refund yet.
    earlier = await client.get(
        "/api/v1/payments/reports/refunds?from=2026-11-10&to=2026-11-10",
        headers=world.teacher.headers,
    )
    assert earlier.json()["items"] == []


async def test_coupon_use_per_course(client: httpx.AsyncClient, world: World) -> None:
    mine = await client.get(
        f"/api/v1/payments/reports/coupons?{PERIOD}", headers=world.teacher.headers
    )
    assert mine.status_code == 200, mine.text
    [row] = mine.json()["items"]
    assert row["code"] == world.coupon and row["course_id"] == world.course
    assert (row["uses"], row["buyers"], row["discount"], row["gross"]) == (1, 1, 1_000, 12_345)
    everyone = await client.get(
        f"/api/v1/payments/reports/coupons?{PERIOD}", headers=world.admin.headers
    )
    used = {
        (r["course_id"], r["discount"])
        for r in everyone.json()["items"]
        if r["code"] == world.coupon
    }
    assert used == {(world.course, 1_000), (world.other_course, 700)}


REPORTS = ["revenue", "refunds", "coupons", "revenue.csv", "refunds.csv", "coupons.csv"]


@pytest.mark.parametrize("report", REPORTS)
async def test_who_sees_which_report(client: httpx.AsyncClient, world: World, report: str) -> None:
    base = f"/api/v1/payments/reports/{report}?{PERIOD}"

    async def status(who: Account | None, query: str = "") -> int:
        headers = who.headers if who else {}
        return (await client.get(base + query, headers=headers)).status_code

    assert await status(None) == 401
    assert await status(world.learner) == 403
    assert await status(world.teacher) == 200
    assert await status(world.admin) == 200
    assert await status(world.teacher, f"&course_id={world.other_course}") == 403
    assert await status(world.other_teacher, f"&course_id={world.course}") == 403
    assert await status(world.teacher, f"&course_id={world.course}") == 200
    # The other teacher's own report has none of this teacher's rows.
    other = await client.get(base, headers=world.other_teacher.headers)
    assert world.course not in other.text and HOSTILE_TITLE not in other.text


async def test_any_period_is_answered_and_a_malformed_date_is_a_422(
    client: httpx.AsyncClient, world: World
) -> None:
    base = "/api/v1/payments/reports/revenue"
    backwards = await client.get(
        f"{base}?from=2026-11-12&to=2026-11-11", headers=world.admin.headers
    )
    assert backwards.status_code == 200 and backwards.json()["items"] == []
    long = await client.get(f"{base}?from=2000-01-01&to=2026-11-11", headers=world.teacher.headers)
    assert long.status_code == 200 and len(long.json()["items"]) == 4  # BEFORE's order too
    malformed = await client.get(f"{base}?from=11/10/2026", headers=world.admin.headers)
    assert malformed.status_code == 422
    assert malformed.headers["content-type"] == "application/problem+json"


def read_csv(answer: httpx.Response) -> list[list[str]]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    text = answer.content.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))


async def test_csv_has_the_currency_s_decimals_and_escapes_formulas(
    client: httpx.AsyncClient, world: World
) -> None:
    answer = await client.get(
        f"/api/v1/payments/reports/revenue.csv?{PERIOD}", headers=world.teacher.headers
    )
    assert answer.headers["content-disposition"] == (
        'attachment; filename="revenue-2026-11-10-2026-11-11.csv"'
    )
    header, *rows = read_csv(answer)
    assert header == [
        "day",
        "course_id",
        "course_title",
        "currency",
        "orders",
        "gross",
        "discounts",
        "tax",
        "refunded",
        "net",
    ]
    escaped = "'" + HOSTILE_TITLE
    assert rows == [
        [
            "2026-11-10",
            world.course,
            escaped,
            "KWD",
            "2",
            "22.345",
            "1.000",
            "0.588",
            "2.500",
            "19.845",
        ],
        ["2026-11-10", world.course, escaped, "USD", "1", "50.00", "0.00", "0.00", "50.00", "0.00"],
        [
            "2026-11-11",
            world.course,
            escaped,
            "KWD",
            "1",
            "20.000",
            "0.000",
            "0.000",
            "0.000",
            "20.000",
        ],
    ]
    refunds = read_csv(
        await client.get(
            f"/api/v1/payments/reports/refunds.csv?{PERIOD}", headers=world.teacher.headers
        )
    )
    assert refunds[1:] == [
        ["2026-11-11", world.course, escaped, "KWD", "1", "1", "2.500"],
        ["2026-11-11", world.course, escaped, "USD", "1", "1", "50.00"],
    ]
    coupons = read_csv(
        await client.get(
            f"/api/v1/payments/reports/coupons.csv?{PERIOD}", headers=world.teacher.headers
        )
    )
    assert coupons[0][0] == "code"
    assert coupons[1][0] == world.coupon and coupons[1][-2:] == ["1.000", "12.345"]


def test_formula_triggers_and_amounts_as_written() -> None:
    for cell in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert csv_safe(cell) == "'" + cell
    assert csv_safe("Astronomy = stars") == "Astronomy = stars"
    assert money_text(12_345, "KWD") == "12.345"
    assert money_text(500, "JPY") == "500"
    assert money_text(5, "USD") == "0.05"


def test_the_period_defaults_to_the_last_thirty_days() -> None:
    today = dt.date(2026, 12, 4)
    period = period_of(None, None, today=today)
    assert (period.first, period.last) == (dt.date(2026, 11, 5), today)
    assert period_of(None, dt.date(2026, 1, 31), today=today).first == dt.date(2026, 1, 2)


async def test_a_report_past_its_row_cap_says_it_was_cut(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The teacher's revenue has three rows; with the cap at two the JSON says
    `truncated` and the CSV carries `X-Report-Truncated`, rather than a silent cut."""
    from lyceum.payments import report_repository, reports

    whole = await client.get(
        f"/api/v1/payments/reports/revenue?{PERIOD}", headers=world.teacher.headers
    )
    assert len(whole.json()["items"]) == 3 and whole.json()["truncated"] is False
    monkeypatch.setattr(report_repository, "MAX_ROWS", 2)
    monkeypatch.setattr(reports, "MAX_ROWS", 2)
    cut = await client.get(
        f"/api/v1/payments/reports/revenue?{PERIOD}", headers=world.teacher.headers
    )
    assert cut.json()["truncated"] is True
    assert cut.json()["items"] == whole.json()["items"][:2]
    as_csv = await client.get(
        f"/api/v1/payments/reports/revenue.csv?{PERIOD}", headers=world.teacher.headers
    )
    assert as_csv.headers["x-report-truncated"] == "true"
    assert len(as_csv.text.strip().splitlines()) == 3  # the header and two rows


@pytest.mark.parametrize(
    "query",
    ["to=0001-01-01", "from=0001-01-01&to=0001-01-03", "to=9999-12-31", "from=9999-12-31"],
)
@pytest.mark.parametrize("report", ["revenue", "refunds", "coupons", "coupons.csv"])
async def test_a_period_at_the_ends_of_the_calendar_is_answered_not_a_500(
    client: httpx.AsyncClient, world: World, report: str, query: str
) -> None:
    """Schemathesis sent `to=0001-01-01`: the default `from` (29 days before) and the
    day after `to` are past what a date holds. Such a period covers what it can."""
    response = await client.get(
        f"/api/v1/payments/reports/{report}?{query}", headers=world.admin.headers
    )
    assert response.status_code == 200, response.text
