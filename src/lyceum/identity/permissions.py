"""Who may call what: `Annotated` dependencies that endpoints put in their signature.

`CurrentUser` authenticates the bearer token (signature, `typ`, `iss`, `aud`, expiry,
deny-list, and that its login session is still live); the others add a rule on top.
Object-level dependencies resolve the path's id to an object the caller may use
(`OwnLoginSession`: one of the caller's logins; `ManagedAccount` and
`LockedManagedAccount`: any account, for admins), and list queries filter by caller in
the repository, so no object is reachable by guessing its id. `ImageUploadQuota`
counts an image upload against the caller's limit (429) before anything else about the
request is looked at.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.identity.repository import IdentityRepository
from lyceum.identity.service import DENIED_JTI_PREFIX, IdentityService
from lyceum.kit.clock import Clock, ClockDep
from lyceum.kit.db import Session
from lyceum.kit.errors import Forbidden, NotFound, Unauthorized
from lyceum.kit.openapi import allows_anonymous
from lyceum.kit.runtime import Runtime
from lyceum.kit.security import AccessClaims, InvalidTokenError
from lyceum.models.identity import LoginSession, Role, User

bearer = OAuth2PasswordBearer(
    tokenUrl="/api/v1/auth/token",
    auto_error=False,
    description="An access token from POST /api/v1/auth/login (JSON) or /api/v1/auth/token "
    "(the OAuth2 password form).",
)


async def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(runtime_of)]


@dataclass(frozen=True)
class Caller:
    user: User
    claims: AccessClaims


async def authenticate(
    runtime: RuntimeDep,
    session: Session,
    clock: ClockDep,
    token: Annotated[str | None, Depends(bearer)],
) -> Caller:
    if not token:
        raise Unauthorized("Sign in: this endpoint needs a bearer access token.")
    try:
        claims = runtime.tokens.decode_access(token, now=clock.now())
    except InvalidTokenError:
        raise Unauthorized(
            "The access token is invalid or expired.", slug="invalid-token"
        ) from None
    return await _caller(runtime, session, claims)


async def authenticate_socket(
    runtime: Runtime, session: AsyncSession, clock: Clock, token: str
) -> Caller:
    """A Socket.IO connection's credential: an access token (apps) or a socket ticket
    (`typ: socket`, what the web app's pages get from `/live/token`), with the same
    deny-list and login-session checks."""
    now = clock.now()
    try:
        claims = runtime.tokens.decode_access(token, now=now)
    except InvalidTokenError:
        try:
            claims = runtime.tokens.decode_socket_ticket(token, now=now)
        except InvalidTokenError:
            raise Unauthorized(
                "The access token is invalid or expired.", slug="invalid-token"
            ) from None
    return await _caller(runtime, session, claims)


async def _caller(runtime: Runtime, session: AsyncSession, claims: AccessClaims) -> Caller:
    if await runtime.cache.get(DENIED_JTI_PREFIX + claims.jti) is not None:
        raise Unauthorized("The access token was revoked.", slug="invalid-token")
    repo = IdentityRepository(session)
    user, signed_in = await repo.user_and_session(claims.user_id, claims.session_id)
    if user is None or not user.is_active:
        raise Unauthorized("The access token is invalid or expired.", slug="invalid-token")
    if not signed_in:
        raise Unauthorized("This session was signed out.", slug="invalid-token")
    return Caller(user=user, claims=claims)


AuthenticatedCaller = Annotated[Caller, Depends(authenticate)]


@allows_anonymous
async def optional_user(
    runtime: RuntimeDep,
    session: Session,
    clock: ClockDep,
    token: Annotated[str | None, Depends(bearer)],
) -> User | None:
    """For public endpoints that show more to signed-in callers: no token means
    anonymous, but a bad token is still a 401 (a client should know it is signed out).
    Their OpenAPI security says so: no token, or the bearer token."""
    if not token:
        return None
    caller = await authenticate(runtime, session, clock, token)
    return caller.user


OptionalUser = Annotated[User | None, Depends(optional_user)]


async def current_user(caller: AuthenticatedCaller) -> User:
    return caller.user


CurrentUser = Annotated[User, Depends(current_user)]


EMAIL_NOT_VERIFIED = "Verify your email address first: this needs a confirmed address."


def require_verified(user: User) -> None:
    """The policy for unverified accounts: they may browse, enroll in free courses,
    read lessons and take quizzes; what costs money per use or reaches other people
    (the AI tutor, chat) waits for a confirmed address (403 `email-not-verified`)."""
    if user.email_verified_at is None:
        raise Forbidden(EMAIL_NOT_VERIFIED, slug="email-not-verified")


async def verified_user(user: CurrentUser) -> User:
    require_verified(user)
    return user


VerifiedUser = Annotated[User, Depends(verified_user)]


async def instructor_user(user: CurrentUser) -> User:
    if user.role not in {Role.instructor, Role.admin}:
        raise Forbidden("Only instructors and admins may do this.")
    return user


InstructorUser = Annotated[User, Depends(instructor_user)]


async def admin_user(user: CurrentUser) -> User:
    if user.role is not Role.admin:
        raise Forbidden("Only admins may do this.")
    return user


AdminUser = Annotated[User, Depends(admin_user)]


def require_owner_or_admin(caller: User, owner_id: uuid.UUID) -> None:
    """Object-level rule: the owner, or an admin. Others get 404, not 403, so the
    existence of someone else's object is not revealed."""
    if caller.id != owner_id and caller.role is not Role.admin:
        raise NotFound("No such resource.")


async def identity_service(
    runtime: RuntimeDep, session: Session, clock: ClockDep
) -> IdentityService:
    return IdentityService(
        session,
        settings=runtime.settings,
        tokens=runtime.tokens,
        secret_box=runtime.secret_box,
        cache=runtime.cache,
        limiter=runtime.rate_limiter,
        storage=runtime.storage,
        revocations=runtime.revocations,
        now=clock.now(),
    )


Identity = Annotated[IdentityService, Depends(identity_service)]


async def own_login_session(
    session_id: uuid.UUID, user: CurrentUser, service: Identity
) -> LoginSession:
    return await service.own_login_session(user, session_id)


OwnLoginSession = Annotated[LoginSession, Depends(own_login_session)]


async def managed_account(user_id: uuid.UUID, admin: AdminUser, service: Identity) -> User:
    """Any account but a deleted one (404), for admins."""
    return await service.get_user(user_id)


ManagedAccount = Annotated[User, Depends(managed_account)]


async def locked_managed_account(user_id: uuid.UUID, admin: AdminUser, service: Identity) -> User:
    return await service.get_user(user_id, for_update=True)


LockedManagedAccount = Annotated[User, Depends(locked_managed_account)]


async def image_upload_quota(user: CurrentUser, runtime: RuntimeDep) -> None:
    settings = runtime.settings
    await runtime.rate_limiter.check(settings.image_upload_rate_limit, "upload-image", str(user.id))


ImageUploadQuota = Annotated[None, Depends(image_upload_quota)]
