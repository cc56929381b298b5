"""Identity business rules: registration, login with rotating refresh tokens, MFA,
verification and reset tokens, profiles, and the admin's view of accounts."""

from __future__ import annotations

import base64
import datetime as dt
import io
import secrets
import uuid
from dataclasses import dataclass

import pyotp
import segno
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.config import Settings
from lyceum.identity import schemas
from lyceum.identity.passwords import password_problem
from lyceum.identity.repository import IdentityRepository
from lyceum.kit.cache import Cache
from lyceum.kit.db import after_commit, commit
from lyceum.kit.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    TokenReuse,
    Unauthorized,
)
from lyceum.kit.events import emit
from lyceum.kit.images import fit_image, in_sandbox
from lyceum.kit.pagination import PageParams
from lyceum.kit.ratelimit import RateLimiter
from lyceum.kit.revocations import Ended, Revocation, Revocations
from lyceum.kit.sandbox import Sandbox
from lyceum.kit.security import (
    SecretBox,
    TokenCodec,
    constant_time_equal,
    hash_password,
    new_token,
    token_digest,
    verify_password,
)
from lyceum.kit.storage import Storage, delete_after_commit, put_for_transaction
from lyceum.models.identity import (
    LoginSession,
    OneTimeToken,
    RefreshToken,
    Role,
    TokenPurpose,
    User,
)

VERIFY_EMAIL_TTL = dt.timedelta(hours=24)
RESET_PASSWORD_TTL = dt.timedelta(minutes=30)
MFA_LOGIN_TTL = dt.timedelta(minutes=5)
MFA_ATTEMPTS = "5/5 minutes"
RECOVERY_CODE_COUNT = 10
TOTP_ISSUER = "Lyceum"
AVATAR_SIZE = 256
BAD_CREDENTIALS = "Incorrect email or password."
DENIED_JTI_PREFIX = "denied-jti:"


@dataclass(frozen=True)
class ClientInfo:
    ip: str | None
    user_agent: str | None


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: dt.datetime


def user_out(user: User, settings: Settings) -> schemas.UserOut:
    return schemas.UserOut(
        id=user.id,
        email=user.email,
        full_name=user.full_name,
        role=user.role,
        is_active=user.is_active,
        email_verified=user.email_verified_at is not None,
        bio=user.bio,
        locale=user.locale,
        timezone=user.timezone,
        preferences=user.preferences or {},
        avatar_url=avatar_url(user, settings),
        mfa_enabled=user.mfa_enabled_at is not None,
        created_at=user.created_at,
    )


def avatar_url(user: User, settings: Settings) -> str | None:
    if not user.avatar_key:
        return None
    version = user.avatar_key.rsplit("/", 1)[-1].split(".", 1)[0][:12]
    return f"{settings.base_url()}/api/v1/users/{user.id}/avatar?v={version}"


def user_summary(user: User) -> schemas.UserSummary:
    return schemas.UserSummary(
        id=user.id,
        email=user.email,
        full_name=user.full_name,
        role=user.role,
        is_active=user.is_active,
        email_verified=user.email_verified_at is not None,
        mfa_enabled=user.mfa_enabled_at is not None,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
    )


