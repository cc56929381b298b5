"""SMS through Twilio's official Python SDK, and the E.164 check of phone numbers.

The SDK is synchronous (requests): each send runs in a worker thread. Its requests go to
TWILIO_API_BASE_URL (the real API unless a test points it at a fake Twilio). Twilio's
answers become the delivery failures of `kit.delivery`: a number that cannot receive
(invalid, unreachable, unsubscribed) is permanent, a rate limit or an outage transient.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import phonenumbers
import structlog
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from lyceum.config import Settings
from lyceum.kit.delivery import PermanentDeliveryError, TransientDeliveryError

logger = structlog.get_logger("lyceum.sms")

# Seconds one request to Twilio may take; past it the send is retried later.
TWILIO_TIMEOUT_SECONDS = 10.0
# Slack between Lyceum's clock and Twilio's when looking for a message sent earlier.
CLOCK_SKEW = dt.timedelta(minutes=2)
# Twilio error codes that say this recipient cannot get the message, however often it is
# retried: 21211 invalid 'To' number, 21214 and 21217 not a reachable or valid number,
# 21408 region not enabled, 21610 unsubscribed (replied STOP), 21612 no route, 21614
# not a mobile number, 21635 a landline, 30003-30006 unreachable, blocked or unknown
# handsets.
PERMANENT_TWILIO_CODES = frozenset(
    {21211, 21214, 21217, 21408, 21610, 21612, 21614, 21635, 30003, 30004, 30005, 30006}
)


class SmsOutcomeUnknown(TransientDeliveryError):
    """The request may have reached Twilio (the connection broke or timed out before
    its answer): the message may be out. Look for it before sending it again."""


class InvalidPhoneNumber(ValueError):
    """Not a number that can receive SMS, in words for the person who typed it."""


def normalize_phone_number(raw: str) -> str:
    """`raw` as E.164 (`+84901234567`), or InvalidPhoneNumber. The number must carry its
    country code: a bare national number is ambiguous across countries."""
    text = raw.strip()
    if not text.startswith("+"):
        raise InvalidPhoneNumber("must start with + and the country code (E.164)")
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        raise InvalidPhoneNumber("is not a phone number (E.164, e.g. +84901234567)") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber("is not a valid number for its country")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask_phone_number(number: str) -> str:
    """Enough of a number to recognise it in a log: `+8490*****67`."""
    return number[:5] + "*" * max(0, len(number) - 7) + number[-2:]


class SmsSender:
    """Sends text messages with the SDK, against TWILIO_API_BASE_URL."""

    def __init__(self, settings: Settings) -> None:
        if not settings.sms_configured:
            raise RuntimeError("SMS is not configured (TWILIO_* settings)")
        assert settings.twilio_auth_token is not None
        self.settings = settings
        # `environment={}`: the SDK would otherwise read TWILIO_* from os.environ
        # itself; Lyceum's settings are the only source.
        self.client = Client(
            settings.twilio_account_sid,
            settings.twilio_auth_token.get_secret_value(),
            http_client=TwilioHttpClient(timeout=TWILIO_TIMEOUT_SECONDS),
            environment={},
        )
        self.client.api.base_url = str(settings.twilio_api_base_url).rstrip("/")

    def _send(self, to: str, text: str) -> str:
        sender: dict[str, str] = {}
        if self.settings.twilio_messaging_service_sid:
            sender["messaging_service_sid"] = self.settings.twilio_messaging_service_sid
        else:
            assert self.settings.twilio_from_number is not None
            sender["from_"] = self.settings.twilio_from_number
        try:
            message = self.client.messages.create(to=to, body=text, **sender)
        except TwilioRestException as error:
            raise delivery_error(error) from error
        except OSError as error:  # requests' connection errors and timeouts
            raise SmsOutcomeUnknown(f"Twilio did not answer: {error}") from error
        sid = str(message.sid or "")
        if not sid:
            raise TransientDeliveryError("Twilio answered without a message sid")
        return sid

    def _find(self, to: str, text: str, since: dt.datetime) -> str | None:
        try:
            messages = self.client.messages.list(
                to=to, date_sent_after=since - CLOCK_SKEW, limit=50, page_size=50
            )
        except TwilioRestException as error:
            raise delivery_error(error) from error
        except OSError as error:
            raise SmsOutcomeUnknown(f"Twilio did not answer: {error}") from error
        for message in messages:
            if message.body == text and message.sid:
                return str(message.sid)
        return None

    async def find_sent(self, to: str, text: str, since: dt.datetime) -> str | None:
        """The sid of a message with this text sent to `to` since `since`, if Twilio has
        one: what an interrupted send left behind."""
        return await asyncio.to_thread(self._find, to, text, since)

    async def send(self, to: str, text: str) -> str:
        """Send `text` to the E.164 number `to`; returns Twilio's message sid."""
        sid = await asyncio.to_thread(self._send, to, text)
        logger.info("sms_sent", to=mask_phone_number(to), sid=sid)
        return sid


def delivery_error(error: TwilioRestException) -> PermanentDeliveryError | TransientDeliveryError:
    reason = f"Twilio {error.status} (code {error.code}): {error.msg}"
    if error.code in PERMANENT_TWILIO_CODES:
        return PermanentDeliveryError(reason)
    if error.status == 429 or error.status >= 500:
        return TransientDeliveryError(reason)
    # Other 4xx: the request itself is wrong (credentials, sender, body); sending it
    # again will not change the answer.
    return PermanentDeliveryError(reason)


__all__ = [
    "InvalidPhoneNumber",
    "SmsOutcomeUnknown",
    "SmsSender",
    "mask_phone_number",
    "normalize_phone_number",
]
