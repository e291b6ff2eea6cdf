"""The repo's own config/switchyard.toml (the built-in demo servers) with --listen."""

from __future__ import annotations

from collections import defaultdict

import pytest
from conftest import StartGateway
from harness import REPO, connect_gateway, generate_args, list_all
from mcp.shared.exceptions import MCPError

pytestmark = pytest.mark.anyio

CONFIG = REPO / "config" / "switchyard.toml"


@pytest.mark.parametrize("mode", ["legacy", "modern"])
async def test_default_config_serves_demo_servers(start_gateway: StartGateway, mode: str) -> None:
    assert CONFIG.is_file(), f"{CONFIG} is missing"
    gw = start_gateway(config_path=CONFIG)  # started with --listen 127.0.0.1:<free port>
    async with connect_gateway(gw.url, mode) as client:
        tools = await list_all(client, "tools")
        by_prefix: dict[str, list[dict]] = defaultdict(list)
        for tool in tools:
            by_prefix[tool["name"].split("__", 1)[0]].append(tool)
        assert by_prefix["notes"], f"no notes__ tools in {[t['name'] for t in tools]}"
        assert by_prefix["util"], f"no util__ tools in {[t['name'] for t in tools]}"
        for prefix in ("notes", "util"):
            # call every tool of the demo server with arguments generated from its schema;
            # at least one must succeed outright (the others may legitimately answer
            # isError for made-up arguments, e.g. a note id that does not exist)
            outcomes = {}
            for tool in by_prefix[prefix]:
                try:
                    result = await client.call_tool(tool["name"], generate_args(tool.get("inputSchema")))
                    outcomes[tool["name"]] = "isError" if result.is_error else "ok"
                except MCPError as e:
                    outcomes[tool["name"]] = f"JSON-RPC error {e.error.code}: {e.error.message}"
            assert "ok" in outcomes.values(), f"no {prefix}__ tool call succeeded: {outcomes}"
