"""Raw HTTP (httpx, plus a raw socket for the oversized body) against the gateway's /mcp.

Each bad input is sent in both eras: `legacy` (after a real initialize, with
Mcp-Session-Id and MCP-Protocol-Version: 2025-11-25) and `modern` (a stateless
2026-07-28 request: MCP-Protocol-Version / Mcp-Method / Mcp-Name headers and the
_meta envelope). Only the property under test is wrong in each request.

Expected HTTP status for JSON-RPC-level errors (the gateway contract names the codes;
the statuses follow the specs):
  - parse error -32700 and invalid request -32600: 400 in both eras;
  - method not found -32601: legacy 200 (a JSON-RPC error inside a normal response; a
    legacy client takes 404 to mean "session expired"), modern 404 (2026-07-28
    Streamable HTTP: "MUST respond with 404 Not Found and ... -32601");
  - invalid params -32602: legacy 200; modern 200 or 400 (the 2026-07-28 spec names no
    status for it; the Python SDK's reference server answers 400).
Where a rejection has a body it must be a JSON-RPC error object; its code is checked
wherever the contract names one.
"""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from conftest import Gateway, StartGateway, none_starting
from harness import LEGACY_VERSIONS, MODERN_VERSION, connect_gateway, everything_stdio, list_all
from mcp.shared.exceptions import MCPError

ACCEPT = "application/json, text/event-stream"
LEGACY = "2025-11-25"
MAX_BODY = 4 * 1024 * 1024
CLIENT_INFO = {"name": "switchyard-e2e-raw", "version": "0.0.0"}


# --------------------------------------------------------------------------- helpers


def rpc_message(r: httpx.Response) -> dict[str, Any] | None:
    """The JSON-RPC message in a response body (JSON or SSE), None for an empty body."""
    text = r.text
    if not text.strip():
        return None
    ctype = r.headers.get("content-type", "")
    if ctype.startswith("text/event-stream"):
        for event in text.replace("\r\n", "\n").split("\n\n"):
            data = "\n".join(line[5:].lstrip() for line in event.split("\n") if line.startswith("data:"))
            if data:
                msg = json.loads(data)
                if "result" in msg or "error" in msg:
                    return msg
        raise AssertionError(f"SSE body without a response: {text[:1000]}")
    return json.loads(text)


def assert_rejected(r: httpx.Response, status: int | set[int], code: int | None = None) -> dict[str, Any] | None:
    allowed = status if isinstance(status, set) else {status}
    assert r.status_code in allowed, f"expected HTTP {status}, got {r.status_code}: {r.text[:1000]}"
    status = r.status_code
    try:
        msg = rpc_message(r)
    except ValueError as e:
        raise AssertionError(f"HTTP {status} has a body that is not a JSON-RPC error: {r.text[:500]!r}") from e
    if msg is None:
        assert code is None, f"HTTP {status} without a body; expected JSON-RPC error {code}"
        return None
    assert isinstance(msg.get("error"), dict), f"body is not a JSON-RPC error: {msg}"
    assert isinstance(msg["error"].get("code"), int) and isinstance(msg["error"].get("message"), str), msg
    if code is not None:
        assert msg["error"]["code"] == code, f"expected JSON-RPC code {code}, got {msg['error']}"
    return msg


def assert_rpc_error(r: httpx.Response, status: int | set[int], code: int) -> dict[str, Any]:
    msg = assert_rejected(r, status, code)
    assert msg is not None, f"HTTP {status} without the JSON-RPC {code} error body"
    return msg


@dataclass
class Era:
    name: str
    url: str
    version: str
    session: str | None = None
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))

    def request(self, method: str, params: dict[str, Any] | None = None, id: int = 1) -> tuple[dict[str, str], dict[str, Any]]:
        """(headers, body) of a well-formed request of this era."""
        headers = {"Content-Type": "application/json", "Accept": ACCEPT, "MCP-Protocol-Version": self.version}
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": id, "method": method}
        params = dict(params or {})
        if self.name == "modern":
            params["_meta"] = {
                "io.modelcontextprotocol/protocolVersion": self.version,
                "io.modelcontextprotocol/clientInfo": CLIENT_INFO,
                "io.modelcontextprotocol/clientCapabilities": {},
            }
            headers["Mcp-Method"] = method
            if method in ("tools/call", "prompts/get") and isinstance(params.get("name"), str):
                headers["Mcp-Name"] = params["name"]
            if method == "resources/read" and isinstance(params.get("uri"), str):
                headers["Mcp-Name"] = params["uri"]
        else:
            assert self.session
            headers["Mcp-Session-Id"] = self.session
        if params:
            body["params"] = params
        return headers, body

    def post(self, method: str, params: dict[str, Any] | None = None, *, headers: dict[str, str] | None = None,
             drop: tuple[str, ...] = (), content: bytes | None = None) -> httpx.Response:
        h, body = self.request(method, params)
        h.update(headers or {})
        for name in drop:
            h.pop(name, None)
        return self.client.post(self.url, headers=h, content=content if content is not None else json.dumps(body).encode())


