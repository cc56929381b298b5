"""Mail: Jinja2 templates with an HTML and a text part, sent from jobs through the
runtime's `Mailer`, once per logical message (`Mailer.send_once`).

With `SMTP_HOST` set, mail goes out over SMTP (aiosmtplib). Without it, each message
is written as an `.eml` file under `<data dir>/outbox/` and logged, so a new user can
read what the platform sends.

One set of templates (`templates/mail/<name>.subject.txt`, `.txt`, `.html`) in English,
every sentence in `_("...")`; the other languages come from gettext catalogues read with
Babel (`templates/mail/locale/<language>/LC_MESSAGES/mail.po`, compiled in memory when
first used, no build step), chosen by the recipient's locale (`vi-VN` -> `vi`), English
otherwise. Numbers, amounts and dates are written the language's way (Babel filters
`number`, `money`, `when`, `days`). `tests/kit/test_mail_i18n.py` fails while a sentence
lacks a translation.
"""

from __future__ import annotations

import asyncio
import email.policy
import hashlib
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, make_msgid, parseaddr
from functools import cache, partial
from importlib import resources
from pathlib import Path
from typing import Any

import aiosmtplib
import structlog
from babel.dates import format_date, format_interval, format_time, get_datetime_format
from babel.numbers import format_currency, format_decimal
from babel.support import NullTranslations
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.config import Settings
from lyceum.kit.gettext import compiled
from lyceum.kit.mail.repository import MailDeliveries

logger = structlog.get_logger("lyceum.mail")

_TEMPLATE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


# Line breaks and other control characters (Unicode category Cc, plus the line and
# paragraph separators) that a value may carry.
_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def one_line(value: Any) -> Any:
    """Every value put into a mail stays on one line: a name or course title holding a
    line break can neither add a header through the subject nor forge paragraphs in
    the text part. (HTML parts are escaped as well, by autoescaping.)"""
    if isinstance(value, Markup):
        # A translated sentence of an HTML part, its values escaped already (newstyle
        # gettext): only its line breaks change.
        return Markup(_BREAKS.sub(" ", value))  # noqa: S704
    if isinstance(value, str):
        return _BREAKS.sub(" ", value)
    return value


# Languages with a catalogue (`templates/mail/locale/<language>/LC_MESSAGES/*.po`);
# English is the source language (the msgids), and every other language falls back to it.
DEFAULT_LANGUAGE = "en"
LANGUAGES = ("en", "vi")


def language_of(locale: str | None) -> str | None:
    """The mail language for a user's locale (`vi`, `vi-VN`, `vi_VN`), or None for English
    (English itself, no locale, or a language without a catalogue)."""
    if not locale:
        return None
    primary = locale.strip().replace("_", "-").split("-", 1)[0].lower()
    return primary if primary in LANGUAGES and primary != DEFAULT_LANGUAGE else None


@cache
def translations_for(language: str) -> NullTranslations:
    """The language's catalogue, compiled in memory from its .po files (no build step);
    a message it lacks, or marks fuzzy, stays in English."""
    if language == DEFAULT_LANGUAGE or language not in LANGUAGES:
        return NullTranslations()
    folder = resources.files("lyceum") / "templates" / "mail" / "locale" / language
    return compiled(folder / "LC_MESSAGES", language)


# Numbers, amounts and dates as each language writes them (Babel, CLDR data). Every filter
# passes a value it cannot read through unchanged: a mail queued before a context carried
# raw values, or any text, still renders.


def _number(value: Any, language: str) -> Any:
    """`8.5` -> `8.5` (en), `8,5` (vi)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return value
    try:
        return format_decimal(Decimal(str(value)), locale=language)
    except (ArithmeticError, ValueError):
        return value


def _money(value: Any, language: str) -> Any:
    """`{"value": "12.345", "currency": "KWD"}` -> `12.345 KWD` (en), `12,345 KWD` (vi):
    the currency's decimals at least, the code after the amount, as on the receipt."""
    if not isinstance(value, dict):
        return value
    try:
        return format_currency(
            Decimal(str(value["value"])),
            str(value["currency"]),
            format="#,##0.### ¤¤",
            currency_digits=True,
            decimal_quantization=False,
            locale=language,
        )
    except (KeyError, ArithmeticError, ValueError):
        return value


def _when(value: Any, language: str) -> Any:
    """An ISO 8601 date-time -> `Dec 10, 2026, 6:00 AM UTC` (en),
    `06:00 10 thg 12, 2026 UTC` (vi)."""
    if not isinstance(value, str):
        return value
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    pattern = str(get_datetime_format("medium", locale=language))
    written = pattern.replace("{1}", format_date(moment, "medium", locale=language))
    return written.replace("{0}", format_time(moment, "short", locale=language)) + " UTC"


def _days(first: Any, last: Any, language: str) -> Any:
    """Two ISO dates -> `Nov 30 - Dec 6, 2026` (en), `30 thg 11 - 6 thg 12, 2026` (vi),
    with the language's own range dash."""
    try:
        start, end = date.fromisoformat(str(first)), date.fromisoformat(str(last))
    except ValueError:
        return f"{first} - {last}"
    return format_interval(start, end, "yMMMd", locale=language)


