#!/usr/bin/env python3
"""Write the speed catalog: the 589 real tools of catalog.json plus synthetic ones up to 10,000
tools, in CATALOG.json form — so `route-eval` with the real queries measures quality and speed
with the real tools hidden among ~9,400 look-alikes.

Names are verb + resource in the naming styles real servers use (snake_case, camelCase,
kebab-case, server-prefixed); descriptions mix a templated summary with a sentence taken from a
real tool of tests/data/routing/catalog.json, so the vocabulary and the lengths look like the real
thing; each tool has 1-6 parameters. Deterministic (seeded): the same file every run.

    python3 tests/routing/synth_catalog.py            # -> tests/data/routing/synthetic-10k.json
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "data" / "routing"

VERBS = ["get", "list", "create", "update", "delete", "search", "archive", "restore", "export",
         "import", "sync", "approve", "assign", "schedule", "cancel", "publish", "validate",
         "merge", "tag", "count", "summarize", "preview", "clone", "move", "lock", "unlock"]
RESOURCES = ["invoice", "customer", "order", "shipment", "ticket", "incident", "alert", "dashboard",
             "report", "metric", "dataset", "table", "bucket", "object", "secret", "certificate",
             "domain", "record", "deployment", "container", "volume", "snapshot", "backup",
             "schedule", "calendar event", "meeting", "contact", "lead", "campaign", "segment",
             "experiment", "feature flag", "release", "build", "artifact", "package", "repository",
             "branch", "commit", "review", "comment", "attachment", "folder", "file", "spreadsheet",
             "row", "column", "form", "survey", "response", "user", "group", "role", "permission",
             "api key", "webhook", "integration", "workflow", "job", "queue", "message", "channel",
             "thread", "note", "task", "project", "milestone", "sprint", "epic", "label", "product",
             "price", "coupon", "subscription", "payment", "refund", "payout", "account", "ledger",
             "budget", "expense", "receipt", "vendor", "contract", "asset", "location", "device"]
DOMAINS = ["billing", "crm", "devops", "analytics", "storage", "security", "marketing", "support",
           "hr", "finance", "logistics", "calendar", "docs", "chat", "monitoring", "search", "cms",
           "inventory", "payments", "identity"]
PARAMS = [("id", "The unique identifier of the {r}"), ("name", "Display name of the {r}"),
          ("limit", "Maximum number of results to return (default 20)"),
          ("cursor", "Pagination cursor from a previous call"),
          ("query", "Free-text search query over {r} fields"),
          ("status", "Filter by status: active, archived or draft"),
          ("owner", "User who owns the {r}"), ("tags", "Labels attached to the {r}"),
          ("created_after", "Only items created after this ISO 8601 date"),
          ("dry_run", "Validate without applying the change"),
          ("workspace_id", "Workspace the {r} belongs to"),
          ("format", "Output format: json, csv or markdown")]


def style(verb: str, res: str, server: str, k: int) -> str:
    words = [verb] + res.split()
    if k == 0:
        return "_".join(words)
    if k == 1:
        return words[0] + "".join(w.capitalize() for w in words[1:])
    if k == 2:
        return "-".join(words)
    return server.replace("-", "_") + "_" + "_".join(words)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tools", type=int, default=10_000)
    ap.add_argument("--per-server", type=int, default=50)
    ap.add_argument("--out", default=str(DATA / "synthetic-10k.json"))
    ap.add_argument("--synthetic-only", action="store_true", help="leave the real tools out")
    opts = ap.parse_args()
    rng = random.Random(20261124)
    real = json.load(open(DATA / "catalog.json", encoding="utf-8"))
    sentences = []
    for server in real["servers"]:
        for tool in server["tools"]:
            for s in re.split(r"(?<=[.!?])\s+", " ".join(str(tool.get("description") or "").split())):
                if 20 <= len(s) <= 160:
                    sentences.append(s)
    servers = [] if opts.synthetic_only else list(real["servers"])
    made = sum(len(s["tools"]) for s in servers)
    n = 0
    while made < opts.tools:
        domain = DOMAINS[n % len(DOMAINS)]
        server = f"{domain}-{n // len(DOMAINS) + 1:02d}"
        k = rng.randrange(4)
        tools, seen = [], set()
        while len(tools) < min(opts.per_server, opts.tools - made):
            verb, res = rng.choice(VERBS), rng.choice(RESOURCES)
            name = style(verb, res, server, k)
            if name in seen:
                continue
            seen.add(name)
            props = {}
            for pname, pdesc in rng.sample(PARAMS, rng.randint(1, 6)):
                props[pname] = {"type": "string", "description": pdesc.format(r=res)}
            summary = f"{verb.capitalize()} a {res} in the {domain} service."
            tools.append({
                "name": name,
                "description": f"{summary} {rng.choice(sentences)}",
                "inputSchema": {"type": "object", "properties": props},
            })
        made += len(tools)
        servers.append({"name": server, "tools": tools})
        n += 1
    Path(opts.out).write_text(json.dumps({"servers": servers}, separators=(",", ":")) + "\n")
    print(f"{made} tools on {len(servers)} servers -> {opts.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
