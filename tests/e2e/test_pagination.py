"""The official Python SDK listing the gateway's merged lists in pages (gateway.page_size),
in both eras: it follows nextCursor to the same entries a whole-list gateway returns, a cursor
it did not get from the gateway is refused with -32602, and 2026-07-28 pages carry the
caching hints (the same scope on every page)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import StartGateway, gateway_toml, switchyard_bin
from harness import KINDS, connect_gateway, everything_stdio, list_all
from mcp.shared.exceptions import MCPError

pytestmark = pytest.mark.anyio

PAGE = 4


def _servers() -> list[dict]:
    binary = str(switchyard_bin())
    return [
        everything_stdio("everything").toml_entry(),
        {"name": "notes", "command": binary, "args": ["demo-server", "notes"]},
        {"name": "util", "command": binary, "args": ["demo-server", "util"]},
    ]


def _config(tmp_path: Path, name: str, page_size: int) -> Path:
    # listen is replaced by start_gateway (--listen), so any address does here
    text = gateway_toml("127.0.0.1:1", _servers())
    text = text.replace("[gateway]\n", f"[gateway]\npage_size = {page_size}\n", 1)
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("mode", ["legacy", "modern"])
async def test_sdk_follows_gateway_cursors_to_the_whole_list(
    start_gateway: StartGateway, tmp_path: Path, mode: str
) -> None:
    whole = start_gateway(config_path=_config(tmp_path, "whole.toml", 0))
    paged = start_gateway(config_path=_config(tmp_path, "paged.toml", PAGE))
    async with connect_gateway(whole.url, mode) as client:
        expected = {kind: await list_all(client, kind) for kind in KINDS}
    assert len(expected["tools"]) > 3 * PAGE, [t["name"] for t in expected["tools"]]

    async with connect_gateway(paged.url, mode) as client:
        for kind, want in expected.items():
            got = await list_all(client, kind)
            assert got == want, f"{kind}: paged listing differs from the whole one"

        # Page by page with the SDK's own calls: at most PAGE entries, a cursor until the end.
        pages = []
        cursor = None
        while True:
            page = await client.list_tools(cursor=cursor)
            pages.append(page)
            cursor = page.next_cursor
            if not cursor:
                break
        sizes = [len(p.tools) for p in pages]
        assert len(pages) == -(-len(expected["tools"]) // PAGE), sizes
        assert all(0 < n <= PAGE for n in sizes), sizes
        if mode == "modern":
            # server-everything is a legacy server: the merged list is private, stale at once.
            assert {(p.ttl_ms, p.cache_scope) for p in pages} == {(0, "private")}

        # A cursor the gateway never issued, and one edited by the client.
        first = pages[0].next_cursor
        assert first
        edited = first[:-2] + ("AA" if not first.endswith("AA") else "BB")
        for bad in ("eyJwYWdlIjogM30=", edited):
            with pytest.raises(MCPError) as err:
                await client.list_tools(cursor=bad)
            assert err.value.error.code == -32602, err.value.error
            assert "Invalid cursor" in err.value.error.message
        # A tools/list cursor is no prompts/list cursor.
        with pytest.raises(MCPError) as err:
            await client.list_prompts(cursor=first)
        assert err.value.error.code == -32602
