"""Forwarding learning events to an external Learning Record Store (XAPI_LRS_URL), as
xAPI 1.0.3 statements, each one once.

Every minute a job reads the events whose transactions have finished since its
watermark (`analytics.cursor_repository`, cursor `xapi_forward`), in (tx, id) order
and batches of XAPI_FORWARD_BATCH, and POSTs each batch as an array to
`{XAPI_LRS_URL}/statements` (`X-Experience-API-Version: 1.0.3`, HTTP Basic with
XAPI_LRS_USERNAME/PASSWORD). No transaction is held open across the LRS's answer
(it would hold back the cluster's oldest-transaction bound, stalling rollups and the
feed): the rows are read in a short read-only transaction, sent, and the watermark is
moved afterwards in another short one, by compare and set, only after the LRS answered
2xx: a failure leaves it where it was.

- 5xx, 429, 401/403, a timeout or a network error: the job fails and the job system
  retries it with backoff; a periodic tick queues the job only when none is queued,
  running or waiting for a retry (so a down LRS never piles runs up).
  The statements of a failed batch are sent again; their ids are the events' stable
  `event_id`s, so an LRS stores each once (xAPI Communication 2.1.2).
- 409 (an id the LRS already has): the batch is sent again statement by statement
  (an LRS refuses a whole batch for one known id, so the new ones in it would be
  lost); a statement answered 409 on its own is already stored and counts as sent.
- 400 (the LRS refuses a statement): the batch is sent statement by statement; one
  refused on its own is logged with the LRS's answer and skipped. Holding the
  watermark would stop all forwarding behind one statement the LRS will refuse on
  every retry; the statement stays readable at `GET /analytics/xapi/statements`, and
  resetting the `xapi_forward` cursor sends everything again (ids make it harmless).

The LRS URL is the operator's setting, not a user's: it is called directly (like the
payment providers and the AI provider), without the SSRF guard the user-chosen webhook
URLs go through, so an LRS on the operator's own network works. Redirects are not
followed and environment proxies are honoured.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import structlog

from lyceum.analytics.cursor_repository import move, peek
from lyceum.analytics.xapi import XAPI_VERSION, statement
from lyceum.analytics.xapi_repository import job_in_flight, window_events
from lyceum.config import Settings
from lyceum.kit.delivery import TransientDeliveryError
from lyceum.kit.jobs import (
    JobContext,
    Queue,
    Resources,
    defer,
    job_app,
    resources,
    task,
    transaction,
)

logger = structlog.get_logger("lyceum.analytics.xapi")

CURSOR = "xapi_forward"
# Batches per run: a backlog drains over several runs, each a few minutes at most, so
# the maintenance queue it shares never waits long behind it.
MAX_BATCHES_PER_RUN = 25
LRS_TIMEOUT_SECONDS = 30.0
# How much of an LRS's refusal is logged.
LOGGED_BODY_CHARS = 1000


@dataclass
class Forwarded:
    """What one run did: statements the LRS took, already had, and refused."""

    sent: int = 0
    known: int = 0
    refused: int = 0
    batches: int = 0


class LrsClient:
    """The Statement Resource of one LRS."""

    def __init__(self, http: httpx.AsyncClient, settings: Settings) -> None:
        assert settings.xapi_lrs_url is not None
        self.http = http
        self.url = str(settings.xapi_lrs_url).rstrip("/") + "/statements"
        self.auth: httpx.BasicAuth | None = None
        if settings.xapi_lrs_username is not None:
            password = settings.xapi_lrs_password
            self.auth = httpx.BasicAuth(
                settings.xapi_lrs_username, password.get_secret_value() if password else ""
            )

    async def _post(self, statements: Sequence[dict[str, Any]]) -> httpx.Response:
        try:
            response = await self.http.post(
                self.url,
                json=list(statements),
                headers={"X-Experience-API-Version": XAPI_VERSION},
                auth=self.auth if self.auth is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.HTTPError as error:
            raise TransientDeliveryError(f"LRS unreachable: {type(error).__name__}") from error
        if response.status_code >= 500 or response.status_code in (401, 403, 408, 429):
            raise TransientDeliveryError(f"LRS answered {response.status_code}")
        return response

    async def send(self, statements: Sequence[dict[str, Any]], outcome: Forwarded) -> None:
        """Store `statements` at the LRS; raises `TransientDeliveryError` when it should
        be tried again later."""
        response = await self._post(statements)
        if response.is_success:
            outcome.sent += len(statements)
            return
        if response.status_code not in (400, 409):
            raise TransientDeliveryError(f"LRS answered {response.status_code}")
        if len(statements) == 1:
            self._settle_single(statements[0], response, outcome)
            return
        for single in statements:
            answer = await self._post([single])
            if answer.is_success:
                outcome.sent += 1
            elif answer.status_code in (400, 409):
                self._settle_single(single, answer, outcome)
            else:
                raise TransientDeliveryError(f"LRS answered {answer.status_code}")

    def _settle_single(
        self, single: dict[str, Any], response: httpx.Response, outcome: Forwarded
    ) -> None:
        if response.status_code == 409:
            outcome.known += 1
            logger.info("xapi_statement_already_stored", statement_id=single["id"])
            return
        outcome.refused += 1
        logger.error(
            "xapi_statement_refused",
            statement_id=single["id"],
            status=response.status_code,
            answer=response.text[:LOGGED_BODY_CHARS],
        )


async def forward(runtime: Resources, settings: Settings, http: httpx.AsyncClient) -> Forwarded:
    """Send the events not yet forwarded, batch by batch. No transaction is open while
    the LRS is called: the window's rows are read in a short read-only transaction
    (`peek`, no lock, no transaction id), the batches are sent, and after each batch a
    second short transaction moves the watermark (compare and set) to the first row not
    yet sent. A lost compare and set means another run moved it: this one stops (what
    both sent is harmless, the statement ids are stable)."""
    outcome = Forwarded()
    if settings.xapi_lrs_url is None:
        return outcome
    lrs = LrsClient(http, settings)
    base_url = settings.base_url()
    size = settings.xapi_forward_batch
    room = size * MAX_BATCHES_PER_RUN
    async with transaction(runtime) as session:
        window = await peek(session, CURSOR)
        if window.empty:
            return outcome
        rows = await window_events(
            session, window, from_tx=window.lo, after_id=None, limit=room + 1
        )
        # Made here, while the rows are attached; sent once the transaction is over.
        pending = [
            (row.tx, statement(row.event, base_url=base_url, stored=False)) for row in rows[:room]
        ]
    # The rows past this run's share start at rows[room]: the watermark stops at its
    # transaction (rows of it already sent go again next run: same ids).
    end = rows[room].tx if len(rows) > room else window.hi
    at = window.lo
    for first in range(0, len(pending), size):
        batch = pending[first : first + size]
        await lrs.send([body for _, body in batch], outcome)
        outcome.batches += 1
        following = pending[first + size][0] if first + size < len(pending) else end
        if following > at:
            async with transaction(runtime) as session:
                moved = await move(session, CURSOR, at, following)
            if not moved:
                logger.info("xapi_forward_overtaken", position=at)
                break
            at = following
    if not pending and end > at:
        async with transaction(runtime) as session:
            await move(session, CURSOR, at, end)
    if outcome.batches:
        logger.info(
            "xapi_forwarded",
            sent=outcome.sent,
            known=outcome.known,
            refused=outcome.refused,
            batches=outcome.batches,
        )
    return outcome


@task(name="lyceum.analytics.xapi_forward", queue=Queue.maintenance, pass_context=True)
async def forward_statements(context: JobContext) -> int:
    """Forward new events to the LRS. A failure is retried with the job system's
    backoff (DEFAULT_RETRY); nothing is skipped by a failed attempt."""
    runtime = resources(context)
    if runtime.settings.xapi_lrs_url is None:
        return 0
    async with httpx.AsyncClient(timeout=LRS_TIMEOUT_SECONDS, follow_redirects=False) as http:
        outcome = await forward(runtime, runtime.settings, http)
    return outcome.sent


@job_app.periodic(cron="* * * * *", periodic_id="xapi-forward")
@task(
    name="lyceum.analytics.xapi_forward_tick",
    queue=Queue.maintenance,
    pass_context=True,
    retry=False,
    queueing_lock="xapi_forward_tick",
)
async def schedule_forwarding(context: JobContext, timestamp: int) -> bool:
    """Every minute, when XAPI_LRS_URL is set: queue a forwarding job unless one is
    queued, running or waiting for its retry. The periodic job cannot be the retrying
    one: a queueing lock (one run at a time) and a retry collide (the retry puts the job
    back to `todo` beside the next tick's), and without the lock a down LRS would pile
    up a run per minute, each holding a worker through its timeouts."""
    runtime = resources(context)
    if runtime.settings.xapi_lrs_url is None:
        return False
    async with transaction(runtime) as session:
        if await job_in_flight(session, forward_statements.name):
            return False
        await defer(session, forward_statements)
    return True