def legacy_initialize(client: httpx.Client, url: str, version: str = LEGACY) -> tuple[str, dict[str, Any]]:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": version, "capabilities": {}, "clientInfo": CLIENT_INFO},
    }
    r = client.post(url, json=body, headers={"Content-Type": "application/json", "Accept": ACCEPT})
    assert r.status_code == 200, f"initialize -> {r.status_code}: {r.text[:1000]}"
    session = r.headers.get("mcp-session-id")
    assert session, f"initialize answered without an Mcp-Session-Id header: {dict(r.headers)}"
    msg = rpc_message(r)
    assert msg and "result" in msg, msg
    notified = client.post(
        url,
        json={"jsonrpc": "2.0", "method": "notifications/initialized"},
        headers={"Content-Type": "application/json", "Accept": ACCEPT, "Mcp-Session-Id": session,
                 "MCP-Protocol-Version": version},
    )
    assert notified.status_code == 202, f"notifications/initialized -> {notified.status_code}: {notified.text}"
    return session, msg["result"]


@pytest.fixture(params=["legacy", "modern"])
def era(request: pytest.FixtureRequest, gateway: Gateway) -> Iterator[Era]:
    if request.param == "legacy":
        e = Era("legacy", gateway.url, LEGACY)
        e.session, _ = legacy_initialize(e.client, gateway.url)
    else:
        e = Era("modern", gateway.url, MODERN_VERSION)
    yield e
    e.client.close()


def status_for(era: Era, code: int) -> int | set[int]:
    if code == -32601:
        return 200 if era.name == "legacy" else 404
    if code == -32602:
        return 200 if era.name == "legacy" else {200, 400}
    return 400