@cache
def _environment(language: str = DEFAULT_LANGUAGE) -> Environment:
    """One environment per language, with its catalogue installed (newstyle gettext:
    `{{ _("Hello %(full_name)s,", full_name=full_name) }}` escapes the values it puts
    in an HTML part)."""
    # Values are raw text (display names, course titles, file names): the HTML parts
    # escape them; `one_line` keeps every value, in every part, on one line (a
    # translated sentence is one output, so its values are kept on one line with it).
    env = Environment(
        loader=PackageLoader("lyceum", "templates/mail"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        finalize=one_line,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(translations_for(language), newstyle=True)  # type: ignore[attr-defined]
    env.globals["lang"] = language
    env.filters["number"] = partial(_number, language=language)
    env.filters["money"] = partial(_money, language=language)
    env.filters["when"] = partial(_when, language=language)
    env.filters["days"] = partial(_days, language=language)
    return env


class UnknownTemplate(ValueError):
    pass


def render(
    template: str, context: dict[str, Any], settings: Settings, *, language: str | None = None
) -> tuple[str, str, str]:
    """Return (subject, text, html) for `template` with `context`, in `language` (a
    locale such as `vi` or `vi-VN`) when it has a catalogue, in English otherwise."""
    if not _TEMPLATE_NAME.match(template):
        raise UnknownTemplate(template)
    env = _environment(language_of(language) or DEFAULT_LANGUAGE)
    full_context = {
        "public_base_url": settings.base_url(),
        "product_name": "Lyceum",
        **context,
    }
    try:
        subject = " ".join(env.get_template(f"{template}.subject.txt").render(full_context).split())
        text = env.get_template(f"{template}.txt").render(full_context)
        html = env.get_template(f"{template}.html").render(full_context)
    except Exception as error:
        if type(error).__name__ == "TemplateNotFound":
            raise UnknownTemplate(template) from error
        raise
    return subject, text, html


# Header lines up to RFC 5322's hard limit of 998 characters before folding: at the
# default 78, a long URL header with no space to fold at (List-Unsubscribe with its
# signed token) was sent as an RFC 2047 encoded word, which no mail client reads as a
# link (RFC 2369 headers take bare <URL>s).
_POLICY = email.policy.default.clone(max_line_length=998)
_SMTP_POLICY = email.policy.SMTP.clone(max_line_length=998)


def build_message(
    *,
    to: str,
    subject: str,
    text: str,
    html: str,
    sender: str,
    message_id: str,
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    message = EmailMessage(policy=_POLICY)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        # Extra headers (List-Unsubscribe) are built by Lyceum, never from user text;
        # still, no value may add a header of its own.
        message[name] = one_line(value)
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


async def deliver(message: EmailMessage, settings: Settings) -> str:
    """Send over SMTP, or write to the outbox; returns where it went."""
    if settings.smtp_host:
        sender = parseaddr(str(message["From"]))[1]
        recipients = [address for _, address in getaddresses([str(message["To"])])]
        envelope: dict[str, Any] = {}
        content: EmailMessage | bytes = message
        if (sender + "".join(recipients)).isascii():
            # Serialized here, with header lines up to 998 characters (aiosmtplib's own
            # SMTP policy folds at 78 and would encode the List-Unsubscribe URL).
            content = message.as_bytes(policy=_SMTP_POLICY)
            envelope = {"sender": sender, "recipients": recipients}
        await aiosmtplib.send(
            content,
            **envelope,
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
    path = outbox / f"{datetime.now(UTC):%Y%m%dT%H%M%S.%f}-{message_id}.eml"
    await asyncio.to_thread(_write_eml, outbox, path, message)
    return str(path)


def _write_eml(outbox: Path, path: Path, message: EmailMessage) -> None:
    outbox.mkdir(parents=True, exist_ok=True)
    # The message id is derived from the logical message, so a repeat rewrites its file.
    for existing in outbox.glob(f"*-{path.name.split('-', 1)[1]}"):
        existing.unlink()
    path.write_bytes(bytes(message))


def message_id_for(key: str, sender: str) -> str:
    """A Message-ID derived from the logical message: a repeat (a retry after a crash
    between sending and recording) carries the same id, which receivers deduplicate."""
    domain = sender.rsplit("@", 1)[-1].strip(" >") or "lyceum.local"
    return f"<lyceum-{hashlib.sha256(key.encode()).hexdigest()[:40]}@{domain}>"


class Mailer:
    """Renders and delivers mail for one process (built once by the runtime)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def send(
        self,
        template: str,
        to: str,
        context: dict[str, Any],
        *,
        message_id: str | None = None,
        language: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> str:
        """Render and deliver one message now; returns where it went."""
        subject, text, html = render(template, context, self.settings, language=language)
        message = build_message(
            to=to,
            subject=subject,
            text=text,
            html=html,
            sender=self.settings.mail_from,
            message_id=message_id or make_msgid(domain="lyceum.local"),
            headers=headers,
        )
        destination = await deliver(message, self.settings)
        logger.info("mail_sent", template=template, to=to, subject=subject, destination=destination)
        return destination

    async def send_once(
        self,
        session: AsyncSession,
        *,
        key: str,
        template: str,
        to: str,
        context: dict[str, Any],
        language: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> bool:
        """Send the logical message `key` unless it was sent before; True if sent now.

        The log row is written and locked in the caller's transaction and marked sent
        right after delivery, so a job retried after a later step failed, or the same
        event handled twice, finds it sent and sends nothing. If delivery fails the
        caller's transaction rolls back, row included, and the retry sends it."""
        message_id = message_id_for(key, self.settings.mail_from)
        entry = await MailDeliveries(session).claim(
            key, template=template, recipient=to, message_id=message_id
        )
        if entry.sent_at is not None:
            logger.info("mail_already_sent", template=template, key=key)
            return False
        destination = await self.send(
            template, to, context, message_id=message_id, language=language, headers=headers
        )
        entry.destination = destination[:500]
        entry.sent_at = datetime.now(UTC)
        await session.flush()
        return True
