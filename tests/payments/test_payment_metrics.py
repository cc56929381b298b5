"""Payments' Prometheus metrics follow the sandbox flow: a checkout started, a payment
and a decline (each counted once its transaction commits), provider notifications
accepted and rejected, and a provider's failed call."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.config import Settings
from lyceum.payments.providers.base import ProviderError
from lyceum.payments.service import ProviderUnavailable, receive_webhook
from tests.identity.helpers import Account
from tests.payments.helpers import (
    checkout,
    checkout_id_of,
    pay_on_page,
    post_webhook,
    priced_course,
    sandbox_event,
)
from tests.support.metrics import sample


def _payments(outcome: str) -> float:
    return sample("lyceum_payments_total", provider="sandbox", outcome=outcome)


def _notifications(outcome: str) -> float:
    return sample("lyceum_payment_notifications_total", provider="sandbox", outcome=outcome)


async def test_the_sandbox_flow_counts_checkouts_payments_and_notifications(
    client: httpx.AsyncClient, settings: Settings, teacher: Account, buyer: Account
) -> None:
    before = {o: _payments(o) for o in ("checkout_started", "paid", "failed")}
    accepted, rejected = _notifications("accepted"), _notifications("rejected")

    course = await priced_course(client, teacher, 2900, "USD")
    order = (await checkout(client, buyer, course["id"])).json()
    assert _payments("checkout_started") == before["checkout_started"] + 1
    paid = await pay_on_page(client, order["checkout_url"])
    assert paid.status_code == 303
    assert _payments("paid") == before["paid"] + 1
    assert _notifications("accepted") == accepted + 1

    other = await priced_course(client, teacher, 1500, "USD")
    declined_order = (await checkout(client, buyer, other["id"])).json()
    declined = await pay_on_page(client, declined_order["checkout_url"], action="decline")
    assert declined.status_code == 303
    assert _payments("failed") == before["failed"] + 1
    assert _payments("checkout_started") == before["checkout_started"] + 2
    assert _notifications("accepted") == accepted + 2

    body, headers = sandbox_event(
        settings,
        "payment.succeeded",
        order=declined_order,
        checkout_id=checkout_id_of(declined_order),
    )
    forged = {**headers, "webhook-signature": "v1,bm90IHRoZSBzaWduYXR1cmU="}
    assert (await post_webhook(client, body, forged)).status_code == 400
    assert _notifications("rejected") == rejected + 1
    assert _payments("paid") == before["paid"] + 1


class _Unreachable:
    """A provider whose API cannot be reached to confirm a webhook."""

    name = "unreachable"

    async def parse_webhook(self, body: bytes, headers: Any, query: Any) -> Any:
        raise ProviderError("timed out", transient=True)


async def test_a_failed_provider_call_is_counted(session: AsyncSession) -> None:
    before = sample("lyceum_payment_provider_errors_total", provider="unreachable")
    with pytest.raises(ProviderUnavailable):
        await receive_webhook(
            session,
            _Unreachable(),  # type: ignore[arg-type]  # only parse_webhook is reached
            b"{}",
            {},
            {},
            now=dt.datetime.now(dt.UTC),
            refund_ends_access=True,
        )
    assert sample("lyceum_payment_provider_errors_total", provider="unreachable") == before + 1
