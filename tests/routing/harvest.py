#!/usr/bin/env python3
"""Re-harvest the routing development catalog: the real `tools/list` of real MCP servers.

Installs the pinned servers below into a scratch directory OUTSIDE the repo (npm packages with
`npm install`, PyPI packages into a venv there), starts each over stdio with dummy credentials,
runs `initialize` + `notifications/initialized` + `tools/list` (following `nextCursor`), and writes
the result as CATALOG.json: {"servers":[{"name", "package", "version", "tools":[...]}]}.

    python3 tests/routing/harvest.py                      # install + harvest -> tests/data/routing/catalog.json
    python3 tests/routing/harvest.py --skip-install --only github,slack --out /tmp/x.json

Only the servers' tool lists (data) land in the repo; their code stays in the scratch directory.
Needs node/npm and python3 (with venv); reaches only the npm registry and PyPI.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

# name, ecosystem, package, version, args (after the entry point), extra env.
# `{scratch}` in args expands to the scratch directory. Credentials are dummies: listing tools
# needs none of them, calling would. Left out: server-redis (exits without a Redis to connect to),
# @supabase/mcp-server-supabase (lists tools from its API), @stripe/mcp 0.3 (a proxy to a remote
# server; 0.2.5 still lists its tools locally).
SERVERS: list[tuple[str, str, str, str, list[str], dict[str, str]]] = [
    ("everything", "npm", "@modelcontextprotocol/server-everything", "2026.8.31", ["stdio"], {}),
    ("memory", "npm", "@modelcontextprotocol/server-memory", "2026.8.31", [],
     {"MEMORY_FILE_PATH": "{scratch}/memory.jsonl"}),
    ("filesystem", "npm", "@modelcontextprotocol/server-filesystem", "2026.8.31", ["{scratch}"], {}),
    ("github", "npm", "@modelcontextprotocol/server-github", "2025.4.8", [],
     {"GITHUB_PERSONAL_ACCESS_TOKEN": "dummy"}),
    ("gitlab", "npm", "@modelcontextprotocol/server-gitlab", "2025.4.25", [],
     {"GITLAB_PERSONAL_ACCESS_TOKEN": "dummy", "GITLAB_API_URL": "https://gitlab.invalid/api/v4"}),
    ("slack", "npm", "@modelcontextprotocol/server-slack", "2025.4.25", [],
     {"SLACK_BOT_TOKEN": "xoxb-dummy", "SLACK_TEAM_ID": "T00000000"}),
    ("postgres", "npm", "@modelcontextprotocol/server-postgres", "0.6.2",
     ["postgresql://localhost:1/none"], {}),
    ("puppeteer", "npm", "@modelcontextprotocol/server-puppeteer", "2025.5.12", [], {}),
    ("brave-search", "npm", "@modelcontextprotocol/server-brave-search", "0.6.2", [],
     {"BRAVE_API_KEY": "dummy"}),
    ("google-maps", "npm", "@modelcontextprotocol/server-google-maps", "0.6.2", [],
     {"GOOGLE_MAPS_API_KEY": "dummy"}),
    ("sequential-thinking", "npm", "@modelcontextprotocol/server-sequential-thinking", "2026.8.31", [], {}),
    ("aws-kb-retrieval", "npm", "@modelcontextprotocol/server-aws-kb-retrieval", "0.6.2", [],
     {"AWS_ACCESS_KEY_ID": "dummy", "AWS_SECRET_ACCESS_KEY": "dummy", "AWS_REGION": "us-east-1"}),
    ("everart", "npm", "@modelcontextprotocol/server-everart", "0.6.2", [], {"EVERART_API_KEY": "dummy"}),
    ("playwright", "npm", "@playwright/mcp", "0.0.83", [], {}),
    ("notion", "npm", "@notionhq/notion-mcp-server", "2.5.2", [], {"NOTION_TOKEN": "ntn_dummy"}),
    ("stripe", "npm", "@stripe/mcp", "0.2.5", ["--tools=all", "--api-key=sk_test_dummy"], {}),
    ("sentry", "npm", "@sentry/mcp-server", "0.39.0", ["--access-token=dummy"], {}),
    ("mongodb", "npm", "mongodb-mcp-server", "3.0.4", [], {}),
    ("kubernetes", "npm", "mcp-server-kubernetes", "4.1.7", [], {}),
    ("jira", "npm", "@aashari/mcp-server-atlassian-jira", "3.3.0", [],
     {"ATLASSIAN_SITE_NAME": "dummy", "ATLASSIAN_USER_EMAIL": "a@b.c", "ATLASSIAN_API_TOKEN": "dummy"}),
    ("linear", "npm", "@tacticlaunch/mcp-linear", "1.4.3", [], {"LINEAR_API_TOKEN": "lin_api_dummy"}),
    ("circleci", "npm", "@circleci/mcp-server-circleci", "0.20.0", [], {"CIRCLECI_TOKEN": "dummy"}),
    ("firecrawl", "npm", "firecrawl-mcp", "3.26.0", [], {"FIRECRAWL_API_KEY": "fc-dummy"}),
    ("tavily", "npm", "tavily-mcp", "0.2.22", [], {"TAVILY_API_KEY": "tvly-dummy"}),
    ("hubspot", "npm", "@hubspot/mcp-server", "0.4.0", [], {"PRIVATE_APP_ACCESS_TOKEN": "dummy"}),
    ("chrome-devtools", "npm", "chrome-devtools-mcp", "1.11.0", [], {}),
    ("todoist", "npm", "todoist-mcp", "1.3.4", [], {"API_KEY": "dummy", "TODOIST_API_TOKEN": "dummy"}),
    ("git", "pypi", "mcp-server-git", "2026.10.19", [], {}),
    ("fetch", "pypi", "mcp-server-fetch", "2026.10.24", [], {}),
    ("time", "pypi", "mcp-server-time", "2026.10.19", ["--local-timezone=UTC"], {}),
    ("sqlite", "pypi", "mcp-server-sqlite", "2025.4.25", ["--db-path", "{scratch}/test.db"], {}),
]

# mcp-server-sqlite 2025.4.25 uses decorators that `mcp` 2.x removed.
PIP_EXTRA = {"mcp-server-sqlite": ["mcp<2"]}

PROTOCOL = "2025-06-18"
TIMEOUT_S = 90.0


def install(scratch: Path, servers) -> None:
    npm = {p: v for (_, eco, p, v, _, _) in servers if eco == "npm"}
    pypi = {p: v for (_, eco, p, v, _, _) in servers if eco == "pypi"}
    env = dict(os.environ, PUPPETEER_SKIP_DOWNLOAD="1", PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1")
    if npm:
        (scratch / "package.json").write_text(
            json.dumps({"name": "harvest", "private": True, "dependencies": npm}, indent=1))
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
                       cwd=scratch, env=env, check=True)
    # One venv per PyPI server: their pins of the `mcp` SDK differ.
    for package, version in pypi.items():
        venv = scratch / f"venv-{package}"
        if not (venv / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"{package}=={version}"]
                       + PIP_EXTRA.get(package, []), check=True)


def entry(scratch: Path, eco: str, package: str) -> list[str]:
    if eco == "pypi":
        return [str(scratch / f"venv-{package}" / "bin" / package)]
    pkg_dir = scratch / "node_modules" / package
    meta = json.loads((pkg_dir / "package.json").read_text())
    bin_ = meta.get("bin")
    if isinstance(bin_, dict):
        bin_ = next(iter(bin_.values()))
    if not bin_:
        bin_ = meta.get("main", "index.js")
    return ["node", str(pkg_dir / bin_)]


class Peer:
    """A stdio MCP server: newline-delimited JSON-RPC; non-JSON stdout lines are skipped."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=env, cwd=cwd)
        self.buf = b""
        self.next_id = 1

    def send(self, msg: dict) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(msg).encode() + b"\n")
        self.proc.stdin.flush()

    def request(self, method: str, params: dict, deadline: float) -> dict:
        rid = self.next_id
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        while True:
            msg = self.read(deadline)
            if msg.get("id") == rid and ("result" in msg or "error" in msg):
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]
            if "method" in msg and "id" in msg:  # a server->client request: refuse it
                self.send({"jsonrpc": "2.0", "id": msg["id"],
                           "error": {"code": -32601, "message": "not supported"}})

    def read(self, deadline: float) -> dict:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if isinstance(msg, dict):
                    return msg
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer in time")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    raise RuntimeError(f"server exited (code {self.proc.poll()})")
                self.buf += chunk

    def close(self) -> None:
        try:
            self.proc.kill()
        finally:
            self.proc.wait()


