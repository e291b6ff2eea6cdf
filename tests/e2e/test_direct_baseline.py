"""The harness checked against itself, without the gateway.

The gateway tests compare "through the gateway" with "directly". That comparison only
means something if making the same calls on two *independent* direct connections
(two server processes for stdio, two sessions for HTTP) already gives equal results
after normalisation. These tests make sure of that, and that the pairing logic
accepts a correctly renamed listing and rejects a wrong one. They need no gateway.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from harness import (
    CASES,
    KINDS,
    META_NAME,
    META_SERVER,
    RENAMED_KINDS,
    Upstream,
    assert_same,
    call_plan,
    compare_listings,
    completion_ref,
    connect_direct,
    everything_http,
    everything_stdio,
    expects_error,
    expand_template,
    list_all,
    list_everything,
    memory_stdio,
    outcome,
    template_instances,
)

pytestmark = pytest.mark.anyio

def upstreams(tmp_path: Path, http_url: str) -> dict[str, Upstream]:
    return {
        "everything": everything_stdio(),
        "memory": memory_stdio(tmp_path / "a-memory.jsonl"),
        "web": everything_http(http_url),
    }


@pytest.fixture
def ups(tmp_path: Path, everything_http_url: str) -> dict[str, Upstream]:
    return upstreams(tmp_path, everything_http_url)


@pytest.mark.parametrize("server", ["everything", "memory", "web"])
async def test_direct_calls_are_reproducible(ups: dict[str, Upstream], server: str, tmp_path: Path) -> None:
    up = ups[server]
    cases = CASES[up.profile]
    async with connect_direct(up, direct_memory_file=tmp_path / "b-memory.jsonl") as a, connect_direct(
        up, direct_memory_file=tmp_path / "c-memory.jsonl"
    ) as b:
        tools = await list_all(a, "tools")
        assert tools == await list_all(b, "tools")
        plan, skipped = call_plan(up.profile, tools)
        called = {name for name, _ in plan}
        assert called | set(skipped) == {t["name"] for t in tools}, "every listed tool is called or skipped by name"
        for name, args in plan:
            first = await outcome(a.call_tool(name, args))
            second = await outcome(b.call_tool(name, args))
            assert first[0] == "ok", f"{name}: {first}"
            is_error = bool(first[1].get("isError"))
            if expects_error(up.profile, name, args):
                assert is_error, f"{name} {args} was expected to answer isError: {first}"
            else:
                assert not is_error, f"{name} {args}: {first}"
            if name in cases["nondeterministic"]:
                continue
            assert_same(f"{server}: {name}", first, second)

        resources = await list_all(a, "resources")
        for res in resources[: cases["max_static_resources"]]:
            assert_same(
                f"{server}: read {res['uri']}",
                await outcome(a.read_resource(res["uri"])),
                await outcome(b.read_resource(res["uri"])),
            )
        for tpl in await list_all(a, "resource_templates"):
            for values in template_instances(up.profile, tpl["uriTemplate"]):
                uri = expand_template(tpl["uriTemplate"], values)
                first = await outcome(a.read_resource(uri))
                assert first[0] == "ok", first
                assert_same(f"{server}: read {uri}", first, await outcome(b.read_resource(uri)))

        prompts = {p["name"] for p in await list_all(a, "prompts")}
        assert {n for n, _ in cases["prompts"]} == prompts, "every prompt has a row in e2e-cases.json"
        for name, args in cases["prompts"]:
            first = await outcome(a.get_prompt(name, args))
            assert first[0] == "ok", first
            assert_same(f"{server}: prompt {name}", first, await outcome(b.get_prompt(name, args)))

        for spec in cases["completions"]:
            first = await outcome(a.complete(completion_ref(spec), spec["argument"], spec.get("context")))
            assert first[0] == "ok" and first[1]["completion"]["values"], first
            second = await outcome(b.complete(completion_ref(spec), spec["argument"], spec.get("context")))
            assert_same(f"{server}: complete {json.dumps(spec)}", first, second)


def fake_gateway_listing(direct: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, list[dict[str, Any]]]:
    """What a correct gateway lists: tools/prompts renamed, colliding URIs made unique,
    the two switchyard _meta keys added."""
    owners: dict[tuple[str, str], int] = {}
    for listing in direct.values():
        for kind in ("resources", "resource_templates"):
            for e in listing[kind]:
                key = (kind, e[KINDS[kind][2]])
                owners[key] = owners.get(key, 0) + 1
    out: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    for server, listing in direct.items():
        for kind, (_, _, ident) in KINDS.items():
            for e in listing[kind]:
                g = copy.deepcopy(e)
                original = e[ident]
                if kind in RENAMED_KINDS:
                    g[ident] = f"{server}__{original}"
                elif owners[(kind, original)] > 1:
                    g[ident] = f"switchyard://{server}/{original}"
                g["_meta"] = {**e.get("_meta", {}), META_SERVER: server, META_NAME: original}
                out[kind].append(g)
    return out


async def test_pairing_logic(ups: dict[str, Upstream], tmp_path: Path) -> None:
    direct = {}
    for name, up in ups.items():
        async with connect_direct(up, direct_memory_file=tmp_path / f"{name}.jsonl") as client:
            direct[name] = await list_everything(client)
    # everything and web are the same server: their resource URIs collide
    assert {r["uri"] for r in direct["everything"]["resources"]} == {r["uri"] for r in direct["web"]["resources"]}

    good = fake_gateway_listing(direct)
    pairing = compare_listings(good, direct)
    assert pairing.public_id("tools", "web", "echo") == "web__echo"
    assert pairing.public_id("resources", "memory", "memory://knowledge-graph") == "memory://knowledge-graph"

    def broken(mutate) -> dict[str, list[dict[str, Any]]]:
        listing = copy.deepcopy(good)
        mutate(listing)
        return listing

    bad_cases = {
        "a tool missing": lambda g: g["tools"].pop(),
        "a description changed": lambda g: g["tools"][0].update(description="changed"),
        "_meta missing": lambda g: g["prompts"][0].pop("_meta"),
        "wrong public name": lambda g: g["tools"][0].update(name="everything_echo"),
        "unique URI renamed": lambda g: next(
            r for r in g["resources"] if r["uri"] == "memory://knowledge-graph"
        ).update(uri="switchyard://memory/x"),
        "duplicate public URI": lambda g: [
            r.update(uri="demo://resource/static/document/features.md")
            for r in g["resources"]
            if r["_meta"][META_NAME] == "demo://resource/static/document/features.md"
        ],
    }
    for what, mutate in bad_cases.items():
        with pytest.raises(AssertionError):
            compare_listings(broken(mutate), direct)
            pytest.fail(f"compare_listings accepted a listing with {what}")


def test_every_skip_is_named_with_a_reason() -> None:
    for profile, cases in CASES.items():
        if profile.startswith("$"):
            continue
        for table in ("skip_call", "skip_call_ts_sdk1", "nondeterministic"):
            for name, reason in cases[table].items():
                assert isinstance(reason, str) and len(reason) > 20, (profile, table, name)