async def open_sessions(session: AsyncSession, session_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Of these login sessions, the ones still open, of accounts still active: what a
    live connection (chat) re-checks now and then."""
    return await IdentityRepository(session).open_sessions(session_ids)


async def signed_in_user(
    session: AsyncSession, user_id: uuid.UUID, session_id: uuid.UUID
) -> User | None:
    """The active user whose login session `session_id` is still open, else None: what
    a browser session cookie (`lyceum.web`) is checked against on every request."""
    user, signed_in = await IdentityRepository(session).user_and_session(user_id, session_id)
    return user if user is not None and user.is_active and signed_in else None


# What the web app's layout shows of a signed-in user (name, role, language) is kept in
# the cache for a few minutes per login session (`web.session.SessionFacts`), under a
# per-user generation this key holds. Anything that ends a user's login sessions or
# changes what is kept deletes it, before the transaction commits and again after (a
# page that checked the database in between may have kept facts under a new one): the
# kept facts of every session of that user are then never read again.
WEB_FACTS_GENERATION_PREFIX = "web-facts-gen:"


def web_facts_generation_key(user_id: uuid.UUID) -> str:
    return f"{WEB_FACTS_GENERATION_PREFIX}{user_id}"


async def forget_web_facts(session: AsyncSession, cache: Cache, user_id: uuid.UUID) -> None:
    key = web_facts_generation_key(user_id)
    await cache.delete(key)

    async def again() -> None:
        await cache.delete(key)

    after_commit(session, again)


async def issue_one_time_token(
    repo: IdentityRepository,
    user: User,
    purpose: TokenPurpose,
    ttl: dt.timedelta,
    now: dt.datetime,
) -> IssuedToken:
    """A fresh single-use token for `purpose` (older ones of the user stop working);
    only its SHA-256 is stored."""
    await repo.expire_tokens(user.id, purpose, now)
    token = new_token()
    await repo.add(
        OneTimeToken(
            user_id=user.id,
            purpose=purpose,
            token_hash=token_digest(token),
            created_at=now,
            expires_at=now + ttl,
        )
    )
    return IssuedToken(token, now + ttl)


def _ip(client: ClientInfo) -> str:
    return client.ip or "-"


def _check_password(password: str, field: str) -> None:
    problem = password_problem(password)
    if problem:
        raise Invalid(f"The password {problem}.", field=field, slug="weak-password")


def _new_recovery_code() -> str:
    raw = base64.b32encode(secrets.token_bytes(8)).decode().lower().rstrip("=")
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:12]}"


def _normalise_recovery_code(code: str) -> str:
    return code.strip().lower().replace(" ", "")


# For other domains (courses, learning, the demo loader): what they read of accounts, and
# the demo's accounts, without an IdentityService to build.


async def user_by_id(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    """The account (deleted ones included: certificates keep their learner's name)."""
    return await IdentityRepository(session).user_by_id(user_id)


async def ensure_account(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    full_name: str,
    role: Role,
    now: dt.datetime,
) -> User:
    """The account with this email, created (verified) if there is none."""
    repo = IdentityRepository(session)
    user = await repo.user_by_email(email)
    if user is None:
        user = User(
            email=email,
            full_name=full_name,
            password_hash=await hash_password(password),
            role=role,
            email_verified_at=now,
            preferences={},
        )
        await repo.add(user)
    return user


class IdentityService:
    def __init__(
        self,
        session: AsyncSession,
        *,
        settings: Settings,
        tokens: TokenCodec,
        secret_box: SecretBox,
        cache: Cache,
        limiter: RateLimiter,
        storage: Storage,
        revocations: Revocations,
        now: dt.datetime,
    ) -> None:
        self.session = session
        self.repo = IdentityRepository(session)
        self.settings = settings
        self.tokens = tokens
        self.secret_box = secret_box
        self.cache = cache
        self.limiter = limiter
        self.storage = storage
        self.revocations = revocations
        self.now = now

    async def _changed(self, user_id: uuid.UUID) -> None:
        """The user's sessions ended or what the web layout shows of them changed."""
        await forget_web_facts(self.session, self.cache, user_id)

    def _ended(
        self,
        kind: Ended,
        user_id: uuid.UUID,
        reason: str,
        session_ids: list[uuid.UUID] | None = None,
    ) -> None:
        """Tell open live connections (chat sockets, in every process) once this
        transaction commits: a signed-out session or a closed account ends them."""
        if kind is Ended.sessions and not session_ids:
            return
        self.revocations.announce_after_commit(
            self.session, Revocation(kind, user_id, reason, tuple(session_ids or ()))
        )

    # Registration -------------------------------------------------------------------

    async def register(self, request: schemas.RegisterRequest, client: ClientInfo) -> User:
        await self.limiter.check(self.settings.registration_rate_limit, "register", _ip(client))
        _check_password(request.password, "body.password")
        email = request.email.strip()
        if await self.repo.user_by_email(email) is not None:
            raise Conflict("An account with this email already exists.", field="body.email")
        user = User(
            email=email,
            full_name=request.full_name,
            password_hash=await hash_password(request.password),
            role=Role.student,
            preferences={},
        )
        try:
            async with self.session.begin_nested():
                await self.repo.add(user)
        except IntegrityError:  # a concurrent registration won the race
            raise Conflict(
                "An account with this email already exists.", field="body.email"
            ) from None
        await emit(self.session, "user.registered", user_id=str(user.id))
        return user

    # Login, refresh, logout ---------------------------------------------------------

    async def login(
        self, email: str, password: str, client: ClientInfo
    ) -> schemas.TokenPair | schemas.MfaChallenge:
        """Failed attempts are counted per client IP and email and per account. Each
        attempt takes its slot before the password is checked, so a burst of concurrent
        guesses cannot slip past the limit, and a success gives the slots back: an
        office of people behind one IP signing in all day is never locked out."""
        normalised = email.strip().lower()
        by_client = (self.settings.login_rate_limit, "login", _ip(client), normalised)
        by_account = (self.settings.login_account_rate_limit, "login-account", normalised)
        await self.limiter.check(*by_client)
        await self.limiter.check(*by_account)
        user = await self.repo.user_by_email(normalised)
        # An early commit of a transaction that has only read: the hash waits for its
        # turn on the hashing threads (one per core; a burst of logins queues there for
        # hundreds of milliseconds), and an open transaction would keep its pooled
        # connection all that time, so queued logins would take the pool from every
        # other request. The writes below start a transaction of their own.
        await commit(self.session)
        valid, upgraded_hash = await verify_password(password, user.password_hash if user else None)
        if user is None or not valid or not user.is_active:
            raise Unauthorized(BAD_CREDENTIALS, slug="invalid-credentials")
        await self.limiter.clear(*by_client)
        await self.limiter.clear(*by_account)
        if upgraded_hash:
            user.password_hash = upgraded_hash  # e.g. an imported bcrypt hash becomes argon2id
        if user.mfa_enabled_at is not None:
            token = await self._one_time_token(user, TokenPurpose.mfa_login, MFA_LOGIN_TTL)
            return schemas.MfaChallenge(
                mfa_token=token.token, expires_in=int(MFA_LOGIN_TTL.total_seconds())
            )
        return await self._start_session(user, client)

    async def verify_mfa_login(
        self, mfa_token: str, code: str, client: ClientInfo
    ) -> schemas.TokenPair:
        invalid = "The MFA token is invalid, expired or already used."
        record = await self.repo.one_time_token(token_digest(mfa_token), TokenPurpose.mfa_login)
        if record is None or record.used_at is not None or record.expires_at <= self.now:
            raise Unauthorized(invalid, slug="invalid-token")
        user = await self.repo.user_by_id(record.user_id, for_update=True)
        if user is None or not user.is_active or user.mfa_enabled_at is None:
            raise Unauthorized(invalid, slug="invalid-token")
        if not await self._second_factor_guess(user, code):
            raise Unauthorized("The code is not valid.", slug="invalid-mfa-code")
        record.used_at = self.now
        return await self._start_session(user, client)

    async def _start_session(self, user: User, client: ClientInfo) -> schemas.TokenPair:
        lifetime = dt.timedelta(days=self.settings.refresh_token_expire_days)
        login = LoginSession(
            id=uuid.uuid4(),
            user_id=user.id,
            user_agent=(client.user_agent or "")[:512] or None,
            ip_address=client.ip,
            created_at=self.now,
            last_used_at=self.now,
            expires_at=self.now + lifetime,
        )
        self.session.add(login)  # flushed together with its first refresh token
        user.last_login_at = self.now
        return await self._issue_pair(user, login, parent=None)

    async def _issue_pair(
        self, user: User, login: LoginSession, parent: RefreshToken | None
    ) -> schemas.TokenPair:
        refresh = new_token()
        # A rotated token never outlives its login session.
        await self.repo.add(
            RefreshToken(
                session_id=login.id,
                parent_id=parent.id if parent else None,
                token_hash=token_digest(refresh),
                created_at=self.now,
                expires_at=login.expires_at,
            )
        )
        access_lifetime = dt.timedelta(minutes=self.settings.access_token_expire_minutes)
        access, _, _ = self.tokens.encode(
            subject=user.id,
            role=user.role.value,
            token_type="access",  # noqa: S106 (a JWT type, not a secret)
            now=self.now,
            lifetime=access_lifetime,
            extra={"sid": str(login.id)},
        )
        return schemas.TokenPair(
            access_token=access,
            refresh_token=refresh,
            expires_in=int(access_lifetime.total_seconds()),
            refresh_expires_in=max(0, int((login.expires_at - self.now).total_seconds())),
        )

    async def refresh(self, refresh_token: str) -> schemas.TokenPair:
        invalid = "The refresh token is invalid, expired or revoked."
        record = await self.repo.refresh_token_by_hash(token_digest(refresh_token))
        if record is None:
            raise Unauthorized(invalid, slug="invalid-token")
        login = await self.repo.login_session(record.session_id)
        if login is None:
            raise Unauthorized(invalid, slug="invalid-token")
        if record.used_at is not None:
            # Someone replayed a rotated token: the family may be stolen. Revoke it all.
            await self.repo.revoke_session(login.id, self.now, "refresh-token-reuse")
            await self._changed(login.user_id)
            self._ended(Ended.sessions, login.user_id, "refresh-token-reuse", [login.id])
            raise TokenReuse(
                "This refresh token was already used; every session token descended from "
                "the same login has been revoked.",
                slug="refresh-token-reused",
            )
        if login.revoked_at is not None or record.expires_at <= self.now:
            raise Unauthorized(invalid, slug="invalid-token")
        user = await self.repo.user_by_id(login.user_id)
        if user is None or not user.is_active:
            raise Unauthorized(invalid, slug="invalid-token")
        record.used_at = self.now
        login.last_used_at = self.now
        return await self._issue_pair(user, login, parent=record)

    async def logout(
        self, user: User, session_id: uuid.UUID, jti: str, expires_at: dt.datetime
    ) -> None:
        await self.repo.revoke_session(session_id, self.now, "logout")
        await self._changed(user.id)
        self._ended(Ended.sessions, user.id, "logout", [session_id])
        await self.deny_access_token(jti, expires_at)

    async def deny_access_token(self, jti: str, expires_at: dt.datetime) -> None:
        remaining = (expires_at - self.now).total_seconds()
        if remaining > 0:
            await self.cache.set(DENIED_JTI_PREFIX + jti, b"1", ttl=remaining + 1)

    async def sessions(self, user: User, current: uuid.UUID) -> list[schemas.LoginSessionOut]:
        return [
            schemas.LoginSessionOut(
                id=login.id,
                device=login.user_agent,
                ip_address=login.ip_address,
                created_at=login.created_at,
                last_used_at=login.last_used_at,
                current=login.id == current,
            )
            for login in await self.repo.active_sessions(user.id, self.now)
        ]

    async def own_login_session(self, user: User, session_id: uuid.UUID) -> LoginSession:
        """One of the user's own logins; anyone else's is 404."""
        login = await self.repo.login_session(session_id)
        if login is None or login.user_id != user.id:
            raise NotFound("No such session.")
        return login

    async def revoke_session(self, user: User, login: LoginSession) -> None:
        await self.repo.revoke_session(login.id, self.now, "revoked-by-user")
        await self._changed(user.id)
        self._ended(Ended.sessions, user.id, "revoked-by-user", [login.id])

    # One-time tokens: email verification and password reset -------------------------

    async def _one_time_token(
        self, user: User, purpose: TokenPurpose, ttl: dt.timedelta
    ) -> IssuedToken:
        return await issue_one_time_token(self.repo, user, purpose, ttl, self.now)

    async def _consume(self, token: str, purpose: TokenPurpose) -> User:
        record = await self.repo.one_time_token(token_digest(token), purpose)
        if record is None or record.used_at is not None or record.expires_at <= self.now:
            raise Unauthorized(
                "The token is invalid, expired or already used.", slug="invalid-token"
            )
        user = await self.repo.user_by_id(record.user_id, for_update=True)
        if user is None or not user.is_active:
            raise Unauthorized(
                "The token is invalid, expired or already used.", slug="invalid-token"
            )
        record.used_at = self.now
        return user

    async def verify_email(self, token: str) -> User:
        user = await self._consume(token, TokenPurpose.verify_email)
        if user.email_verified_at is None:
            user.email_verified_at = self.now
            await emit(self.session, "user.email_verified", user_id=str(user.id))
            await self._changed(user.id)
        return user

    async def request_verification_mail(self, user: User, client: ClientInfo) -> None:
        if user.email_verified_at is not None:
            raise Conflict("The email address is already verified.")
        await self.limiter.check(self.settings.account_mail_ip_rate_limit, "mail-ip", _ip(client))
        await self.limiter.check(
            self.settings.account_mail_rate_limit, "verify-resend", str(user.id)
        )
        await emit(self.session, "user.verification_requested", user_id=str(user.id))

    async def forgot_password(self, email: str, client: ClientInfo) -> None:
        # The same work whether or not the account exists: one job row. The job looks
        # the account up, so neither the answer nor its timing tells them apart (the
        # limits count addresses, not accounts, so a 429 tells nothing either).
        address = email.strip().lower()
        await self.limiter.check(self.settings.account_mail_ip_rate_limit, "mail-ip", _ip(client))
        await self.limiter.check(self.settings.account_mail_rate_limit, "reset-mail", address)
        await emit(self.session, "user.password_reset_requested", email=address)

    async def reset_password(self, token: str, new_password: str) -> None:
        user = await self._consume(token, TokenPurpose.reset_password)
        _check_password(new_password, "body.new_password")
        user.password_hash = await hash_password(new_password)
        await self.repo.expire_tokens(user.id, TokenPurpose.reset_password, self.now)
        ended = await self.repo.revoke_user_sessions(user.id, self.now, "password-reset")
        await self._changed(user.id)
        self._ended(Ended.sessions, user.id, "password-reset", ended)

    async def change_password(
        self, user: User, current: str, new: str, keep_session: uuid.UUID
    ) -> None:
        await self._password_again(
            user, current, "body.current_password", "The current password is incorrect."
        )
        _check_password(new, "body.new_password")
        user.password_hash = await hash_password(new)
        ended = await self.repo.revoke_user_sessions(
            user.id, self.now, "password-changed", keep=keep_session
        )
        await self._changed(user.id)
        self._ended(Ended.sessions, user.id, "password-changed", ended)

    async def _password_again(self, user: User, password: str, field: str, wrong: str) -> None:
        """The password asked again of a signed-in caller (changing it, disabling MFA,
        deleting the account). Each guess takes a slot of the account's sign-in limit
        (LOGIN_ACCOUNT_RATE_LIMIT) before it is checked, so an access token cannot try
        passwords any faster than the sign-in form can; the right one gives them back."""
        by_account = (self.settings.login_account_rate_limit, "login-account", user.email.lower())
        await self.limiter.check(*by_account)
        valid, _ = await verify_password(password, user.password_hash)
        if not valid:
            raise Forbidden(wrong, field=field, slug="invalid-credentials")
        await self.limiter.clear(*by_account)

    # MFA ----------------------------------------------------------------------------

    async def mfa_setup(self, user: User) -> schemas.MfaSetup:
        if user.mfa_enabled_at is not None:
            raise Conflict("MFA is already enabled; disable it first to set up a new device.")
        secret = pyotp.random_base32()
        user.mfa_secret_sealed = self.secret_box.seal(secret)
        uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=TOTP_ISSUER)
        buffer = io.BytesIO()
        segno.make(uri, error="m").save(buffer, kind="png", scale=6)
        return schemas.MfaSetup(
            secret=secret,
            otpauth_uri=uri,
            qr_png_base64=base64.b64encode(buffer.getvalue()).decode(),
        )

    async def mfa_enable(self, user: User, code: str, password: str) -> list[str]:
        """Asks for the password again: with an access token alone, someone else could
        turn MFA on with their own authenticator and lock the owner out."""
        if user.mfa_enabled_at is not None:
            raise Conflict("MFA is already enabled.")
        if user.mfa_secret_sealed is None:
            raise Conflict("Call /auth/mfa/setup first.")
        await self._password_again(user, password, "body.password", "The password is incorrect.")
        await self.limiter.check(MFA_ATTEMPTS, "mfa-code", str(user.id))
        if not self._check_totp(user, code):
            raise Forbidden("The code is not valid.", field="body.code", slug="invalid-mfa-code")
        await self.limiter.clear(MFA_ATTEMPTS, "mfa-code", str(user.id))
        user.mfa_enabled_at = self.now
        await self._changed(user.id)
        codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
        await self.repo.replace_recovery_codes(
            user.id, [token_digest(_normalise_recovery_code(code)) for code in codes]
        )
        return codes

    async def mfa_disable(self, user: User, password: str, code: str) -> None:
        if user.mfa_enabled_at is None:
            raise Conflict("MFA is not enabled.")
        await self._password_again(user, password, "body.password", "The password is incorrect.")
        if not await self._second_factor_guess(user, code):
            raise Forbidden("The code is not valid.", field="body.code", slug="invalid-mfa-code")
        user.mfa_enabled_at = None
        user.mfa_secret_sealed = None
        user.mfa_last_step = None
        await self.repo.delete_recovery_codes(user.id)
        await self._changed(user.id)

    def _check_totp(self, user: User, code: str) -> bool:
        """A TOTP code of the current step or its neighbours, each step usable once."""
        code = code.strip()
        if user.mfa_secret_sealed is None or not code.isdigit():
            return False
        totp = pyotp.TOTP(self.secret_box.open(user.mfa_secret_sealed))
        current_step = int(self.now.timestamp()) // totp.interval
        for step in (current_step - 1, current_step, current_step + 1):
            if user.mfa_last_step is not None and step <= user.mfa_last_step:
                continue
            if constant_time_equal(totp.at(step * totp.interval), code):
                user.mfa_last_step = step
                return True
        return False

    async def _second_factor_guess(self, user: User, code: str) -> bool:
        """One guess at a TOTP or recovery code, counted per account whichever way it
        comes (an MFA login, enabling or disabling MFA): a new login's fresh mfa_token
        gives no new guesses. A right code gives the slots back."""
        await self.limiter.check(MFA_ATTEMPTS, "mfa-code", str(user.id))
        if not await self._check_second_factor(user, code):
            return False
        await self.limiter.clear(MFA_ATTEMPTS, "mfa-code", str(user.id))
        return True

    async def _check_second_factor(self, user: User, code: str) -> bool:
        if self._check_totp(user, code):
            return True
        recovery = await self.repo.unused_recovery_code(
            user.id, token_digest(_normalise_recovery_code(code))
        )
        if recovery is None:
            return False
        recovery.used_at = self.now
        return True

    # Profile ------------------------------------------------------------------------

    async def update_profile(self, user: User, changes: schemas.ProfileUpdate) -> User:
        for field in changes.model_fields_set:
            value = getattr(changes, field)
            if value is None and field != "bio":
                continue  # null leaves a required field as it is; it clears only the bio
            setattr(user, field, value)
        await self.session.flush()
        await self._changed(user.id)
        return user

    async def set_avatar(self, user: User, data: bytes, sandbox: Sandbox) -> User:
        if len(data) > self.settings.avatar_max_bytes:
            raise Invalid(
                f"The image exceeds {self.settings.avatar_max_bytes} bytes.", field="body.file"
            )
        size = (AVATAR_SIZE, AVATAR_SIZE)
        max_pixels = self.settings.image_max_pixels
        encoded = await in_sandbox(sandbox, fit_image, data, size, "PNG", max_pixels)
        key = f"avatars/{user.id}/{uuid.uuid4().hex}.png"
        await put_for_transaction(self.session, self.storage, key, encoded, "image/png")
        previous = user.avatar_key
        user.avatar_key = key
        await self.session.flush()
        await self._changed(user.id)
        delete_after_commit(self.session, self.storage, previous)
        return user

    async def avatar(self, user_id: uuid.UUID) -> bytes:
        user = await self.repo.user_by_id(user_id)
        if user is None or user.avatar_key is None or user.deleted_at is not None:
            raise NotFound("This user has no avatar.")
        data = await self.storage.get(user.avatar_key)
        if data is None:
            raise NotFound("This user has no avatar.")
        return data

    async def delete_account(self, user: User, password: str, code: str | None) -> None:
        """Deactivate and anonymise: the row stays (so references elsewhere hold) but
        nothing identifies the person any more. Asks for the password again, and for a
        second-factor code when the account has MFA, as disabling MFA does: an access
        token alone (a borrowed laptop, a leaked token) cannot end the account."""
        await self._password_again(user, password, "body.password", "The password is incorrect.")
        if user.mfa_enabled_at is not None and (
            code is None or not await self._second_factor_guess(user, code)
        ):
            raise Forbidden(
                "A valid code from the authenticator app (or a recovery code) is required.",
                field="body.code",
                slug="invalid-mfa-code",
            )
        delete_after_commit(self.session, self.storage, user.avatar_key)
        user.email = f"deleted-{user.id.hex}@deleted.invalid"
        user.full_name = "Deleted user"
        user.bio = None
        user.preferences = {}
        user.avatar_key = None
        user.password_hash = None
        user.mfa_secret_sealed = None
        user.mfa_enabled_at = None
        user.is_active = False
        user.deleted_at = self.now
        await self.repo.delete_recovery_codes(user.id)
        await self.repo.revoke_user_sessions(user.id, self.now, "account-deleted")
        await self._changed(user.id)
        self._ended(Ended.account, user.id, "account-deleted")
        await emit(self.session, "user.account_deleted", user_id=str(user.id))

    # Administration -----------------------------------------------------------------

    async def admin_update(self, admin: User, user: User, changes: schemas.AdminUserUpdate) -> User:
        if user.id == admin.id and (
            (changes.role is not None and changes.role != Role.admin) or changes.is_active is False
        ):
            raise Conflict("Admins cannot demote or deactivate themselves.")
        await self._changed(user.id)
        if changes.role is not None and changes.role != user.role:
            user.role = changes.role
            # A demoted instructor leaves the rooms of the courses they taught.
            self._ended(Ended.membership, user.id, "role-changed")
        if changes.is_active is not None:
            user.is_active = changes.is_active
            if not changes.is_active:
                await self.repo.revoke_user_sessions(user.id, self.now, "deactivated")
                self._ended(Ended.account, user.id, "deactivated")
        await self.session.flush()
        return user

    async def search_users(
        self, text: str | None, role: Role | None, active: bool | None, paging: PageParams
    ) -> tuple[list[User], int]:
        return await self.repo.search_users(
            text=text, role=role, active=active, offset=paging.offset, limit=paging.size
        )

    async def get_user(self, user_id: uuid.UUID, *, for_update: bool = False) -> User:
        user = await self.repo.user_by_id(user_id, for_update=for_update)
        if user is None or user.deleted_at is not None:
            raise NotFound("No such user.")
        return user

    async def ensure_admin(self, email: str, password: str, full_name: str) -> tuple[User, bool]:
        """For `lyceum create-admin`: create, or promote an existing account."""
        existing = await self.repo.user_by_email(email)
        if existing is not None:
            existing.role = Role.admin
            existing.is_active = True
            await self._changed(existing.id)
            return existing, False
        _check_password(password, "password")
        user = User(
            email=email,
            full_name=full_name,
            password_hash=await hash_password(password),
            role=Role.admin,
            email_verified_at=self.now,
            preferences={},
        )
        await self.repo.add(user)
        return user, True