def raw_post(port: int, headers: dict[str, str], body_chunks: Iterator[bytes], chunked: bool) -> tuple[int, bytes]:
    """POST over a plain socket, sending in a thread while reading, so a server that answers
    (413) before it has read the whole body is still heard."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    if chunked:
        head += "Transfer-Encoding: chunked\r\n"
    head += "\r\n"

    def send() -> None:
        try:
            sock.sendall(head.encode())
            for chunk in body_chunks:
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" if chunked else chunk)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server stopped reading: fine, its answer is what matters

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError as e:
        raise AssertionError(
            f"the gateway reset the connection before its answer could be read ({len(data)} bytes read)"
        ) from e
    finally:
        sock.close()
        sender.join(timeout=10)
    assert data.startswith(b"HTTP/1.1 "), f"no HTTP response: {data[:200]!r}"
    return int(data[9:12]), data


# --------------------------------------------------------------------------- both eras


def test_parse_error(era: Era) -> None:
    r = era.post("tools/list", content=b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list"')
    msg = assert_rpc_error(r, 400, -32700)
    assert msg.get("id") is None


@pytest.mark.parametrize(
    "body",
    [b'{"hello": "world"}', b"42", b'"tools/list"', b'{"jsonrpc": "2.0", "id": 7}', b'{"jsonrpc": "2.0", "id": 7, "method": 12}'],
    ids=["object", "number", "string", "no-method", "method-not-string"],
)
def test_not_a_request(era: Era, body: bytes) -> None:
    assert_rpc_error(era.post("tools/list", content=body), 400, -32600)


def test_unknown_method(era: Era) -> None:
    msg = assert_rpc_error(era.post("tools/frobnicate"), status_for(era, -32601), -32601)
    assert msg.get("id") == 1


@pytest.mark.parametrize("name", ["everything__no-such-tool", "nosuchserver__echo", "echo", ""])
def test_unknown_tool(era: Era, name: str) -> None:
    r = era.post("tools/call", {"name": name, "arguments": {}})
    assert_rpc_error(r, status_for(era, -32602), -32602)


BAD_PARAMS = {
    # (method, params, eras): only the params are wrong; the gateway must answer -32602
    # itself rather than forward them (server-everything would answer -32603 to some).
    "call-arguments-not-object": ("tools/call", {"name": "everything__echo", "arguments": "not an object"}, ("legacy", "modern")),
    "prompt-arguments-not-object": ("prompts/get", {"name": "everything__args-prompt", "arguments": ["x"]}, ("legacy", "modern")),
    # in the modern era a missing/non-string name cannot be mirrored into Mcp-Name, which
    # would make it a header error as well; only checked in the legacy era
    "call-without-name": ("tools/call", {"arguments": {"message": "no name"}}, ("legacy",)),
    "call-name-not-string": ("tools/call", {"name": 42, "arguments": {}}, ("legacy",)),
    "read-without-uri": ("resources/read", {}, ("legacy",)),
    "read-uri-not-string": ("resources/read", {"uri": 5}, ("legacy",)),
}


@pytest.mark.parametrize(
    ("era", "case"),
    [(e, case) for case, (_, _, eras) in BAD_PARAMS.items() for e in eras],
    indirect=["era"],
    ids=[f"{e}-{case}" for case, (_, _, eras) in BAD_PARAMS.items() for e in eras],
)
def test_bad_params(era: Era, case: str) -> None:
    method, params, _ = BAD_PARAMS[case]
    assert_rpc_error(era.post(method, params), status_for(era, -32602), -32602)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_too_large(era: Era, gateway: Gateway, chunked: bool) -> None:
    headers, body = era.request("tools/call", {"name": "everything__echo", "arguments": {"message": "x"}})
    prefix = json.dumps(body).encode()[:-3]  # ... "message": "x  (left open)
    filler = MAX_BODY + 64 * 1024
    suffix = b'"}}}'
    if not chunked:
        headers["Content-Length"] = str(len(prefix) + filler + len(suffix))

    def chunks() -> Iterator[bytes]:
        yield prefix
        block = b"y" * 65536
        for _ in range(filler // len(block)):
            yield block
        yield suffix

    status, raw = raw_post(gateway.port, headers, chunks(), chunked)
    assert status == 413, raw[:500]


def test_large_body_below_limit_passes(era: Era) -> None:
    message = "z" * (1024 * 1024)
    r = era.post("tools/call", {"name": "everything__echo", "arguments": {"message": message}})
    assert r.status_code == 200, r.text[:500]
    msg = rpc_message(r)
    assert msg and msg["result"]["content"][0]["text"] == f"Echo: {message}"


def test_wrong_content_type(era: Era) -> None:
    assert_rejected(era.post("tools/list", headers={"Content-Type": "text/plain"}), 415)


def test_not_acceptable(era: Era) -> None:
    # neither application/json nor text/event-stream (httpx would add "Accept: */*" if we sent none)
    assert_rejected(era.post("tools/list", headers={"Accept": "text/html"}), 406)


def test_origin_forbidden(era: Era) -> None:
    assert_rejected(era.post("tools/list", headers={"Origin": "http://evil.example"}), 403)


def test_origin_loopback_allowed(era: Era, gateway: Gateway) -> None:
    r = era.post("tools/list", headers={"Origin": f"http://127.0.0.1:{gateway.port}"})
    assert r.status_code == 200, r.text[:500]
    assert any(t["name"] == "everything__echo" for t in rpc_message(r)["result"]["tools"])


# --------------------------------------------------------------------------- legacy only


@pytest.mark.parametrize("version", LEGACY_VERSIONS)
def test_legacy_initialize_each_version(gateway: Gateway, version: str) -> None:
    with httpx.Client(timeout=30) as client:
        session, result = legacy_initialize(client, gateway.url, version)
        assert result["protocolVersion"] == version
        assert "tools" in result["capabilities"]
        r = client.post(
            gateway.url,
            json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
            headers={"Content-Type": "application/json", "Accept": ACCEPT, "Mcp-Session-Id": session,
                     "MCP-Protocol-Version": version},
        )
        assert r.status_code == 200, r.text[:500]
        names = {t["name"] for t in rpc_message(r)["result"]["tools"]}
        assert {"everything__echo", "memory__read_graph", "web__echo"} <= names


def test_legacy_missing_session_after_initialize(gateway: Gateway) -> None:
    e = Era("legacy", gateway.url, LEGACY)
    e.session, _ = legacy_initialize(e.client, gateway.url)
    assert_rejected(e.post("tools/list", drop=("Mcp-Session-Id",)), 400)


def test_legacy_unknown_session(gateway: Gateway) -> None:
    e = Era("legacy", gateway.url, LEGACY, session=uuid.uuid4().hex)
    assert_rejected(e.post("tools/list"), 404)


def test_legacy_delete_session_then_reuse(gateway: Gateway) -> None:
    e = Era("legacy", gateway.url, LEGACY)
    e.session, _ = legacy_initialize(e.client, gateway.url)
    assert e.post("tools/list").status_code == 200
    r = e.client.delete(gateway.url, headers={"Mcp-Session-Id": e.session, "MCP-Protocol-Version": LEGACY})
    assert 200 <= r.status_code < 300, f"DELETE -> {r.status_code}: {r.text}"
    assert_rejected(e.post("tools/list"), 404)
    assert_rejected(e.post("tools/call", {"name": "everything__echo", "arguments": {"message": "x"}}), 404)


# --------------------------------------------------------------------------- modern only


def test_modern_discover(gateway: Gateway) -> None:
    e = Era("modern", gateway.url, MODERN_VERSION)
    r = e.post("server/discover")
    assert r.status_code == 200, r.text[:500]
    assert "mcp-session-id" not in r.headers, "a 2026-07-28 exchange must not mint a session"
    result = rpc_message(r)["result"]
    assert MODERN_VERSION in result["supportedVersions"]
    assert "tools" in result["capabilities"]


def test_modern_tools_list_and_call(gateway: Gateway) -> None:
    e = Era("modern", gateway.url, MODERN_VERSION)
    r = e.post("tools/list")
    assert r.status_code == 200, r.text[:500]
    result = rpc_message(r)["result"]
    assert result.get("resultType") == "complete"
    echo = next(t for t in result["tools"] if t["name"] == "everything__echo")
    assert echo["_meta"]["switchyard.dev/server"] == "everything"
    assert echo["_meta"]["switchyard.dev/name"] == "echo"
    r = e.post("tools/call", {"name": "everything__echo", "arguments": {"message": "raw"}})
    assert r.status_code == 200, r.text[:500]
    result = rpc_message(r)["result"]
    assert result["content"] == [{"type": "text", "text": "Echo: raw"}]
    assert result.get("resultType") == "complete"


def test_modern_unsupported_protocol_version(gateway: Gateway) -> None:
    """2026-07-28 Streamable HTTP: an unknown version -> 400 + UnsupportedProtocolVersion (-32022).
    (Beyond the issue's list, but what SDK clients in 'auto' mode rely on.)"""
    e = Era("modern", gateway.url, "2099-01-01")
    msg = assert_rpc_error(e.post("tools/list"), 400, -32022)
    assert MODERN_VERSION in msg["error"]["data"]["supported"]


def test_modern_header_mismatch(gateway: Gateway) -> None:
    """2026-07-28 Streamable HTTP: Mcp-Method/Mcp-Name disagreeing with the body -> 400 + -32020."""
    e = Era("modern", gateway.url, MODERN_VERSION)
    assert_rpc_error(e.post("tools/list", headers={"Mcp-Method": "prompts/list"}), 400, -32020)
    r = e.post("tools/call", {"name": "everything__echo", "arguments": {"message": "x"}},
               headers={"Mcp-Name": "everything__get-env"})
    assert_rpc_error(r, 400, -32020)


# --------------------------------------------------------------------------- a dead upstream


@pytest.mark.anyio
async def test_down_upstream_is_reported_and_the_rest_works(start_gateway: StartGateway) -> None:
    gw = start_gateway(
        [everything_stdio("everything"), {"name": "dead", "command": "/bin/false", "args": []}],
        settled=none_starting,
    )
    health = gw.health()
    states = {u["name"]: u["state"] for u in health["upstreams"]}
    assert states == {"everything": "ready", "dead": "down"}, health
    assert health["status"] == "degraded", health

    for mode in ("legacy", "modern"):
        async with connect_gateway(gw.url, mode) as client:
            tools = [t["name"] for t in await list_all(client, "tools")]
            assert "everything__echo" in tools
            assert not [t for t in tools if t.startswith("dead__")], tools
            result = await client.call_tool("everything__echo", {"message": f"still up ({mode})"})
            assert result.content[0].text == f"Echo: still up ({mode})"
            with pytest.raises(MCPError) as err:
                await client.call_tool("dead__anything", {})
            assert "dead" in err.value.error.message, err.value.error
