"""Channel rules: a phone is verified by an SMS code before it receives anything; push
subscriptions and devices belong to the account that registered them last. Also the
two functions the notification jobs send through, `send_sms` and `send_push`."""

from __future__ import annotations

import datetime as dt
import ipaddress
import uuid
from collections.abc import Sequence
from urllib.parse import urlsplit

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.channels import schemas
from lyceum.channels.codes import code_matches, new_nonce
from lyceum.channels.repository import ChannelRepository
from lyceum.channels.sending import (
    PHONE_CODE_MAX_ATTEMPTS,
    PHONE_CODE_TTL,
    send_push,
    send_sms,
)
from lyceum.channels.tasks import send_phone_code
from lyceum.kit.errors import Conflict, Invalid, NotFound
from lyceum.kit.jobs import Resources, defer
from lyceum.kit.sms import InvalidPhoneNumber, normalize_phone_number
from lyceum.kit.webpush import WebPushSender
from lyceum.models.channels import PushDevice, PushSubscription, UserPhone
from lyceum.models.identity import User

logger = structlog.get_logger("lyceum.channels")

SMS_NOT_CONFIGURED = "SMS is not configured on this server (TWILIO_* settings)."
WEB_PUSH_NOT_CONFIGURED = "Web Push is not configured on this server (VAPID_* settings)."
MOBILE_PUSH_NOT_CONFIGURED = (
    "Mobile push is not configured on this server (FCM_SERVICE_ACCOUNT_FILE)."
)


class WrongCode(Invalid):
    """A wrong verification code: refused, and counted (the count must stick)."""

    persist_changes = True


