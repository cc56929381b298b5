"""Mail: rendered HTML + text, written to the dev outbox, or sent to a real SMTP server."""

from __future__ import annotations

import email
import email.policy
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import text

from lyceum.config import Settings
from lyceum.kit.db import unit_of_work
from lyceum.kit.jobs import JobContext, Queue, resources, task, transaction
from lyceum.kit.mail import Mailer, UnknownTemplate, build_message, render
from lyceum.kit.runtime import Runtime
from tests.conftest import client_for, make_app
from tests.identity.flows_helpers import body_of, mails_to
from tests.identity.helpers import PASSWORD, unique_email
from tests.support.jobs import run_jobs
from tests.support.servers import REPO_ROOT, free_port


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[Envelope, EmailMessage]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((envelope, parsed))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, Inbox]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, inbox
    controller.stop()


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


def test_render_has_text_and_html_with_links_from_public_base_url(settings: Settings) -> None:
    subject, text, html = render("test_message", {"note": "<b>hi</b>"}, settings)
    assert subject == "Lyceum mail check"
    assert "http://lyceum.test" in text
    assert 'href="http://lyceum.test"' in html
    assert "&lt;b&gt;hi&lt;/b&gt;" in html  # HTML is escaped
    assert "<b>hi</b>" in text  # text is not


# A display name or course title as an attacker would pick it: markup, quotes, and a
# line break followed by a header.
HOSTILE = "<img src=x onerror=alert(1)> \"Ada\" & 'Bob'\r\nBcc: victim@example.org"
TEMPLATES = sorted(
    path.name.removesuffix(".subject.txt")
    for path in (REPO_ROOT / "src/lyceum/templates/mail").glob("*.subject.txt")
)
# Every value any template takes.
HOSTILE_CONTEXT = dict.fromkeys(
    (
        "full_name",
        "course_title",
        "code",
        "note",
        "link",
        "app_url",
        "course_url",
        "download_url",
        "verify_url",
        "webhook_url",
        "reason",
        "endpoint_url",
        "title",
        "body",
        "item_title",
        "due_at",
        "url",
        "score",
        "max_score",
        "next_lesson_title",
        "week_label",
        "week_first",
        "week_last",
        "unsubscribe_url",
        "amount",
        "refunded_amount",
        "receipt_number",
        "receipt_url",
        "full",
    ),
    HOSTILE,
) | {
    "courses": [
        {
            "title": HOSTILE,
            "percent": HOSTILE,
            "next_lesson_title": HOSTILE,
            "next_lesson_url": HOSTILE,
            "lessons_completed_this_week": 3,  # a count (it picks the plural form)
        }
    ]
}


@pytest.mark.parametrize("language", ["en", "vi"])
@pytest.mark.parametrize("template", TEMPLATES)
def test_every_mail_escapes_its_values_and_keeps_them_on_one_line(
    settings: Settings, template: str, language: str
) -> None:
    subject, text, html = render(template, HOSTILE_CONTEXT, settings, language=language)
    message = build_message(
        to="ada@example.org",
        subject=subject,
        text=text,
        html=html,
        sender="a@b.c",
        message_id="<m@b.c>",
    )
    assert message["Bcc"] is None and "\n" not in subject and "\r" not in subject
    assert "<img" not in html
    assert "&lt;img src=x onerror=alert(1)&gt; &#34;Ada&#34; &amp; &#39;Bob&#39; Bcc:" in html
    assert "<img src=x onerror=alert(1)> \"Ada\" & 'Bob' Bcc: victim" in text
    assert "\nBcc:" not in text and "\rBcc:" not in text


async def test_a_display_name_with_markup_and_a_line_break_is_mailed_safely(
    settings: Settings, runtime: Runtime
) -> None:
    """Registration accepts any visible name; the welcome mail shows it as text: escaped
    in HTML, on one line in the subject (no header added) and in the text part."""
    address = unique_email("hostile")
    async with client_for(make_app(settings, runtime, None)) as http:
        registered = await http.post(
            "/api/v1/auth/register",
            json={"email": address, "password": PASSWORD, "full_name": HOSTILE},
        )
    assert registered.status_code == 201, registered.text
    assert registered.json()["full_name"] == HOSTILE  # the API returns raw text
    await run_jobs([Queue.mail])
    (welcome,) = [m for m in mails_to(settings, address) if "Welcome" in str(m["Subject"])]
    assert welcome["Bcc"] is None
    assert str(welcome["Subject"]) == (
        "Welcome to Lyceum, <img src=x onerror=alert(1)> \"Ada\" & 'Bob' Bcc: victim@example.org"
    )
    assert "<img" not in body_of(welcome, "html")
    assert "&lt;img src=x onerror=alert(1)&gt;" in body_of(welcome, "html")
    assert "'Bob' Bcc: victim@example.org" in body_of(welcome, "plain")


