"""Local vs benchmark-server decode latency of one LLM artifact, interleaved rounds.

    .venv/bin/python benchmarks/llm_bench_server.py out/llm/llama_pydoc/executorch --rounds 5 \
        --out docs/llm_bench_server.json

Each round benchmarks the artifact once locally (`edgekit.bench.benchmark`, a fresh child process) and once
through `edgekit serve` on a free loopback port (upload once, one job a round), with the same settings
(1 thread, 16-token prompt, 128 decode steps, --runs decode steps, --seconds of timing). Reports the
per-token decode p50 of each, and the median and range of the within-round ratio server / local.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("artifact")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=1280, help="decode steps timed per benchmark (10 rounds of 128)")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    from edgekit.bench import benchmark, machine_info
    from edgekit.client import Client
    from edgekit.local_server import local_server

    cfg = dict(runs=args.runs, warmup=128, min_seconds=args.seconds, threads=1, prompt_tokens=16, new_tokens=128)
    local, server = [], []
    with local_server() as url:
        client = Client(url)
        art, _ = client.upload(args.artifact)
        for i in range(args.rounds):
            local.append(benchmark(args.artifact, **cfg))
            job = client.wait(client.submit(art["id"], inputs="random", **cfg)["id"])
            assert job["status"] == "succeeded", job
            server.append(job["result"])
            print(f"round {i}: local p50 {local[-1]['latency']['p50_ms']:.4f} ms, "
                  f"server p50 {server[-1]['latency']['p50_ms']:.4f} ms", file=sys.stderr)
    lp = [r["latency"]["p50_ms"] for r in local]
    sp = [r["latency"]["p50_ms"] for r in server]
    ratios = [s / loc for s, loc in zip(sp, lp)]
    out = {"artifact": args.artifact, "config": cfg, "rounds": args.rounds,
           "local_p50_ms": statistics.median(lp), "server_p50_ms": statistics.median(sp),
           "local_p50_ms_rounds": lp, "server_p50_ms_rounds": sp,
           "server_over_local": statistics.median(ratios), "ratio_range": [min(ratios), max(ratios)],
           "local_decode_tok_s": statistics.median(r["llm"]["decode_tokens_per_s"] for r in local),
           "server_decode_tok_s": statistics.median(r["llm"]["decode_tokens_per_s"] for r in server),
           "local_cv": statistics.median(r["latency"]["cv"] for r in local),
           "server_cv": statistics.median(r["latency"]["cv"] for r in server),
           "load_average": os.getloadavg(), "machine": machine_info()}
    text = json.dumps(out, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
