"""Payment jobs: every five minutes, reconcile the orders still pending after
PAYMENT_RECONCILE_AFTER_MINUTES with their provider (a lost webhook still ends in an
enrollment) and close the checkouts past their time."""

from __future__ import annotations

import datetime as dt

import httpx
import structlog

from lyceum.kit.jobs import JobContext, Queue, job_app, resources, task, transaction
from lyceum.payments import registry
from lyceum.payments.permissions import PROVIDER_TIMEOUT_SECONDS
from lyceum.payments.providers.base import ProviderError
from lyceum.payments.service import reconcile_order, stale_pending_orders

logger = structlog.get_logger("lyceum.payments")


@job_app.periodic(cron="*/5 * * * *", periodic_id="reconcile-payments")
@task(
    name="lyceum.payments.reconcile",
    queue=Queue.maintenance,
    pass_context=True,
    retry=False,
    queueing_lock="reconcile_payments",
)
async def reconcile_payments(context: JobContext, timestamp: int) -> int:
    """Ask the providers about stale pending orders, one transaction per order (a
    provider that fails leaves its order for the next run). Safe to run twice: each
    answer is applied once, by its event id."""
    runtime = resources(context)
    settings = runtime.settings
    now = dt.datetime.now(dt.UTC)
    async with transaction(runtime) as session:
        order_ids = await stale_pending_orders(
            session, now=now, after_minutes=settings.payment_reconcile_after_minutes
        )
    settled = 0
    async with httpx.AsyncClient(timeout=PROVIDER_TIMEOUT_SECONDS) as http:
        for order_id in order_ids:
            try:
                async with transaction(runtime) as session:
                    providers = registry.providers(settings, http=http, session=session)
                    outcome = await reconcile_order(
                        session,
                        providers,
                        order_id,
                        now=now,
                        refund_ends_access=settings.refund_ends_access,
                    )
            except ProviderError as error:
                logger.warning("payment_reconcile_failed", order_id=str(order_id), error=str(error))
                continue
            if outcome not in ("still open", "not pending"):
                settled += 1
            logger.info("payment_reconciled", order_id=str(order_id), outcome=outcome)
    return settled
