"""Native runtime (edgekit_runtime C library) vs ExecuTorch's Python bindings on one .pte, in separate processes.

Each process: start -> `edgekit.runtime.load(artifact)` -> first run -> warm-up -> timed runs; it reports the
wall-clock time of its first output, the first run, the latency distribution and its peak RSS. The two backends
alternate (A B, then B A, ...) so both see the same machine load; ratios are medians over the rounds. A last
set of processes loads both backends and alternates them run by run for a p50 ratio that load drift cannot skew.

    python benchmarks/native_runtime.py out/resnet18/executorch --rounds 5 --threads 1 --out docs/native_runtime.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
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

# p50 with both backends in one process, run by run (A B A B ...): load drift on a shared machine hits both alike.
# They share libexecutorch.so, its kernel registry and thread pool (the same files, loaded once).
PAIR = r"""
import json, os, statistics, sys, time
from edgekit import runtime
from edgekit.artifact import load_artifact
path, threads, min_runs, min_seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
ins, _ = load_artifact(path).reference_io()
sessions = {}
for backend in ("python", "native"):
    os.environ["EDGEKIT_PTE_BACKEND"] = backend
    sessions[backend] = runtime.load(path, threads=threads or None)
lat = {b: [] for b in sessions}
for _ in range(10):
    for s in sessions.values():
        s.run(ins)
end = time.perf_counter() + min_seconds
while len(lat["native"]) < min_runs or time.perf_counter() < end:
    for b, s in sessions.items():
        t = time.perf_counter(); s.run(ins); lat[b].append(time.perf_counter() - t)
print(json.dumps({"sessions": {b: type(s).__name__ for b, s in sessions.items()}, "runs": len(lat["native"]),
                  "p50_s": {b: statistics.median(v) for b, v in lat.items()}}))
"""

BACKENDS = {"native": {"EDGEKIT_PTE_BACKEND": "native"}, "python": {"EDGEKIT_PTE_BACKEND": "python"}}
ROOT = Path(__file__).resolve().parents[1]


def build_c_host(directory: Path) -> Path | None:
    """benchmarks/native_runtime_host.c linked against native_runtime/_build (None without a C compiler)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    lib = ROOT / "native_runtime" / "_build"
    if not cc or not (lib / "libedgekit_runtime.so").is_file():
        return None
    exe = directory / "native_runtime_host"
    subprocess.run([cc, "-std=c11", "-O2", str(ROOT / "benchmarks" / "native_runtime_host.c"), "-I",
                    str(ROOT / "native_runtime" / "include"), "-L", str(lib), "-ledgekit_runtime", f"-Wl,-rpath,{lib}",
                    "-o", str(exe)], check=True)
    return exe


def one(backend: str, artifact: str, threads: int, runs: int, seconds: float, host: Path | None = None) -> dict:
    env = {**os.environ, **BACKENDS.get(backend, {})}
    argv = [str(host)] if backend == "c_host" else [sys.executable, "-c", CHILD]
    start = time.time()
    proc = subprocess.run([*argv, artifact, str(threads), str(runs), str(seconds)],
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
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        host = build_c_host(Path(tmp))
        backends = ["native", "python"] + (["c_host"] if host else [])
        for r in range(args.rounds):
            for backend in backends if r % 2 == 0 else backends[::-1]:
                rows.append({"round": r, **one(backend, args.artifact, args.threads, args.runs, args.seconds, host)})
        pair = []
        for r in range(args.rounds):
            proc = subprocess.run([sys.executable, "-c", PAIR, args.artifact, str(args.threads), str(args.runs),
                                   str(args.seconds)], capture_output=True, text=True, timeout=600)
            if proc.returncode != 0:
                raise RuntimeError(f"interleaved p50 child failed:\n{proc.stderr[-3000:]}")
            pair.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    pair_ratios = [x["p50_s"]["native"] / x["p50_s"]["python"] for x in pair]
    med = {b: {k: statistics.median(x[k] for x in rows if x["backend"] == b)
               for k in ("cold_start_s", "first_run_s", "p50_s", "p90_s", "peak_rss_mb")} for b in backends}
    per_round = [{"round": r,
                  "cold_start_speedup": p["cold_start_s"] / n["cold_start_s"],
                  "peak_rss_ratio": p["peak_rss_mb"] / n["peak_rss_mb"],
                  "p50_native_over_python": n["p50_s"] / p["p50_s"]}
                 for r in range(args.rounds)
                 for n in [next(x for x in rows if x["round"] == r and x["backend"] == "native")]
                 for p in [next(x for x in rows if x["round"] == r and x["backend"] == "python")]]
    if host:
        for x in per_round:
            c = next(y for y in rows if y["round"] == x["round"] and y["backend"] == "c_host")
            p = next(y for y in rows if y["round"] == x["round"] and y["backend"] == "python")
            x["c_host_cold_start_speedup"] = p["cold_start_s"] / c["cold_start_s"]
            x["c_host_peak_rss_ratio"] = p["peak_rss_mb"] / c["peak_rss_mb"]
    ratios = {k: {"median": statistics.median(x[k] for x in per_round), "min": min(x[k] for x in per_round),
                  "max": max(x[k] for x in per_round)} for k in per_round[0] if k != "round"}
    art = Path(args.artifact)
    manifest = json.loads((art / "manifest.json").read_text())
    result = {
        "command": "python benchmarks/native_runtime.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "artifact": {"model": manifest.get("model", {}).get("name"), "target": manifest["target"],
                     "bytes": sum(f["bytes"] for f in manifest["files"] if f["path"] == manifest["model_file"])},
        "threads": args.threads, "rounds": args.rounds,
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "load_average_1min": {"before": load_before[0], "after": os.getloadavg()[0]}},
        "note": "cold start = process spawn to first output (for native and python: the interpreter, numpy and "
                "edgekit imports, load, first run; c_host: benchmarks/native_runtime_host.c). native and c_host "
                "verify the sha256 of every file on load",
        "median": med, "ratios": ratios,
        "p50_same_process": {"native_over_python": {"median": statistics.median(pair_ratios), "min": min(pair_ratios),
                                                    "max": max(pair_ratios)}, "rounds": pair},
        "per_round": per_round, "rows": rows,
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    res = main()
    print(json.dumps({"median": res["median"], "ratios": res["ratios"], "p50_same_process": res["p50_same_process"]},
                     indent=2))
