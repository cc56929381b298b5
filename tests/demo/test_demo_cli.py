"""`lyceum demo` honours LOG_LEVEL like every command: at INFO it prints its summary
and no per-job lines; at DEBUG the job library's lines about each deferred job show."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command

from lyceum.demo import loader
from lyceum.kit.db import alembic_config
from lyceum.kit.embedded_pg import EmbeddedPostgres
from tests.support.servers import REPO_ROOT


def run_demo(embedded_pg: EmbeddedPostgres, tmp_path: Path, level: str) -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    url = embedded_pg.ensure_database(f"lyceum_demo_{level.lower()}_{worker}", fresh=True)
    command.upgrade(alembic_config(url), "head")
    result = subprocess.run(
        [sys.executable, "-m", "lyceum", "demo"],
        env={
            **os.environ,
            "DATABASE_URL": url,
            "LYCEUM_DATA_DIR": str(tmp_path),
            "LOG_LEVEL": level,
            "LOG_FORMAT": "console",
        },
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def lessons_in_demo() -> int:
    return sum(
        len(module["lessons"]) for course in loader.demo_courses() for module in course["modules"]
    )


@pytest.mark.slow
def test_demo_at_info_prints_no_job_lines_and_debug_shows_them(
    embedded_pg: EmbeddedPostgres, tmp_path: Path
) -> None:
    quiet = run_demo(embedded_pg, tmp_path, "INFO")
    assert "demo catalog ready" in quiet and loader.STUDENT_EMAIL in quiet
    assert loader.ADMIN_EMAIL in quiet and loader.ADMIN_PASSWORD in quiet
    assert "[debug" not in quiet
    assert "defer" not in quiet.lower()

    verbose = run_demo(embedded_pg, tmp_path, "DEBUG")
    # One "About to defer" line per lesson indexed: LOG_LEVEL reached the job library.
    assert verbose.count("About to defer 1 job") >= lessons_in_demo()
