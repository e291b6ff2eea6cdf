"""The official Python SDK (`mcp` v2) through the gateway vs. straight to each upstream.

Every test runs twice: `legacy` (initialize handshake, 2025-11-25, Mcp-Session-Id) and
`modern` (server/discover, stateless 2026-07-28). Each test gets a fresh gateway in
front of everything (stdio), memory (stdio) and web (server-everything over
Streamable HTTP), and its own direct connection(s) to the same upstreams.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import Gateway
from harness import (
    CASES,
    KINDS,
    MODERN_VERSION,
    assert_same,
    call_plan,
    compare_listings,
    completion_ref,
    connect_direct,
    connect_gateway,
    expand_template,
    list_all,
    list_everything,
    outcome,
    split_gateway_entry,
    template_instances,
)

pytestmark = pytest.mark.anyio

MODES = ["legacy", "modern"]
SERVERS = ["everything", "memory", "web"]


def upstream_named(gateway: Gateway, name: str):
    return next(u for u in gateway.upstreams if u.name == name)


def public_ids(kind: str, gateway_entries: list[dict[str, Any]], server: str) -> dict[str, str]:
    """original id -> public id, for one server's entries of one listing kind."""
    ident = KINDS[kind][2]
    out: dict[str, str] = {}
    for entry in gateway_entries:
        srv, original, _ = split_gateway_entry(kind, entry)
        if srv == server:
            out[original] = entry[ident]
    return out


@pytest.mark.parametrize("mode", MODES)
async def test_lists_match_direct(gateway: Gateway, mode: str, direct_memory_file: Path) -> None:
    """tools, prompts, resources and resource templates through the gateway are exactly
    the union of the upstreams' own lists, renamed (tools/prompts -> server__name)."""
    async with connect_gateway(gateway.url, mode) as gw:
        via_gateway = await list_everything(gw)
    direct: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for up in gateway.upstreams:
        async with connect_direct(up, direct_memory_file=direct_memory_file) as client:
            direct[up.name] = await list_everything(client)
    # sanity: the direct side really is the servers we think it is
    assert any(t["name"] == "echo" for t in direct["everything"]["tools"])
    assert any(t["name"] == "read_graph" for t in direct["memory"]["tools"])
    compare_listings(via_gateway, direct, era="modern" if mode == "modern" else "legacy")


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("mode", MODES)
async def test_tools_match_direct(gateway: Gateway, mode: str, server: str, direct_memory_file: Path) -> None:
    """Every tool of the upstream is called through the gateway and directly, in the same
    order, and the results are equal (see e2e-cases.json for arguments and skips)."""
    up = upstream_named(gateway, server)
    cases = CASES[up.profile]
    async with connect_gateway(gateway.url, mode) as gw, connect_direct(
        up, direct_memory_file=direct_memory_file
    ) as direct:
        direct_tools = await list_all(direct, "tools")
        public = public_ids("tools", await list_all(gw, "tools"), server)
        assert sorted(public) == sorted(t["name"] for t in direct_tools)
        plan, skipped = call_plan(up.profile, direct_tools)
        assert plan, f"no tool of {server} to call"
        for name, args in plan:
            want = await outcome(direct.call_tool(name, args))
            got = await outcome(gw.call_tool(public[name], args))
            what = f"{server}: tools/call {name} {json.dumps(args)[:200]} ({mode})"
            if name in cases["nondeterministic"]:
                # called, not compared (see the reason in e2e-cases.json)
                assert got[0] == "ok" and not got[1].get("isError"), f"{what}: {got}"
                continue
            assert_same(what, got, want)
        for name, reason in skipped.items():
            print(f"skipped {server}__{name}: {reason}")


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("mode", MODES)
async def test_resources_match_direct(gateway: Gateway, mode: str, server: str, direct_memory_file: Path) -> None:
    """Reading the upstream's resources (up to max_static_resources of them) and instances
    of each resource template gives equal results through the gateway and directly."""
    up = upstream_named(gateway, server)
    cases = CASES[up.profile]
    async with connect_gateway(gateway.url, mode) as gw, connect_direct(
        up, direct_memory_file=direct_memory_file
    ) as direct:
        for name, args in cases["resource_setup"]:
            public_tools = public_ids("tools", await list_all(gw, "tools"), server)
            await direct.call_tool(name, args)
            await gw.call_tool(public_tools[name], args)

        direct_resources = await list_all(direct, "resources")
        direct_templates = await list_all(direct, "resource_templates")
        public_res = public_ids("resources", await list_all(gw, "resources"), server)
        public_tpl = public_ids("resource_templates", await list_all(gw, "resource_templates"), server)

        reads = 0
        for res in direct_resources[: cases["max_static_resources"]]:
            uri = res["uri"]
            want = await outcome(direct.read_resource(uri))
            got = await outcome(gw.read_resource(public_res[uri]))
            assert want[0] == "ok", f"direct read of {uri} failed: {want}"
            assert_same(f"{server}: resources/read {uri} ({mode})", got, want)
            reads += 1
        for tpl in direct_templates:
            template = tpl["uriTemplate"]
            for values in template_instances(up.profile, template):
                uri = expand_template(template, values)
                want = await outcome(direct.read_resource(uri))
                got = await outcome(gw.read_resource(expand_template(public_tpl[template], values)))
                assert want[0] == "ok", f"direct read of {uri} failed: {want}"
                assert_same(f"{server}: resources/read {uri} (template {template}, {mode})", got, want)
                reads += 1
        if direct_resources or direct_templates:
            assert reads > 0


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("mode", MODES)
async def test_prompts_match_direct(gateway: Gateway, mode: str, server: str, direct_memory_file: Path) -> None:
    """Every prompt of the upstream, got through the gateway and directly, is equal."""
    up = upstream_named(gateway, server)
    cases = CASES[up.profile]
    async with connect_gateway(gateway.url, mode) as gw, connect_direct(
        up, direct_memory_file=direct_memory_file
    ) as direct:
        direct_prompts = {p["name"]: p for p in await list_all(direct, "prompts")}
        public = public_ids("prompts", await list_all(gw, "prompts"), server)
        assert sorted(public) == sorted(direct_prompts)
        plan = [(n, a) for n, a in cases["prompts"] if n in direct_prompts]
        covered = {n for n, _ in plan}
        for name, prompt in direct_prompts.items():
            if name not in covered:  # a prompt nobody wrote a row for: required args = "1"
                plan.append((name, {a["name"]: "1" for a in prompt.get("arguments", []) if a.get("required")}))
        for name, args in plan:
            want = await outcome(direct.get_prompt(name, args))
            got = await outcome(gw.get_prompt(public[name], args))
            assert want[0] == "ok", f"direct prompts/get {name} failed: {want}"
            assert_same(f"{server}: prompts/get {name} {args} ({mode})", got, want)


