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

from lyceum.config import Settings
from lyceum.kit.jobs import run_worker
from lyceum.kit.mail import UnknownTemplate, render, send_mail, send_templated
from lyceum.kit.runtime import Runtime
from tests.support.servers import free_port


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


@pytest.mark.parametrize("name", ["../secrets", "nope", "Test_Message"])
def test_unknown_or_unsafe_template_names_are_refused(settings: Settings, name: str) -> None:
    with pytest.raises(UnknownTemplate):
        render(name, {}, settings)


async def test_without_smtp_mail_lands_in_the_outbox(settings: Settings) -> None:
    assert settings.smtp_host is None
    to = f"{uuid.uuid4().hex}@example.com"
    destination = Path(await send_templated("test_message", to, {"note": "outbox"}))
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
    await send_templated(
        "test_message", "learner@example.com", {"note": "via smtp"}, settings=smtp_settings
    )
    [(envelope, message)] = inbox.messages
    assert envelope.rcpt_tos == ["learner@example.com"]
    assert message["Subject"] == "Lyceum mail check"
    text, html = parts(message)
    assert "via smtp" in text
    assert "<html" in html


async def test_send_mail_jobs_deliver_one_message_per_job(
    settings: Settings, runtime: Runtime
) -> None:
    to = f"{uuid.uuid4().hex}@example.com"
    for _ in range(2):
        await send_mail.configure(queue="tests").defer_async(
            template="test_message", to=to, data={"note": "from a job"}
        )
    await run_worker(wait=False, install_signal_handlers=False, queues=["tests"], concurrency=1)
    written = [path for path in settings.outbox_dir.glob("*.eml") if to in path.read_text()]
    assert len(written) == 2  # two jobs, two messages, each named after its job id
    assert all("lyceum-job-" in path.name for path in written)


async def test_resending_the_same_message_id_replaces_the_outbox_file(settings: Settings) -> None:
    to = f"{uuid.uuid4().hex}@example.com"
    message_id = f"<lyceum-job-{uuid.uuid4().int % 10**9}@lyceum.local>"
    for _ in range(2):
        await send_templated("test_message", to, {"note": "retry"}, message_id=message_id)
    written = [path for path in settings.outbox_dir.glob("*.eml") if to in path.read_text()]
    assert len(written) == 1
