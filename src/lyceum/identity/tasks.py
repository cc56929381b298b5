"""Identity jobs: the mails of registration, verification and password reset."""

from __future__ import annotations

import uuid

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.config import get_settings
from lyceum.identity.repository import IdentityRepository
from lyceum.identity.service import IdentityService
from lyceum.kit.cache import create_cache
from lyceum.kit.clock import SystemClock
from lyceum.kit.events import on
from lyceum.kit.jobs import DEFAULT_RETRY, job_app, task_session
from lyceum.kit.mail import send_templated
from lyceum.kit.ratelimit import RateLimiter
from lyceum.kit.security import SecretBox, TokenCodec
from lyceum.kit.storage import create_storage
from lyceum.models.identity import User

logger = structlog.get_logger("lyceum.identity.tasks")

RESET_MAILS_PER_HOUR = "3/hour"


def _service(session: AsyncSession) -> IdentityService:
    settings = get_settings()
    secret = settings.secret_key_value()
    return IdentityService(
        session,
        settings=settings,
        tokens=TokenCodec(secret, issuer=settings.jwt_issuer, audience=settings.jwt_audience),
        secret_box=SecretBox(secret),
        cache=create_cache(settings.redis_url),
        limiter=_limiter(),
        storage=create_storage(settings),
        now=SystemClock().now(),
    )


_limiters: dict[str | None, RateLimiter] = {}


def _limiter() -> RateLimiter:
    url = get_settings().redis_url
    if url not in _limiters:
        _limiters[url] = RateLimiter(url)
    return _limiters[url]


def _link(path: str, token: str) -> str:
    base = str(get_settings().public_base_url).rstrip("/")
    return f"{base}{path}?token={token}"


async def _active_user(repo: IdentityRepository, user_id: str) -> User | None:
    user = await repo.user_by_id(uuid.UUID(user_id))
    if user is None or not user.is_active:
        logger.info("mail_skipped_inactive_user", user_id=user_id)
        return None
    return user


@job_app.task(name="lyceum.identity.send_welcome_mail", retry=DEFAULT_RETRY)
async def send_welcome_mail(user_id: str) -> None:
    async with task_session() as session:
        user = await _active_user(IdentityRepository(session), user_id)
        if user is None:
            return
        base = str(get_settings().public_base_url).rstrip("/")
        await send_templated("welcome", user.email, {"full_name": user.full_name, "app_url": base})


@job_app.task(name="lyceum.identity.send_verification_mail", retry=DEFAULT_RETRY)
async def send_verification_mail(user_id: str) -> None:
    """Issues a fresh 24 h token (older ones stop working) and mails its link; a failed
    send rolls the token back and the job is retried."""
    async with task_session() as session:
        user = await _active_user(IdentityRepository(session), user_id)
        if user is None or user.email_verified_at is not None:
            return
        issued = await _service(session).issue_verification_token(user)
        await send_templated(
            "verify_email",
            user.email,
            {"full_name": user.full_name, "link": _link("/verify-email", issued.token)},
        )


@job_app.task(name="lyceum.identity.send_password_reset_mail", retry=DEFAULT_RETRY)
async def send_password_reset_mail(email: str) -> None:
    async with task_session() as session:
        repo = IdentityRepository(session)
        user = await repo.user_by_email(email)
        if user is None or not user.is_active:
            logger.info("password_reset_for_unknown_account")
            return
        decision = await _limiter().hit(RESET_MAILS_PER_HOUR, "reset-mail", str(user.id))
        if not decision.allowed:
            logger.warning("password_reset_mail_throttled", user_id=str(user.id))
            return
        issued = await _service(session).issue_reset_token(user)
        await send_templated(
            "password_reset",
            user.email,
            {"full_name": user.full_name, "link": _link("/reset-password", issued.token)},
        )


on("user.registered", send_welcome_mail)
on("user.registered", send_verification_mail)
on("user.verification_requested", send_verification_mail)
on("user.password_reset_requested", send_password_reset_mail)
