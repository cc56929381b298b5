"""Browser tests: a real `lyceum serve` (its own migrated database with the demo catalog
and an admin) driven by Playwright through Debian's chromium (no browser download).

- `web`: the running server (URL, data dir, the accounts, an API client, the outbox).
- `browser`: one chromium per test (see the fixture); `context()` makes a fresh profile
  (cookies of its own), `page` is a page in a fresh context.
- `shot(page, name)`: a screenshot into `test-artifacts/screenshots/` (kept after the run).
- `fits(page, width)`: the page does not scroll sideways at that width (waited for).
- `audit(page)`: axe-core (vendored, run through the DevTools protocol, so the page's own
  CSP still holds) must find no serious or critical violation, and the page must have
  logged no error (a CSP violation is one).
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from lyceum.kit.embedded_pg import EmbeddedPostgres
from lyceum.kit.jobs import BULK_QUEUES, USER_FACING_QUEUES
from tests.support.servers import REPO_ROOT, free_port, start_lyceum, stop, wait_until_healthy

playwright_sync = pytest.importorskip("playwright.sync_api")
# Assertions on a page go through `expect`, which retries until the page agrees (a click
# that submits a form returns before the next page has loaded); the same patience as the
# contexts' actions. `tests/web/test_assertions_wait.py` keeps the non-waiting reads out.
playwright_sync.expect.set_options(timeout=20_000)

CHROMIUM = os.environ.get("LYCEUM_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
AXE_SOURCE = (REPO_ROOT / "tests" / "support" / "vendor" / "axe-core" / "axe.min.js").read_text()

ADMIN_EMAIL = "admin@web.test"
ADMIN_PASSWORD = "admin web passphrase"
INSTRUCTOR_EMAIL = "teacher@demo.lyceum.dev"
INSTRUCTOR_PASSWORD = "demo teacher passphrase"
STUDENT_EMAIL = "student@demo.lyceum.dev"
STUDENT_PASSWORD = "demo student passphrase"


@dataclass
class WebServer:
    url: str
    data_dir: Path
    database_url: str
    process: subprocess.Popen[bytes]
    accounts: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def outbox(self) -> Path:
        return self.data_dir / "outbox"

    def api(self, email_address: str | None = None, password: str | None = None) -> httpx.Client:
        """An API client, signed in when given credentials (the bearer header set).
        Already opened: use it directly (not in a `with`)."""
        client = httpx.Client(base_url=self.url + "/api/v1", timeout=30)
        if email_address is not None:
            answer = client.post("/auth/login", json={"email": email_address, "password": password})
            answer.raise_for_status()
            client.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        return client

    def mails_to(self, address: str) -> list[email.message.EmailMessage]:
        found = []
        for path in sorted(self.outbox.glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if address.lower() in str(message["To"]).lower():
                found.append(message)  # type: ignore[arg-type]
        return found

    def wait_for_mail(self, address: str, subject_part: str, timeout: float = 120) -> str:
        """The text body of the newest mail to `address` whose subject contains
        `subject_part`, waiting for the worker to send it (its first start is slow on a
        busy machine)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in reversed(self.mails_to(address)):
                if subject_part.lower() in str(message["Subject"]).lower():
                    body = message.get_body(preferencelist=("plain",))
                    assert body is not None
                    return str(body.get_content())
            time.sleep(0.2)
        raise AssertionError(f"no mail to {address} about {subject_part!r} in {timeout} s")

    def link_in_mail(self, address: str, subject_part: str, path: str) -> str:
        """The first link to `path` (e.g. `/verify-email`) in that mail, made relative."""
        text = self.wait_for_mail(address, subject_part)
        match = re.search(r"https?://[^\s/]+(" + re.escape(path) + r"[^\s>\"]*)", text)
        assert match, f"no {path} link in: {text}"
        return match.group(1)


def _run(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lyceum", *args],
        env={**os.environ, **env},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="session")
