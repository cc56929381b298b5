"""Jobs of the channels domain: sending a phone's verification code."""

from __future__ import annotations

import uuid

import structlog

from lyceum.channels.codes import phone_code
from lyceum.channels.repository import ChannelRepository
from lyceum.channels.sending import PHONE_CODE_TTL, sms_once
from lyceum.kit.jobs import JobContext, Queue, resources, task, transaction

logger = structlog.get_logger("lyceum.channels.tasks")


@task(name="lyceum.channels.send_phone_code", queue=Queue.notifications, pass_context=True)
async def send_phone_code(context: JobContext, user_id: str, nonce: str) -> None:
    """Text the code of `nonce` to the user's phone, unless a newer code replaced it or
    the phone was verified or removed meanwhile."""
    runtime = resources(context)
    owner = uuid.UUID(user_id)
    async with transaction(runtime) as session:
        phone = await ChannelRepository(session).phone_of(owner)
        if phone is None or phone.code_nonce != nonce or phone.verified_at is not None:
            logger.info("phone_code_skipped", user_id=user_id, reason="code replaced or used")
            return
        code = phone_code(runtime.settings.secret_key_value(), owner, nonce)
        minutes = int(PHONE_CODE_TTL.total_seconds() // 60)
        await sms_once(
            session,
            runtime,
            user_id=owner,
            number=phone.number,
            text=f"Your Lyceum verification code is {code}. It expires in {minutes} minutes.",
            idempotency_key=f"phone-code:{user_id}:{nonce}",
        )
