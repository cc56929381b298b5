"""Every query of the identity domain."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    ColumnElement,
    Uuid,
    bindparam,
    delete,
    exists,
    func,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.models.identity import (
    LoginSession,
    OneTimeToken,
    RecoveryCode,
    RefreshToken,
    Role,
    TokenPurpose,
    User,
)

# The expression of the trigram index ix_users_search_trgm, written as the index has it
# (a literal ' ', not a bound parameter) so that the planner can use the index.
USER_SEARCH_TEXT: ColumnElement[str] = literal_column(
    "lyceum_unaccent(lower(users.email) || ' ' || lower(users.full_name))"
)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def user_matches(text: str) -> ColumnElement[bool]:
    """Part of the email or the name, case- and accent-blind ("tran" finds "Trần",
    "duc" finds "Đức", and the other way round); `%` and `_` are plain characters."""
    pattern = func.lyceum_unaccent(func.lower(f"%{_escape_like(text)}%"))
    return USER_SEARCH_TEXT.like(pattern, escape="\\")


# Built once: every authenticated request runs it, and a statement object reused with
# bound parameters skips the expression building and cache-key walk of a new one.
_USER_AND_SESSION = select(
    User,
    exists()
    .where(
        LoginSession.id == bindparam("session_id", type_=Uuid()),
        LoginSession.user_id == User.id,
        LoginSession.revoked_at.is_(None),
    )
    .label("signed_in"),
).where(User.id == bindparam("user_id", type_=Uuid()))


class IdentityRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # Users ---------------------------------------------------------------------------

    async def user_by_id(self, user_id: uuid.UUID, *, for_update: bool = False) -> User | None:
        query = select(User).where(User.id == user_id)
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def user_and_session(
        self, user_id: uuid.UUID, session_id: uuid.UUID
    ) -> tuple[User | None, bool]:
        """An access token's user, and whether its login session is that user's and still
        open, in one round trip: every authenticated request asks. A session of another
        account counts as closed, so a token can never borrow someone else's `sid`."""
        row = (
            await self.session.execute(
                _USER_AND_SESSION, {"user_id": user_id, "session_id": session_id}
            )
        ).first()
        return (None, False) if row is None else (row[0], bool(row[1]))

    async def user_by_email(self, email: str) -> User | None:
        query = select(User).where(func.lower(User.email) == email.lower())
        return (await self.session.execute(query)).scalar_one_or_none()

    async def add(self, entity: object) -> None:
        self.session.add(entity)
        await self.session.flush()

    async def search_users(
        self,
        *,
        text: str | None,
        role: Role | None,
        active: bool | None,
        offset: int,
        limit: int,
    ) -> tuple[list[User], int]:
        conditions: list[ColumnElement[bool]] = [User.deleted_at.is_(None)]
        if text:
            conditions.append(user_matches(text))
        if role is not None:
            conditions.append(User.role == role)
        if active is not None:
            conditions.append(User.is_active.is_(active))
        total = (
            await self.session.execute(select(func.count()).select_from(User).where(*conditions))
        ).scalar_one()
        rows = await self.session.execute(
            select(User)
            .where(*conditions)
            .order_by(User.created_at.desc(), User.id)
            .offset(offset)
            .limit(limit)
        )
        return list(rows.scalars()), int(total)

    # Login sessions and refresh tokens ----------------------------------------------

    async def login_session(self, session_id: uuid.UUID) -> LoginSession | None:
        return await self.session.get(LoginSession, session_id)

    async def active_sessions(self, user_id: uuid.UUID, now: dt.datetime) -> list[LoginSession]:
        rows = await self.session.execute(
            select(LoginSession)
            .where(
                LoginSession.user_id == user_id,
                LoginSession.revoked_at.is_(None),
                LoginSession.expires_at > now,
            )
            .order_by(LoginSession.last_used_at.desc())
        )
        return list(rows.scalars())

    async def open_sessions(self, session_ids: list[uuid.UUID]) -> set[uuid.UUID]:
        """Of these login sessions, the ones still open, of accounts still active (for
        live connections, which re-check now and then what they were opened with)."""
        if not session_ids:
            return set()
        rows = await self.session.execute(
            select(LoginSession.id)
            .join(User, User.id == LoginSession.user_id)
            .where(
                LoginSession.id == func.any(bindparam("ids", session_ids, ARRAY(Uuid()))),
                LoginSession.revoked_at.is_(None),
                User.is_active.is_(True),
            )
        )
        return set(rows.scalars())

    async def refresh_token_by_hash(self, token_hash: str) -> RefreshToken | None:
        query = select(RefreshToken).where(RefreshToken.token_hash == token_hash).with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def revoke_session(self, session_id: uuid.UUID, now: dt.datetime, reason: str) -> None:
        await self.session.execute(
            update(LoginSession)
            .where(LoginSession.id == session_id, LoginSession.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason=reason)
        )

    async def revoke_user_sessions(
        self,
        user_id: uuid.UUID,
        now: dt.datetime,
        reason: str,
        *,
        keep: uuid.UUID | None = None,
    ) -> list[uuid.UUID]:
        conditions = [LoginSession.user_id == user_id, LoginSession.revoked_at.is_(None)]
        if keep is not None:
            conditions.append(LoginSession.id != keep)
        rows = await self.session.execute(
            update(LoginSession)
            .where(*conditions)
            .values(revoked_at=now, revoked_reason=reason)
            .returning(LoginSession.id)
        )
        return list(rows.scalars())

    # One-time tokens ----------------------------------------------------------------

    async def one_time_token(self, token_hash: str, purpose: TokenPurpose) -> OneTimeToken | None:
        query = (
            select(OneTimeToken)
            .where(OneTimeToken.token_hash == token_hash, OneTimeToken.purpose == purpose)
            .with_for_update()
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def expire_tokens(
        self, user_id: uuid.UUID, purpose: TokenPurpose, now: dt.datetime
    ) -> None:
        """A new token of a purpose replaces older unused ones."""
        await self.session.execute(
            update(OneTimeToken)
            .where(
                OneTimeToken.user_id == user_id,
                OneTimeToken.purpose == purpose,
                OneTimeToken.used_at.is_(None),
            )
            .values(used_at=now)
        )

    # MFA recovery codes -------------------------------------------------------------

    async def replace_recovery_codes(self, user_id: uuid.UUID, hashes: list[str]) -> None:
        await self.delete_recovery_codes(user_id)
        self.session.add_all(RecoveryCode(user_id=user_id, code_hash=h) for h in hashes)
        await self.session.flush()

    async def delete_recovery_codes(self, user_id: uuid.UUID) -> None:
        await self.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))

    async def unused_recovery_code(self, user_id: uuid.UUID, code_hash: str) -> RecoveryCode | None:
        query = (
            select(RecoveryCode)
            .where(
                RecoveryCode.user_id == user_id,
                RecoveryCode.code_hash == code_hash,
                RecoveryCode.used_at.is_(None),
            )
            .with_for_update()
        )
        return (await self.session.execute(query)).scalar_one_or_none()
