"""A legacy SSE upstream (`transport = "sse"`, the 2024-11-05 HTTP+SSE transport): server-everything
in `sse` mode behind the gateway, driven by the official Python SDK client. Its tools are listed and
called; a sampling request it sends while serving a call reaches the client and the client's answer
reaches it (over its POST endpoint); its progress notifications reach the caller's callback.
"""

from __future__ import annotations

import pytest
from conftest import StartGateway
from harness import HANDSHAKE_ERAS, everything_sse
from mcp import Client
from test_server_requests import sampler

pytestmark = pytest.mark.anyio


@pytest.fixture
def sse_gateway(start_gateway: StartGateway, everything_sse_url: str):
    return start_gateway([everything_sse(everything_sse_url, "old")])


async def test_tools_sampling_and_progress_over_a_legacy_sse_upstream(sse_gateway) -> None:
    gw = sse_gateway
    (up,) = gw.health()["upstreams"]
    assert up["name"] == "old" and up["state"] == "ready" and up["era"] in HANDSHAKE_ERAS, up

    async with Client(gw.url, mode="legacy", cache=None, sampling_callback=sampler("sampled-over-sse")) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        for name in ("echo", "trigger-sampling-request", "trigger-long-running-operation"):
            assert f"old__{name}" in tools, sorted(tools)

        echoed = await client.call_tool("old__echo", {"message": "through the SSE stream"})
        assert not echoed.is_error, echoed
        assert echoed.content[0].text == "Echo: through the SSE stream"

        sampled = await client.call_tool("old__trigger-sampling-request", {"prompt": "ping", "maxTokens": 5})
        assert not sampled.is_error, sampled
        assert "sampled-over-sse <- " in sampled.content[0].text, sampled

        progress: list[tuple[float, float | None]] = []

        async def on_progress(p: float, total: float | None, message: str | None) -> None:
            progress.append((p, total))

        done = await client.call_tool(
            "old__trigger-long-running-operation", {"duration": 0.3, "steps": 3}, progress_callback=on_progress
        )
        assert not done.is_error, done
        assert progress == [(1, 3), (2, 3), (3, 3)]