@pytest.mark.parametrize("server", ["everything", "web"])
@pytest.mark.parametrize("mode", MODES)
async def test_completions_match_direct(gateway: Gateway, mode: str, server: str) -> None:
    """completion/complete for prompt arguments and template variables reaches the owner
    with the original name restored."""
    up = upstream_named(gateway, server)
    async with connect_gateway(gateway.url, mode) as gw, connect_direct(up) as direct:
        public = {
            kind: public_ids(kind, await list_all(gw, kind), server) for kind in ("prompts", "resource_templates")
        }
        for spec in CASES[up.profile]["completions"]:
            want = await outcome(direct.complete(completion_ref(spec), spec["argument"], spec.get("context")))
            got = await outcome(
                gw.complete(
                    completion_ref(spec, lambda kind, original: public[kind][original]),
                    spec["argument"],
                    spec.get("context"),
                )
            )
            assert want[0] == "ok" and want[1]["completion"]["values"], f"direct completion failed: {want}"
            assert_same(f"{server}: completion/complete {json.dumps(spec)} ({mode})", got, want)


async def test_modern_pinned_client(gateway: Gateway) -> None:
    """A client that pins 2026-07-28 without probing (mode='2026-07-28') works too.
    (It has no DiscoverResult, so it knows no server capabilities: list directly.)"""
    async with connect_gateway(gateway.url, "pinned") as gw:
        assert gw.protocol_version == MODERN_VERSION
        tools = {t.name for t in (await gw.list_tools()).tools}
        assert "everything__echo" in tools and "memory__read_graph" in tools and "web__echo" in tools
        result = await gw.call_tool("everything__echo", {"message": "pinned"})
        assert result.content[0].text == "Echo: pinned"
