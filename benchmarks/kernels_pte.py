"""ExecuTorch .pte rows of benchmarks/kernels_gemv.py: one Linear (batch 1) as XNNPACK fp32, XNNPACK
int4 (8da4w, groups of 32) and edgekit lut4 (--executorch-kernels edgekit), with the ctypes lut4
GEMV on the same weight as the in-process anchor. One process per thread count (ExecuTorch's
thread pool is sized before a program loads); configurations interleaved round-robin.

    python benchmarks/kernels_pte.py --threads 1 --shapes 4096x4096 --rounds 3   # prints JSON rows
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _export(model, x, out: Path, **options) -> Path:
    import torch

    from edgekit.exporters.executorch import ExecuTorchExporter, ExecuTorchOptions

    out.mkdir(parents=True, exist_ok=True)
    ep = torch.export.export(model.eval(), (x,))
    ExecuTorchExporter().convert(model, ep, (x,), ExecuTorchOptions(**options), out)
    return out / "model.pte"


def build(n: int, k: int, tmp: Path, rng) -> tuple[dict, object]:
    """{name: (pte path, bytes read per call)} and the ctypes lut4 weight for the anchor."""
    import torch
    from torch import nn

    from edgekit.exporters.compression.record import WeightRecord, set_record
    from edgekit.exporters.llm_weights import quantized_copy
    from edgekit.kernels import _native as nk

    table = np.sort(rng.standard_normal(16)).astype(np.float16).astype(np.float32)
    idx = rng.integers(0, 16, (n, k), dtype=np.uint8)
    lin = nn.Linear(k, n, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(table[idx]))
    x = torch.from_numpy(rng.standard_normal((1, k)).astype(np.float32))
    ptes = {"xnnpack_fp32_pte": (_export(nn.Sequential(lin), x, tmp / "fp32"), n * k * 4 + k * 4)}
    q, _ = quantized_copy(nn.Sequential(lin), "int4", 32)
    ptes["xnnpack_int4_pte"] = (_export(q, x, tmp / "int4"), n * k // 2 + n * k // 32 * 4 + k * 4)
    model = nn.Sequential(lin)
    set_record(lin, WeightRecord(kind="lut", bits=4, lut=table[None], steps=("bench",)))
    packed = nk.pack_lut(idx, table[None], 4)
    ptes["edgekit_lut4_pte"] = (_export(model, x, tmp / "lut4", kernels="edgekit"), packed.nbytes + k * 4)
    return ptes, packed


def run(threads: int, shapes: list[tuple[int, int]], rounds: int, budget: float) -> list[dict]:
    import torch
    from executorch.extension.pybindings import portable_lib
    from executorch.runtime import Runtime

    from edgekit.kernels import _native as nk
    from edgekit.kernels.executorch_ops import load_runtime_kernels

    portable_lib._unsafe_reset_threadpool(threads)
    load_runtime_kernels()
    nk.set_default_threads(threads)
    rng = np.random.default_rng(0)
    configs = []
    with tempfile.TemporaryDirectory() as d:
        for n, k in shapes:
            ptes, packed = build(n, k, Path(d) / f"{n}x{k}", rng)
            x = torch.from_numpy(rng.standard_normal((1, k)).astype(np.float32))
            for name, (path, nbytes) in ptes.items():
                method = Runtime.get().load_program(path).load_method("forward")
                configs.append((name, n, k, nbytes, lambda m=method, x=x: m.execute([x])))
            xn = x.numpy()[0]
            configs.append(("lut4", n, k, packed.nbytes + k * 4,
                            lambda w=packed, xn=xn: nk.linear(w, xn, threads=threads)))
        times = {i: [] for i in range(len(configs))}
        walls = {i: [] for i in range(len(configs))}
        for _ in range(rounds):
            for i, (*_, fn) in enumerate(configs):
                fn()
                fn()
                start = time.perf_counter()
                while len(times[i]) < 3 or time.perf_counter() - start < budget:
                    c0, w0 = time.process_time(), time.perf_counter()
                    fn()
                    walls[i].append(time.perf_counter() - w0)
                    times[i].append((time.process_time() - c0) / threads)
    rows = []
    for i, (name, n, k, nbytes, _) in enumerate(configs):
        cpu, wall = float(np.median(times[i])), float(np.median(walls[i]))
        rows.append({"kernel": name, "shape": [n, k], "threads": threads, "ms": round(wall * 1e3, 4),
                     "gbs": round(nbytes / wall / 1e9, 2), "cpu_ms": round(cpu * 1e3, 4),
                     "gbs_cpu": round(nbytes / cpu / 1e9, 2), "bytes": nbytes, "n": len(times[i])})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--shapes", default="4096x4096")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--budget", type=float, default=0.1)
    args = p.parse_args(argv)
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
    print(json.dumps(run(args.threads, shapes, args.rounds, args.budget)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
