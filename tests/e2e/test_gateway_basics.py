"""/health, ${VAR} expansion in upstream env, the upstream tool counts, and HTTP upstream session renewal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import anyio
import pytest
from conftest import Gateway, StartGateway, _wait_for_port, free_port
from mcp import Client, types
from harness import EVERYTHING_JS, HANDSHAKE_ERAS, MODERN_VERSION, connect_gateway, everything_http, list_all, node_executable

pytestmark = pytest.mark.anyio


async def test_health_reports_every_upstream(gateway: Gateway) -> None:
    health = gateway.health()
    assert health["status"] == "ok", health
    assert health["shards"] == 2, health  # the config says shards = 2
    by_name = {u["name"]: u for u in health["upstreams"]}
    assert sorted(by_name) == ["everything", "memory", "web"], health
    for name, up in by_name.items():
        assert up["state"] == "ready", (name, up)
        assert up["era"] in (*HANDSHAKE_ERAS, MODERN_VERSION), (name, up)
    async with connect_gateway(gateway.url, "legacy") as client:
        tools = await list_all(client, "tools")
    for name, up in by_name.items():
        listed = [t for t in tools if t["_meta"]["switchyard.dev/server"] == name]
        assert up["tools"] == len(listed) > 0, (name, up, len(listed))


async def test_upstream_env_expands_gateway_variables(gateway: Gateway) -> None:
    """The config gives everything `SWITCHYARD_E2E_EXPANDED = "x-${SWITCHYARD_E2E_TOKEN}-y"`;
    the gateway ran with SWITCHYARD_E2E_TOKEN set, and get-env shows the child's env."""
    async with connect_gateway(gateway.url, "modern") as client:
        result = await client.call_tool("everything__get-env", {})
    env = json.loads(result.content[0].text)
    assert env.get("SWITCHYARD_E2E_EXPANDED") == f"x-{gateway.env_token}-y", {
        k: v for k, v in env.items() if k.startswith("SWITCHYARD")
    }


def _start_everything_http(port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [node_executable(), str(EVERYTHING_JS), "streamableHttp"],
            env={**os.environ, "PORT": str(port)},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _wait_for_port(port, proc, log)
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def test_http_upstream_session_is_renewed_when_the_upstream_forgets_it(start_gateway: StartGateway, tmp_path: Path) -> None:
    """The gateway keeps one Mcp-Session-Id with an HTTP upstream. When the upstream restarts (and
    so forgets every session), the next call re-initializes transparently: the client sees no error."""
    port = free_port()
    log = tmp_path / "everything-http.log"
    proc = _start_everything_http(port, log)
    try:
        gw = start_gateway([everything_http(f"http://127.0.0.1:{port}/mcp", "web")])
        async with connect_gateway(gw.url, "legacy") as client:
            first = await client.call_tool("web__echo", {"message": "before"})
            assert first.content[0].text == "Echo: before"
            _stop(proc)
            proc = _start_everything_http(port, log)
            second = await client.call_tool("web__echo", {"message": "after"})
            assert second.content[0].text == "Echo: after"
        assert "forgot our session" in gw.stderr(), gw.stderr()[-2000:]
    finally:
        _stop(proc)


async def test_subscriptions_are_asked_again_when_an_http_upstream_forgets_the_session(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """After the transparent renewal, the gateway subscribes the new upstream session to what its
    clients hold, so their updates keep coming."""
    port = free_port()
    log = tmp_path / "everything-http.log"
    proc = _start_everything_http(port, log)
    updates: list[str] = []

    async def inbox(message) -> None:
        n = getattr(message, "root", message)
        if isinstance(n, types.ResourceUpdatedNotification):
            updates.append(str(n.params.uri))

    try:
        gw = start_gateway([everything_http(f"http://127.0.0.1:{port}/mcp", "web")])
        async with Client(gw.url, mode="legacy", cache=None, message_handler=inbox) as client:
            uri = str((await client.list_resources()).resources[0].uri)
            await client.subscribe_resource(uri)
            _stop(proc)
            proc = _start_everything_http(port, log)
            r = await client.call_tool("web__toggle-subscriber-updates", {})  # renews the session
            assert not r.is_error, r
            with anyio.fail_after(25):
                while uri not in updates:
                    await anyio.sleep(0.1)
            await client.call_tool("web__toggle-subscriber-updates", {})
        assert "forgot our session" in gw.stderr(), gw.stderr()[-2000:]
    finally:
        _stop(proc)
