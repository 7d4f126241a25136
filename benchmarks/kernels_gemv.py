"""GEMV / small-GEMM speed of the native compressed-weight kernels against the machine's limits.

    python benchmarks/kernels_gemv.py            # full, with the .pte rows: ~25 min on 2 loaded cores
    python benchmarks/kernels_gemv.py --quick    # < 3 min, for checks (no .pte rows unless --pte)
    python benchmarks/kernels_gemv.py --q8-accuracy out/llm/llama_pydoc_edkm4   # accuracy of the q8 kernels

In one process and one run, interleaved round-robin (every configuration once per round, medians
over all rounds):
  * read bandwidth: a STREAM-style sum (ek_stream_sum, same library, same thread pool) over a
    buffer as large as the largest lut4 packed weight (>= 32 MB; same working set, so the same
    cache level), and over 512 MB (supplementary);
  * fp32 FMA peak: independent FMA chains (ek_fma_peak) at the same thread counts;
  * GEMV (M = 1) for torch fp32 and edgekit lut2, lut3, lut4, shift3, sparse24_lut4 on the LLM
    shapes; effective bandwidth = (packed weight bytes + activation bytes) / time;
  * the opt-in int8-activation kernels lut4_q8, lut3_q8, lut2_q8, sparse24_lut4_q8 (same packed
    weights, int8 tables; not exact) in the same rounds, against lut4, lut4_q8 and the read bandwidth;
  * prefill GEMM at M = 32 (lut4 and torch fp32) against the FMA peak;
  * ExecuTorch .pte rows (XNNPACK fp32, XNNPACK int4, edgekit lut4) from benchmarks/kernels_pte.py,
    one child process per thread count with its own lut4 anchor (rows marked "process").
Each sample records wall time and process CPU time / threads: on a shared, time-sliced machine
CPU time is the cost of the call itself, wall time includes the waits for a core. Both are
reported; docs/kernels.md states the load.

Writes docs/kernels.json ({"bandwidth_gbs": {"1": x, "2": y}, "rows": [...], ...}) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHAPES = [(4096, 4096), (11008, 4096), (4096, 11008), (16384, 4096)]  # the last: lut4 packed >= 32 MB
QUICK_SHAPES = [(4096, 4096), (16384, 4096)]
KERNELS = ["torch_fp32", "lut4", "lut3", "lut2", "shift3", "sparse24_lut4", "lut4_q8", "lut3_q8", "lut2_q8",
           "shift3_q8", "sparse24_lut4_q8"]


def weight_bytes(kernel: str, w) -> int:
    """Bytes one product reads of the weight: fp32 tables for the exact kernels, int8 ones for q8."""
    return w.nbytes_q8 if kernel.endswith("_q8") else w.nbytes


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def make_weight(nk, kernel: str, n: int, k: int, rng):
    """A packed random weight of ``kernel``'s format (k-means-like tables of fp16 values)."""
    if kernel == "shift3":
        return nk.pack_shift(rng.integers(0, 8, (n, k), dtype=np.uint8), 3, 0.01)
    bits = int(kernel[-1])
    table = np.sort(rng.standard_normal((1, 2 ** bits))).astype(np.float16)
    idx = rng.integers(0, 2 ** bits, (n, k), dtype=np.uint8)
    if kernel.startswith("sparse24"):
        table[0, 0] = 0
        idx = np.maximum(idx, 1)
        idx[:, 1::4] = 0  # 2 of every 4 pruned
        idx[:, 3::4] = 0
        return nk.pack_sparse24_lut(idx, table, bits)
    return nk.pack_lut(idx, table, bits)


class Timer:
    """Round-robin sampler: each visit runs ``fn`` for about ``budget`` seconds."""

    def __init__(self, budget: float):
        self.budget, self.wall, self.cpu = budget, {}, {}

    def visit(self, key, fn, threads: int) -> None:
        fn()
        fn()  # warm: caches, page faults, pool threads
        walls, cpus, start = [], [], time.perf_counter()
        while len(walls) < 3 or time.perf_counter() - start < self.budget:
            c0, w0 = time.process_time(), time.perf_counter()
            fn()
            walls.append(time.perf_counter() - w0)
            cpus.append((time.process_time() - c0) / threads)  # per-thread CPU time: the call on idle cores
        self.wall.setdefault(key, []).extend(walls)
        self.cpu.setdefault(key, []).extend(cpus)

    def median(self, key) -> tuple[float, float]:
        return float(np.median(self.wall[key])), float(np.median(self.cpu[key]))

    def spread(self, key) -> dict:
        w = np.asarray(self.wall[key])
        return {"n": int(w.size), "min_ms": float(w.min() * 1e3), "p90_ms": float(np.percentile(w, 90) * 1e3),
                "cv": float(w.std() / w.mean())}


