"""Meta-tool mode with the official Python SDK client (both eras), in front of server-everything:
tools/list shows the three meta-tools, find_tools finds a real tool by intent, call_tool reaches it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import StartGateway, gateway_toml
from harness import connect_gateway, everything_stdio

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", ["legacy", "modern"])
async def test_find_then_call_through_meta_tools(start_gateway: StartGateway, tmp_path: Path, mode: str) -> None:
    config = tmp_path / "metatool.toml"
    body = gateway_toml("127.0.0.1:1", [everything_stdio("everything").toml_entry()])
    config.write_text(body + '\n[router]\nmode = "metatool"\n')
    gw = start_gateway(config_path=config, listen_override=True)
    async with connect_gateway(gw.url, mode) as client:
        listed = await client.list_tools()
        assert sorted(t.name for t in listed.tools) == ["call_tool", "find_tools", "list_categories"]
        found = []
        for _ in range(50):  # the first index is built off the request path
            result = await client.call_tool("find_tools", {"query": "repeat my message back to me", "top_k": 5})
            found = [t["name"] for t in json.loads(result.content[0].text)["tools"]]
            if found:
                break
        assert "everything__echo" in found, found
        echoed = await client.call_tool("call_tool", {"name": "everything__echo", "arguments": {"message": "via meta"}})
        assert echoed.content[0].text == "Echo: via meta"
        cats = await client.call_tool("list_categories", {})
        assert json.loads(cats.content[0].text)["categories"][0]["name"] == "everything"
