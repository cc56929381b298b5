"""Init container of the API and worker pods: wait until the database is at the
migration head of this image, which the `lyceum-migrate` Job brings it to.

Exits 0 once it is, 1 when MIGRATION_WAIT_SECONDS (default 900) pass first (the pod
then restarts and waits again). Reads DATABASE_URL; needs nothing but the image.
Tested by tests/deploy/test_kubernetes.py against a real PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from lyceum.kit.db import Database, MigrationState, migration_state

POLL_SECONDS = 3.0


async def _state(url: str) -> MigrationState:
    database = Database(url, pool_size=1, max_overflow=0)
    try:
        return await migration_state(database.engine)
    finally:
        await database.dispose()


def main() -> int:
    url = os.environ["DATABASE_URL"]
    deadline = time.monotonic() + float(os.environ.get("MIGRATION_WAIT_SECONDS", "900"))
    while True:
        try:
            state = asyncio.run(_state(url))
        except Exception as error:  # the database may not be up yet: wait, then retry
            why = f"database not reachable: {type(error).__name__}: {error}"[:300]
        else:
            if state.up_to_date:
                print(f"database at {sorted(state.heads)}: starting", flush=True)
                return 0
            why = f"database at {sorted(state.current) or 'none'}, this release needs {sorted(state.heads)}"
        if time.monotonic() >= deadline:
            print(f"gave up waiting for the migrate Job: {why}", file=sys.stderr, flush=True)
            return 1
        print(f"waiting for the migrate Job: {why}", flush=True)
        time.sleep(POLL_SECONDS)


if __name__ == "__main__":
    sys.exit(main())
