"""Schemathesis over the whole OpenAPI schema of a live `lyceum serve`: no 5xx, and every
response matches its documented schema. It grows by itself as endpoints are added."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from lyceum.analytics.schemas import RULES_BEYOND_THE_SCHEMA
from lyceum.app import create_app
from lyceum.channels.schemas import CURVE_POINT_RULE
from lyceum.config import Settings
from lyceum.kit.embedded_pg import EmbeddedPostgres
from tests.support.servers import free_port, start_lyceum, stop, wait_until_healthy


@pytest.fixture(scope="session")
def live_server(
    embedded_pg: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A real server process on its own migrated database (its writes are not rolled back)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    url = embedded_pg.ensure_database(f"lyceum_contract_{worker}", fresh=True)
    data_dir: Path = tmp_path_factory.mktemp("contract")
    from alembic import command

    from lyceum.kit.db import alembic_config

    command.upgrade(alembic_config(url), "head")
    env = {
        "DATABASE_URL": url,
        "LYCEUM_DATA_DIR": str(data_dir),
        "LOG_LEVEL": "WARNING",
        # The fuzzer signs in again whenever a generated call signed it out.
        "LOGIN_RATE_LIMIT": "100000/minute",
        "LOGIN_ACCOUNT_RATE_LIMIT": "100000/minute",
        "REGISTRATION_RATE_LIMIT": "100000/minute",
        "ACCOUNT_MAIL_RATE_LIMIT": "100000/minute",
        "ACCOUNT_MAIL_IP_RATE_LIMIT": "100000/minute",
    }
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "lyceum",
            "create-admin",
            "--email",
            FUZZ_ADMIN,
            "--password",
            FUZZ_PASSWORD,
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert created.returncode == 0, created.stderr
    port = free_port()
    process = start_lyceum(env, port, data_dir / "serve.log")
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base_url, "/health/ready", 60, process)
        yield base_url
    finally:
        stop(process)


def _published_schema() -> dict[str, Any]:
    """The schema the server publishes, built in-process at collection time so that
    pytest can parametrize one test per operation."""
    return create_app(Settings(database_url=None, log_level="WARNING")).openapi()


schema = schemathesis.openapi.from_dict(_published_schema())

FUZZ_ADMIN = "fuzz-admin@example.com"
FUZZ_PASSWORD = "fuzzing passphrase 42"

# Calls that can end the account they are made as. Made as the admin, the first deletion
# (before it asked for the password) ended the fuzzer's account, and every operation
# generated after it on that worker ran signed out (401s only): each is made as a
# learner of its own instead.
ENDS_THE_ACCOUNT = {"DELETE /api/v1/users/me"}


class Fuzzer:
    """Who the generated calls are made as, over one kept-alive client (a new client per
    call built a TLS context each time, ~20 ms loading the CA bundle: three quarters of
    this test's time before it was shared)."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self._token: str | None = None

    def admin_headers(self, *, renew: bool = False) -> dict[str, str]:
        """The admin's bearer token, so generated calls reach past authentication;
        `renew` signs in again, for when a generated call (a logout) ended the token."""
        if renew or self._token is None:
            response = self.client.post(
                "/api/v1/auth/login", json={"email": FUZZ_ADMIN, "password": FUZZ_PASSWORD}
            )
            # Signed out, every later call would test authentication alone: a call that
            # ends the account it is made as belongs in ENDS_THE_ACCOUNT.
            assert response.status_code == 200, (
                f"the fuzzer's admin can no longer sign in ({response.status_code}): "
                "a generated call ended the account"
            )
            self._token = str(response.json()["access_token"])
        return {"Authorization": f"Bearer {self._token}"}

    def throwaway_headers(self) -> dict[str, str]:
        """A bearer token of a new learner account, for a call that ends its account."""
        email = f"fuzz-{uuid.uuid4().hex}@example.com"
        registered = self.client.post(
            "/api/v1/auth/register",
            json={"email": email, "password": FUZZ_PASSWORD, "full_name": "Fuzz Learner"},
        )
        assert registered.status_code == 201, registered.text
        signed_in = self.client.post(
            "/api/v1/auth/login", json={"email": email, "password": FUZZ_PASSWORD}
        )
        assert signed_in.status_code == 200, signed_in.text
        return {"Authorization": f"Bearer {signed_in.json()['access_token']}"}


@pytest.fixture(scope="session")
def fuzzer(live_server: str) -> Iterator[Fuzzer]:
    with httpx.Client(base_url=live_server, timeout=60) as client:
        yield Fuzzer(client)


def test_live_server_publishes_the_schema_under_test(live_server: str) -> None:
    assert httpx.get(f"{live_server}/openapi.json").json() == _published_schema()


def _beyond_the_schema(problem: dict[str, Any]) -> bool:
    """Rules no JSON schema states: a password among the 10,000 most common (a generated
    "00000000" is one), an uploaded file's content being a real image or document of
    the kind its name claims (and a safe name), NUL characters inside free-form JSON
    (preferences), which PostgreSQL cannot store, and a push subscription's key being a
    point on the P-256 curve."""
    content_rules = (
        "/weak-password",
        "/unsupported-image",
        "/unsupported-file",
        "/unsafe-archive",
        "/invalid-filename",
        "/empty-file",
        "/image-too-large",
        # A webhook URL's host must resolve to a public address (and be https:// where
        # private networks are not allowed): a policy on addresses, not a shape.
        "/refused-url",
        "/insecure-url",
        # A payment webhook is trusted for its signature (a secret's proof), not its
        # shape: a well-formed unsigned one is refused with 400.
        "/invalid-webhook",
        # A paging cursor (the xAPI feed's `more`) is the server's own opaque token: any
        # string of its alphabet fits the schema, only one the server made decodes.
        "/invalid-cursor",
    )
    if problem.get("type", "").endswith(content_rules):
        return True
    # Analytics events: an object the caller may see, a time against the server's
    # clock, rules between fields (analytics.schemas.RULES_BEYOND_THE_SCHEMA).
    if any(error.get("type") in RULES_BEYOND_THE_SCHEMA for error in problem.get("errors") or []):
        return True
    # A push subscription's key of the right shape that is no point on the curve.
    if any(error.get("type") == CURVE_POINT_RULE for error in problem.get("errors") or []):
        return True
    return any("NUL" in error.get("message", "") for error in problem.get("errors") or [])


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_honours_its_schema(case: schemathesis.Case, request: pytest.FixtureRequest) -> None:
    base_url = request.getfixturevalue("live_server")
    fuzzer: Fuzzer = request.getfixturevalue("fuzzer")
    signed_in = "authorization" not in {k.lower() for k in (case.headers or {})}
    if signed_in and case.operation.label in ENDS_THE_ACCOUNT:
        headers = fuzzer.throwaway_headers()
        signed_in = False  # not the admin's token: nothing to renew
    else:
        headers = fuzzer.admin_headers() if signed_in else {}
    # Generous: the first course-material search in the server loads the embedding
    # model (seconds on a busy 2-core machine).
    response = case.call(base_url=base_url, headers=headers, timeout=90)
    if signed_in and response.status_code == 401:
        # A generated call before this one ended the admin's token: once more, signed in
        # again (checking the token before every call cost a request per call).
        headers = fuzzer.admin_headers(renew=True)
        response = case.call(base_url=base_url, headers=headers, timeout=90)
    excluded = []
    if response.status_code in (400, 422) and _beyond_the_schema(response.json()):
        excluded.append(positive_data_acceptance)
    case.validate_response(response, excluded_checks=excluded, headers=headers)
