"""Resumable legacy SSE streams with the official Python SDK client (2025-11-25 "Resumability and
Redelivery"): the gateway ends a long call's stream early (`gateway.resume.poll_after_ms`), after a
priming event with `retry`; the SDK reconnects with GET + Last-Event-ID, and the call's remaining
progress messages and its answer arrive on the resumed stream, each once. Two shards: the resuming
GET may land on either (the other shard asks the call's shard for its log).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import StartGateway, gateway_toml
from harness import everything_stdio
from mcp import Client

pytestmark = pytest.mark.anyio

RESUME = "resume = { stream_after_ms = 0, poll_after_ms = 150, retry_ms = 100 }"


@pytest.fixture
def gateway(start_gateway: StartGateway, tmp_path: Path):
    config = tmp_path / "gw.toml"
    text = gateway_toml("127.0.0.1:1", [everything_stdio("everything").toml_entry()])
    config.write_text(text.replace("[gateway]\n", f"[gateway]\n{RESUME}\n", 1))
    return start_gateway(config_path=config, listen_override=True)


async def test_sdk_resumes_a_polled_call_with_its_progress(gateway) -> None:
    async with Client(gateway.url, mode="legacy", cache=None) as client:
        for _ in range(3):
            seen: list[float] = []

            async def progress(p: float, total: float | None, message: str | None) -> None:
                seen.append(p)

            r = await client.call_tool(
                "everything__trigger-long-running-operation",
                {"duration": 1, "steps": 4},
                progress_callback=progress,
            )
            assert not r.is_error, r
            assert "Long running operation completed" in r.content[0].text
            assert seen == [1, 2, 3, 4], "every progress message once, in order"
        # A quick call answers as usual.
        r = await client.call_tool("everything__echo", {"message": "after"})
        assert r.content[0].text == "Echo: after"
