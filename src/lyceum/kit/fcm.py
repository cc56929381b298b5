"""Mobile push through Firebase Cloud Messaging, HTTP v1 API.

Each message is a `POST {FCM_API_BASE_URL}/v1/projects/{project}/messages:send` with
an OAuth2 access token that google-auth obtains for the service account of
FCM_SERVICE_ACCOUNT_FILE (a signed JWT assertion traded at the file's `token_uri`). The
token is kept until it expires (an hour), per process.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from pathlib import Path
from typing import Any

import httpx
import structlog
from google.auth.exceptions import GoogleAuthError
from google.auth.transport.requests import Request as GoogleAuthRequest
from google.oauth2 import service_account

from lyceum.config import Settings
from lyceum.kit.delivery import PermanentDeliveryError, TransientDeliveryError

logger = structlog.get_logger("lyceum.fcm")

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
FCM_TIMEOUT_SECONDS = 10.0
# FCM error codes that say the registration token is no longer (or never was) a
# device of this project: forget the device.
GONE_ERROR_CODES = frozenset({"UNREGISTERED", "INVALID_ARGUMENT", "SENDER_ID_MISMATCH"})
TRANSIENT_ERROR_CODES = frozenset({"QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL"})


class DeviceGone(PermanentDeliveryError):
    """FCM says the registration token is not a device of this project: forget it."""


class FcmSender:
    """Sends FCM messages for one service account."""

    def __init__(self, service_account_file: Path, api_base_url: str) -> None:
        self.credentials = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
            str(service_account_file), scopes=[FCM_SCOPE]
        )
        project = self.credentials.project_id
        if not project:
            raise ValueError(f"{service_account_file}: the file names no project_id")
        self.url = f"{api_base_url.rstrip('/')}/v1/projects/{project}/messages:send"
        self._refreshing = threading.Lock()

    def _valid_token(self) -> str:
        with self._refreshing:  # one refresh at a time, across the event loops' threads
            if not self.credentials.valid:
                self.credentials.refresh(GoogleAuthRequest())
            token: str = self.credentials.token
            return token

    async def access_token(self) -> str:
        try:
            return await asyncio.to_thread(self._valid_token)
        except GoogleAuthError as error:
            raise TransientDeliveryError(f"FCM access token refused: {error}") from error

    async def send(
        self,
        device_token: str,
        *,
        title: str,
        body: str,
        data: dict[str, str],
        collapse_key: str,
    ) -> str:
        """Send one notification to one registration token; returns FCM's message name.
        `collapse_key` lets the device keep one copy of a message sent twice."""
        message: dict[str, Any] = {
            "token": device_token,
            "notification": {"title": title, "body": body},
            "data": data,
            "android": {"collapse_key": collapse_key},
            "apns": {"headers": {"apns-collapse-id": collapse_key}},
        }
        token = await self.access_token()
        try:
            async with httpx.AsyncClient(timeout=FCM_TIMEOUT_SECONDS) as http:
                response = await http.post(
                    self.url,
                    json={"message": message},
                    headers={"Authorization": f"Bearer {token}"},
                )
        except httpx.HTTPError as error:
            raise TransientDeliveryError(f"FCM unreachable: {error}") from error
        if response.status_code == 200:
            name = str(response.json().get("name", ""))
            logger.info("fcm_sent", message=name)
            return name
        if response.status_code == 401:
            self.credentials.token = None  # fetch a new one on the retry
        raise delivery_error(response)


def error_code(response: httpx.Response) -> str:
    """FCM's own error code (`UNREGISTERED`...), else the Google API status."""
    try:
        error = response.json().get("error", {})
    except ValueError:
        return ""
    for detail in error.get("details", []):
        if isinstance(detail, dict) and detail.get("errorCode"):
            return str(detail["errorCode"])
    return str(error.get("status", ""))


def delivery_error(response: httpx.Response) -> PermanentDeliveryError | TransientDeliveryError:
    code = error_code(response)
    reason = f"FCM answered {response.status_code} {code}: {response.text[:200]}"
    if code in GONE_ERROR_CODES:
        return DeviceGone(reason)
    if (
        code in TRANSIENT_ERROR_CODES
        or response.status_code in (401, 429)
        or (response.status_code >= 500)
    ):
        return TransientDeliveryError(reason)
    return PermanentDeliveryError(reason)


# One sender per service account and API, for the process: its access token serves
# every send until it expires, instead of one token request per message.
_senders: dict[tuple[str, str, str], FcmSender] = {}


def fcm_sender(settings: Settings) -> FcmSender:
    assert settings.fcm_service_account_file is not None
    path = settings.fcm_service_account_file.expanduser().resolve()
    fingerprint = hashlib.sha256(path.read_bytes()).hexdigest()
    base = str(settings.fcm_api_base_url)
    key = (str(path), fingerprint, base)
    sender = _senders.get(key)
    if sender is None:
        sender = _senders[key] = FcmSender(path, base)
    return sender


__all__ = ["DeviceGone", "FcmSender", "fcm_sender"]
