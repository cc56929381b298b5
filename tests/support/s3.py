"""A real S3 API for tests: moto's server mode over HTTP on a loopback port, with fake
credentials and an explicit region so nothing looks for AWS configuration or the
internet. Moto checks neither presigned signatures nor expiry, so `check_presigned`
verifies a presigned URL the way S3 does (SigV4 query signing) for tests that need it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"
REGION = "us-east-1"


@contextmanager
def s3_server() -> Iterator[str]:
    """Moto's S3 (and the rest of AWS) on a free loopback port; yields the endpoint URL.

    Port 0 lets the OS pick the port atomically: with a port chosen beforehand, a lost
    race makes `ThreadedMotoServer.start()` wait forever (its thread dies before it
    signals readiness)."""
    werkzeug = logging.getLogger("werkzeug")
    previous_level = werkzeug.level
    werkzeug.setLevel(logging.WARNING)  # one INFO line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        werkzeug.setLevel(previous_level)


def s3_client(endpoint_url: str) -> Any:
    """A synchronous boto3 client for arranging and inspecting test state."""
    return boto3.session.Session(
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        region_name=REGION,
    ).client(
        "s3",
        endpoint_url=endpoint_url,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def create_bucket(endpoint_url: str, name: str | None = None) -> str:
    """Create a bucket (a fresh uniquely named one by default) and return its name."""
    bucket = name or f"test-{uuid.uuid4().hex}"
    s3_client(endpoint_url).create_bucket(Bucket=bucket)
    return bucket


def check_presigned(
    url: str, *, secret_access_key: str = SECRET_ACCESS_KEY, now: datetime | None = None
) -> str | None:
    """Why S3 would refuse this presigned GET URL ("expired", "signature mismatch",
    ...), or None if it would accept it. SigV4 query auth, unsigned payload, host
    header only; see the AWS "Authenticating Requests: Using Query Parameters" page."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    params = dict(query)
    if params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
        return "not a SigV4 presigned URL"
    if params.get("X-Amz-SignedHeaders") != "host":
        return "signs headers a browser does not send"
    issued = datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    expires = issued + timedelta(seconds=int(params["X-Amz-Expires"]))
    if (now or datetime.now(UTC)) > expires:
        return "expired"
    canonical_query = "&".join(
        f"{_encode(name)}={_encode(value)}"
        for name, value in sorted(query)
        if name != "X-Amz-Signature"
    )
    canonical_request = "\n".join(
        ["GET", parts.path, canonical_query, f"host:{parts.netloc}\n", "host", "UNSIGNED-PAYLOAD"]
    )
    _, date, region, service, terminator = params["X-Amz-Credential"].split("/")
    scope = f"{date}/{region}/{service}/{terminator}"
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            params["X-Amz-Date"],
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = f"AWS4{secret_access_key}".encode()
    for part in (date, region, service, terminator):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, params.get("X-Amz-Signature", "")):
        return "signature mismatch"
    return None


def _encode(value: str) -> str:
    return quote(value, safe="-_.~")
