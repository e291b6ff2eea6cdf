"""20 concurrent SDK sessions calling everything__echo with distinct messages each get
their own answer back (no cross-talk between sessions, shards or upstream requests)."""

from __future__ import annotations

import anyio
import pytest
from conftest import Gateway
from harness import connect_gateway

pytestmark = pytest.mark.anyio

SESSIONS = 20
CALLS_PER_SESSION = 5


@pytest.mark.parametrize("mode", ["legacy", "modern"])
async def test_concurrent_sessions_get_their_own_answers(gateway: Gateway, mode: str) -> None:
    answers: dict[int, list[str]] = {}
    ready = anyio.Event()
    connected = 0

    async def session(i: int) -> None:
        nonlocal connected
        async with connect_gateway(gateway.url, mode) as client:
            connected += 1
            if connected == SESSIONS:
                ready.set()
            await ready.wait()  # all sessions open at once before anyone calls
            got: list[str] = []
            async with anyio.create_task_group() as tg:
                async def call(j: int) -> None:
                    message = f"session {i} call {j} {'x' * (i * 37 + j)}"
                    result = await client.call_tool("everything__echo", {"message": message})
                    assert not result.is_error, result
                    got.append(result.content[0].text)
                    assert result.content[0].text == f"Echo: {message}", (i, j, result.content[0].text[:80])

                for j in range(CALLS_PER_SESSION):
                    tg.start_soon(call, j)
            answers[i] = got

    with anyio.fail_after(120):
        async with anyio.create_task_group() as tg:
            for i in range(SESSIONS):
                tg.start_soon(session, i)
    assert sorted(answers) == list(range(SESSIONS))
    assert all(len(v) == CALLS_PER_SESSION for v in answers.values())
