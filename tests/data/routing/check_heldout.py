#!/usr/bin/env python3
"""Validate tests/data/routing/queries-heldout.jsonl against catalog.json.

Checks: every expected entry is <server>__<tool> present in the catalog, no
duplicate queries, and reports coverage / multi-expected share / how many
queries contain an expected tool's raw name (name-leak rate).
"""
import json, re, sys, os
from collections import Counter

here = os.path.dirname(os.path.abspath(__file__))
cat = json.load(open(os.path.join(here, "catalog.json")))
public = {f"{s['name']}__{t['name']}": s["name"] for s in cat["servers"] for t in s["tools"]}

def words(name):
    parts = re.split(r"[_\-\s]+", name)
    out = []
    for p in parts:
        out += re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", p)
    return [w.lower() for w in out if w]

rows = [json.loads(l) for l in open(os.path.join(here, "queries-heldout.jsonl")) if l.strip()]
errors = []
seen = Counter(r["query"].strip().lower() for r in rows)
for qtext, n in seen.items():
    if n > 1:
        errors.append(f"duplicate query: {qtext!r}")
servers, multi, leaks = Counter(), 0, []
for r in rows:
    assert set(r) == {"query", "expected"}, r
    exp = r["expected"]
    if not exp or len(set(exp)) != len(exp):
        errors.append(f"empty/duplicated expected: {r}")
    for e in exp:
        if e not in public:
            errors.append(f"unknown tool {e!r} in {r['query']!r}")
        else:
            servers[public[e]] += 1
    multi += len(exp) > 1
    ql = r["query"].lower()
    for e in exp:
        if e not in public:
            continue
        tool = e.split("__", 1)[1]
        variants = {tool.lower(), " ".join(words(tool)), "".join(words(tool)),
                    "_".join(words(tool)), "-".join(words(tool))}
        hit = [v for v in variants if len(v) >= 3 and v in ql]
        if hit:
            leaks.append((r["query"], e, hit))
            break

n = len(rows)
lens = [len(r["query"].split()) for r in rows]
print(f"queries: {n}")
print(f"servers covered: {len(servers)}/{len(cat['servers'])}")
print(f"missing servers: {sorted(set(s['name'] for s in cat['servers']) - set(servers))}")
print(f"multi-expected: {multi} ({multi / n:.1%})")
print(f"query length (words): min {min(lens)} max {max(lens)} mean {sum(lens) / n:.1f}")
print(f"raw-name leaks: {len(leaks)} ({len(leaks) / n:.1%})")
for l in leaks:
    print("   leak:", l)
print("expected-entries per server:", dict(sorted(servers.items(), key=lambda kv: -kv[1])))
if errors:
    print("\n".join(errors))
    sys.exit(1)
if len(leaks) / n >= 0.03:
    print("FAIL: raw-name leak rate >= 3%")
    sys.exit(1)
print("OK")