def run(quick: bool, out: Path, pte: bool = True) -> dict:
    import torch

    from edgekit.kernels import _native as nk

    rng = np.random.default_rng(0)
    shapes = QUICK_SHAPES if quick else SHAPES
    threads_list = (1, 2)
    rounds = 3 if quick else 5
    timer = Timer(0.04 if quick else 0.1)
    weights, dense, xs = {}, {}, {}
    for n, k in shapes:
        xs[k] = rng.standard_normal(k).astype(np.float32)
        dense[(n, k)] = torch.from_numpy(rng.standard_normal((n, k)).astype(np.float32))
        for kernel in KERNELS[1:]:
            # q8 rows run the same packed weight as their fp32 row (the same index words)
            weights[(kernel, n, k)] = (weights[(kernel[:-3], n, k)] if kernel.endswith("_q8")
                                       else make_weight(nk, kernel, n, k, rng))
    # same working-set size as the weights the bound is compared with (the largest lut4, >= 32 MB):
    # the sum and the GEMV then read from the same level of the memory hierarchy
    big = max(w.nbytes for (kernel, *_), w in weights.items() if kernel == "lut4")
    buf = np.ones(max(big, 32 << 20) // 4, np.float32)
    dram = np.ones((512 << 20) // 4, np.float32)  # supplementary: far larger than any weight here
    gemm_shape = (4096, 4096)
    xg = rng.standard_normal((32, gemm_shape[1])).astype(np.float32)
    wg = weights[("lut4", *gemm_shape)]
    tg = dense[gemm_shape]
    xg_t = torch.from_numpy(xg)
    peak_iters = 200_000

    load_before = os.getloadavg()
    t0 = time.time()
    for r in range(rounds):
        for threads in threads_list:
            torch.set_num_threads(threads)
            timer.visit(("bw", threads), lambda: nk.stream_sum(buf, threads), threads)
            timer.visit(("bw512", threads), lambda: nk.stream_sum(dram, threads), threads)
            timer.visit(("peak", threads), lambda: nk.fma_peak(peak_iters, threads), threads)
            for n, k in shapes:
                x, xt = xs[k], torch.from_numpy(xs[k])
                for kernel in KERNELS:
                    if kernel == "torch_fp32":
                        w = dense[(n, k)]
                        fn = (lambda w=w, xt=xt: torch.nn.functional.linear(xt, w))
                    else:
                        w = weights[(kernel, n, k)]
                        y = np.empty(n, np.float32)
                        act = "q8" if kernel.endswith("_q8") else "fp32"
                        fn = (lambda w=w, x=x, y=y, act=act: nk.linear(w, x, threads=threads, out=y, activations=act))
                    timer.visit((kernel, n, k, threads), fn, threads)
            yg = np.empty((32, gemm_shape[0]), np.float32)
            timer.visit(("gemm_lut4", threads), lambda: nk.linear(wg, xg, threads=threads, out=yg), threads)
            timer.visit(("gemm_torch", threads), lambda: torch.nn.functional.linear(xg_t, tg), threads)
        print(f"round {r + 1}/{rounds} done ({time.time() - t0:.0f} s)", file=sys.stderr)
    load_after = os.getloadavg()

    res = {"bandwidth_gbs": {}, "bandwidth_gbs_cpu": {}, "peak_gflops": {}, "peak_gflops_cpu": {},
           "rows": [], "gemm": []}
    peak_flops = nk.fma_peak(peak_iters, 1)  # FLOPs per call and thread
    for threads in threads_list:
        wall, cpu = timer.median(("bw", threads))
        res["bandwidth_gbs"][str(threads)] = round(buf.nbytes / wall / 1e9, 2)
        res["bandwidth_gbs_cpu"][str(threads)] = round(buf.nbytes / cpu / 1e9, 2)
        wall, cpu = timer.median(("bw512", threads))
        res.setdefault("bandwidth_512mb_gbs", {})[str(threads)] = round(dram.nbytes / wall / 1e9, 2)
        res.setdefault("bandwidth_512mb_gbs_cpu", {})[str(threads)] = round(dram.nbytes / cpu / 1e9, 2)
        wall, cpu = timer.median(("peak", threads))
        res["peak_gflops"][str(threads)] = round(peak_flops * threads / wall / 1e9, 1)
        res["peak_gflops_cpu"][str(threads)] = round(peak_flops * threads / cpu / 1e9, 1)
        for n, k in shapes:
            for kernel in KERNELS:
                nbytes = (n * k * 4 if kernel == "torch_fp32" else weight_bytes(kernel, weights[(kernel, n, k)])) + k * 4
                wall, cpu = timer.median((kernel, n, k, threads))
                res["rows"].append({"kernel": kernel, "shape": [n, k], "threads": threads,
                                    "gbs": round(nbytes / wall / 1e9, 2), "ms": round(wall * 1e3, 4),
                                    "gbs_cpu": round(nbytes / cpu / 1e9, 2) if cpu else None,
                                    "cpu_ms": round(cpu * 1e3, 4), "bytes": nbytes,
                                    **timer.spread((kernel, n, k, threads))})
        flops = 2 * 32 * gemm_shape[0] * gemm_shape[1]
        for name in ("lut4", "torch"):
            wall, cpu = timer.median((f"gemm_{name}", threads))
            res["gemm"].append({"kernel": "lut4" if name == "lut4" else "torch_fp32", "M": 32,
                                "shape": list(gemm_shape), "threads": threads,
                                "gflops": round(flops / wall / 1e9, 1), "ms": round(wall * 1e3, 3),
                                "gflops_cpu": round(flops / cpu / 1e9, 1),
                                "fraction_of_peak": round(flops / wall / 1e9 / res["peak_gflops"][str(threads)], 3),
                                "fraction_of_peak_cpu": round(flops / cpu / 1e9 / res["peak_gflops_cpu"][str(threads)], 3)})
    if pte:
        res["rows"] += pte_rows(quick, threads_list)
    res["acceptance"] = acceptance(res)
    res["machine"] = {"cpu": _cpu_model(), "cores": os.cpu_count(), "isa": nk.best_isa(),
                      "loadavg_before": [round(v, 2) for v in load_before],
                      "loadavg_after": [round(v, 2) for v in load_after],
                      "stream_buffer_mb": round(buf.nbytes / 1e6, 1)}
    res["method"] = {"rounds": rounds, "seconds_per_visit": timer.budget, "statistic": "median over all calls",
                     "command": "python benchmarks/kernels_gemv.py" + (" --quick" if quick else "")
                     + ("" if pte != quick else (" --pte" if pte else " --no-pte"))}
    out.write_text(json.dumps(res, indent=1) + "\n")
    return res


def pte_rows(quick: bool, threads_list) -> list[dict]:
    """XNNPACK fp32 / int4 and edgekit lut4 .pte rows: one child process per thread count
    (benchmarks/kernels_pte.py), each with its own in-process lut4 anchor."""
    import subprocess

    shapes = "4096x4096" if quick else "4096x4096,11008x4096"
    rows = []
    for t in threads_list:
        cmd = [sys.executable, str(Path(__file__).with_name("kernels_pte.py")), "--threads", str(t), "--shapes", shapes,
               "--rounds", "3" if quick else "5", "--budget", "0.04" if quick else "0.1"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"pte rows failed ({t} threads): {done.stderr[-2000:]}", file=sys.stderr)
            continue
        for r in json.loads(done.stdout.strip().splitlines()[-1]):
            rows.append(r | {"process": "pte_child"})
    return rows


def acceptance(res: dict) -> dict:
    """The issue's acceptance lines, on wall-time and on CPU-time medians."""
    def rate(kernel, shape, threads, key):
        row = next((r for r in res["rows"] if r["kernel"] == kernel and r["shape"] == list(shape)
                    and r["threads"] == threads and "process" not in r), None)
        return None if row is None else row[key]

    out = {}
    for basis, ms, gbs, bw, gf in (("wall", "ms", "gbs", "bandwidth_gbs", "fraction_of_peak"),
                                   ("cpu", "cpu_ms", "gbs_cpu", "bandwidth_gbs_cpu", "fraction_of_peak_cpu")):
        lines = {}
        for t in (1, 2):
            big = [r for r in res["rows"] if r["kernel"] == "lut4" and r["bytes"] >= 32e6 and r["threads"] == t
                   and "process" not in r]
            if big:
                frac = min(r[gbs] for r in big) / res[bw][str(t)]
                lines[f"lut4_bw_fraction_t{t}"] = {"value": round(frac, 3), "target": 0.8, "pass": frac >= 0.8}
            for name, target, cmp in (("lut3", 1.25, "min"), ("lut2", 1.6, "min"), ("sparse24_lut4", 1.3, "min")):
                ratios = [rate("lut4", r["shape"], t, ms) / r[ms] for r in res["rows"]
                          if r["kernel"] == name and r["threads"] == t and "process" not in r]
                if ratios:
                    v = float(np.median(ratios))
                    lines[f"{name}_speedup_vs_lut4_t{t}"] = {"value": round(v, 3), "target": target, "pass": v >= target}
            # the opt-in int8-activation family: its own bandwidth fraction and bits-buy-speed ratios
            big = [r for r in res["rows"] if r["kernel"] == "lut4_q8" and r["bytes"] >= 32e6 and r["threads"] == t
                   and "process" not in r]
            if big:
                frac = min(r[gbs] for r in big) / res[bw][str(t)]
                lines[f"lut4_q8_bw_fraction_t{t}"] = {"value": round(frac, 3), "target": 0.8, "pass": frac >= 0.8}
            for name, base, target in (("lut4_q8", "lut4", 1.0), ("lut3_q8", "lut4_q8", 1.25),
                                       ("lut2_q8", "lut4_q8", 1.6), ("sparse24_lut4_q8", "lut4_q8", 1.3)):
                ratios = [rate(base, r["shape"], t, ms) / r[ms] for r in res["rows"]
                          if r["kernel"] == name and r["threads"] == t and "process" not in r]
                if ratios and None not in ratios:
                    v = float(np.median(ratios))
                    lines[f"{name}_speedup_vs_{base}_t{t}"] = {"value": round(v, 3), "target": target, "pass": v >= target}
            for shift, lut in (("shift3", "lut3"), ("shift3_q8", "lut3_q8")):
                diffs = [abs(r[ms] / rate(lut, r["shape"], t, ms) - 1) for r in res["rows"]
                         if r["kernel"] == shift and r["threads"] == t]
                if diffs:
                    v = float(np.median(diffs))
                    lines[f"{shift}_vs_{lut}_t{t}"] = {"value": round(v, 3), "target": "<= 0.10", "pass": v <= 0.10}
            child = [r for r in res["rows"] if r.get("process") == "pte_child" and r["threads"] == t]
            for r in child:
                if r["kernel"] != "xnnpack_int4_pte":
                    continue
                for mine in ("lut4", "edgekit_lut4_pte"):
                    m = next((c for c in child if c["kernel"] == mine and c["shape"] == r["shape"]), None)
                    if m is not None:
                        v = r[ms] / m[ms]
                        lines[f"{mine}_vs_xnnpack_int4_{r['shape'][0]}x{r['shape'][1]}_t{t}"] = {
                            "value": round(v, 3), "target": ">= 1.0 (speed ratio)", "pass": v >= 1.0}
            g = next(r for r in res["gemm"] if r["kernel"] == "lut4" and r["threads"] == t)
            lines[f"gemm_m32_peak_fraction_t{t}"] = {"value": g[gf], "target": 0.5, "pass": g[gf] >= 0.5}
        out[basis] = lines
    return out


def q8_vs_int4_child(threads: int, shapes, rounds: int, budget: float) -> list[dict]:
    """In one process (ExecuTorch's pool sized first): XNNPACK int4 .pte (8da4w, groups of 32: int8
    activations too), lut4 and lut4_q8 on the same weight, round-robin; rows like pte_rows'."""
    import tempfile

    import torch
    from executorch.extension.pybindings import portable_lib
    from executorch.runtime import Runtime

    sys.path.insert(0, str(Path(__file__).parent))
    from kernels_pte import build

    from edgekit.kernels import _native as nk

    portable_lib._unsafe_reset_threadpool(threads)
    nk.set_default_threads(threads)
    rng, timer, configs = np.random.default_rng(0), Timer(budget), []
    with tempfile.TemporaryDirectory() as d:
        for n, k in shapes:
            ptes, packed = build(n, k, Path(d) / f"{n}x{k}", rng)
            x = torch.from_numpy(rng.standard_normal((1, k)).astype(np.float32))
            path, nbytes = ptes["xnnpack_int4_pte"]
            method = Runtime.get().load_program(path).load_method("forward")
            configs.append(("xnnpack_int4_pte", n, k, nbytes, lambda m=method, x=x: m.execute([x])))
            xn, y = x.numpy()[0], np.empty(n, np.float32)
            for name, act, nb in (("lut4", "fp32", packed.nbytes), ("lut4_q8", "q8", packed.nbytes_q8)):
                configs.append((name, n, k, nb + k * 4, lambda w=packed, xn=xn, y=y, act=act:
                                nk.linear(w, xn, threads=threads, out=y, activations=act)))
        for _ in range(rounds):
            for i, (*_, fn) in enumerate(configs):
                timer.visit(i, fn, threads)
    rows = []
    for i, (name, n, k, nbytes, _) in enumerate(configs):
        wall, cpu = timer.median(i)
        rows.append({"kernel": name, "shape": [n, k], "threads": threads, "ms": round(wall * 1e3, 4),
                     "gbs": round(nbytes / wall / 1e9, 2), "cpu_ms": round(cpu * 1e3, 4),
                     "gbs_cpu": round(nbytes / cpu / 1e9, 2), "bytes": nbytes, "process": "q8_int4_child"})
    return rows


def q8_vs_int4(quick: bool, out: Path) -> dict:
    """lut4_q8 against XNNPACK's int4 kernel, one child process per thread count."""
    import subprocess

    res = {"rows": [], "ratios": {}}
    for t in (1, 2):
        cmd = [sys.executable, __file__, "--q8-int4-child", str(t)] + (["--quick"] if quick else [])
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"q8 vs int4 child failed ({t} threads): {done.stderr[-2000:]}")
        rows = json.loads(done.stdout.strip().splitlines()[-1])
        res["rows"] += rows
        for r in rows:
            if r["kernel"] == "xnnpack_int4_pte":
                for mine in ("lut4", "lut4_q8"):
                    m = next(c for c in rows if c["kernel"] == mine and c["shape"] == r["shape"])
                    key = f"{mine}_vs_xnnpack_int4_{r['shape'][0]}x{r['shape'][1]}_t{t}"
                    res["ratios"][key] = {"wall": round(r["ms"] / m["ms"], 3), "cpu": round(r["cpu_ms"] / m["cpu_ms"], 3)}
    res["command"] = "python benchmarks/kernels_gemv.py --q8-vs-int4" + (" --quick" if quick else "")
    out.write_text(json.dumps(res, indent=1) + "\n")
    return res


def q8_paths(out: Path) -> dict:
    """Exact and q8 kernels per ISA path at 1 thread, interleaved (CPU ms medians): 4096x4096 GEMV,
    M = 32 GEMM, and a 256x8192 GEMV whose weights stay in L2 (weights/s: the instruction limit)."""
    from edgekit.kernels import _native as nk

    rng, timer, cases = np.random.default_rng(0), Timer(0.08), {}
    for kernel in ("lut4", "lut3", "lut2", "sparse24_lut4"):
        for n, k, m in ((4096, 4096, 1), (4096, 4096, 32), (256, 8192, 1)):
            w = make_weight(nk, kernel, n, k, rng)
            x = rng.standard_normal((m, k)).astype(np.float32)
            # (2:4 weights have no NEON q8 path yet)
            for isa in [i for i in ("avx2", "avx512", "neon") if nk.q8_isa_supported(i)
                        and not (kernel.startswith("sparse") and i == "neon")]:
                for act in ("fp32", "q8"):
                    y = np.empty((m, n), np.float32)
                    cases[(kernel, n, k, m, isa, act)] = (lambda w=w, x=x, y=y, isa=isa, act=act:
                                                          nk.linear(w, x, out=y, isa=isa, activations=act))
    for _ in range(4):
        for key, fn in cases.items():
            timer.visit(key, fn, 1)
    rows = []
    for (kernel, n, k, m, isa, act), _ in cases.items():
        cpu = timer.median((kernel, n, k, m, isa, act))[1]
        rows.append({"kernel": kernel + ("_q8" if act == "q8" else ""), "shape": [n, k], "M": m, "isa": isa,
                     "threads": 1, "cpu_ms": round(cpu * 1e3, 4), "gweights_s": round(m * n * k / cpu / 1e9, 1)})
    res = {"rows": rows, "command": "python benchmarks/kernels_gemv.py --q8-paths",
           "note": "CPU time per call, one thread; AVX2 uses AVX-VNNI where the CPU has it"}
    out.write_text(json.dumps(res, indent=1) + "\n")
    return res


def _rel(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b))


