#!/usr/bin/env python3
"""Medians of perf/headline.sh's raw results (one JSON per target and round) as a Markdown table."""
import collections
import glob
import json
import os
import statistics
import sys

LABELS = {
    "floor": "stdio floor (no gateway)",
    "sy1-io_uring": "switchyard, 1 shard, io_uring",
    "sy1-epoll": "switchyard, 1 shard, epoll",
    "syN-io_uring": "switchyard, 1 shard per core, io_uring",
    "syN-epoll": "switchyard, 1 shard per core, epoll",
    "sy1-io_uring-2026": "switchyard, 1 shard, io_uring, client 2026-07-28",
    "pymcp": "Python mcp-proxy 0.13.0",
    "npmmcp": "npm mcp-proxy 6.7.19",
    "mcplex": "MCPlex 0.3.0 (ac44aa6)",
    "cforge": "ContextForge 1.0.7.post20260921",
}


def us(v):
    return f"{v / 1000:.2f} ms" if v >= 1000 else f"{v:.0f} µs"


def main(folder):
    runs = collections.defaultdict(list)
    for path in sorted(glob.glob(os.path.join(folder, "*.r*.json"))):
        with open(path) as f:
            r = json.load(f)
        runs[r["target"]].append(r)
    order = [t for t in LABELS if t in runs] + sorted(t for t in runs if t not in LABELS)
    floor = None
    if "floor" in runs:
        floor = statistics.median(r["at8"]["throughput_rps"] for r in runs["floor"])
    print("| target | era | req/s at 8 in flight (median; min–max) | × floor | p50 at 1 in flight "
          "| p50 at 8 | p99 at 8 | errors (all rounds) | RSS after load / peak | rounds |")
    print("|---|---|---:|---:|---:|---:|---:|---|---:|---:|")
    for t in order:
        rs = runs[t]
        rps = [r["at8"]["throughput_rps"] for r in rs]
        med = statistics.median(rps)
        p50_1 = statistics.median(r["at1"]["latency_us"]["p50"] for r in rs)
        p50_8 = statistics.median(r["at8"]["latency_us"]["p50"] for r in rs)
        p99_8 = statistics.median(r["at8"]["latency_us"]["p99"] for r in rs)
        kinds = collections.Counter()
        total = 0
        for r in rs:
            for k in ("at8", "at1"):
                total += r[k]["requests"]
                kinds.update(r[k].get("errors_by_kind", {}))
        errs = sum(kinds.values())
        err_txt = "0" if not errs else f"{errs} of {total}: " + ", ".join(f"{k} {v}" for k, v in kinds.items())
        if t == "floor":
            rss = "—"
        else:
            rss = f"{statistics.median(r['rss_kb'] for r in rs) / 1024:.1f} / {max(r['hwm_kb'] for r in rs) / 1024:.1f} MB"
        ratio = f"{med / floor:.2f}" if floor else "—"
        era = rs[0]["at8"].get("era", "?") if t != "floor" else "stdio"
        print(f"| {LABELS.get(t, t)} | {era} | {med:,.0f} ({min(rps):,.0f}–{max(rps):,.0f}) | {ratio} | "
              f"{us(p50_1)} | {us(p50_8)} | {us(p99_8)} | {err_txt} | {rss} | {len(rs)} |")
    wrk = [(r["target"], r["round"], r["wrk"]) for t in order for r in runs[t] if r.get("wrk")]
    if wrk:
        print()
        print("Cross-check with wrk (-t1 -c8, perf/wrk/mcp-post.lua), same slot as the loadtest run:")
        print()
        for t, rnd, line in wrk:
            lt = next(r["at8"]["throughput_rps"] for r in runs[t] if r["round"] == rnd)
            print(f"- {LABELS.get(t, t)}, round {rnd}: wrk {line.strip()} — loadtest {lt:,.0f} req/s")


if __name__ == "__main__":
    main(sys.argv[1])
