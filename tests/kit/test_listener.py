"""`lyceum serve` binds before it starts anything, and names the address it listens on
in the links it builds when PUBLIC_BASE_URL is unset."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from lyceum.config import FALLBACK_BASE_URL, Settings
from lyceum.kit.listener import listen, reachable_url
from tests.support.servers import REPO_ROOT


def _connects(url: str) -> bool:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=2):
            return True
    except OSError:
        return False


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "0.0.0.0"])  # noqa: S104
def test_the_url_of_a_listener_reaches_it(host: str) -> None:
    sockets = listen(host, 0)
    try:
        for sock in sockets:
            sock.listen()
        port = sockets[0].getsockname()[1]
        assert port != 0 and all(sock.getsockname()[1] == port for sock in sockets)
        url = reachable_url(host, port)
        assert url.endswith(f":{port}")
        assert "0.0.0.0" not in url  # noqa: S104
        assert _connects(url)
    finally:
        for sock in sockets:
            sock.close()


def test_ipv6_hosts_are_bracketed() -> None:
    assert reachable_url("::1", 9000) == "http://[::1]:9000"
    assert reachable_url("127.0.0.1", 9000) == "http://127.0.0.1:9000"
    assert reachable_url("lyceum.internal", 9000) == "http://lyceum.internal:9000"


def test_links_follow_public_base_url_then_the_served_address(tmp_path: Path) -> None:
    configured = Settings(lyceum_data_dir=tmp_path, public_base_url="https://learn.example/")
    configured.record_served_url("http://127.0.0.1:9000")
    assert configured.base_url() == "https://learn.example"

    # A standalone worker on the same data dir, started before any serve.
    worker = Settings(lyceum_data_dir=tmp_path, public_base_url=None)
    assert worker.base_url() == FALLBACK_BASE_URL  # a configured serve records nothing
    server = Settings(lyceum_data_dir=tmp_path, public_base_url=None)
    server.record_served_url("http://127.0.0.1:9100/")
    assert server.base_url() == "http://127.0.0.1:9100"
    assert worker.base_url() == "http://127.0.0.1:9100"  # found in the data dir
    Settings(lyceum_data_dir=tmp_path, public_base_url=None).record_served_url(
        "http://10.0.0.5:9200"
    )
    assert worker.base_url() == "http://10.0.0.5:9200"  # a restarted serve, elsewhere
    assert server.base_url() == "http://127.0.0.1:9100"  # its own address, in process


def test_serve_on_a_port_in_use_stops_at_once_naming_it(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "lyceum", "serve", "--port", str(port)],
            env={**os.environ, "LYCEUM_DATA_DIR": str(tmp_path), "DATABASE_URL": ""},
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert not (tmp_path / "postgres").exists()  # nothing was started
