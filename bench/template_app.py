"""The baseline of bench/request_cost.py: a minimal FastAPI + SQLAlchemy async app in the
shape of the well-known FastAPI project template's backend, on Lyceum's own database.

* `GET /users/me`: `OAuth2PasswordBearer`, `jwt.decode` (HS256, audience and issuer
  checked), `session.get(User, sub)`, the user back as a response model.
* `GET /items?limit=20`: the template's items list, here the caller's enrollments with
  their course titles: a count and a page of rows owned by the caller.
* `GET /health/live`: no database.

No middleware, no logging, no metrics: the floor of "authenticated endpoint on the same
stack". Run by the harness as `python -m uvicorn bench.template_app:app` from the
repository root with DATABASE_URL and SECRET_KEY set.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

import jwt
from fastapi import Depends, FastAPI, HTTPException, status
from fastapi.security import OAuth2PasswordBearer
from pydantic import BaseModel
from sqlalchemy import ForeignKey, String, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    is_active: Mapped[bool]
    created_at: Mapped[dt.datetime]


class Course(Base):
    __tablename__ = "courses"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(120))


class Enrollment(Base):
    __tablename__ = "enrollments"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    course_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("courses.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(20))
    enrolled_at: Mapped[dt.datetime]


class UserPublic(BaseModel):
    id: uuid.UUID
    email: str
    full_name: str
    role: str
    is_active: bool
    created_at: dt.datetime


class ItemPublic(BaseModel):
    id: uuid.UUID
    course_id: uuid.UUID
    course_title: str
    status: str
    enrolled_at: dt.datetime


class ItemsPublic(BaseModel):
    data: list[ItemPublic]
    count: int


DATABASE_URL = os.environ.get("DATABASE_URL", "").replace(
    "postgresql://", "postgresql+psycopg://", 1
)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
POOL = int(os.environ.get("DB_POOL_SIZE", "10"))

engine = create_async_engine(DATABASE_URL, pool_size=POOL, max_overflow=POOL, pool_pre_ping=True)
sessions = async_sessionmaker(engine, expire_on_commit=False)
reusable_oauth2 = OAuth2PasswordBearer(tokenUrl="/login/access-token")
app = FastAPI(title="template", openapi_url=None, docs_url=None, redoc_url=None)


async def get_db() -> AsyncIterator[AsyncSession]:
    async with sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_db)]
TokenDep = Annotated[str, Depends(reusable_oauth2)]


async def get_current_user(session: SessionDep, token: TokenDep) -> User:
    try:
        payload = jwt.decode(
            token, SECRET_KEY, algorithms=["HS256"], audience="lyceum-api", issuer="lyceum"
        )
    except jwt.PyJWTError:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Could not validate credentials") from None
    user = await session.get(User, uuid.UUID(payload["sub"]))
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "User not found")
    if not user.is_active:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "Inactive user")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


@app.get("/users/me", response_model=UserPublic)
async def read_user_me(current_user: CurrentUser) -> User:
    return current_user


@app.get("/items", response_model=ItemsPublic)
async def read_items(
    session: SessionDep, current_user: CurrentUser, skip: int = 0, limit: int = 100
) -> ItemsPublic:
    owned = Enrollment.user_id == current_user.id
    count = await session.execute(select(func.count()).select_from(Enrollment).where(owned))
    rows = await session.execute(
        select(Enrollment, Course.title)
        .join(Course, Course.id == Enrollment.course_id)
        .where(owned)
        .order_by(Enrollment.enrolled_at.desc())
        .offset(skip)
        .limit(limit)
    )
    data = [
        ItemPublic(
            id=enrollment.id,
            course_id=enrollment.course_id,
            course_title=title,
            status=enrollment.status,
            enrolled_at=enrollment.enrolled_at,
        )
        for enrollment, title in rows
    ]
    return ItemsPublic(data=data, count=int(count.scalar_one()))


@app.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}
