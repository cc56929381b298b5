"""Request and response bodies of the identity endpoints."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from importlib import resources
from typing import Annotated, Any, Literal

import email_validator
from pydantic import (
    BaseModel,
    EmailStr,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StrictBool,
    StringConstraints,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from lyceum.identity.passwords import MAX_LENGTH, MIN_LENGTH
from lyceum.kit.validation import JSON_MAX_DEPTH, NO_NUL, JsonLimits, VisibleTitle
from lyceum.kit.validation import RequestModel as Strict
from lyceum.models.identity import Role

# The OpenAPI `email` format admits reserved names such as `.test`; accept what the
# schema promises (deliverability is proven by the verification mail, not by syntax).
email_validator.SPECIAL_USE_DOMAIN_NAMES = []

PREFERENCES_MAX_BYTES = 16 * 1024
# Free-form, for the apps built on Lyceum (theme, notification choices, ...).
Preferences = Annotated[dict[str, Any], JsonLimits(PREFERENCES_MAX_BYTES)]

Password = Annotated[str, Field(min_length=1, max_length=1024, pattern=NO_NUL)]
# A password being chosen: the length rules live in the schema; "not one of the 10,000
# most common passwords" is checked by the service (422, type weak-password).
NewPassword = Annotated[str, Field(min_length=MIN_LENGTH, max_length=MAX_LENGTH, pattern=NO_NUL)]
FullName = VisibleTitle
Code = Annotated[
    str,
    StringConstraints(min_length=6, max_length=32, pattern=NO_NUL),
    Field(description="A 6-digit TOTP code, or a recovery code like `abcd-efgh-jk`."),
]
OpaqueToken = Annotated[str, Field(min_length=16, max_length=512, pattern=NO_NUL)]


# The IANA time zones of the `tzdata` package (a dependency), so every machine publishes
# and accepts the same list, whatever its system zone files hold.
TIME_ZONES: tuple[str, ...] = tuple(
    sorted((resources.files("tzdata") / "zones").read_text(encoding="utf-8").split())
)
_KNOWN_TIME_ZONES = frozenset(TIME_ZONES)


def enum_name(zone: str) -> str:
    """A constant name for a zone that generated clients can use: `Etc/GMT+1` ->
    `ETC_GMT_PLUS_1`, `America/Port-au-Prince` -> `AMERICA_PORT_AU_PRINCE`. The zone names
    themselves collide once a generator strips their punctuation (`GMT0`, `GMT+0`,
    `GMT-0` all become `GMT0`)."""
    signed = re.sub(r"-(?=\d)", "_MINUS_", re.sub(r"\+(?=\d)", "_PLUS_", zone))
    return re.sub(r"[^A-Z0-9]+", "_", signed.upper()).strip("_")


# Unique (tests/test_openapi_schema.py checks it against each tzdata release).
_ENUM_NAMES = [enum_name(zone) for zone in TIME_ZONES]


def _known_time_zone(value: str) -> str:
    if value not in _KNOWN_TIME_ZONES:
        raise ValueError("unknown IANA time zone, e.g. 'Asia/Ho_Chi_Minh'")
    return value


class _TimeZoneSchema:
    """An IANA time zone name, published as one named enum component (`TimeZone`) whose
    members carry safe constant names (`x-enum-varnames`), rather than inlined at each
    use: generated clients get one enum class and the same validation as the server."""

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[Any], handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_after_validator_function(
            _known_time_zone, core_schema.str_schema(max_length=64), ref="TimeZone"
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        published = handler(schema)
        target = handler.resolve_ref_schema(published)
        target.update(
            title="TimeZone",
            description="An IANA time zone name, e.g. `Asia/Ho_Chi_Minh`.",
            enum=list(TIME_ZONES),
            **{"x-enum-varnames": _ENUM_NAMES},
        )
        return published


TimeZone = Annotated[str, _TimeZoneSchema]


class RegisterRequest(Strict):
    email: EmailStr
    password: NewPassword = Field(
        description="8 to 128 characters; passphrases welcome; common passwords refused."
    )
    full_name: FullName


class LoginRequest(Strict):
    email: EmailStr
    password: Password


class LoginForm(BaseModel):
    """The OAuth2 password grant form (RFC 6749, section 4.3.2), as Swagger's Authorize
    sends it. Other form fields (`scope`, `client_id`) are ignored."""

    username: EmailStr = Field(description="The email address.")
    password: Password
    grant_type: Literal["password"] | None = None


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (the OAuth2 token type)
    expires_in: int = Field(description="Seconds until the access token expires.")
    refresh_expires_in: int = Field(description="Seconds until the refresh token expires.")


class MfaChallenge(BaseModel):
    mfa_required: Literal[True] = True
    mfa_token: str = Field(description="Single use; send it with a code to /auth/mfa/verify.")
    expires_in: int


class RefreshRequest(Strict):
    refresh_token: OpaqueToken


class MfaVerifyRequest(Strict):
    mfa_token: OpaqueToken
    code: Code


class LoginSessionOut(BaseModel):
    id: uuid.UUID
    device: str | None = Field(description="The User-Agent that logged in.")
    ip_address: str | None
    created_at: dt.datetime
    last_used_at: dt.datetime
    current: bool = Field(description="True for the session of the token making this call.")


class TokenRequest(Strict):
    token: OpaqueToken


class ForgotPasswordRequest(Strict):
    email: EmailStr


class ResetPasswordRequest(Strict):
    token: OpaqueToken
    new_password: NewPassword


class ChangePasswordRequest(Strict):
    current_password: Password
    new_password: NewPassword


class MfaSetup(BaseModel):
    secret: str = Field(description="Base32 TOTP secret, for manual entry.")
    otpauth_uri: str
    qr_png_base64: str = Field(description="The otpauth URI as a QR code PNG, base64.")


class MfaCodeRequest(Strict):
    code: Code


class MfaEnableRequest(Strict):
    code: Code
    password: Password = Field(description="The account's password, asked again.")


class MfaDisableRequest(Strict):
    password: Password
    code: Code


class DeleteAccountRequest(Strict):
    password: Password = Field(description="The account's password, asked again.")
    code: Code | None = Field(
        default=None,
        description="Required when the account has MFA: a code from the app, or a recovery code.",
    )


class RecoveryCodes(BaseModel):
    recovery_codes: list[str] = Field(description="Shown once; each works once.")


class Accepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    detail: str


class UserOut(BaseModel):
    id: uuid.UUID
    email: str
    full_name: str
    role: Role
    is_active: bool
    email_verified: bool
    bio: str | None
    locale: str
    timezone: str
    preferences: dict[str, Any]
    avatar_url: str | None
    mfa_enabled: bool
    created_at: dt.datetime


class UserSummary(BaseModel):
    """What an admin sees in the user list."""

    id: uuid.UUID
    email: str
    full_name: str
    role: Role
    is_active: bool
    email_verified: bool
    mfa_enabled: bool
    created_at: dt.datetime
    last_login_at: dt.datetime | None


class ProfileUpdate(Strict):
    """Only the fields sent change; `null` leaves a field as it is (it clears `bio`)."""

    full_name: FullName | None = None
    bio: Annotated[str, Field(max_length=2000, pattern=NO_NUL)] | None = None
    locale: (
        Annotated[str, Field(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$", max_length=35)] | None
    ) = None
    timezone: TimeZone | None = None
    preferences: Preferences | None = Field(
        default=None,
        description=f"Any JSON object up to {PREFERENCES_MAX_BYTES} bytes, nested at most "
        f"{JSON_MAX_DEPTH} deep; numbers finite, text without NUL characters.",
    )


class AdminUserUpdate(Strict):
    role: Role | None = None
    is_active: StrictBool | None = None