def q8_accuracy(ckpt: Path | None, out: Path) -> dict:
    """What int8 activations cost in accuracy: relative L2 error of y (q8 against the exact fp32-activation
    kernels on the same packed weight) on random 4096x4096 weights, and on a clustered Llama checkpoint's
    own weights and activations (its clustered layers, then each re-clustered by k-means to 3 and 2 bits),
    with the held-out perplexity of the model whose clustered Linears run on the kernels."""
    import torch

    from edgekit.kernels import _native as nk

    rng = np.random.default_rng(0)
    res = {"random_4096x4096": {}, "method": "relative L2 error ||y_q8 - y_fp32|| / ||y_fp32||"}
    x = rng.standard_normal((8, 4096)).astype(np.float32)
    for kernel in ("lut4", "lut3", "lut2"):
        w = make_weight(nk, kernel, 4096, 4096, rng)
        res["random_4096x4096"][kernel] = round(_rel(nk.linear(w, x, activations="q8"), nk.linear(w, x)), 5)
    if ckpt is None:
        out.write_text(json.dumps(res, indent=1) + "\n")
        return res
    sys.path.insert(0, str(Path(__file__).parent))
    from kernels_decode import cluster_kmeans

    from edgekit.exporters.compression.record import compressed_layers
    from edgekit.exporters.llm_checkpoint import load_clustered, lut_indices
    from edgekit.model_zoo.llm_train import perplexity
    from edgekit.model_zoo.text import encode_split, load_tokenizer

    val = encode_split(load_tokenizer(ckpt / "tokenizer.json"), "val")
    res["checkpoint"] = ckpt.name
    own = {r.bits for _, r in compressed_layers(load_clustered(ckpt)).values()}
    for bits in sorted(own | {3, 2}, reverse=True):
        model = load_clustered(ckpt) if bits in own else cluster_kmeans(load_clustered(ckpt), bits)
        layers = {name: (m, r) for name, (m, r) in compressed_layers(model).items() if r.bits == bits}
        row = {"layers": len(layers), "source": "checkpoint" if bits in own else "k-means of the checkpoint",
               "torch": perplexity(model, val, 128, 16)}
        errs, mode = [], {"act": "fp32"}
        for name, (m, r) in layers.items():
            wt = m.weight.detach().numpy()
            idx = lut_indices(wt, r.lut[0]).reshape(wt.shape)
            packed = nk.pack_lut(idx, r.lut[:1].astype(np.float32), bits)

            def forward(xin, m=m, packed=packed):
                x2 = xin.detach().reshape(-1, xin.shape[-1]).numpy()
                y = nk.linear(packed, x2, activations=mode["act"])
                if mode["act"] == "q8":  # real activations: the error of this layer's output
                    errs.append(_rel(y, nk.linear(packed, x2)))
                out = torch.from_numpy(y).reshape(*xin.shape[:-1], -1)
                return out if m.bias is None else out + m.bias
            m.forward = forward
        for act in ("fp32", "q8"):
            mode["act"] = act
            row[f"kernels_{act}"] = perplexity(model, val, 128, 16)
        row["q8_layer_rel_error_median"] = round(float(np.median(errs)), 5)
        row["q8_layer_rel_error_max"] = round(float(np.max(errs)), 5)
        row["q8_perplexity_rel_change"] = round(row["kernels_q8"] / row["kernels_fp32"] - 1, 5)
        res[f"{bits}bit"] = row
        print(f"{bits}-bit: {row}", file=sys.stderr)
    res["command"] = f"python benchmarks/kernels_gemv.py --q8-accuracy {ckpt}"
    out.write_text(json.dumps(res, indent=1) + "\n")
    return res


