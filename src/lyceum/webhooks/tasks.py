"""Webhook jobs: one delivery attempt (re-deferred on the retry schedule rather than
procrastinate's retry policy: the delays grow to hours), the admins' mail when an
endpoint is disabled, and the daily purge of old delivery log rows."""

from __future__ import annotations

import datetime as dt
import uuid

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.kit.events import PublicEvent, ask_with_events, publish_to
from lyceum.kit.jobs import JobContext, Queue, defer, job_app, resources, task, transaction
from lyceum.kit.mail import language_of
from lyceum.kit.security import SecretBox
from lyceum.models.webhooks import WebhookDelivery, WebhookDeliveryStatus
from lyceum.webhooks.repository import WebhookRepository, subscribed_ids
from lyceum.webhooks.service import SUBSCRIBED, attempt, fan_out, new_client, settle

logger = structlog.get_logger("lyceum.webhooks")


@task(name="lyceum.webhooks.deliver", queue=Queue.webhooks, pass_context=True, retry=False)
async def deliver_webhook(context: JobContext, delivery_id: str) -> None:
    """One attempt of a delivery; a failure schedules the next attempt as a new job.
    The database is not held while the receiver answers."""
    runtime = resources(context)
    settings = runtime.settings
    # Read without locking: a read-only transaction commits without a WAL flush. The
    # outcome's transaction below locks the row and checks again.
    async with transaction(runtime) as session:
        found = await WebhookRepository(session).delivery_and_endpoint(uuid.UUID(delivery_id))
        if found is None or found[0].status is not WebhookDeliveryStatus.pending:
            return  # purged, deleted with its endpoint, or already settled
        delivery, endpoint = found
        if not endpoint.is_active:
            delivery.status = WebhookDeliveryStatus.failed
            delivery.next_attempt_at = None
            delivery.last_error = "The endpoint is disabled."
            return
        url, body, message_id = endpoint.url, delivery.body, str(delivery.event_id)
        secret = SecretBox(settings.secret_key_value()).open(endpoint.secret)
    async with new_client() as client:
        outcome = await attempt(
            client,
            settings,
            url=url,
            secret=secret,
            message_id=message_id,
            body=body,
            now=dt.datetime.now(dt.UTC),
        )
    async with transaction(runtime) as session:
        found = await WebhookRepository(session).delivery_and_endpoint(
            uuid.UUID(delivery_id), for_update=True
        )
        if found is None or found[0].status is not WebhookDeliveryStatus.pending:
            return
        delivery, endpoint = found
        now = dt.datetime.now(dt.UTC)
        settled = settle(delivery, endpoint, outcome, now, settings.webhook_disable_after_seconds)
        if settled.retry_at is not None:
            await enqueue(session, delivery, at=settled.retry_at)
        if settled.disabled:
            await defer(
                session,
                mail_endpoint_disabled,
                endpoint_id=str(endpoint.id),
                disabled_at=now.isoformat(),
            )
        logger.debug(
            "webhook_attempt",
            delivery_id=delivery_id,
            status=delivery.status.value,
            status_code=outcome.status_code,
            error=outcome.error,
            attempts=delivery.attempts,
        )


async def enqueue(
    session: AsyncSession, delivery: WebhookDelivery, *, at: dt.datetime | None = None
) -> None:
    """The delivery's next attempt, as a job in the session's transaction."""
    await defer(session, deliver_webhook, schedule_at=at, delivery_id=str(delivery.id))


async def deliver_event(session: AsyncSession, event: PublicEvent) -> None:
    await fan_out(session, event, enqueue)


@task(name="lyceum.webhooks.mail_endpoint_disabled", queue=Queue.mail, pass_context=True)
async def mail_endpoint_disabled(context: JobContext, endpoint_id: str, disabled_at: str) -> None:
    """Tell every admin that Lyceum disabled a webhook endpoint (once per disabling)."""
    runtime = resources(context)
    async with transaction(runtime) as session:
        repo = WebhookRepository(session)
        endpoint = await repo.endpoint(uuid.UUID(endpoint_id))
        if endpoint is None:
            return
        url, reason = endpoint.url, endpoint.disabled_reason or ""
        admins = await repo.admin_emails()
    base = runtime.settings.base_url()
    for email, name, locale in admins:
        async with transaction(runtime) as session:
            await runtime.mailer.send_once(
                session,
                key=f"webhook_disabled:{endpoint_id}:{disabled_at}:{email}",
                template="webhook_disabled",
                to=email,
                language=language_of(locale),
                context={
                    "full_name": name,
                    "webhook_url": url,
                    "reason": reason,
                    "endpoint_url": f"{base}/api/v1/webhooks/endpoints/{endpoint_id}",
                },
            )


@job_app.periodic(cron="17 3 * * *", periodic_id="purge-webhook-deliveries")
@task(
    name="lyceum.webhooks.purge_deliveries",
    queue=Queue.maintenance,
    pass_context=True,
    retry=False,
    queueing_lock="purge_webhook_deliveries",
)
async def purge_webhook_deliveries(context: JobContext, timestamp: int) -> int:
    """Daily: delete delivery log rows, and public events, older than
    WEBHOOK_DELIVERY_RETENTION_DAYS."""
    runtime = resources(context)
    days = runtime.settings.webhook_delivery_retention_days
    before = dt.datetime.fromtimestamp(timestamp, dt.UTC) - dt.timedelta(days=days)
    async with transaction(runtime) as session:
        repository = WebhookRepository(session)
        purged = await repository.purge_deliveries(before)
        events = await repository.purge_events(before)
    logger.info("webhook_deliveries_purged", count=purged, events=events, before=before.isoformat())
    return purged


ask_with_events(SUBSCRIBED, subscribed_ids)
publish_to(deliver_event)
