"""Fixtures for the end-to-end suite: the real gateway binary, real MCP servers.

- `free_port()` picks a free loopback port.
- `everything_http_url` (session): server-everything in Streamable HTTP mode, the HTTP upstream.
- `everything_sse_url` (session): server-everything in legacy SSE mode (`transport = "sse"`).
- `start_gateway` (function): writes a gateway TOML config to a tmp dir, starts
  `$SWITCHYARD_BIN run --config FILE`, polls GET /health until every upstream is
  ready (60 s, then fails with the gateway's stderr), and at teardown sends SIGTERM
  and checks the gateway exits 0 within 10 s.
- `gateway` (function): the standard gateway: everything (stdio), memory (stdio),
  web (HTTP).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness import (
    EVERYTHING_JS,
    REPO,
    Upstream,
    everything_http,
    everything_stdio,
    memory_stdio,
    node_executable,
)

HEALTH_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
ENV_TOKEN_VAR = "SWITCHYARD_E2E_TOKEN"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A free loopback port below the kernel's ephemeral range: a port from `bind(0)` is given back
    at once and may become the source port of some test's next connection before the server binds
    it (EADDRINUSE). Below the range only explicit binds compete."""
    top, bottom = _ephemeral_floor(), 20000
    for _ in range(200 if top > bottom + 1000 else 0):
        port = secrets.randbelow(top - bottom) + bottom
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def switchyard_bin() -> Path:
    path = Path(os.environ.get("SWITCHYARD_BIN") or REPO / "target" / "release" / "switchyard")
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(f"gateway binary not found at {path}: build it (tests/run.sh does) or set SWITCHYARD_BIN")
    return path


# --------------------------------------------------------------------------- TOML


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {v!r} as TOML")


def gateway_toml(listen: str, servers: Sequence[dict[str, Any]], shards: int | None = 2) -> str:
    lines = ["[gateway]", f"listen = {_toml_value(listen)}"]
    if shards is not None:
        lines.append(f"shards = {shards}")
    for server in servers:
        lines += ["", "[[servers]]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in server.items()]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- processes


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"process exited with {proc.returncode} before listening on {port}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"nothing listening on {port} after {timeout} s:\n{log.read_text()}")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Best effort: whatever is left in the process group we started (the process's own
    children, if it did not reap them)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _everything_server(mode: str, path: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """server-everything over HTTP: `PORT=<port> node dist/index.js <mode>`; yields
    http://127.0.0.1:<port><path> (it listens on all interfaces; we only use loopback)."""
    port = free_port()
    log = tmp_path_factory.mktemp(f"everything-{mode}") / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [node_executable(), str(EVERYTHING_JS), mode],
            env={**os.environ, "PORT": str(port)},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,
        )
    try:
        _wait_for_port(port, proc, log)
        yield f"http://127.0.0.1:{port}{path}"
    finally:
        proc.send_signal(signal.SIGINT)  # streamableHttp closes its transports and exits 0; sse just exits
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        _kill_group(proc)


@pytest.fixture(scope="session")
def everything_http_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """server-everything in Streamable HTTP mode, endpoint http://127.0.0.1:<port>/mcp."""
    yield from _everything_server("streamableHttp", "/mcp", tmp_path_factory)


@pytest.fixture(scope="session")
def everything_sse_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """server-everything in legacy (2024-11-05) SSE mode: GET http://127.0.0.1:<port>/sse, which
    names POST /message?sessionId=… as its endpoint."""
    yield from _everything_server("sse", "/sse", tmp_path_factory)


