"""A Python client generated from the published schema by openapi-python-client, with its
default settings, drives the app: register, sign in, author a course, search the catalog,
enroll, complete a lesson, ask the tutor and read the conversation back, every answer
parsed into its typed model, and an error parsed as a Problem.

The generator runs offline on the schema the app serves at /openapi.json (it formats its
output with the ruff of this virtualenv)."""

from __future__ import annotations

import asyncio
import importlib
import os
import re
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from lyceum.config import Settings
from lyceum.kit.runtime import Runtime
from lyceum.models.identity import Role, User
from tests.conftest import make_app
from tests.support.clock import FrozenClock
from tests.support.jobs import run_jobs

BASE_URL = "http://lyceum.test"
PACKAGE = "lyceum_api_client"
GENERATOR = Path(sys.executable).with_name("openapi-python-client")
# The generator's defaults read JSON, text/* and application/octet-stream bodies; other
# binary media types (an avatar PNG, a cover WebP, a certificate PDF) it leaves to its
# `content_type_overrides` setting. Anything else it warns about is a defect of the schema.
BINARY_BODIES = {"image/png", "image/webp", "application/pdf", "application/zip"}


async def generate(schema: bytes, into: Path) -> str:
    """Runs the generator on `schema`; answers what it printed."""
    spec = into / "openapi.json"
    spec.write_bytes(schema)
    environment = {**os.environ, "PATH": f"{GENERATOR.parent}{os.pathsep}{os.environ['PATH']}"}
    process = await asyncio.create_subprocess_exec(
        str(GENERATOR),
        "generate",
        "--path",
        str(spec),
        "--output-path",
        str(into / "client"),
        cwd=into,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=600)
    printed = output.decode()
    assert process.returncode == 0, printed
    return printed


def schema_warnings(printed: str) -> list[str]:
    """What the generator warned about, less the binary bodies it cannot type by default.
    It prints a warning's heading, then (after a blank line) its reason."""
    lines = [line.strip() for line in printed.splitlines() if line.strip()]
    found = []
    for heading, reason in zip(lines, [*lines[1:], ""], strict=True):
        if not re.match(r"(WARNING|Unable|Failure|Could not)", heading):
            continue
        binary = re.search(r"\(Unsupported content_type ([^)]+)\)", reason)
        if heading.startswith("WARNING parsing") and binary and binary.group(1) in BINARY_BODIES:
            continue
        found.append(f"{heading} {reason}")
    return found


@pytest.fixture
def load(tmp_path: Path) -> Iterator[Callable[[str], ModuleType]]:
    """Imports modules of the package generated under `tmp_path/client`; forgets them after."""
    folder = str(tmp_path / "client")
    sys.path.insert(0, folder)
    yield lambda name: importlib.import_module(f"{PACKAGE}.{name}")
    sys.path.remove(folder)
    for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
        del sys.modules[name]


@pytest.fixture
async def transport(settings: Settings, runtime: Runtime) -> AsyncIterator[httpx.ASGITransport]:
    """The real app on committed data: the tutor stores its answer on a connection of its own."""
    await runtime.rate_limiter.reset()
    app = make_app(settings, runtime, None)
    app.state.clock = FrozenClock()
    yield httpx.ASGITransport(app=app, raise_app_exceptions=False)
    await run_jobs()  # the mails and indexing this test queued


