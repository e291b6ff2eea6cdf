"""Shared helpers for the Python end-to-end suite.

Everything here is about *comparing* what the official Python SDK client (`mcp` v2)
sees through the gateway with what it sees when it talks to the same upstream
directly. Process management (gateway, HTTP upstream) lives in conftest.py.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import os
import re
import shutil
from collections.abc import Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mcp_types as types
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.shared.exceptions import MCPError

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
NODE_MODULES = TESTS / "node_modules"
EVERYTHING_JS = NODE_MODULES / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
MEMORY_JS = NODE_MODULES / "@modelcontextprotocol" / "server-memory" / "dist" / "index.js"
CASES: dict[str, Any] = json.loads((TESTS / "e2e-cases.json").read_text())

MODERN_VERSION = "2026-07-28"
LEGACY_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26")
HANDSHAKE_ERAS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")  # what /health may call an upstream's era

META_SERVER = "switchyard.dev/server"
META_NAME = "switchyard.dev/name"

# Per listing kind: the SDK method, the attribute holding the page's entries and the
# field that identifies an entry.
KINDS: dict[str, tuple[str, str, str]] = {
    "tools": ("list_tools", "tools", "name"),
    "prompts": ("list_prompts", "prompts", "name"),
    "resources": ("list_resources", "resources", "uri"),
    "resource_templates": ("list_resource_templates", "resource_templates", "uriTemplate"),
}
CAPABILITY_OF = {"tools": "tools", "prompts": "prompts", "resources": "resources", "resource_templates": "resources"}
RENAMED_KINDS = ("tools", "prompts")  # public name = f"{server}__{name}"


def node_executable() -> str:
    node = shutil.which("node")
    assert node, "node is not on PATH"
    return node


# --------------------------------------------------------------------------- upstreams


@dataclass(frozen=True)
class Upstream:
    """One upstream of the standard gateway config, and how to reach it directly."""

    name: str  # the gateway's name for it (the public prefix)
    profile: str  # key into e2e-cases.json
    command: str | None = None
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    url: str | None = None
    transport: str | None = None  # for a url server: "sse" for the legacy HTTP+SSE transport

    def toml_entry(self, gateway_env: dict[str, str] | None = None) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": self.name}
        if self.url:
            entry["url"] = self.url
            if self.transport:
                entry["transport"] = self.transport
        else:
            entry["command"] = self.command
            entry["args"] = list(self.args)
            env = dict(self.env)
            env.update(gateway_env or {})
            if env:
                entry["env"] = env
        return entry


def everything_stdio(name: str = "everything") -> Upstream:
    return Upstream(name=name, profile="everything", command="node", args=(str(EVERYTHING_JS), "stdio"))


def memory_stdio(memory_file: Path, name: str = "memory") -> Upstream:
    return Upstream(
        name=name,
        profile="memory",
        command="node",
        args=(str(MEMORY_JS),),
        env=(("MEMORY_FILE_PATH", str(memory_file)),),
    )


def everything_http(url: str, name: str = "web") -> Upstream:
    return Upstream(name=name, profile="everything", url=url)


async def _refuse(*_args):
    return types.ErrorData(code=-32601, message="the direct comparison client answers no server requests")


# The gateway declares sampling, elicitation and roots to legacy upstreams (it relays those requests to
# clients that can take them); a direct client declares the same, so both see the same tools.
GATEWAY_CAPS = {"sampling_callback": _refuse, "elicitation_callback": _refuse, "list_roots_callback": _refuse}


def everything_sse(url: str, name: str = "old") -> Upstream:
    return Upstream(name=name, profile="everything", url=url, transport="sse")


@asynccontextmanager
async def connect_direct(upstream: Upstream, *, direct_memory_file: Path | None = None):
    """Connect the Python SDK straight to an upstream (stdio or Streamable HTTP).

    Upstreams are 2025-era servers (server-everything and server-memory are built on
    @modelcontextprotocol/sdk 1.x), so the direct side always uses mode='legacy'.
    A memory upstream gets its own storage file so direct and gateway graphs never mix.
    """
    if upstream.url:
        async with Client(upstream.url, mode="legacy", cache=None, **GATEWAY_CAPS) as client:
            yield client
        return
    env = dict(os.environ)
    env.update(dict(upstream.env))
    if direct_memory_file is not None and "MEMORY_FILE_PATH" in env:
        env["MEMORY_FILE_PATH"] = str(direct_memory_file)
    command = node_executable() if upstream.command == "node" else upstream.command
    params = StdioServerParameters(command=command, args=list(upstream.args), env=env, cwd=str(REPO))
    async with Client(params, mode="legacy", cache=None, **GATEWAY_CAPS) as client:
        yield client


@asynccontextmanager
async def connect_gateway(url: str, mode: str):
    """Connect the Python SDK to the gateway in 'legacy' or 'modern' mode.

    legacy: Client(mode='legacy') runs the initialize handshake (2025-11-25, Mcp-Session-Id).
    modern: Client(mode='auto') probes server/discover and must end up on 2026-07-28.
    (mode='2026-07-28' would adopt the version without asking the server at all.)
    """
    if mode == "legacy":
        async with Client(url, mode="legacy", cache=None) as client:
            assert client.protocol_version in LEGACY_VERSIONS, client.protocol_version
            yield client
    elif mode == "modern":
        async with Client(url, mode="auto", cache=None) as client:
            assert client.protocol_version == MODERN_VERSION, (
                f"the gateway did not negotiate {MODERN_VERSION} via server/discover "
                f"(got {client.protocol_version!r})"
            )
            yield client
    elif mode == "pinned":
        async with Client(url, mode=MODERN_VERSION, cache=None) as client:
            yield client
    else:  # pragma: no cover
        raise ValueError(mode)


# --------------------------------------------------------------------------- listing


def dump(model: Any) -> Any:
    """An SDK model as wire-shaped JSON (camelCase keys, absent fields left out)."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


