"""`edgekit bench`: an artifact in a fresh process, or on `edgekit serve` servers side by side."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from edgekit.report import human_bytes, latency_cell, table


def add_parser(sub) -> None:
    be = sub.add_parser("bench", help="benchmark an artifact in a fresh process")
    be.add_argument("artifact", nargs="+")
    _add_config_flags(be)  # --runs, --warmup, --threads, --min-seconds, --prompt-tokens, --new-tokens
    be.add_argument("--json", help="also write the results to this file")
    be.add_argument("--server", action="append", metavar="URL",
                    help="benchmark on an `edgekit serve` server instead (repeatable: side by side)")
    be.add_argument("--token", default=os.environ.get("EDGEKIT_SERVER_TOKEN"), help="the servers' bearer token")
    be.add_argument("--inputs", choices=("reference", "random"), default="reference",
                    help="the artifact's reference inputs (default; random when it has none) or random data")
    be.add_argument("--input", action="append", metavar="NAME[:SHAPE][:DTYPE][:FILL]",
                    help="an input's shape, dtype and fill, repeatable: x:1x3x640x640, rate:int64:=16000, "
                         "ids:1x16:int64:0..30000 (integers default to random 1..16)")
    be.add_argument("--dim", action="append", metavar="NAME=SIZE",
                    help="size of a symbolic dimension, repeatable: --dim N=1 --dim H=640")
    be.add_argument("--html", help="also write an HTML page with a p50 chart (servers side by side) to this file")
    be.set_defaults(func=cmd_bench)


def _add_config_flags(parser) -> None:
    """The BenchConfig fields marked for the CLI, with their types, defaults and descriptions."""
    from dataclasses import fields
    from typing import get_args, get_type_hints

    from edgekit.bench import BenchConfig

    hints = get_type_hints(BenchConfig)
    for f in fields(BenchConfig):
        if f.metadata.get("cli"):
            kind = next((a for a in get_args(hints[f.name]) if a is not type(None)), hints[f.name])
            parser.add_argument("--" + f.name.replace("_", "-"), type=kind, default=f.default,
                                help=f.metadata["description"])

def cmd_bench(args) -> int:
    from edgekit.inputspec import parse_dims, parse_input

    specs = [parse_input(t) for t in args.input or []]
    # --dim sizes generated inputs: without --input it means random data (reference inputs have fixed shapes)
    chosen = {"inputs": "spec" if specs else ("random" if args.dim else args.inputs), "input_spec": specs or None,
              "dims": parse_dims(args.dim) or None}
    llm = {k: v for k, v in (("prompt_tokens", args.prompt_tokens), ("new_tokens", args.new_tokens)) if v is not None}
    if args.server:
        from edgekit.client import bench_remote

        pairs = bench_remote(args.server, args.artifact, token=args.token, runs=args.runs, warmup=args.warmup,
                             threads=args.threads, min_seconds=args.min_seconds, **chosen, **llm)
        print(bench_table([r for _, r in pairs], servers=[s for s, _ in pairs]))
        _note_default_fills([r for _, r in pairs])
        _write_html(args.html, [{**r, "artifact": args.artifact[i // len(args.server)]} for i, (_, r) in
                                enumerate(pairs)], [s for s, _ in pairs])
        if args.json:
            Path(args.json).write_text(json.dumps([{"server": s, **r} for s, r in pairs], indent=2))
        return 0
    from edgekit.bench import benchmark
    from edgekit.progress import progress

    results = []
    for path in progress(args.artifact, desc="benchmark", enabled=len(args.artifact) > 1):
        results.append(benchmark(path, runs=args.runs, warmup=args.warmup, threads=args.threads,
                                 min_seconds=args.min_seconds, **chosen, **llm))
    print(bench_table(results))
    _note_default_fills(results)
    _write_html(args.html, [{**r, "artifact": str(p)} for r, p in zip(results, args.artifact)])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


def _write_html(path: str | None, results: list[dict], servers: list[str] | None = None) -> None:
    if path:
        from edgekit.server.dashboard import results_page  # plain HTML + SVG: no server dependency

        Path(path).write_text(results_page(results, servers))


def _note_default_fills(results: list[dict]) -> None:
    """Integers filled from the default range are said out loud: a rate or a length may need a real value."""
    seen = set()
    for r in results:
        for t in r.get("inputs_used") or []:
            if "(default)" in t.get("fill", "") and t["name"] not in seen:
                seen.add(t["name"])
                print(f"note: {t['dtype']} input '{t['name']}' {t['shape']} was filled with {t['fill']}; give it a "
                      f"value with --input {t['name']}:{t['dtype']}:=VALUE or a range with :LOW..HIGH",
                      file=sys.stderr)


def bench_table(results: list[dict], servers: list[str] | None = None) -> str:
    servers = servers or [None] * len(results)
    llms = [(s, r) for s, r in zip(servers, results) if r.get("kind") == "llm"]
    others = [(s, r) for s, r in zip(servers, results) if r.get("kind") != "llm"]
    parts = [_bench_table([r for _, r in others], [s for s, _ in others] if others and others[0][0] else None)] \
        if others else []
    if llms:
        from edgekit.report import llm_bench_table
        parts.append(llm_bench_table([r for _, r in llms], [s for s, _ in llms] if llms[0][0] else None))
    return "\n\n".join(parts)


def _bench_table(results: list[dict], servers: list[str] | None = None) -> str:
    rows = [[r["target"], r["runtime"], r["threads"], human_bytes(r["model_bytes"]), r["latency"]["runs"],
             latency_cell(r, "min_ms"), latency_cell(r, "p50_ms"), latency_cell(r, "p90_ms"),
             latency_cell(r, "p99_ms"), f"{r['latency']['cv']:.3f}", f"{r['cold_start_ms']:.0f}",
             f"{r['peak_rss_mb']:.0f}"] for r in results]
    note = "\n(~ marks a percentile estimated from too few runs: p90 needs >= 64, p99 >= 662)"
    headers = ["target", "runtime", "threads", "bytes", "runs", "min ms", "p50 ms", "p90 ms", "p99 ms", "cv",
               "cold start ms", "peak RSS MiB"]
    if servers:
        return table(["server", *headers], [[s, *row] for s, row in zip(servers, rows)]) + note
    return table(headers, rows) + note
