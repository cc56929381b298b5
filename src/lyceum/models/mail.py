"""The mail delivery log: one row per logical message, so a retried job never sends
the same message twice."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String, func
from sqlalchemy.orm import Mapped, mapped_column

from lyceum.models.base import Base


class MailDelivery(Base):
    __tablename__ = "mail_deliveries"

    # What makes the message one logical message, e.g. `welcome:<user id>` or
    # `certificate_issued:<code>`; chosen by the code that sends it.
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    template: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(String(320))
    message_id: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    sent_at: Mapped[dt.datetime | None]
    destination: Mapped[str | None] = mapped_column(String(500))
