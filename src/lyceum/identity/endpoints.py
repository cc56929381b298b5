"""Identity routes: parse, authorize, call the service."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import File, Form, Query, Request, Response, UploadFile, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from lyceum.identity import schemas
from lyceum.identity.permissions import (
    AdminUser,
    AuthenticatedCaller,
    CurrentUser,
    Identity,
    ImageUploadQuota,
    LockedManagedAccount,
    ManagedAccount,
    OwnLoginSession,
    RuntimeDep,
)
from lyceum.identity.service import ClientInfo, user_out, user_summary
from lyceum.kit.db import reads_only
from lyceum.kit.errors import Invalid
from lyceum.kit.openapi import request_body
from lyceum.kit.pagination import Page, Paging
from lyceum.kit.routing import Router
from lyceum.kit.security import HASHING_RESPONSES
from lyceum.kit.validation import SafeStr
from lyceum.models.identity import Role

auth = Router(prefix="/auth", tags=["auth"])
users = Router(prefix="/users", tags=["users"])

# The login route parses its body itself (it also takes the OAuth2 form, see below); its
# schema documents the JSON body. One media type per operation: openapi-python-client
# turns several into a module that does not import.
LOGIN_BODY = request_body({"application/json": schemas.LoginRequest})


def _client(request: Request) -> ClientInfo:
    return ClientInfo(
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )


async def _login_request(request: Request) -> schemas.LoginRequest:
    """JSON `{email, password}`, or the OAuth2 password form, which OAuth2 tools pointed
    at this route before /auth/token existed still send."""
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith("application/x-www-form-urlencoded"):
            form = schemas.LoginForm.model_validate(dict(await request.form()))
            return schemas.LoginRequest(email=form.username, password=form.password)
        return schemas.LoginRequest.model_validate_json(await request.body())
    except ValidationError as error:
        raise RequestValidationError(
            [{**item, "loc": ("body", *item["loc"])} for item in error.errors(include_url=False)]
        ) from None


@auth.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    summary="Create an account (a welcome and a verification mail follow)",
    responses=HASHING_RESPONSES,
    description="Limited per client IP (REGISTRATION_RATE_LIMIT, default 20 per hour); "
    "over it: 429 with Retry-After. Until the address is verified the account may browse "
    "and enroll in free courses; the tutor and chat answer 403 `email-not-verified`.",
)
async def register(
    body: schemas.RegisterRequest,
    request: Request,
    service: Identity,
    runtime: RuntimeDep,
    response: Response,
) -> schemas.UserOut:
    user = await service.register(body, _client(request))
    response.headers["Location"] = f"/api/v1/users/{user.id}"
    return user_out(user, runtime.settings)


REAUTH_LIMIT = (
    "A wrong password counts against the account's sign-in limit (LOGIN_ACCOUNT_RATE_LIMIT, "
    "default 20 per hour, shared with failed sign-ins); past it, even the right one answers "
    "429 with Retry-After."
)

LOGIN_LIMITS = (
    "Answers a token pair, or `{mfa_required: true, mfa_token}` when the account has MFA. "
    "Failed attempts are limited per client IP and email (LOGIN_RATE_LIMIT, default 5 per "
    "15 minutes) and per account from anywhere (LOGIN_ACCOUNT_RATE_LIMIT, default 20 per "
    "hour); a successful sign-in clears both counts. Over a limit, even the right password "
    "answers 429 with Retry-After. When password hashing is overloaded (PASSWORD_HASH_QUEUE "
    "sign-ins already waiting): 503 with Retry-After, and no session is started."
)


@auth.post(
    "/login",
    summary="Sign in with email and password",
    responses=HASHING_RESPONSES,
    openapi_extra=LOGIN_BODY,
    description=LOGIN_LIMITS + " The OAuth2 password form (see /auth/token) is accepted here too.",
)
async def login(request: Request, service: Identity) -> schemas.TokenPair | schemas.MfaChallenge:
    credentials = await _login_request(request)
    return await service.login(credentials.email, credentials.password, _client(request))


@auth.post(
    "/token",
    summary="Sign in with the OAuth2 password grant form (Swagger's Authorize uses it)",
    responses=HASHING_RESPONSES,
    description=LOGIN_LIMITS + " The same sign-in as /auth/login, with the credentials as "
    "an `application/x-www-form-urlencoded` form (RFC 6749, section 4.3).",
)
async def token(
    form: Annotated[schemas.LoginForm, Form()], request: Request, service: Identity
) -> schemas.TokenPair | schemas.MfaChallenge:
    return await service.login(form.username, form.password, _client(request))


@auth.post(
    "/mfa/verify",
    summary="Complete an MFA login with a TOTP or recovery code",
    description="Wrong codes are limited per account (5 per 5 minutes, whichever mfa_token "
    "they come with, and shared with enabling and disabling MFA); a right code clears the "
    "count. Over it: 429 with Retry-After.",
)
async def mfa_verify(
    body: schemas.MfaVerifyRequest, request: Request, service: Identity
) -> schemas.TokenPair:
    return await service.verify_mfa_login(body.mfa_token, body.code, _client(request))


@auth.post("/refresh", summary="Trade a refresh token for a new pair (rotation)")
async def refresh(body: schemas.RefreshRequest, service: Identity) -> schemas.TokenPair:
    return await service.refresh(body.refresh_token)


@auth.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke this login's refresh tokens and the current access token",
)
async def logout(caller: AuthenticatedCaller, service: Identity) -> None:
    await service.logout(
        caller.user, caller.claims.session_id, caller.claims.jti, caller.claims.expires_at
    )


@auth.get("/sessions", summary="The caller's active logins")
async def list_sessions(
    caller: AuthenticatedCaller, service: Identity
) -> Page[schemas.LoginSessionOut]:
    items = await service.sessions(caller.user, caller.claims.session_id)
    return Page.of_all(items)


@auth.delete(
    "/sessions/{session_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke one of the caller's logins",
)
async def revoke_session(login: OwnLoginSession, user: CurrentUser, service: Identity) -> None:
    await service.revoke_session(user, login)


@auth.post("/verify-email", summary="Confirm an email address with the mailed token")
async def verify_email(
    body: schemas.TokenRequest, service: Identity, runtime: RuntimeDep
) -> schemas.UserOut:
    return user_out(await service.verify_email(body.token), runtime.settings)


@auth.post(
    "/verify-email/resend",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Mail a new verification link",
    description="At most ACCOUNT_MAIL_RATE_LIMIT (default 3 per hour) per account and "
    "ACCOUNT_MAIL_IP_RATE_LIMIT (default 20 per hour, shared with password resets) per "
    "client IP; over it: 429 with Retry-After.",
)
async def resend_verification(
    user: CurrentUser, request: Request, service: Identity
) -> schemas.Accepted:
    await service.request_verification_mail(user, _client(request))
    return schemas.Accepted(detail="A new verification link is on its way.")


@auth.post(
    "/password/forgot",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Mail a password reset link (always 202: accounts are not enumerable)",
    description="At most ACCOUNT_MAIL_RATE_LIMIT (default 3 per hour) per address, whether "
    "or not an account uses it, and ACCOUNT_MAIL_IP_RATE_LIMIT (default 20 per hour, shared "
    "with verification resends) per client IP; over it: 429 with Retry-After.",
)
async def forgot_password(
    body: schemas.ForgotPasswordRequest, request: Request, service: Identity
) -> schemas.Accepted:
    await service.forgot_password(body.email, _client(request))
    return schemas.Accepted(detail="If an account uses this address, a reset link is on its way.")


@auth.post(
    "/password/reset",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Set a new password with the mailed token (signs out everywhere)",
    responses=HASHING_RESPONSES,
)
async def reset_password(body: schemas.ResetPasswordRequest, service: Identity) -> None:
    await service.reset_password(body.token, body.new_password)


@auth.post(
    "/password/change",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Change the password (other sessions are signed out)",
    responses=HASHING_RESPONSES,
    description=REAUTH_LIMIT,
)
async def change_password(
    body: schemas.ChangePasswordRequest, caller: AuthenticatedCaller, service: Identity
) -> None:
    await service.change_password(
        caller.user, body.current_password, body.new_password, caller.claims.session_id
    )


@auth.post("/mfa/setup", summary="Start TOTP setup: secret, otpauth URI and QR code")
async def mfa_setup(user: CurrentUser, service: Identity) -> schemas.MfaSetup:
    return await service.mfa_setup(user)


@auth.post(
    "/mfa/enable",
    summary="Turn MFA on with a first code; returns 10 recovery codes",
    responses=HASHING_RESPONSES,
    description="Asks for the password again (403 `invalid-credentials` otherwise): with "
    f"an access token alone, someone else could lock the owner out. {REAUTH_LIMIT}",
)
async def mfa_enable(
    body: schemas.MfaEnableRequest, user: CurrentUser, service: Identity
) -> schemas.RecoveryCodes:
    codes = await service.mfa_enable(user, body.code, body.password)
    return schemas.RecoveryCodes(recovery_codes=codes)


@auth.post(
    "/mfa/disable",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Turn MFA off",
    responses=HASHING_RESPONSES,
    description=REAUTH_LIMIT,
)
async def mfa_disable(
    body: schemas.MfaDisableRequest, user: CurrentUser, service: Identity
) -> None:
    await service.mfa_disable(user, body.password, body.code)


# Users ------------------------------------------------------------------------------


@users.get("/me", summary="The caller's profile")
@reads_only
async def get_me(user: CurrentUser, runtime: RuntimeDep) -> schemas.UserOut:
    return user_out(user, runtime.settings)


@users.patch("/me", summary="Update the caller's profile")
async def update_me(
    body: schemas.ProfileUpdate, user: CurrentUser, service: Identity, runtime: RuntimeDep
) -> schemas.UserOut:
    return user_out(await service.update_profile(user, body), runtime.settings)


@users.put(
    "/me/avatar",
    summary="Upload an avatar (PNG, JPEG or WebP; stored as a 256x256 PNG)",
    description="Up to AVATAR_MAX_BYTES and IMAGE_MAX_PIXELS (checked from the image's "
    "header before decoding; 422 beyond). Image uploads (avatars and covers) are limited "
    "per user to IMAGE_UPLOAD_RATE_LIMIT (429 with Retry-After beyond).",
)
async def put_avatar(
    quota: ImageUploadQuota,
    file: Annotated[UploadFile, File(description="The image.")],
    user: CurrentUser,
    service: Identity,
    runtime: RuntimeDep,
) -> schemas.UserOut:
    settings = runtime.settings
    limit = settings.avatar_max_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise Invalid(f"The image exceeds {limit} bytes.", field="body.file")
    return user_out(await service.set_avatar(user, data, runtime.sandbox), settings)


@users.delete(
    "/me",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete the caller's account (deactivated and anonymised; signed out)",
    responses=HASHING_RESPONSES,
    description="Asks for the password again, and for a code when the account has MFA: "
    "403 `invalid-credentials` or `invalid-mfa-code` otherwise, and nothing is changed. "
    f"{REAUTH_LIMIT}",
)
async def delete_me(
    body: schemas.DeleteAccountRequest, caller: AuthenticatedCaller, service: Identity
) -> None:
    await service.delete_account(caller.user, body.password, body.code)
    await service.deny_access_token(caller.claims.jti, caller.claims.expires_at)


@users.get(
    "/{user_id:uuid}/avatar",
    summary="A user's avatar image",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "The avatar, 256x256 PNG"}},
)
async def get_avatar(user_id: uuid.UUID, user: CurrentUser, service: Identity) -> Response:
    data = await service.avatar(user_id)
    return Response(
        data, media_type="image/png", headers={"Cache-Control": "private, max-age=86400"}
    )


@users.get("", summary="Search accounts (admins)")
async def list_users(
    admin: AdminUser,
    service: Identity,
    paging: Paging,
    q: Annotated[
        SafeStr | None, Query(max_length=200, description="Part of email or name.")
    ] = None,
    role: Role | None = None,
    active: Annotated[bool | None, Query(description="Filter by active status.")] = None,
) -> Page[schemas.UserSummary]:
    found, total = await service.search_users(q, role, active, paging)
    return Page.of([user_summary(user) for user in found], total, paging)


@users.get("/{user_id:uuid}", summary="One account (admins)")
async def get_user(user: ManagedAccount, runtime: RuntimeDep) -> schemas.UserOut:
    return user_out(user, runtime.settings)


@users.patch("/{user_id:uuid}", summary="Change an account's role or active status (admins)")
async def admin_update_user(
    user: LockedManagedAccount,
    body: schemas.AdminUserUpdate,
    admin: AdminUser,
    service: Identity,
    runtime: RuntimeDep,
) -> schemas.UserOut:
    return user_out(await service.admin_update(admin, user, body), runtime.settings)