@pytest.mark.parametrize("name", ["../secrets", "nope", "Test_Message"])
def test_unknown_or_unsafe_template_names_are_refused(settings: Settings, name: str) -> None:
    with pytest.raises(UnknownTemplate):
        render(name, {}, settings)


async def test_without_smtp_mail_lands_in_the_outbox(settings: Settings) -> None:
    assert settings.smtp_host is None
    to = f"{uuid.uuid4().hex}@example.com"
    destination = Path(await Mailer(settings).send("test_message", to, {"note": "outbox"}))
    assert destination.parent == settings.outbox_dir
    message = email.message_from_bytes(destination.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert message["To"] == to
    text, html = parts(message)
    assert "outbox" in text and "outbox" in html


async def test_mail_reaches_a_real_smtp_server(
    settings: Settings, smtp_server: tuple[int, Inbox]
) -> None:
    port, inbox = smtp_server
    smtp_settings = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": port})
    await Mailer(smtp_settings).send("test_message", "learner@example.com", {"note": "via smtp"})
    [(envelope, message)] = inbox.messages
    assert envelope.rcpt_tos == ["learner@example.com"]
    assert message["Subject"] == "Lyceum mail check"
    text, html = parts(message)
    assert "via smtp" in text
    assert "<html" in html


async def test_resending_the_same_message_id_replaces_the_outbox_file(settings: Settings) -> None:
    to = f"{uuid.uuid4().hex}@example.com"
    message_id = f"<lyceum-{uuid.uuid4().hex}@lyceum.local>"
    for _ in range(2):
        await Mailer(settings).send("test_message", to, {"note": "retry"}, message_id=message_id)
    written = [path for path in settings.outbox_dir.glob("*.eml") if to in path.read_text()]
    assert len(written) == 1


class FlakyStep:
    """Fails the job's step after the mail once, like a crash after sending."""

    failures_left: dict[str, int] = {}


@task(name="tests.mail_then_fail", queue=Queue.mail, pass_context=True)
async def mail_then_fail(context: JobContext, to: str, key: str) -> None:
    runtime = resources(context)
    async with transaction(runtime) as session:
        await runtime.mailer.send_once(
            session, key=key, template="test_message", to=to, context={"note": "once"}
        )
    async with transaction(runtime):
        if FlakyStep.failures_left.get(key, 0) > 0:
            FlakyStep.failures_left[key] -= 1
            raise RuntimeError("a later step of the job failed")


async def test_a_retried_job_does_not_send_its_mail_again(
    runtime: Runtime, smtp_server: tuple[int, Inbox]
) -> None:
    """The job sends, then fails; procrastinate retries it; the SMTP server gets one
    message (and a retry that finds it sent logs it and sends nothing)."""
    port, inbox = smtp_server
    smtp_runtime = Runtime(
        settings=runtime.settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": port}),
        database_url=runtime.database_url,
        database=runtime.database,
        cache=runtime.cache,
        rate_limiter=runtime.rate_limiter,
    )
    to = f"{uuid.uuid4().hex}@example.com"
    key = f"test:{uuid.uuid4().hex}"
    FlakyStep.failures_left[key] = 1
    job_id = await mail_then_fail.defer_async(to=to, key=key)
    await run_jobs([Queue.mail], runtime=smtp_runtime)
    async with runtime.database.engine.connect() as conn:
        attempts, status = (
            await conn.execute(
                text("SELECT attempts, status::text FROM procrastinate_jobs WHERE id = :id"),
                {"id": job_id},
            )
        ).one()
    assert (attempts, status) == (1, "todo")  # failed once, waiting for its retry
    async with runtime.database.engine.begin() as conn:
        await conn.execute(
            text("UPDATE procrastinate_jobs SET scheduled_at = now() WHERE id = :id"),
            {"id": job_id},
        )
    await run_jobs([Queue.mail], runtime=smtp_runtime)
    # (Other tests' mail jobs may run on this worker too: count this job's messages.)
    assert [envelope.rcpt_tos for envelope, _ in inbox.messages].count([to]) == 1


async def test_the_same_logical_message_is_sent_once(runtime: Runtime, settings: Settings) -> None:
    to = f"{uuid.uuid4().hex}@example.com"
    key = f"test:{uuid.uuid4().hex}"
    sent = []
    for _ in range(2):
        async with runtime.database.sessionmaker() as session, unit_of_work(session):
            sent.append(
                await runtime.mailer.send_once(
                    session, key=key, template="test_message", to=to, context={"note": "x"}
                )
            )
    assert sent == [True, False]
    written = [path for path in settings.outbox_dir.glob("*.eml") if to in path.read_text()]
    assert len(written) == 1
