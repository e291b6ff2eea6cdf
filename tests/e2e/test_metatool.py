"""Meta-tool mode with the official Python SDK client (both eras): in front of server-everything,
tools/list shows the three meta-tools, find_tools finds a real tool by intent, call_tool reaches it;
in front of the util demo server, a tool the upstream adds at run time (notifications/tools/
list_changed) is found and callable without a restart, and gone again once it is removed."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

import pytest
from conftest import StartGateway, gateway_toml
from harness import connect_gateway, everything_stdio
from mcp import Client
from mcp.shared.exceptions import MCPError

pytestmark = pytest.mark.anyio


async def find(client: Client, query: str) -> list[dict[str, Any]]:
    result = await client.call_tool("find_tools", {"query": query, "top_k": 5})
    return json.loads(result.content[0].text)["tools"]


async def find_until(client: Client, query: str, done: Callable[[list[str]], bool], what: str) -> list[dict[str, Any]]:
    """find_tools until done(names) holds: the catalog and its index are rebuilt off the request
    path, so a change shows up a few milliseconds after the upstream announced it."""
    deadline = time.monotonic() + 10
    while True:
        tools = await find(client, query)
        names = [t["name"] for t in tools]
        if done(names):
            return tools
        assert time.monotonic() < deadline, f"{what} after 10 s: {query!r} finds {names}"
        await anyio.sleep(0.05)


@pytest.mark.parametrize("mode", ["legacy", "modern"])
async def test_find_then_call_through_meta_tools(start_gateway: StartGateway, tmp_path: Path, mode: str) -> None:
    config = tmp_path / "metatool.toml"
    body = gateway_toml("127.0.0.1:1", [everything_stdio("everything").toml_entry()])
    config.write_text(body + '\n[router]\nmode = "metatool"\n')
    gw = start_gateway(config_path=config, listen_override=True)
    async with connect_gateway(gw.url, mode) as client:
        listed = await client.list_tools()
        assert sorted(t.name for t in listed.tools) == ["call_tool", "find_tools", "list_categories"]
        # The first index is built off the request path: search until it is up (or 10 s pass).
        await find_until(client, "repeat my message back to me", lambda n: "everything__echo" in n, "no echo")
        echoed = await client.call_tool("call_tool", {"name": "everything__echo", "arguments": {"message": "via meta"}})
        assert echoed.content[0].text == "Echo: via meta"
        cats = await client.call_tool("list_categories", {})
        assert json.loads(cats.content[0].text)["categories"][0]["name"] == "everything"


CONVERT_QUERY = "convert 100 degrees Celsius to Fahrenheit"
CONVERTER = "util__convert_temperature"


@pytest.mark.parametrize("mode", ["legacy", "modern"])
async def test_catalog_change_reaches_find_tools(start_gateway: StartGateway, tmp_path: Path, mode: str) -> None:
    config = tmp_path / "metatool-util.toml"
    util = {"name": "util", "command": "${SWITCHYARD_BIN}", "args": ["demo-server", "util"]}
    config.write_text(gateway_toml("127.0.0.1:1", [util]) + '\n[router]\nmode = "metatool"\n')
    gw = start_gateway(config_path=config, listen_override=True)
    async with connect_gateway(gw.url, mode) as client:
        # Before: the index is up (it finds the toggle) and holds no converter.
        before = await find_until(client, "turn the converter on", lambda n: "util__toggle_converter" in n, "no index")
        assert CONVERTER not in [t["name"] for t in before]
        assert CONVERTER not in [t["name"] for t in await find(client, CONVERT_QUERY)]
        with pytest.raises(MCPError):
            await client.call_tool("call_tool", {"name": CONVERTER, "arguments": {}})

        # The upstream adds a tool and says so; no restart, no re-listing by the client.
        on = await client.call_tool("call_tool", {"name": "util__toggle_converter", "arguments": {}})
        assert on.structured_content == {"enabled": True}, on
        tools = await find_until(client, CONVERT_QUERY, lambda n: n[:1] == [CONVERTER], "converter not found")
        assert set(tools[0]["inputSchema"]["properties"]) == {"value", "from", "to"}
        converted = await client.call_tool(
            "call_tool", {"name": CONVERTER, "arguments": {"value": 100, "from": "celsius", "to": "fahrenheit"}}
        )
        assert converted.structured_content == {"value": 212.0}, converted

        # And takes it away again.
        await client.call_tool("call_tool", {"name": "util__toggle_converter", "arguments": {}})
        await find_until(client, CONVERT_QUERY, lambda n: CONVERTER not in n, "converter still found")
        with pytest.raises(MCPError) as refused:
            await client.call_tool("call_tool", {"name": CONVERTER, "arguments": {"value": 1, "from": "celsius", "to": "kelvin"}})
        assert "Unknown tool" in refused.value.error.message
        # tools/list stays the three meta-tools throughout.
        listed = await client.list_tools()
        assert sorted(t.name for t in listed.tools) == ["call_tool", "find_tools", "list_categories"]
