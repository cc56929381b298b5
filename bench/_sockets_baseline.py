"""The chat benchmark's bare python-socketio baseline (`bench.chat.baseline_app`, the
same code), scaled out the way python-socketio scales out: with an AsyncRedisManager on
SOCKETS_BASELINE_REDIS_URL, so that two processes share their rooms through Redis as
Lyceum's do. `bench/sockets.py` runs it as `uvicorn bench._sockets_baseline:app --factory`.
"""

from __future__ import annotations

import os
from typing import Any

import socketio
from bench.chat import baseline_app

REDIS_URL_VARIABLE = "SOCKETS_BASELINE_REDIS_URL"
CHANNEL = "bench-sockets-baseline"


def app() -> Any:
    asgi = baseline_app()
    server = asgi.engineio_server  # the socketio.AsyncServer `baseline_app` built
    url = os.environ.get(REDIS_URL_VARIABLE)
    if url:
        # Before any connection: the server initialises its manager on the first one.
        manager = socketio.AsyncRedisManager(url, channel=CHANNEL)
        manager.set_server(server)
        server.manager = manager
    return asgi
