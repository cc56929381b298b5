"""Reading the mails the platform wrote to the dev outbox."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage
from pathlib import Path

from lyceum.config import Settings


def mails_to(settings: Settings, address: str) -> list[EmailMessage]:
    found = []
    for path in sorted(Path(settings.outbox_dir).glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        if message["To"] == address:
            found.append(message)
    return found


def body_of(message: EmailMessage, kind: str) -> str:
    part = message.get_body(preferencelist=(kind,))
    assert part is not None
    return str(part.get_content())


def token_in(message: EmailMessage, path: str) -> str:
    text_body = body_of(message, "plain")
    match = re.search(rf"http://lyceum\.test{path}\?token=([\w-]+)", text_body)
    assert match, text_body
    assert f'href="http://lyceum.test{path}?token={match.group(1)}"' in body_of(message, "html")
    return match.group(1)
