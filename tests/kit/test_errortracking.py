"""Jobs that fail for good are reported to Sentry by the real `lyceum worker`, with the
task's local variables, once; a retried attempt is not. The worker reports to a fake
Sentry server that reads the SDK's envelopes."""

from __future__ import annotations

import gzip
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lyceum.kit.runtime import Runtime
from tests.support import jobs as test_jobs
from tests.test_graceful import start_worker, terminate, wait_for


class FakeSentry:
    """Takes `POST /api/<project>/envelope/` and keeps the error events in them."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "br":
                    import brotli

                    body = brotli.decompress(body)
                fake.take(body)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def dsn(self) -> str:
        return f"http://public@127.0.0.1:{self.server.server_address[1]}/1"

    def take(self, envelope: bytes) -> None:
        _header, _, rest = envelope.partition(b"\n")
        while rest.strip():
            item_line, _, rest = rest.partition(b"\n")
            item = json.loads(item_line)
            if "length" in item:
                payload, rest = rest[: item["length"]], rest[item["length"] + 1 :]
            else:
                payload, _, rest = rest.partition(b"\n")
            if item.get("type") == "event":
                with self.lock:
                    self.events.append(json.loads(payload))

    def about(self, token: str) -> list[dict[str, Any]]:
        with self.lock:
            return [event for event in self.events if token in json.dumps(event)]


@pytest.fixture
def sentry() -> Iterator[FakeSentry]:
    fake = FakeSentry()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.mark.slow
async def test_a_job_that_fails_for_good_is_reported_once_with_its_locals(
    runtime: Runtime, database_url: str, tmp_path: Path, sentry: FakeSentry
) -> None:
    await test_jobs.run_jobs([test_jobs.PACED_QUEUE])  # what earlier tests left there
    token = uuid.uuid4().hex
    await test_jobs.fails_twice.defer_async(token=token)
    worker = start_worker(
        database_url, tmp_path, tmp_path / "worker.log", grace=30, SENTRY_DSN=sentry.dsn
    )
    try:
        wait_for(lambda: sentry.about(token), 60, "no event reached Sentry")
    finally:
        code, _ = terminate(worker, within=60)  # the SDK sends what it holds on exit
    assert code == 0, (tmp_path / "worker.log").read_text(errors="replace")

    [event] = sentry.about(token)  # the last attempt, once (not the retried one)
    assert event["tags"]["job.task"] == "tests.fails_twice"
    assert event["tags"]["job.queue"] == test_jobs.PACED_QUEUE
    assert event["tags"]["lyceum.role"] == "worker"
    assert event["contexts"]["job"]["attempt"] == 2
    [error] = event["exception"]["values"]
    assert error["type"] == "RuntimeError"
    frame = error["stacktrace"]["frames"][-1]
    assert frame["function"] == "fails_twice"
    assert token in frame["vars"]["seen_by_the_error_tracker"]
