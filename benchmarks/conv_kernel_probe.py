"""One 3x3 convolution stack, fp32, 1 thread: GFLOP/s of each runtime's kernels.

    python benchmarks/conv_kernel_probe.py --rounds 5 --out docs/conv_kernel_probe.json

Isolates kernel speed from graph effects: four 128->128 3x3 convolutions on a
56x56 map (3.70 GFLOP), no BN, no pooling, so every runtime runs the same
convolutions and nothing else. ExecuTorch and LiteRT both run XNNPACK here;
a gap between them is a gap between the XNNPACK builds they ship. Rounds are
interleaved (torch, executorch, tflite, onnx, torch, ...) in one process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

CHANNELS, SIZE, LAYERS = 128, 56, 4
FLOP = LAYERS * 2 * CHANNELS * CHANNELS * 9 * SIZE * SIZE


def median_seconds(fn, runs: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--out", default="docs/conv_kernel_probe.json")
    args = ap.parse_args()

    import numpy as np
    import torch

    from edgekit import runtime
    from edgekit.bench import machine_info
    from edgekit.exporters.pipeline import export_model

    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = torch.nn.Sequential(*[torch.nn.Conv2d(CHANNELS, CHANNELS, 3, padding=1) for _ in range(LAYERS)]).eval()
    x = np.random.default_rng(0).standard_normal((1, CHANNELS, SIZE, SIZE)).astype(np.float32)
    work = Path(tempfile.mkdtemp(prefix="edgekit-probe-"))
    sessions = {}
    for target in ("executorch", "tflite", "onnx"):
        export_model(model, (x,), target, work / target, name="conv_probe", parity_samples=4, show_progress=False)
        sessions[target] = runtime.load(work / target, threads=1)

    xt = torch.from_numpy(x)
    runners = {"torch eager": lambda: model(xt)}
    runners.update({t: (lambda s=s: s.run(x)) for t, s in sessions.items()})
    seconds: dict[str, list[float]] = {k: [] for k in runners}
    with torch.inference_mode():
        for _ in range(args.rounds):
            for name, fn in runners.items():
                seconds[name].append(median_seconds(fn, args.runs))

    result = {"flop": FLOP, "threads": 1, "rounds": args.rounds, "machine": machine_info(), "runtimes": {}}
    torch_s = statistics.median(seconds["torch eager"])
    for name, s in seconds.items():
        med = statistics.median(s)
        result["runtimes"][name] = {"median_ms": round(med * 1e3, 2), "gflops": round(FLOP / med / 1e9, 1),
                                    "speedup_vs_eager": round(torch_s / med, 2)}
        print(f"{name:12s} {med * 1e3:7.1f} ms  {FLOP / med / 1e9:6.1f} GFLOP/s  {torch_s / med:5.2f}x eager")
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
