"""Upstream request timeouts, with the official Python SDK client: a call the server does not answer
within the server's `request_timeout_ms` fails with the gateway's timeout error (-31051) at that
bound, over stdio and Streamable HTTP, in both eras; the server is told to stop and the next call
is served at once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import StartGateway, gateway_toml
from harness import everything_http, everything_stdio
from mcp import Client

pytestmark = pytest.mark.anyio

TIMEOUT_MS = 800


@pytest.fixture
def slow_gateway(start_gateway: StartGateway, tmp_path: Path, everything_http_url: str):
    servers = [everything_stdio("everything").toml_entry(), everything_http(everything_http_url).toml_entry()]
    for s in servers:
        s["request_timeout_ms"] = TIMEOUT_MS
    config = tmp_path / "gw.toml"
    config.write_text(gateway_toml("127.0.0.1:1", servers))
    return start_gateway(config_path=config, listen_override=True)


@pytest.mark.parametrize("mode", ["legacy", "auto"])
@pytest.mark.parametrize("server", ["everything", "web"])
async def test_a_slow_call_times_out_at_the_bound(slow_gateway, server: str, mode: str) -> None:
    async with Client(slow_gateway.url, mode=mode, cache=None) as client:
        started = time.monotonic()
        try:
            r = await client.call_tool(f"{server}__trigger-long-running-operation", {"duration": 4, "steps": 2})
            outcome = r.content[0].text if r.content else repr(r)
            assert r.is_error, f"a 4 s call answered within a {TIMEOUT_MS} ms bound: {outcome}"
        except Exception as e:  # noqa: BLE001 - the SDK's exception type differs by era and status
            outcome = str(e)
        took = time.monotonic() - started
        assert "did not answer" in outcome, outcome
        assert TIMEOUT_MS / 1000 * 0.9 <= took < 3.0, f"timed out after {took:.2f} s"
        started = time.monotonic()
        r = await client.call_tool(f"{server}__echo", {"message": "next"})
        assert r.content[0].text == "Echo: next"
        assert time.monotonic() - started < 2.0
