"""Server-to-client traffic through the gateway with the official Python SDK client (legacy era):
sampling, elicitation and progress raised by server-everything while it serves a tools/call reach
the client that made the call, and the client's answers reach the upstream.

Both upstream transports: stdio (the reader thread attributes the request to the only client with
calls in flight) and Streamable HTTP (the request arrives on the call's own SSE stream). The
concurrency test uses the HTTP upstream, where 50 clients at once each get their own requests.
"""

from __future__ import annotations

import anyio
import pytest
from conftest import StartGateway, gateway_toml
from harness import everything_http, everything_stdio
from mcp import Client, types

pytestmark = pytest.mark.anyio


def sampler(answer: str):
    async def sample(context, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        asked = params.messages[0].content.text  # type: ignore[union-attr]
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text=f"{answer} <- {asked}"),
            model="switchyard-test-model",
            stop_reason="endTurn",
        )

    return sample


async def elicit(context, params: types.ElicitRequestParams) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"name": "Ada Lovelace", "check": True})


@pytest.fixture
def server_request_gateway(start_gateway: StartGateway, everything_http_url: str, tmp_path):
    config = tmp_path / "gw.toml"
    config.write_text(
        gateway_toml(
            "127.0.0.1:1",
            [everything_stdio("everything").toml_entry(), everything_http(everything_http_url).toml_entry()],
        )
    )
    return start_gateway(config_path=config, listen_override=True)


@pytest.mark.parametrize("server", ["everything", "web"])
async def test_sampling_elicitation_progress(server_request_gateway, server: str) -> None:
    gw = server_request_gateway
    async with Client(
        gw.url, mode="legacy", cache=None, sampling_callback=sampler("sampled-by-client"), elicitation_callback=elicit
    ) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert f"{server}__trigger-sampling-request" in tools, sorted(tools)

        sampled = await client.call_tool(f"{server}__trigger-sampling-request", {"prompt": "ping", "maxTokens": 5})
        assert not sampled.is_error, sampled
        assert "sampled-by-client <- " in sampled.content[0].text

        elicited = await client.call_tool(f"{server}__trigger-elicitation-request", {})
        assert not elicited.is_error, elicited
        assert "Ada Lovelace" in " ".join(c.text for c in elicited.content if c.type == "text")

        progress: list[tuple[float, float | None]] = []

        async def on_progress(p: float, total: float | None, message: str | None) -> None:
            progress.append((p, total))

        done = await client.call_tool(
            f"{server}__trigger-long-running-operation", {"duration": 0.3, "steps": 3}, progress_callback=on_progress
        )
        assert not done.is_error, done
        assert progress == [(1, 3), (2, 3), (3, 3)]


async def test_fifty_clients_get_their_own_requests(server_request_gateway) -> None:
    gw = server_request_gateway
    failures: list[str] = []

    async def one(i: int) -> None:
        tag = f"client-{i}"
        async with Client(gw.url, mode="legacy", cache=None, sampling_callback=sampler(tag)) as client:
            for _ in range(3):
                r = await client.call_tool("web__trigger-sampling-request", {"prompt": tag, "maxTokens": 5})
                text = r.content[0].text if r.content else repr(r)
                if r.is_error or f"{tag} <- " not in text or f"context: {tag}" not in text:
                    failures.append(f"{tag}: {text[:200]}")

    async with anyio.create_task_group() as tg:
        for i in range(50):
            tg.start_soon(one, i)
    assert not failures, failures[:5]


async def test_client_without_capability_is_refused_not_hung(server_request_gateway) -> None:
    """A client that declared no sampling gets the tool's error, promptly: the gateway refuses the
    upstream's request on its behalf."""
    gw = server_request_gateway
    async with Client(gw.url, mode="legacy", cache=None) as client:
        with anyio.fail_after(20):
            r = await client.call_tool("web__trigger-sampling-request", {"prompt": "x", "maxTokens": 5})
        assert r.is_error
        assert "sampling" in r.content[0].text


@pytest.mark.parametrize("server", ["everything", "web"])
async def test_cancellation_reaches_the_upstream(server_request_gateway, server: str) -> None:
    """A legacy client's notifications/cancelled (sent on its own POST, which may land on another
    shard) ends its waiting call at once and tells the upstream; the session keeps working."""
    import httpx

    gw = server_request_gateway
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(timeout=30) as http:
        init = await http.post(
            gw.url,
            headers=headers,
            json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}},
        )
        headers["Mcp-Session-Id"] = init.headers["mcp-session-id"]
        headers["MCP-Protocol-Version"] = "2025-11-25"
        await http.post(gw.url, headers=headers, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
        long_call = {"jsonrpc": "2.0", "id": 42, "method": "tools/call", "params": {
            "name": f"{server}__trigger-long-running-operation", "arguments": {"duration": 20, "steps": 20}}}
        started = anyio.current_time()
        async with anyio.create_task_group() as tg:
            result: dict = {}

            async def call() -> None:
                r = await httpx.AsyncClient(timeout=30).post(gw.url, headers=headers, json=long_call)
                result["status"] = r.status_code
                result["body"] = r.text

            tg.start_soon(call)
            await anyio.sleep(1.0)
            cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 42, "reason": "test"}}
            # A new connection: it may well reach the other shard.
            r = await httpx.AsyncClient(timeout=5).post(gw.url, headers=headers, json=cancel)
            assert r.status_code == 202
        assert anyio.current_time() - started < 10, "the cancelled call was not ended promptly"
        # A cancelled request gets no response (an empty event stream), as the spec asks.
        assert result["status"] == 200 and '"result"' not in result["body"], result
        echo = {"jsonrpc": "2.0", "id": 43, "method": "tools/call", "params": {"name": f"{server}__echo", "arguments": {"message": "after"}}}
        r = await http.post(gw.url, headers=headers, json=echo)
        assert "Echo: after" in r.text


@pytest.mark.parametrize("server", ["everything", "web"])
async def test_get_roots_list_asks_the_calling_client(server_request_gateway, server: str) -> None:
    """server-everything asks roots/list without naming the call it serves (over Streamable HTTP on
    its session's GET stream): the gateway gives it to the only client with a call in flight."""
    asked: list[str] = []

    async def roots(context) -> types.ListRootsResult:
        asked.append("roots/list")
        return types.ListRootsResult(roots=[types.Root(uri="file:///home/Ada", name="home")])

    async with Client(server_request_gateway.url, mode="legacy", cache=None, list_roots_callback=roots) as client:
        with anyio.fail_after(20):
            r = await client.call_tool(f"{server}__get-roots-list", {})
        assert not r.is_error, r
        assert "Current MCP Roots (1 total)" in r.content[0].text, r
        assert "file:///home/Ada" in r.content[0].text, r
        assert asked
