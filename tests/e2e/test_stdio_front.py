"""The stdio front: the official Python SDK client launches `switchyard stdio --config FILE` as a
stdio MCP server (as Claude Desktop, Claude Code or Cursor would) in front of server-everything
(stdio), in both eras: `mode="legacy"` (initialize, one session for the process) and `mode="auto"`
(server/discover, then stateless 2026-07-28 requests with no header layer).

Lists are the upstream's own, renamed; echo, progress, overlapping calls and a sampling round trip
pass through in both eras.
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from conftest import gateway_toml, switchyard_bin
from harness import (
    LEGACY_VERSIONS,
    MODERN_VERSION,
    REPO,
    compare_listings,
    connect_direct,
    everything_stdio,
    list_everything,
)
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from test_server_requests import sampler

pytestmark = pytest.mark.anyio

MODES = {"legacy": "legacy", "modern": "auto"}


@pytest.fixture
def stdio_config(tmp_path: Path) -> Path:
    config = tmp_path / "switchyard.toml"
    # The listen address is ignored in stdio mode: nothing is bound.
    config.write_text(gateway_toml("127.0.0.1:1", [everything_stdio("everything").toml_entry()]))
    return config


def stdio_params(config: Path, extra_env: dict[str, str] | None = None) -> StdioServerParameters:
    binary = switchyard_bin()
    env = {
        "PATH": f"{binary.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "SWITCHYARD_BIN": str(binary),
        "RUST_LOG": "info",
        **(extra_env or {}),
    }
    return StdioServerParameters(command=str(binary), args=["stdio", "--config", str(config)], env=env, cwd=str(REPO))


@asynccontextmanager
async def connect_stdio(config: Path, mode: str, **kwargs):
    params = stdio_params(config)
    async with Client(params, mode=MODES[mode], cache=None, **kwargs) as client:
        if mode == "legacy":
            assert client.protocol_version in LEGACY_VERSIONS, client.protocol_version
        else:
            assert client.protocol_version == MODERN_VERSION, client.protocol_version
        yield client


@pytest.mark.parametrize("mode", list(MODES))
async def test_lists_match_the_upstream(stdio_config: Path, mode: str) -> None:
    async with connect_stdio(stdio_config, mode) as gw:
        via_gateway = await list_everything(gw)
    async with connect_direct(everything_stdio("everything")) as direct:
        straight = await list_everything(direct)
    assert any(t["name"] == "everything__echo" for t in via_gateway["tools"])
    compare_listings(via_gateway, {"everything": straight}, era=mode)


@pytest.mark.parametrize("mode", list(MODES))
async def test_echo_and_progress(stdio_config: Path, mode: str) -> None:
    async with connect_stdio(stdio_config, mode) as gw:
        echoed = await gw.call_tool("everything__echo", {"message": "hello over stdio ✓"})
        assert not echoed.is_error, echoed
        assert "hello over stdio ✓" in echoed.content[0].text

        progress: list[tuple[float, float | None]] = []

        async def on_progress(p: float, total: float | None, message: str | None) -> None:
            progress.append((p, total))

        done = await gw.call_tool(
            "everything__trigger-long-running-operation", {"duration": 0.3, "steps": 3}, progress_callback=on_progress
        )
        assert not done.is_error, done
        assert progress == [(1, 3), (2, 3), (3, 3)]


@pytest.mark.parametrize("mode", list(MODES))
async def test_concurrent_calls_answer_each_their_own(stdio_config: Path, mode: str) -> None:
    """Requests overlap on the one pipe; each answer carries its own id."""
    async with connect_stdio(stdio_config, mode) as gw:
        got: dict[int, str] = {}

        async def one(i: int) -> None:
            r = await gw.call_tool("everything__echo", {"message": f"call-{i}"})
            got[i] = r.content[0].text

        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(one, i)
        assert all(f"call-{i}" in got[i] for i in range(20)), got


@pytest.mark.parametrize("mode", list(MODES))
async def test_sampling_round_trip(stdio_config: Path, mode: str) -> None:
    """server-everything asks the client to sample mid-call: a legacy client gets the request on
    stdout and answers on stdin; a 2026-07-28 client (a stdio server must not write requests) gets
    an InputRequiredResult and retries with the answer, the gateway holding the upstream call."""
    async with connect_stdio(stdio_config, mode, sampling_callback=sampler(f"sampled-over-stdio-{mode}")) as gw:
        with anyio.fail_after(30):
            sampled = await gw.call_tool("everything__trigger-sampling-request", {"prompt": "ping", "maxTokens": 5})
        assert not sampled.is_error, sampled
        assert f"sampled-over-stdio-{mode} <- " in sampled.content[0].text
