"""Identity jobs: the mails of registration, verification and password reset.

Each mail is one logical message (`Mailer.send_once`): a retried job sends nothing
twice. A mail carrying a token issues the token in the same transaction as the log
entry, so a failed send leaves neither behind and the retry issues a fresh one.
"""

from __future__ import annotations

import uuid

import structlog

from lyceum.identity.repository import IdentityRepository
from lyceum.identity.service import (
    RESET_PASSWORD_TTL,
    VERIFY_EMAIL_TTL,
    issue_one_time_token,
)
from lyceum.kit.clock import SystemClock
from lyceum.kit.events import on
from lyceum.kit.jobs import JobContext, Queue, Resources, resources, task, transaction
from lyceum.kit.mail import language_of
from lyceum.models.identity import TokenPurpose, User

logger = structlog.get_logger("lyceum.identity.tasks")

RESET_MAILS_PER_HOUR = "3/hour"


def _base_url(runtime: Resources) -> str:
    return runtime.settings.base_url()


def _link(runtime: Resources, path: str, token: str) -> str:
    return f"{_base_url(runtime)}{path}?token={token}"


async def _active_user(repo: IdentityRepository, user_id: str) -> User | None:
    user = await repo.user_by_id(uuid.UUID(user_id))
    if user is None or not user.is_active:
        logger.info("mail_skipped_inactive_user", user_id=user_id)
        return None
    return user


def _job_key(context: JobContext, name: str) -> str:
    """One logical message per job: its retries share the key."""
    job_id = context.job.id if context.job is not None else uuid.uuid4().hex
    return f"{name}:job-{job_id}"


@task(name="lyceum.identity.send_welcome_mail", queue=Queue.mail, pass_context=True)
async def send_welcome_mail(context: JobContext, user_id: str) -> None:
    runtime = resources(context)
    async with transaction(runtime) as session:
        user = await _active_user(IdentityRepository(session), user_id)
        if user is None:
            return
        await runtime.mailer.send_once(
            session,
            key=f"welcome:{user.id}",
            template="welcome",
            to=user.email,
            language=language_of(user.locale),
            context={"full_name": user.full_name, "app_url": _base_url(runtime)},
        )


@task(name="lyceum.identity.send_verification_mail", queue=Queue.mail, pass_context=True)
async def send_verification_mail(context: JobContext, user_id: str) -> None:
    """Issues a fresh 24 h token (older ones stop working) and mails its link."""
    runtime = resources(context)
    async with transaction(runtime) as session:
        repo = IdentityRepository(session)
        user = await _active_user(repo, user_id)
        if user is None or user.email_verified_at is not None:
            return
        key = _job_key(context, "verify_email")
        issued = await issue_one_time_token(
            repo, user, TokenPurpose.verify_email, VERIFY_EMAIL_TTL, SystemClock().now()
        )
        sent = await runtime.mailer.send_once(
            session,
            key=key,
            template="verify_email",
            to=user.email,
            language=language_of(user.locale),
            context={
                "full_name": user.full_name,
                "link": _link(runtime, "/verify-email", issued.token),
            },
        )
        if not sent:
            # Sent by an earlier run of this job: keep that mail's token valid.
            await session.rollback()


@task(name="lyceum.identity.send_password_reset_mail", queue=Queue.mail, pass_context=True)
async def send_password_reset_mail(context: JobContext, email: str) -> None:
    runtime = resources(context)
    async with transaction(runtime) as session:
        repo = IdentityRepository(session)
        user = await repo.user_by_email(email)
        if user is None or not user.is_active:
            logger.info("password_reset_for_unknown_account")
            return
        key = _job_key(context, "password_reset")
        decision = await runtime.rate_limiter.hit(RESET_MAILS_PER_HOUR, "reset-mail", str(user.id))
        if not decision.allowed:
            logger.warning("password_reset_mail_throttled", user_id=str(user.id))
            return
        issued = await issue_one_time_token(
            repo, user, TokenPurpose.reset_password, RESET_PASSWORD_TTL, SystemClock().now()
        )
        sent = await runtime.mailer.send_once(
            session,
            key=key,
            template="password_reset",
            to=user.email,
            language=language_of(user.locale),
            context={
                "full_name": user.full_name,
                "link": _link(runtime, "/reset-password", issued.token),
            },
        )
        if not sent:
            await session.rollback()


on("user.registered", send_welcome_mail)
on("user.registered", send_verification_mail)
on("user.verification_requested", send_verification_mail)
on("user.password_reset_requested", send_password_reset_mail)