class ChannelService:
    def __init__(self, session: AsyncSession, runtime: Resources, now: dt.datetime) -> None:
        self.session = session
        self.runtime = runtime
        self.settings = runtime.settings
        self.repo = ChannelRepository(session)
        self.now = now

    # Phone ------------------------------------------------------------------------------

    async def set_phone(self, user: User, raw_number: str) -> UserPhone:
        """Set the caller's phone and text it a code; the phone is unverified until the
        code comes back. The same, already verified number changes nothing."""
        if not self.settings.sms_configured:
            raise Conflict(SMS_NOT_CONFIGURED, slug="sms-not-configured")
        try:
            number = normalize_phone_number(raw_number.replace(" ", "").replace("-", ""))
        except InvalidPhoneNumber as error:
            raise Invalid(f"The phone number {error}.", field="body.number") from None
        phone = await self.repo.phone_of(user.id, lock=True)
        if phone is not None and phone.number == number and phone.verified_at is not None:
            return phone
        # Counted before the number is looked up: whether a number belongs to someone
        # can be asked only as often as codes can be sent.
        await self.runtime.rate_limiter.check(
            self.settings.phone_verification_rate_limit, "phone-code", str(user.id)
        )
        if await self.repo.verified_number_taken(number, user.id):
            raise Conflict("Another account has verified this number.", slug="phone-number-taken")
        if phone is None:
            phone = UserPhone(user_id=user.id, number=number)
            self.session.add(phone)
        phone.number = number
        phone.verified_at = None
        phone.code_nonce = new_nonce()
        phone.code_expires_at = self.now + PHONE_CODE_TTL
        phone.code_attempts = 0
        await self.session.flush()
        await defer(self.session, send_phone_code, user_id=str(user.id), nonce=phone.code_nonce)
        logger.info("phone_code_requested", user_id=str(user.id))
        return phone

    async def verify_phone(self, user: User, code: str) -> UserPhone:
        phone = await self.repo.phone_of(user.id, lock=True)
        if phone is None or phone.code_nonce is None or phone.code_expires_at is None:
            raise Conflict(
                "No code is waiting: set your phone number (PUT /me/phone) to get one.",
                slug="no-code-pending",
            )
        if self.now >= phone.code_expires_at:
            raise Invalid(
                "The code has expired: set your phone number again for a new one.",
                field="body.code",
                slug="code-expired",
            )
        if phone.code_attempts >= PHONE_CODE_MAX_ATTEMPTS:
            raise Invalid(
                "Too many wrong codes: set your phone number again for a new one.",
                field="body.code",
                slug="code-attempts-exceeded",
            )
        if not code_matches(self.settings.secret_key_value(), user.id, phone.code_nonce, code):
            phone.code_attempts += 1
            await self.session.flush()
            left = PHONE_CODE_MAX_ATTEMPTS - phone.code_attempts
            raise WrongCode(
                f"The code is wrong ({left} attempt(s) left).", field="body.code", slug="wrong-code"
            )
        if await self.repo.verified_number_taken(phone.number, user.id):
            raise Conflict("Another account has verified this number.", slug="phone-number-taken")
        phone.verified_at = self.now
        phone.code_nonce = None
        phone.code_expires_at = None
        phone.code_attempts = 0
        try:
            async with self.session.begin_nested():
                await self.session.flush()
        except IntegrityError:  # another account verified it in the same instant
            raise Conflict(
                "Another account has verified this number.", slug="phone-number-taken"
            ) from None
        logger.info("phone_verified", user_id=str(user.id))
        return phone

    async def phone(self, user: User) -> UserPhone:
        phone = await self.repo.phone_of(user.id)
        if phone is None:
            raise NotFound("You have not set a phone number.")
        return phone

    async def remove_phone(self, user: User) -> None:
        if not await self.repo.delete_phone(user.id):
            raise NotFound("You have not set a phone number.")

    # Web Push ---------------------------------------------------------------------------

    def vapid_public_key(self) -> str:
        if not self.settings.webpush_configured:
            raise Conflict(WEB_PUSH_NOT_CONFIGURED, slug="web-push-not-configured")
        return WebPushSender(self.settings).public_key

    def _check_endpoint(self, endpoint: str) -> None:
        """In production, only an HTTPS push service by name: the server posts to this
        URL, so an address inside the network (or a bare IP) is refused."""
        if not self.settings.is_production:
            return
        parts = urlsplit(endpoint)
        host = (parts.hostname or "").lower()
        problem = None
        if parts.scheme != "https":
            problem = "must be an https:// URL"
        elif not host or host == "localhost" or host.endswith((".localhost", ".local")):
            problem = "must name a public push service"
        else:
            try:
                ipaddress.ip_address(host)
                problem = "must name a push service, not an IP address"
            except ValueError:
                pass
        if problem:
            raise Invalid(f"The endpoint {problem}.", field="body.endpoint")

    async def subscribe(
        self, user: User, body: schemas.PushSubscriptionIn
    ) -> tuple[PushSubscription, bool]:
        if not self.settings.webpush_configured:
            raise Conflict(WEB_PUSH_NOT_CONFIGURED, slug="web-push-not-configured")
        self._check_endpoint(body.endpoint)
        return await self.repo.save_subscription(
            user.id, body.endpoint, body.keys.p256dh, body.keys.auth
        )

    async def subscriptions(self, user: User) -> Sequence[PushSubscription]:
        return await self.repo.subscriptions_of(user.id)

    async def subscription(self, user: User, subscription_id: uuid.UUID) -> PushSubscription:
        found = await self.repo.subscription_of(user.id, subscription_id)
        if found is None:
            raise NotFound("No such push subscription of yours.")
        return found

    async def unsubscribe(self, user: User, subscription_id: uuid.UUID) -> None:
        found = await self.subscription(user, subscription_id)
        await self.repo.delete_subscription(found.id)

    # Mobile devices ---------------------------------------------------------------------

    async def register_device(self, user: User, body: schemas.DeviceIn) -> tuple[PushDevice, bool]:
        if not self.settings.fcm_configured:
            raise Conflict(MOBILE_PUSH_NOT_CONFIGURED, slug="mobile-push-not-configured")
        return await self.repo.save_device(user.id, body.token, body.platform)

    async def devices(self, user: User) -> Sequence[PushDevice]:
        return await self.repo.devices_of(user.id)

    async def device(self, user: User, device_id: uuid.UUID) -> PushDevice:
        found = await self.repo.device_of(user.id, device_id)
        if found is None:
            raise NotFound("No such device of yours.")
        return found

    async def unregister_device(self, user: User, device_id: uuid.UUID) -> None:
        found = await self.device(user, device_id)
        await self.repo.delete_device(found.id)


def phone_out(phone: UserPhone) -> schemas.PhoneOut:
    return schemas.PhoneOut(
        number=phone.number,
        verified=phone.verified_at is not None,
        verified_at=phone.verified_at,
        code_expires_at=phone.code_expires_at,
    )


__all__ = ["ChannelService", "phone_out", "send_push", "send_sms"]