def harvest_one(scratch: Path, server) -> list[dict]:
    name, eco, package, _version, args, extra = server
    argv = entry(scratch, eco, package) + [a.replace("{scratch}", str(scratch)) for a in args]
    env = dict(os.environ)
    env.update({k: v.replace("{scratch}", str(scratch)) for k, v in extra.items()})
    peer = Peer(argv, env, scratch)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        peer.request("initialize", {
            "protocolVersion": PROTOCOL, "capabilities": {},
            "clientInfo": {"name": "switchyard-harvest", "version": "0.1.0"}}, deadline)
        peer.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        tools: list[dict] = []
        cursor = None
        while True:
            params = {"cursor": cursor} if cursor else {}
            res = peer.request("tools/list", params, deadline)
            tools.extend(res.get("tools", []))
            cursor = res.get("nextCursor")
            if not cursor:
                return tools
    finally:
        peer.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", default="/tmp/harvest", help="scratch directory (outside the repo)")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "data" / "routing" / "catalog.json"))
    ap.add_argument("--skip-install", action="store_true")
    ap.add_argument("--only", default="", help="comma-separated server names")
    opts = ap.parse_args()
    scratch = Path(opts.dir).resolve()
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / "raw").mkdir(exist_ok=True)
    servers = [s for s in SERVERS if not opts.only or s[0] in opts.only.split(",")]
    if not opts.skip_install:
        install(scratch, servers)
    out = []
    for server in servers:
        name, _, package, version = server[:4]
        try:
            tools = harvest_one(scratch, server)
        except Exception as e:  # noqa: BLE001 - report and go on with the next server
            print(f"{name:22} FAILED: {e}", file=sys.stderr)
            continue
        (scratch / "raw" / f"{name}.json").write_text(json.dumps({"tools": tools}, indent=1))
        print(f"{name:22} {len(tools):4} tools  ({package}@{version})", file=sys.stderr)
        out.append({"name": name, "package": package, "version": version, "tools": tools})
    Path(opts.out).write_text(json.dumps({"servers": out}, indent=1, ensure_ascii=False) + "\n")
    total = sum(len(s["tools"]) for s in out)
    print(f"{len(out)} servers, {total} tools -> {opts.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