def table(res: dict) -> str:
    lines = ["read bandwidth GB/s (wall / cpu): " + ", ".join(
        f"{t} thr {res['bandwidth_gbs'][t]} / {res['bandwidth_gbs_cpu'][t]}" for t in res["bandwidth_gbs"]),
        "fp32 FMA peak GFLOP/s (wall / cpu): " + ", ".join(
        f"{t} thr {res['peak_gflops'][t]} / {res['peak_gflops_cpu'][t]}" for t in res["peak_gflops"]),
        "", f"{'kernel':<16} {'shape':>12} {'thr':>3} {'ms':>9} {'GB/s':>7} {'cpu ms':>9} {'GB/s cpu':>8}"]
    for r in res["rows"]:
        lines.append(f"{r['kernel']:<16} {r['shape'][0]:>5}x{r['shape'][1]:<6} {r['threads']:>3} {r['ms']:>9.3f} "
                     f"{r['gbs']:>7.2f} {r['cpu_ms']:>9.3f} {r['gbs_cpu']:>8.2f}")
    lines.append("")
    for g in res["gemm"]:
        lines.append(f"GEMM M=32 {g['kernel']:<10} {g['shape']} thr {g['threads']}: {g['gflops']} GFLOP/s "
                     f"({g['fraction_of_peak']:.0%} of peak), cpu basis {g['gflops_cpu']} "
                     f"({g['fraction_of_peak_cpu']:.0%})")
    lines.append("")
    for basis, items in res["acceptance"].items():
        for name, v in items.items():
            lines.append(f"[{basis}] {name}: {v['value']} (target {v['target']}) {'PASS' if v['pass'] else 'FAIL'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2 shapes, 3 rounds (< 3 minutes)")
    p.add_argument("--pte", action=argparse.BooleanOptionalAction, default=None,
                   help="ExecuTorch .pte rows (XNNPACK fp32/int4, edgekit lut4); default: on, off with --quick "
                        "(exporting them takes minutes on a loaded machine)")
    p.add_argument("--out", type=Path, default=None, help="JSON path (default docs/kernels.json; "
                                                            "docs/kernels_quick.json with --quick)")
    p.add_argument("--q8-accuracy", type=Path, metavar="CLUSTERED_CKPT", nargs="?", const="-",
                   help="instead: the accuracy cost of int8 activations (random weights, and a clustered Llama "
                        "checkpoint's weights and activations when given); writes docs/kernels_q8_accuracy.json")
    p.add_argument("--q8-vs-int4", action="store_true",
                   help="instead: lut4 and lut4_q8 against the XNNPACK int4 .pte in the same processes "
                        "(4096x4096 and 11008x4096; --quick: 4096x4096); writes docs/kernels_q8_int4.json")
    p.add_argument("--q8-paths", action="store_true",
                   help="instead: exact and q8 kernels per ISA path, 1 thread (GEMV, M = 32 GEMM, L2-resident "
                        "GEMV); writes docs/kernels_q8_paths.json")
    p.add_argument("--q8-int4-child", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    shapes_pte = [(4096, 4096)] + ([] if args.quick else [(11008, 4096)])
    if args.q8_int4_child:
        rounds, budget = (3, 0.04) if args.quick else (5, 0.1)
        print(json.dumps(q8_vs_int4_child(args.q8_int4_child, shapes_pte, rounds, budget)))
        return 0
    if args.q8_paths:
        for r in q8_paths(args.out or ROOT / "docs" / "kernels_q8_paths.json")["rows"]:
            print(f"{r['kernel']:<8} {r['shape'][0]}x{r['shape'][1]} M={r['M']:<3} {r['isa']:<7} {r['cpu_ms']:.3f} ms "
                  f"{r['gweights_s']} G weights/s")
        return 0
    if args.q8_vs_int4:
        res = q8_vs_int4(args.quick, args.out or ROOT / "docs" / "kernels_q8_int4.json")
        for r in res["rows"]:
            print(f"{r['kernel']:<18} {r['shape'][0]}x{r['shape'][1]} t{r['threads']} {r['ms']:.3f} ms "
                  f"(cpu {r['cpu_ms']:.3f}) {r['gbs']} GB/s")
        print(json.dumps(res["ratios"], indent=1))
        return 0
    if args.q8_accuracy is not None:
        out = args.out or ROOT / "docs" / "kernels_q8_accuracy.json"
        ckpt = None if str(args.q8_accuracy) == "-" else args.q8_accuracy
        print(json.dumps(q8_accuracy(ckpt, out), indent=1))
        return 0
    out = args.out or ROOT / "docs" / ("kernels_quick.json" if args.quick else "kernels.json")
    res = run(args.quick, out, pte=not args.quick if args.pte is None else args.pte)
    print(table(res))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
