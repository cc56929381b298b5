"""Phone, Web Push subscription and device bodies."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field
from pydantic_core import PydanticCustomError

from lyceum.kit.validation import JsonInt, RequestModel
from lyceum.kit.webpush import check_p256dh


class PhoneIn(RequestModel):
    number: str = Field(
        min_length=2,
        max_length=32,
        description="E.164, with the country code: `+84901234567`. Spaces and dashes are "
        "accepted and removed.",
        examples=["+84901234567"],
    )


class PhoneOut(BaseModel):
    number: str = Field(description="E.164.")
    verified: bool = Field(description="Only a verified phone receives notifications.")
    verified_at: dt.datetime | None
    code_expires_at: dt.datetime | None = Field(
        description="When the code last sent stops working; None when no code is out."
    )


class PhoneVerifyIn(RequestModel):
    code: str = Field(pattern=r"^[0-9]{6}$", description="The 6-digit code sent by SMS.")


class VapidKeyOut(BaseModel):
    public_key: str = Field(
        description="The VAPID public key (base64url, uncompressed P-256 point): pass it "
        "as `applicationServerKey` to `pushManager.subscribe()`."
    )


# A rule no JSON schema states: the browser's public key, of the right shape, being a
# point on the curve (schema-valid keys that are not one are refused with this type).
CURVE_POINT_RULE = "not_a_curve_point"


def _on_the_curve(value: str) -> str:
    try:
        return check_p256dh(value)
    except ValueError as error:
        raise PydanticCustomError(CURVE_POINT_RULE, "{reason}", {"reason": str(error)}) from None


class PushKeysIn(RequestModel):
    # 65 bytes in base64url are 87 characters (88 padded); the first byte, 0x04 (an
    # uncompressed point), makes them start with B and a letter from A to P.
    p256dh: Annotated[str, AfterValidator(_on_the_curve)] = Field(
        pattern=r"^B[A-P][A-Za-z0-9_\-]{85}=?$",
        description="The browser's public key: base64url of an uncompressed P-256 point "
        "(65 bytes, 87 characters). A key that is no point on the curve is refused (422, "
        f"error type `{CURVE_POINT_RULE}`), not stored to fail at every send.",
    )
    auth: str = Field(
        pattern=r"^[A-Za-z0-9_\-]{22}(==)?$",
        description="The subscription's authentication secret: base64url of 16 bytes "
        "(22 characters).",
    )


class PushSubscriptionIn(RequestModel):
    """A browser's `PushSubscription.toJSON()`, as it comes."""

    endpoint: str = Field(min_length=10, max_length=2000, pattern=r"^https?://[!-~]+$")
    expirationTime: JsonInt | None = Field(  # the browser's own name
        default=None, description="Ignored: a subscription that expires answers 404/410."
    )
    keys: PushKeysIn


class PushSubscriptionOut(BaseModel):
    id: uuid.UUID
    endpoint: str
    created_at: dt.datetime


class DeviceIn(RequestModel):
    token: str = Field(
        min_length=20,
        max_length=1024,
        pattern=r"^[A-Za-z0-9_\-:.]+$",
        description="The app's Firebase Cloud Messaging registration token.",
    )
    platform: Literal["android", "ios", "web"]


class DeviceOut(BaseModel):
    id: uuid.UUID
    platform: str
    created_at: dt.datetime