def web(
    embedded_pg: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebServer]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    database_url = embedded_pg.ensure_database(f"lyceum_web_{worker}", fresh=True)
    data_dir: Path = tmp_path_factory.mktemp("web")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "DATABASE_URL": database_url,
        "LYCEUM_DATA_DIR": str(data_dir),
        "PUBLIC_BASE_URL": url,
        "LOG_LEVEL": "WARNING",
        "LOGIN_RATE_LIMIT": "100000/minute",
        "LOGIN_ACCOUNT_RATE_LIMIT": "100000/minute",
        "REGISTRATION_RATE_LIMIT": "100000/minute",
        "ACCOUNT_MAIL_RATE_LIMIT": "100000/minute",
        "ACCOUNT_MAIL_IP_RATE_LIMIT": "100000/minute",
        "EMBEDDED_WORKER": "true",
        # Admin tests register webhook endpoints on a receiver on this machine.
        "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
    }
    _run(["migrate"], env)
    _run(["demo"], env)
    _run(["create-admin", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD], env)
    process = start_lyceum(env, port, data_dir / "serve.log")
    # `serve` runs the jobs itself only on its embedded database: with DATABASE_URL set,
    # workers send the mails and make the certificates (user-facing queues, never behind
    # bulk work) and index the material (the demo catalog's first: minutes).
    workers = []
    for name, queues in (
        ("user-facing", ",".join(USER_FACING_QUEUES)),
        ("bulk", ",".join(BULK_QUEUES)),
    ):
        with (data_dir / f"worker-{name}.log").open("ab") as worker_log:
            workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "lyceum", "worker", "--queues", queues],
                    env={**os.environ, **env},
                    cwd=REPO_ROOT,
                    stdout=worker_log,
                    stderr=subprocess.STDOUT,
                )
            )
    try:
        wait_until_healthy(url, "/health/live", 120, process)
        yield WebServer(
            url=url,
            data_dir=data_dir,
            database_url=database_url,
            process=process,
            accounts={
                "admin": (ADMIN_EMAIL, ADMIN_PASSWORD),
                "instructor": (INSTRUCTOR_EMAIL, INSTRUCTOR_PASSWORD),
                "student": (STUDENT_EMAIL, STUDENT_PASSWORD),
            },
        )
    finally:
        for worker in workers:
            stop(worker)
        stop(process)


@pytest.fixture
def browser() -> Iterator[Any]:
    """One chromium per test, stopped after it: the Playwright driver marks its asyncio
    loop as running in this thread for as long as it lives, and the async tests that
    the same worker runs next (pytest-asyncio) refuse to start under a running loop."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"chromium is not installed at {CHROMIUM}: apt-get install chromium")
    manager = playwright_sync.sync_playwright().start()
    launched = manager.chromium.launch(
        executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
    )
    try:
        yield launched
    finally:
        launched.close()
        manager.stop()


@dataclass
class Console:
    errors: list[str] = field(default_factory=list)


ContextFactory = Callable[..., Any]


@pytest.fixture
def context(browser: Any, web: WebServer) -> Iterator[ContextFactory]:
    """`context(**options)`: a fresh browser profile on the server (closed after the
    test). Pages opened in it record console errors in `page.console_errors`."""
    opened: list[Any] = []

    def make(**options: Any) -> Any:
        options.setdefault("base_url", web.url)
        options.setdefault("locale", "en-US")
        created = browser.new_context(**options)
        created.set_default_timeout(20_000)

        def on_page(new_page: Any) -> None:
            errors: list[str] = []
            new_page.console_errors = errors

            def on_console(message: Any) -> None:
                # A page answered with an error status (a 401 form, a 404 page) is logged
                # as a failed load too: failed loads are judged by `on_response` instead.
                if message.type == "error" and "Failed to load resource" not in message.text:
                    errors.append(message.text)

            def on_response(response: Any) -> None:
                # A missing script, stylesheet, image or font; documents and htmx/fetch
                # answers may carry an error status on purpose (a form's problem).
                kind = response.request.resource_type
                if response.status >= 400 and kind not in ("document", "xhr", "fetch"):
                    errors.append(f"{response.status} for {kind} {response.url}")

            new_page.on("console", on_console)
            new_page.on("response", on_response)
            new_page.on("pageerror", lambda e: errors.append(str(e)))

        created.on("page", on_page)
        opened.append(created)
        return created

    yield make
    for created in opened:
        created.close()


@pytest.fixture
def page(context: ContextFactory) -> Any:
    return context().new_page()


def sign_in(page: Any, email_address: str, password: str) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email_address)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/login" not in url)


def shot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def fits(page: Any, width: float) -> None:
    """The page does not scroll sideways at `width` px. Waited for, like an `expect`
    (`page.evaluate` reads the layout at one instant); the failure names the width."""
    try:
        page.wait_for_function(
            "width => document.documentElement.scrollWidth <= width", arg=width, timeout=10_000
        )
    except playwright_sync.TimeoutError:
        wide = page.evaluate("document.documentElement.scrollWidth")
        culprits = page.evaluate(
            "width => [...document.querySelectorAll('body *')]"
            ".filter(e => e.getBoundingClientRect().right > width + 1)"
            ".slice(0, 8).map(e => e.tagName + '.' + e.className + '#' + e.id)",
            width,
        )
        raise AssertionError(
            f"{page.url} scrolls sideways at {width} px ({wide} px wide): {culprits}"
        ) from None


def audit(page: Any, *, allow_console: tuple[str, ...] = ()) -> None:
    """No serious or critical axe-core violation, and no error in the console (a CSP
    violation, a failed script, an uncaught exception)."""
    page.evaluate(AXE_SOURCE)
    result = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".filter(v => v.impact === 'serious' || v.impact === 'critical')"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))"
    )
    assert result == [], f"{page.url}: accessibility violations: {result}"
    errors = [
        e
        for e in getattr(page, "console_errors", [])
        if not any(allowed in e for allowed in allow_console)
    ]
    assert errors == [], f"{page.url}: console errors: {errors}"
