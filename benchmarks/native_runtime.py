"""Native runtime (edgekit_runtime C library) vs ExecuTorch's Python bindings on one .pte, in separate processes.

Each process: start -> `edgekit.runtime.load(artifact)` -> first run -> warm-up -> timed runs; it reports the
wall-clock time of its first output, the first run, the latency distribution and its peak RSS. The two backends
alternate (A B, then B A, ...) so both see the same machine load; ratios are medians over the rounds.

    python benchmarks/native_runtime.py out/resnet18/executorch --rounds 5 --threads 1 --out docs/native_runtime.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
import numpy as np
from edgekit import runtime
from edgekit.artifact import load_artifact
path, threads, min_runs, min_seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
art = load_artifact(path)
ins, outs = art.reference_io()
session = runtime.load(path, threads=threads or None)
t = time.perf_counter()
y = session.run(ins)[0]
first = time.perf_counter() - t
first_output_wall = time.time()
ref = next(iter(outs.values()))
cos = float(y.ravel().astype(np.float64) @ ref.ravel() / (np.linalg.norm(y) * np.linalg.norm(ref)))
end = time.perf_counter() + 0.5
for _ in range(10):                      # warm-up: at least 10 runs or 0.5 s
    session.run(ins)
while time.perf_counter() < end:
    session.run(ins)
lat = []
end = time.perf_counter() + min_seconds
while len(lat) < min_runs or time.perf_counter() < end:
    t = time.perf_counter(); session.run(ins); lat.append(time.perf_counter() - t)
print(json.dumps({"session": type(session).__name__, "first_output_wall": first_output_wall, "first_run_s": first,
                  "latencies_s": lat, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "cos_vs_reference": cos, "torch_loaded": "torch" in sys.modules}))
"""

BACKENDS = {"native": {"EDGEKIT_PTE_BACKEND": "native"}, "python": {"EDGEKIT_PTE_BACKEND": "python"}}


def one(backend: str, artifact: str, threads: int, runs: int, seconds: float) -> dict:
    env = {**os.environ, **BACKENDS[backend]}
    start = time.time()
    proc = subprocess.run([sys.executable, "-c", CHILD, artifact, str(threads), str(runs), str(seconds)],
                          capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"{backend} child failed:\n{proc.stderr[-3000:]}")
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    lat = sorted(r.pop("latencies_s"))
    return {"backend": backend, "session": r["session"], "cold_start_s": r.pop("first_output_wall") - start,
            "first_run_s": r["first_run_s"], "p50_s": statistics.median(lat), "p90_s": lat[int(0.9 * (len(lat) - 1))],
            "min_s": lat[0], "runs": len(lat), "peak_rss_mb": r["peak_rss_mb"],
            "cos_vs_reference": r["cos_vs_reference"], "torch_loaded": r["torch_loaded"]}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("artifact", help="an executorch artifact directory (e.g. out/resnet18/executorch)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=50, help="timed runs per process (at least)")
    ap.add_argument("--seconds", type=float, default=1.0, help="timed seconds per process (at least)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    rows = []
    for r in range(args.rounds):
        order = ["native", "python"] if r % 2 == 0 else ["python", "native"]
        for backend in order:
            rows.append({"round": r, **one(backend, args.artifact, args.threads, args.runs, args.seconds)})
    med = {b: {k: statistics.median(x[k] for x in rows if x["backend"] == b)
               for k in ("cold_start_s", "first_run_s", "p50_s", "p90_s", "peak_rss_mb")} for b in BACKENDS}
    per_round = [{"round": r,
                  "cold_start_speedup": p["cold_start_s"] / n["cold_start_s"],
                  "peak_rss_ratio": p["peak_rss_mb"] / n["peak_rss_mb"],
                  "p50_native_over_python": n["p50_s"] / p["p50_s"]}
                 for r in range(args.rounds)
                 for n in [next(x for x in rows if x["round"] == r and x["backend"] == "native")]
                 for p in [next(x for x in rows if x["round"] == r and x["backend"] == "python")]]
    ratios = {k: statistics.median(x[k] for x in per_round) for k in per_round[0] if k != "round"}
    ratios.update({f"{k}_min": min(x[k] for x in per_round) for k in ratios.copy()})
    ratios.update({f"{k}_max": max(x[k] for x in per_round) for k in list(ratios) if not k.endswith("_min")})
    art = Path(args.artifact)
    manifest = json.loads((art / "manifest.json").read_text())
    result = {
        "command": "python benchmarks/native_runtime.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "artifact": {"model": manifest.get("model", {}).get("name"), "target": manifest["target"],
                     "bytes": sum(f["bytes"] for f in manifest["files"] if f["path"] == manifest["model_file"])},
        "threads": args.threads, "rounds": args.rounds,
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()},
        "note": "cold start = process spawn to first output (Python, numpy, edgekit import, load, first run); "
                "the native path verifies the sha256 of every file on load",
        "median": med, "ratios": ratios, "per_round": per_round, "rows": rows,
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    res = main()
    print(json.dumps({"median": res["median"], "ratios": res["ratios"]}, indent=2))