async def list_all(client: Client, kind: str) -> list[dict[str, Any]]:
    """Every entry of a listing, following nextCursor. A server that does not declare the
    capability (server-memory has no prompts) lists nothing rather than an error."""
    method, attr, _ = KINDS[kind]
    capability = CAPABILITY_OF[kind]
    if getattr(client.server_capabilities, capability, None) is None:
        return []
    entries: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(1000):
        page = await getattr(client, method)(cursor=cursor)
        entries.extend(dump(e) for e in getattr(page, attr))
        cursor = page.next_cursor
        if not cursor:
            return entries
    raise AssertionError(f"{kind}: pagination never ended")


async def list_everything(client: Client) -> dict[str, list[dict[str, Any]]]:
    return {kind: await list_all(client, kind) for kind in KINDS}


def split_gateway_entry(kind: str, entry: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """(server, original id, entry as the upstream listed it) for one gateway entry.

    The gateway adds two _meta keys and renames tools/prompts; undo exactly that.
    """
    meta = entry.get("_meta")
    ident = KINDS[kind][2]
    assert isinstance(meta, dict) and META_SERVER in meta and META_NAME in meta, (
        f"gateway {kind} entry {entry.get(ident)!r} lacks _meta[{META_SERVER!r}] / _meta[{META_NAME!r}]: {entry}"
    )
    server, original = meta[META_SERVER], meta[META_NAME]
    restored = copy.deepcopy(entry)
    rest = {k: v for k, v in meta.items() if k not in (META_SERVER, META_NAME)}
    if rest:
        restored["_meta"] = rest
    else:
        del restored["_meta"]
    restored[ident] = original
    return server, original, restored


@dataclass
class Pairing:
    """Gateway entries matched to upstream entries, per kind."""

    # kind -> server -> original id -> public id
    public: dict[str, dict[str, dict[str, str]]]

    def public_id(self, kind: str, server: str, original: str) -> str:
        return self.public[kind][server][original]


# Entry fields that exist only in the 2025-11-25 schema (tasks, SEP-1686). A gateway that
# serves a 2026-07-28 client may drop them (the reference Python server does); when it
# keeps one, it must be unchanged.
LEGACY_ONLY_FIELDS: dict[str, tuple[str, ...]] = {"tools": ("execution",)}


def without_legacy_only(kind: str, want: dict[str, Any], got: dict[str, Any], era: str) -> dict[str, Any]:
    """`want` (a direct entry) minus the 2025-only fields `got` (the gateway's) lacks, on a modern connection."""
    if era != "modern":
        return want
    drop = [f for f in LEGACY_ONLY_FIELDS.get(kind, ()) if f in want and f not in got]
    return {k: v for k, v in want.items() if k not in drop}


def compare_listings(
    gateway: dict[str, list[dict[str, Any]]],
    direct: dict[str, dict[str, list[dict[str, Any]]]],
    era: str = "legacy",
) -> Pairing:
    """Assert the gateway's listings are exactly the upstreams' listings, renamed.

    gateway: kind -> entries (as listed through the gateway)
    direct: server -> kind -> entries (as listed by that upstream directly)
    era: the gateway connection's era ('legacy' or 'modern')
    """
    public: dict[str, dict[str, dict[str, str]]] = {}
    for kind, (_, _, ident) in KINDS.items():
        public[kind] = {server: {} for server in direct}
        got: dict[str, dict[str, dict[str, Any]]] = {server: {} for server in direct}
        seen_public: set[str] = set()
        for entry in gateway[kind]:
            server, original, restored = split_gateway_entry(kind, entry)
            assert server in direct, f"gateway lists {kind} {entry[ident]!r} from unknown server {server!r}"
            assert entry[ident] not in seen_public, f"gateway lists {kind} {entry[ident]!r} twice"
            seen_public.add(entry[ident])
            assert original not in got[server], f"gateway lists {server}'s {kind} {original!r} twice"
            got[server][original] = restored
            public[kind][server][original] = entry[ident]

        # which original ids occur on more than one upstream (only resources may keep theirs)
        owners: dict[str, set[str]] = {}
        for server, listing in direct.items():
            for e in listing[kind]:
                owners.setdefault(e[ident], set()).add(server)

        for server, listing in direct.items():
            expected = {e[ident]: e for e in listing[kind]}
            missing = sorted(set(expected) - set(got[server]))
            extra = sorted(set(got[server]) - set(expected))
            assert not missing and not extra, (
                f"{server} {kind}: the gateway is missing {missing} and has extra {extra}"
            )
            for original, want in expected.items():
                pub = public[kind][server][original]
                if kind in RENAMED_KINDS:
                    assert pub == f"{server}__{original}", f"{server} {kind} {original!r} is public as {pub!r}"
                elif len(owners[original]) == 1:
                    assert pub == original, (
                        f"{server} {kind} {original!r} is unique across upstreams but the gateway renamed it to {pub!r}"
                    )
                want = without_legacy_only(kind, want, got[server][original], era)
                assert got[server][original] == want, (
                    f"{server} {kind} {original!r} differs through the gateway:\n"
                    f"  gateway (renaming undone): {json.dumps(got[server][original], sort_keys=True)}\n"
                    f"  direct:                    {json.dumps(want, sort_keys=True)}"
                )
    return Pairing(public=public)


# --------------------------------------------------------------------------- normalisation

# server-everything stamps dynamic resources with `new Date().toLocaleTimeString()`
# ("8:33:08 PM", possibly with a U+202F before PM). Two reads a few ms apart can differ.
TIME_RE = re.compile(r"\b\d{1,2}:\d{2}:\d{2}(?:\s?[AP]M)?")
# toggle-* tools name the upstream session (a UUID on HTTP). The gateway's session with
# the upstream is not ours, by design.
SESSION_RE = re.compile(r"(session )[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# Fields that only the 2026-07-28 result envelope carries, or that the envelope stamps
# into _meta: legitimately different between a modern client of the gateway and a
# legacy connection straight to a 2025-era upstream.
ENVELOPE_KEYS = ("resultType", "ttlMs", "cacheScope")
RESERVED_META_PREFIX = "io.modelcontextprotocol/"


def _norm_text(s: str) -> str:
    return SESSION_RE.sub(r"\1<session>", TIME_RE.sub("<time>", s))


def _norm_blob(s: str) -> str:
    try:
        text = base64.b64decode(s, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return s
    if TIME_RE.search(text):
        return "<base64 of> " + _norm_text(text)
    return s


def _walk(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "text" and isinstance(v, str):
                out[k] = _norm_text(v)
            elif k == "blob" and isinstance(v, str):
                out[k] = _norm_blob(v)
            else:
                out[k] = _walk(v)
        return out
    if isinstance(value, list):
        return [_walk(v) for v in value]
    return value


def normalize_result(result: Any) -> Any:
    """A result as JSON with only the legitimately-different parts evened out."""
    data = dump(result) if hasattr(result, "model_dump") else copy.deepcopy(result)
    if isinstance(data, dict):
        for key in ENVELOPE_KEYS:
            data.pop(key, None)
        meta = data.get("_meta")
        if isinstance(meta, dict):
            meta = {k: v for k, v in meta.items() if not k.startswith(RESERVED_META_PREFIX)}
            if meta:
                data["_meta"] = meta
            else:
                data.pop("_meta")
    return _walk(data)


# --------------------------------------------------------------------------- arguments


def generate_args(schema: dict[str, Any] | None) -> dict[str, Any]:
    """Sensible arguments for a tool nobody wrote a table row for: every required
    property, from its enum/default/type."""
    schema = schema or {}
    props: dict[str, Any] = schema.get("properties") or {}
    args: dict[str, Any] = {}
    for name in schema.get("required") or []:
        args[name] = _value_for(props.get(name) or {})
    return args


def _value_for(prop: dict[str, Any]) -> Any:
    if "default" in prop:
        return prop["default"]
    if prop.get("enum"):
        return prop["enum"][0]
    if "const" in prop:
        return prop["const"]
    t = prop.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "string")
    if t == "string":
        return "switchyard-e2e"
    if t in ("number", "integer"):
        return max(1, prop.get("minimum", 1))
    if t == "boolean":
        return False
    if t == "array":
        return []
    if t == "object":
        return generate_args(prop)
    return "switchyard-e2e"


def call_plan(profile: str, tools: Iterable[dict[str, Any]], *, flavour: str = "python") -> tuple[
    list[tuple[str, dict[str, Any]]], dict[str, str]
]:
    """(calls to make in order, {tool: reason} skipped) for one upstream's direct tool list."""
    cases = CASES[profile]
    listed = {t["name"]: t for t in tools}
    skipped: dict[str, str] = {}
    for name, reason in cases["skip_call"].items():
        if name in listed:
            skipped[name] = reason
    if flavour == "ts-sdk1":
        for name, reason in cases["skip_call_ts_sdk1"].items():
            if name in listed:
                skipped[name] = reason
    plan = [(row[0], row[1]) for row in cases["calls"] if row[0] in listed and row[0] not in skipped]
    covered = {name for name, _ in plan} | set(skipped)
    for name, tool in listed.items():
        if name not in covered:
            plan.append((name, generate_args(tool.get("inputSchema"))))
    return plan, skipped


def expects_error(profile: str, name: str, args: dict[str, Any]) -> bool:
    """Whether the upstream itself answers this call-table row with isError."""
    return any(row[0] == name and row[1] == args and row[2:] == ["isError"] for row in CASES[profile]["calls"])


def expand_template(template: str, values: dict[str, str]) -> str:
    """RFC 6570 level-1 expansion ({var}), enough for the templates under test."""

    def sub(m: re.Match[str]) -> str:
        return values[m.group(1)]

    return re.sub(r"\{([A-Za-z0-9_]+)\}", sub, template)


def template_instances(profile: str, template: str) -> list[dict[str, str]]:
    names = re.findall(r"\{([A-Za-z0-9_]+)\}", template)
    values = CASES[profile]["template_values"]
    count = min((len(values.get(n, [])) for n in names), default=0)
    if not names:
        return [{}]
    if count == 0:
        return [{n: "1" for n in names}]
    return [{n: values[n][i] for n in names} for i in range(count)]


# --------------------------------------------------------------------------- calling


async def outcome(coro: Any) -> tuple[str, Any]:
    """('ok', normalised result) or ('error', (code, message)) for one request."""
    try:
        return "ok", normalize_result(await coro)
    except MCPError as e:
        return "error", (e.error.code, e.error.message)


def assert_same(what: str, via_gateway: tuple[str, Any], direct: tuple[str, Any]) -> None:
    assert via_gateway == direct, (
        f"{what}: through the gateway and directly differ\n"
        f"  gateway: {json.dumps(via_gateway, sort_keys=True, ensure_ascii=False)[:4000]}\n"
        f"  direct:  {json.dumps(direct, sort_keys=True, ensure_ascii=False)[:4000]}"
    )


def completion_ref(
    spec: dict[str, Any], public: Callable[[str, str], str] | None = None
) -> types.PromptReference | types.ResourceTemplateReference:
    """The completion ref of a case row; `public(kind, original)` maps names for the gateway."""
    ref = spec["ref"]
    if ref["type"] == "ref/prompt":
        name = ref["name"] if public is None else public("prompts", ref["name"])
        return types.PromptReference(type="ref/prompt", name=name)
    uri = ref["uri"] if public is None else public("resource_templates", ref["uri"])
    return types.ResourceTemplateReference(type="ref/resource", uri=uri)