@dataclass
class Gateway:
    proc: subprocess.Popen[bytes]
    addr: str
    workdir: Path
    config_path: Path
    stderr_path: Path
    upstreams: list[Upstream] = field(default_factory=list)
    env_token: str = ""

    @property
    def base(self) -> str:
        return f"http://{self.addr}"

    @property
    def url(self) -> str:
        return f"http://{self.addr}/mcp"

    @property
    def port(self) -> int:
        return int(self.addr.rsplit(":", 1)[1])

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def health(self) -> dict[str, Any]:
        r = httpx.get(f"{self.base}/health", timeout=5)
        assert r.status_code == 200, f"GET /health -> {r.status_code}: {r.text}"
        return r.json()

    def wait_healthy(self, settled: Callable[[dict[str, Any]], bool], timeout: float = HEALTH_TIMEOUT_S) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(
                    f"gateway exited with {self.proc.returncode} while starting\n"
                    f"config:\n{self.config_path.read_text()}\nstderr:\n{self.stderr()}"
                )
            try:
                r = httpx.get(f"{self.base}/health", timeout=2)
                if r.status_code == 200:
                    last = r.json()
                    if settled(last):
                        return last
                else:
                    last = f"HTTP {r.status_code}: {r.text[:500]}"
            except (httpx.HTTPError, ValueError) as e:
                last = repr(e)
            time.sleep(0.1)
        pytest.fail(
            f"gateway not healthy after {timeout} s; last /health: {last}\n"
            f"config:\n{self.config_path.read_text()}\nstderr:\n{self.stderr()}"
        )

    def stop(self) -> int | None:
        """SIGTERM, then wait up to 10 s. Returns the exit code, or None if it had to be killed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                _kill_group(self.proc)
                return None
        _kill_group(self.proc)
        return self.proc.returncode


def all_ready(health: dict[str, Any]) -> bool:
    ups = health.get("upstreams") or []
    return bool(ups) and all(u.get("state") == "ready" for u in ups)


def none_starting(health: dict[str, Any]) -> bool:
    ups = health.get("upstreams") or []
    return bool(ups) and all(u.get("state") in ("ready", "down") for u in ups)


StartGateway = Callable[..., Gateway]


@pytest.fixture
def start_gateway(tmp_path: Path) -> Iterator[StartGateway]:
    """Factory: start_gateway([Upstream | raw server dict, ...], *, settled=all_ready,
    config_path=None, listen_override=None, shards=2, extra_env=None) -> Gateway.

    Without config_path it writes the config (listen = a free loopback port); with one it
    runs that file and adds --listen 127.0.0.1:<free port>. Every gateway started is
    stopped at teardown, which fails unless it exits 0 within 10 s of SIGTERM."""
    started: list[Gateway] = []
    binary = switchyard_bin()

    def start(
        servers: Sequence[Upstream | dict[str, Any]] = (),
        *,
        settled: Callable[[dict[str, Any]], bool] = all_ready,
        config_path: Path | None = None,
        listen_override: bool | None = None,
        shards: int | None = 2,
        extra_env: dict[str, str] | None = None,
    ) -> Gateway:
        n = len(started)
        workdir = tmp_path / f"gateway{n}"
        workdir.mkdir()
        addr = f"127.0.0.1:{free_port()}"
        token = secrets.token_hex(8)
        upstreams = [s for s in servers if isinstance(s, Upstream)]
        if config_path is None:
            entries = []
            for s in servers:
                if isinstance(s, Upstream):
                    extra = {}
                    if s.profile == "everything" and not s.url:
                        # exercised by test_gateway_basics: ${VAR} expansion from the gateway's env
                        extra = {"SWITCHYARD_E2E_EXPANDED": "x-${" + ENV_TOKEN_VAR + "}-y"}
                    entries.append(s.toml_entry(extra))
                else:
                    entries.append(s)
            config_path = workdir / "switchyard.toml"
            config_path.write_text(gateway_toml(addr, entries, shards))
        if listen_override is None:
            listen_override = config_path.parent != workdir  # a config we did not write: override its listen
        listen_args = ["--listen", addr] if listen_override else []
        env = dict(os.environ)
        env[ENV_TOKEN_VAR] = token
        env.setdefault("RUST_BACKTRACE", "1")
        # configs that start the built-in demo servers (config/switchyard.toml says
        # command = "${SWITCHYARD_BIN}") run the binary under test
        env["SWITCHYARD_BIN"] = str(binary)
        env["PATH"] = f"{binary.parent}{os.pathsep}{env.get('PATH', '')}"
        env.update(extra_env or {})
        stderr_path = workdir / "stderr.log"
        with stderr_path.open("wb") as err, (workdir / "stdout.log").open("wb") as out:
            proc = subprocess.Popen(
                [str(binary), "run", "--config", str(config_path), *listen_args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=REPO,
                env=env,
                start_new_session=True,
            )
        gw = Gateway(proc, addr, workdir, config_path, stderr_path, upstreams, token)
        started.append(gw)
        gw.wait_healthy(settled)
        return gw

    yield start

    problems = []
    for gw in started:
        rc = gw.stop()
        if rc != 0:
            what = "did not exit within 10 s of SIGTERM" if rc is None else f"exited {rc} after SIGTERM"
            problems.append(f"gateway {gw.addr} {what}; stderr tail:\n{gw.stderr()[-4000:]}")
    if problems:
        pytest.fail("\n\n".join(problems))


@pytest.fixture
def standard_upstreams(tmp_path: Path, everything_http_url: str) -> list[Upstream]:
    """everything (stdio), memory (stdio, its own tmp storage), web (Streamable HTTP)."""
    return [
        everything_stdio("everything"),
        memory_stdio(tmp_path / "gateway-memory.jsonl", "memory"),
        everything_http(everything_http_url, "web"),
    ]


@pytest.fixture
def gateway(start_gateway: StartGateway, standard_upstreams: list[Upstream]) -> Gateway:
    return start_gateway(standard_upstreams)


@pytest.fixture
def direct_memory_file(tmp_path: Path) -> Path:
    return tmp_path / "direct-memory.jsonl"


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [
        f"switchyard binary: {os.environ.get('SWITCHYARD_BIN') or REPO / 'target/release/switchyard'}",
        f"python: {sys.version.split()[0]}",
    ]

