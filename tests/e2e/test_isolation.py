"""`isolation = "session"` with the official Python SDK client (legacy era): every legacy session
gets its own server-everything child over stdio (or event stream over legacy SSE), so the server's
sampling requests reach the session that made the call even while calls of many sessions are in
flight at once — which the shared child cannot do (its requests name no client, and the gateway
refuses what it cannot attribute). The dedicated children are bounded by `isolation_limit` and
stop when their session ends.
"""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest
from conftest import StartGateway, gateway_toml
from harness import everything_sse, everything_stdio
from mcp import Client, types

pytestmark = pytest.mark.anyio

SESSIONS = 8


def start(start_gateway: StartGateway, tmp_path: Path, isolation: str, limit: int = 64, sse_url: str = ""):
    upstream = everything_sse(sse_url, "everything") if sse_url else everything_stdio("everything")
    entry = upstream.toml_entry()
    entry["isolation"] = isolation
    entry["isolation_limit"] = limit
    config = tmp_path / f"gw-{isolation}.toml"
    config.write_text(gateway_toml("127.0.0.1:1", [entry]))
    return start_gateway(config_path=config, listen_override=True)


def children(pid: int) -> int:
    """Processes whose parent is `pid` (the gateway's stdio upstreams)."""
    n = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after its closing parenthesis.
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and fields[1] == str(pid):
            n += 1
    return n


async def eventually(check, what: str, timeout: float = 15.0) -> None:
    with anyio.fail_after(timeout):
        while not check():
            await anyio.sleep(0.1)


async def run_sessions_at_once(url: str) -> list[str]:
    """SESSIONS legacy clients call trigger-sampling-request at the same moment; each sampler holds
    its answer until every client has been asked (so all calls are in flight together), or 8 s.
    Returns what went wrong, per client."""
    connected = 0
    all_connected = anyio.Event()
    asked = 0
    all_asked = anyio.Event()
    failures: list[str] = []

    def sampler(tag: str):
        async def sample(context, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
            nonlocal asked
            asked += 1
            if asked == SESSIONS:
                all_asked.set()
            with anyio.move_on_after(8):
                await all_asked.wait()
            return types.CreateMessageResult(
                role="assistant",
                content=types.TextContent(type="text", text=f"{tag} <- {params.messages[0].content.text}"),  # type: ignore[union-attr]
                model="switchyard-test-model",
                stop_reason="endTurn",
            )

        return sample

    async def one(i: int) -> None:
        nonlocal connected
        tag = f"client-{i}"
        async with Client(url, mode="legacy", cache=None, sampling_callback=sampler(tag)) as client:
            connected += 1
            if connected == SESSIONS:
                all_connected.set()
            await all_connected.wait()
            r = await client.call_tool("everything__trigger-sampling-request", {"prompt": tag, "maxTokens": 5})
            text = r.content[0].text if r.content else repr(r)
            if r.is_error or f"{tag} <- " not in text:
                failures.append(f"{tag}: {text[:300]}")

    with anyio.fail_after(90):
        async with anyio.create_task_group() as tg:
            for i in range(SESSIONS):
                tg.start_soon(one, i)
    return failures


@pytest.mark.parametrize("transport", ["stdio", "sse"])
async def test_every_session_gets_its_own_requests_with_isolation(
    start_gateway: StartGateway, tmp_path, everything_sse_url: str, transport: str
) -> None:
    gw = start(start_gateway, tmp_path, "session", sse_url=everything_sse_url if transport == "sse" else "")
    failures = await run_sessions_at_once(gw.url)
    assert not failures, failures
    # The clients closed their sessions (DELETE): their connections stop; the shared one stays.
    await eventually(lambda: gw.health()["upstreams"][0]["sessions"] == 0, "sessions released")
    if transport == "stdio":
        await eventually(lambda: children(gw.proc.pid) == 1, "dedicated children gone")


async def test_without_isolation_the_same_load_is_refused_not_misrouted(start_gateway: StartGateway, tmp_path) -> None:
    """The contrast: one shared child, the same calls in flight together. Requests that cannot be
    attributed are refused (the tool reports the error); none reaches the wrong client."""
    gw = start(start_gateway, tmp_path, "shared")
    failures = await run_sessions_at_once(gw.url)
    assert failures, "with calls of several sessions in flight, the shared child's requests are ambiguous"
    assert all("cannot route" in f or "in flight" in f for f in failures), failures
    assert "sessions" not in gw.health()["upstreams"][0]


async def test_dedicated_children_are_bounded_and_stop_with_their_session(
    start_gateway: StartGateway, tmp_path
) -> None:
    gw = start(start_gateway, tmp_path, "session", limit=2)
    assert children(gw.proc.pid) == 1, "the shared child, for lists and 2026-07-28 clients"
    async with Client(gw.url, mode="legacy", cache=None) as b, Client(gw.url, mode="legacy", cache=None) as c:
        async with Client(gw.url, mode="legacy", cache=None) as a:
            for client in (a, b):
                r = await client.call_tool("everything__echo", {"message": "hi"})
                assert not r.is_error, r
            assert gw.health()["upstreams"][0]["sessions"] == 2
            assert children(gw.proc.pid) == 3
            with pytest.raises(Exception) as refused:
                await c.call_tool("everything__echo", {"message": "third"})
            assert "isolation_limit" in str(refused.value), refused.value
        # a's session ended: its child goes, and c may have one.
        await eventually(lambda: gw.health()["upstreams"][0]["sessions"] == 1, "a's child released")
        await eventually(lambda: children(gw.proc.pid) == 2, "a's child stopped")
        r = await c.call_tool("everything__echo", {"message": "third"})
        assert not r.is_error, r
        assert gw.health()["upstreams"][0]["sessions"] == 2


async def test_a_dedicated_childs_requests_between_calls_reach_its_session(
    start_gateway: StartGateway, tmp_path
) -> None:
    """server-everything asks `roots/list` right after `initialized`, with no call in flight. On a
    shared child nobody could be named; on a session's own child it is that session's, asked on
    its GET stream."""
    gw = start(start_gateway, tmp_path, "session")
    asked: list[str] = []

    async def roots(context) -> types.ListRootsResult:
        asked.append("roots/list")
        return types.ListRootsResult(roots=[types.Root(uri="file:///home/Ada", name="home")])

    async with Client(gw.url, mode="legacy", cache=None, list_roots_callback=roots) as client:
        r = await client.call_tool("everything__echo", {"message": "start my child"})
        assert not r.is_error, r
        await eventually(lambda: bool(asked), "the child's roots/list reached the session", timeout=10)
        r = await client.call_tool("everything__get-roots-list", {})
        assert "file:///home/Ada" in r.content[0].text, r
