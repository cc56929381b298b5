"""kit.ssrf: which addresses are refused, names resolved and every address checked,
and the connection made to the address that was checked."""

from __future__ import annotations

import ipaddress

import httpx
import pytest

from lyceum.kit.ssrf import RefusedAddress, post, refusal, resolve
from tests.webhooks.receiver import Receiver


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104
        "224.0.0.1",
        "::1",
        "fd00:ec2::254",
        "fe80::1",
        "::ffff:127.0.0.1",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert refusal(ipaddress.ip_address(address), allow_private=False) is not None


def test_public_addresses_pass_and_metadata_stays_refused_when_private_is_allowed() -> None:
    assert refusal(ipaddress.ip_address("93.184.216.34"), allow_private=False) is None
    assert refusal(ipaddress.ip_address("2606:4700::1111"), allow_private=False) is None
    assert refusal(ipaddress.ip_address("10.0.0.1"), allow_private=True) is None
    for metadata in ("169.254.169.254", "fd00:ec2::254"):
        assert "metadata" in str(refusal(ipaddress.ip_address(metadata), allow_private=True))


async def test_a_name_resolving_to_loopback_is_refused() -> None:
    with pytest.raises(RefusedAddress, match="loopback"):
        await resolve("localhost", 443, allow_private=False)
    assert (await resolve("localhost", 443, allow_private=True)).is_loopback


async def test_the_request_goes_to_the_checked_address_with_the_name_as_host(
    hook: Receiver,
) -> None:
    port = hook.url.split(":")[2].split("/")[0]
    async with httpx.AsyncClient() as client:
        answer = await post(
            client,
            f"http://localhost:{port}/hooks/lyceum?x=1",
            content=b"{}",
            headers={"content-type": "application/json"},
            allow_private=True,
            timeout_seconds=5,
            max_body_bytes=4,
        )
        with pytest.raises(RefusedAddress):
            await post(
                client,
                f"http://localhost:{port}/hooks/lyceum",
                content=b"{}",
                headers={},
                allow_private=False,
                timeout_seconds=5,
                max_body_bytes=4,
            )
    assert answer.status_code == 200 and answer.body == b'{"ok'
    [received] = hook.requests
    assert received.headers["host"] == f"localhost:{port}"
    assert received.path == "/hooks/lyceum?x=1"
