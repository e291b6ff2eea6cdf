"""/health, ${VAR} expansion in upstream env, and the upstream tool counts."""

from __future__ import annotations

import json

import pytest
from conftest import Gateway
from harness import HANDSHAKE_ERAS, MODERN_VERSION, connect_gateway, list_all

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