async def test_a_generated_client_drives_the_main_flows(
    tmp_path: Path,
    transport: httpx.ASGITransport,
    load: Callable[[str], ModuleType],
    runtime: Runtime,
) -> None:
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        schema = await http.get("/openapi.json")
    assert schema.status_code == 200
    printed = await generate(schema.content, tmp_path)
    assert schema_warnings(printed) == []

    client_module = load("client")
    models = load("models")
    api: dict[str, Any] = {
        name: load(f"api.{name}")
        for name in (
            "auth.register",
            "auth.login",
            "courses.create_course",
            "courses.add_module",
            "courses.add_lesson",
            "courses.publish_course",
            "courses.list_courses",
            "courses.get_course",
            "learning.enroll",
            "learning.complete_lesson",
            "tutor.start_conversation",
            "tutor.ask",
            "tutor.get_conversation",
        )
    }
    anonymous = client_module.Client(
        base_url=BASE_URL, httpx_args={"transport": transport}, raise_on_unexpected_status=True
    )

    async def sign_up(role: Role) -> Any:
        email = f"{role.value}-{uuid.uuid4().hex[:12]}@example.com"
        password = "generated client passphrase"
        created = await api["auth.register"].asyncio_detailed(
            client=anonymous,
            body=models.RegisterRequest(email=email, password=password, full_name="Grace Hopper"),
        )
        assert created.status_code == 201, created.content
        assert isinstance(created.parsed, models.UserOut)
        assert created.headers["location"] == f"/api/v1/users/{created.parsed.id}"
        # The role, and a verified address (the tutor needs one; the mailed link that
        # verifies it is covered by tests/identity).
        async with runtime.database.engine.begin() as conn:
            await conn.execute(
                update(User)
                .where(User.id == created.parsed.id)
                .values(role=role, email_verified_at=User.created_at)
            )
        tokens = await api["auth.login"].asyncio(
            client=anonymous, body=models.LoginRequest(email=email, password=password)
        )
        assert isinstance(tokens, models.TokenPair), tokens
        return client_module.AuthenticatedClient(
            base_url=BASE_URL,
            token=tokens.access_token,
            httpx_args={"transport": transport},
            raise_on_unexpected_status=True,
        )

    teacher = await sign_up(Role.instructor)
    marker = f"quasar{uuid.uuid4().hex[:8]}"
    course = await api["courses.create_course"].asyncio(
        client=teacher,
        body=models.CourseCreate(title=f"Photosynthesis {marker}", description="Light to sugar."),
    )
    assert isinstance(course, models.CourseDetail), course
    module = await api["courses.add_module"].asyncio(
        course_id=course.id, client=teacher, body=models.ModuleCreate(title="Light")
    )
    assert isinstance(module, models.ModuleOut), module
    lesson = await api["courses.add_lesson"].asyncio(
        course_id=course.id,
        module_id=module.id,
        client=teacher,
        body=models.LessonCreate(
            title="Chlorophyll",
            content="Chlorophyll absorbs red and blue light and reflects green light.",
        ),
    )
    assert isinstance(lesson, models.LessonOut), lesson
    published = await api["courses.publish_course"].asyncio(course_id=course.id, client=teacher)
    assert isinstance(published, models.CourseDetail), published

    # The catalog and a course page serve anonymous callers: a plain Client will do.
    found = await api["courses.list_courses"].asyncio(client=anonymous, q=marker)
    assert isinstance(found, models.CatalogPage), found
    assert [item.id for item in found.items] == [course.id]
    page = await api["courses.get_course"].asyncio(course_id=course.id, client=anonymous)
    assert isinstance(page, models.CourseDetail), page

    learner = await sign_up(Role.student)
    enrolled = await api["learning.enroll"].asyncio_detailed(course_id=course.id, client=learner)
    assert enrolled.status_code == 201
    assert isinstance(enrolled.parsed, models.CourseProgress), enrolled.parsed
    progress = await api["learning.complete_lesson"].asyncio(lesson_id=lesson.id, client=learner)
    assert isinstance(progress, models.CourseProgress), progress
    assert progress.percent == 100

    conversation = await api["tutor.start_conversation"].asyncio(
        client=learner, body=models.ConversationCreate(course_id=course.id)
    )
    assert isinstance(conversation, models.ConversationOut), conversation
    asked = await api["tutor.ask"].asyncio_detailed(
        conversation_id=conversation.id,
        client=learner,
        body=models.AskIn(content="Which light does chlorophyll reflect?"),
    )
    assert asked.status_code == 201, asked.content
    answer = asked.parsed
    assert isinstance(answer, models.MessageOut), answer
    assert answer.role == models.MessageRole.ASSISTANT
    assert answer.content
    assert asked.headers["location"] == f"/api/v1/tutor/conversations/{conversation.id}"

    detail = await api["tutor.get_conversation"].asyncio(
        conversation_id=conversation.id, client=learner
    )
    assert isinstance(detail, models.ConversationDetail), detail
    assert [message.role for message in detail.messages] == [
        models.MessageRole.USER,
        models.MessageRole.ASSISTANT,
    ]
    assert detail.messages[1].id == answer.id
    assert all(isinstance(message, models.MessageOut) for message in detail.messages)

    missing = await api["courses.get_course"].asyncio_detailed(
        course_id=uuid.uuid4(), client=anonymous
    )
    assert missing.status_code == 404
    problem = missing.parsed
    assert isinstance(problem, models.Problem), problem
    assert problem.status == 404
    assert problem.type_.endswith("/not-found")
