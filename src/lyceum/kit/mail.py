"""Mail: Jinja2 templates with an HTML and a text part, sent by a job.

With `SMTP_HOST` set, mail goes out over SMTP (aiosmtplib). Without it, each message
is written as an `.eml` file under `<data dir>/outbox/` and logged, so a new user can
read what the platform sends.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from functools import lru_cache
from pathlib import Path
from typing import Any

import aiosmtplib
import structlog
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from lyceum.config import Settings, get_settings
from lyceum.kit.jobs import DEFAULT_RETRY, JobContext, job_app

logger = structlog.get_logger("lyceum.mail")

_TEMPLATE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("lyceum", "templates/mail"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


class UnknownTemplate(ValueError):
    pass


def render(template: str, context: dict[str, Any], settings: Settings) -> tuple[str, str, str]:
    """Return (subject, text, html) for `template` with `context`."""
    if not _TEMPLATE_NAME.match(template):
        raise UnknownTemplate(template)
    env = _environment()
    full_context = {
        "public_base_url": str(settings.public_base_url).rstrip("/"),
        "product_name": "Lyceum",
        **context,
    }
    try:
        subject = env.get_template(f"{template}.subject.txt").render(full_context).strip()
        text = env.get_template(f"{template}.txt").render(full_context)
        html = env.get_template(f"{template}.html").render(full_context)
    except Exception as error:
        if type(error).__name__ == "TemplateNotFound":
            raise UnknownTemplate(template) from error
        raise
    return subject, text, html


def build_message(
    *, to: str, subject: str, text: str, html: str, sender: str, message_id: str
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = message_id
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


async def deliver(message: EmailMessage, settings: Settings) -> str:
    """Send over SMTP, or write to the outbox; returns where it went."""
    if settings.smtp_host:
        await aiosmtplib.send(
            message,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            start_tls=settings.smtp_starttls,
            use_tls=settings.smtp_ssl,
            timeout=settings.smtp_timeout_seconds,
        )
        return f"smtp://{settings.smtp_host}:{settings.smtp_port}"
    outbox = settings.outbox_dir
    message_id = str(message["Message-ID"]).strip("<>").replace("/", "_")
    path = outbox / f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{message_id}.eml"
    await asyncio.to_thread(_write_eml, outbox, path, message)
    return str(path)


def _write_eml(outbox: Path, path: Path, message: EmailMessage) -> None:
    outbox.mkdir(parents=True, exist_ok=True)
    # The message id is derived from the job id, so a retried job rewrites the same file.
    for existing in outbox.glob(f"*-{path.name.split('-', 1)[1]}"):
        existing.unlink()
    path.write_bytes(bytes(message))


async def send_templated(
    template: str,
    to: str,
    context: dict[str, Any],
    *,
    message_id: str | None = None,
    settings: Settings | None = None,
) -> str:
    settings = settings or get_settings()
    subject, text, html = render(template, context, settings)
    message = build_message(
        to=to,
        subject=subject,
        text=text,
        html=html,
        sender=settings.mail_from,
        message_id=message_id or make_msgid(domain="lyceum.local"),
    )
    destination = await deliver(message, settings)
    logger.info("mail_sent", template=template, to=to, subject=subject, destination=destination)
    return destination


@job_app.task(name="lyceum.send_mail", retry=DEFAULT_RETRY, pass_context=True)
async def send_mail(context: JobContext, *, template: str, to: str, data: dict[str, Any]) -> str:
    """Render and send one mail. The Message-ID comes from the job id, so a retry after
    a partial failure is recognisable as the same message by the receiving side."""
    job_id = context.job.id if context.job else None
    message_id = f"<lyceum-job-{job_id}@lyceum.local>" if job_id else None
    return await send_templated(template, to, data, message_id=message_id)
