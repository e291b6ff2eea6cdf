#!/usr/bin/env python3
"""perf/figures.sh's raw results as Markdown: saturation, half-load latency, instructions, RSS."""
import glob
import json
import os
import statistics
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def runs(folder, pattern):
    return [load(p) for p in sorted(glob.glob(os.path.join(folder, pattern)))]


def med(rs, key, q=None):
    return statistics.median(r[key][q] if q else r[key] for r in rs)


def errors(rs):
    return sum(r["errors"] for r in rs)


def totals(path):
    with open(path) as f:
        for line in f:
            if line.startswith("totals:"):
                return int(line.split()[1])
    raise ValueError(f"no totals in {path}")


def main(folder, drivers):
    drivers = drivers.split()
    print("## Saturated tools/call (closed loop, 8 agents) and one agent")
    print()
    print("| target | req/s (median; min–max) | × direct | p50 at 8 | p99 at 8 | p50 at 1 agent | added p50 at 1 | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    direct = runs(folder, "sat-direct.r*.json")
    d_rps = med(direct, "throughput_rps")
    d_one = med(runs(folder, "one-direct.r*.json"), "latency_us", "p50")
    for t in ["direct"] + drivers:
        sat = runs(folder, f"sat-{t}.r*.json")
        one = runs(folder, f"one-{t}.r*.json")
        rps = [r["throughput_rps"] for r in sat]
        p50_1 = med(one, "latency_us", "p50")
        added = "—" if t == "direct" else f"{p50_1 - d_one:+.0f} µs"
        label = "direct (no gateway)" if t == "direct" else f"switchyard, {t}"
        print(f"| {label} | {statistics.median(rps):,.0f} ({min(rps):,.0f}–{max(rps):,.0f}) | "
              f"{statistics.median(rps) / d_rps:.2f} | {med(sat, 'latency_us', 'p50'):.0f} µs | "
              f"{med(sat, 'latency_us', 'p99'):.0f} µs | {p50_1:.0f} µs | {added} | {errors(sat) + errors(one)} |")
    print()
    print("## Added latency at 50% of the gateway's saturated rate (open loop, 8 agents)")
    print()
    print("| driver | rate | direct p50 / p99 | through p50 / p99 | added p50 | added p99 | generator lag p99 | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for d in drivers:
        rate = open(os.path.join(folder, f"half-{d}.rate")).read().strip()
        dr = runs(folder, f"half-{d}-direct.r*.json")
        gw = runs(folder, f"half-{d}-gw.r*.json")
        if not dr or not gw:
            continue
        dp50, dp99 = med(dr, "latency_us", "p50"), med(dr, "latency_us", "p99")
        gp50, gp99 = med(gw, "latency_us", "p50"), med(gw, "latency_us", "p99")
        lag = max(r["scheduler_lag_us"]["p99"] for r in dr + gw)
        print(f"| {d} | {rate}/s | {dp50:.0f} / {dp99:.0f} µs | {gp50:.0f} / {gp99:.0f} µs | "
              f"{gp50 - dp50:+.0f} µs | {gp99 - dp99:+.0f} µs | {lag} µs (worst round) | {errors(dr) + errors(gw)} |")
    cg = [d for d in drivers if os.path.exists(os.path.join(folder, f"callgrind-{d}.out.4"))]
    if cg:
        print()
        print("## User-space instructions per proxied tools/call (callgrind, whole gateway process)")
        print()
        print("| driver | load | calls N1 → N2 | Ir N1 → N2 | instructions per call |")
        print("|---|---|---:|---:|---:|")
        for d in cg:
            for label, a, b, parts in (("200/s, 1 agent", "rate-n1", "rate-n2", (1, 2)),
                                       ("closed loop, 8 agents", "closed-n1", "closed-n2", (3, 4))):
                r1 = load(os.path.join(folder, f"cg-{d}-{a}.json"))
                r2 = load(os.path.join(folder, f"cg-{d}-{b}.json"))
                n1, n2 = r1["requests"], r2["requests"]
                i1 = totals(os.path.join(folder, f"callgrind-{d}.out.{parts[0]}"))
                i2 = totals(os.path.join(folder, f"callgrind-{d}.out.{parts[1]}"))
                per = (i2 - i1) / (n2 - n1) if n2 != n1 else float("nan")
                err = r1["errors"] + r2["errors"]
                note = f" ({err} errors)" if err else ""
                print(f"| {d} | {label} | {n1:,} → {n2:,}{note} | {i1:,} → {i2:,} | {per:,.0f} |")
    rss = runs(folder, "rss-*.sessions.json")
    if rss:
        print()
        print("## RSS with 1,000 open legacy sessions (1,000 agents, one connection each)")
        print()
        print("| driver | idle | with 1,000 sessions (peak during the run) | per session | after they closed | errors |")
        print("|---|---:|---:|---:|---:|---:|")
        for r in rss:
            d = r["driver"]
            run = load(os.path.join(folder, f"rss-{d}.json"))
            per = (r["with_1000_sessions_kb"] - r["idle_kb"]) / 1000
            print(f"| {d} | {r['idle_kb'] / 1024:.1f} MB | {r['with_1000_sessions_kb'] / 1024:.1f} MB | "
                  f"{per:.1f} KB | {r['after_sessions_closed_kb'] / 1024:.1f} MB | {run['errors']} |")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "io_uring epoll")
