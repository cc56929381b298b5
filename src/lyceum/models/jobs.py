"""Why background jobs failed: procrastinate records that an attempt failed, not the
exception, so the worker writes one row per failed attempt here."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Index, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from lyceum.models.base import Base


class JobFailure(Base):
    __tablename__ = "job_failures"
    __table_args__ = (Index("ix_job_failures_job_id_failed_at", "job_id", "failed_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    # procrastinate_jobs.id (its own schema owns that table: the migration adds the
    # foreign key, ON DELETE CASCADE, so a purged job takes its failures along).
    job_id: Mapped[int] = mapped_column(BigInteger)
    attempt: Mapped[int] = mapped_column(Integer)
    task_name: Mapped[str] = mapped_column(String(128))
    queue_name: Mapped[str] = mapped_column(String(128))
    # `ExceptionType: message`, and the formatted traceback, both truncated.
    error: Mapped[str] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)
    failed_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
