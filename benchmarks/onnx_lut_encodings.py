"""ONNX encodings of clustered (lookup-table) weights: file size, load time and latency.

    nice .venv/bin/python benchmarks/onnx_lut_encodings.py [--epochs 2 --rounds 5 --runs 100]

The acceptance zoo CNN (resnet_tiny, widths 16-128, 16x16, trained on digits as in
compression_acceptance.py) is palettized (2 and 4 bits) and exported to ONNX with
each ``lut_encoding`` (dense fp32, uint8 + Gather, packed + Gather at opset 18,
UINT4 + Gather at opset 21). Each artifact is benchmarked with ONNX Runtime at
batch 1, 1 thread, in a fresh process, rounds interleaved; the latency ratio is
encoding p50 / dense p50 within a round, median over rounds. Parity against the
compressed PyTorch model is checked by the export. Writes docs/onnx_lut_encodings.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENCODINGS = (("dense", 18), ("uint8", 18), ("packed", 18), ("uint4", 21))


def main(argv=None) -> int:
    import torch

    from edgekit.bench import benchmark
    from edgekit.exporters.compression import compress, load_recipe
    from edgekit.exporters.compression.finetune import accuracy, digits_data, train
    from edgekit.exporters.pipeline import export_model
    from edgekit.model_zoo import get_spec

    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=float, default=2)
    ap.add_argument("--recipes", nargs="+", default=["palettize4", "palettize2"])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--out", default=str(ROOT / "docs" / "onnx_lut_encodings.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    overrides = dict(widths=(16, 32, 64, 128), img_size=16)
    spec = get_spec("resnet_tiny", **overrides)
    data = digits_data(16, 3)
    base = spec.build()
    train(base, data, args.epochs, 3e-3, seed=0)
    params = sum(p.numel() for p in base.parameters())
    examples = (data.x_test[:1],)
    work = Path(tempfile.mkdtemp(prefix="edgekit-lut-"))
    res = {"command": "benchmarks/onnx_lut_encodings.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "model": "resnet_tiny" + json.dumps(overrides), "params": params, "fp32_bytes": params * 4,
           "fp32_accuracy": accuracy(base, data.x_test, data.y_test), "threads": 1, "recipes": {}}
    for name in args.recipes:
        model, _ = compress(base, name, data, seed=0)
        arts = {}
        for enc, opset in ENCODINGS:
            arts[enc] = export_model(model, examples, "onnx", work / name / enc,
                                     options={"lut_encoding": enc, "opset": opset}, recipe=load_recipe(name),
                                     allow_decompressed=True, dataset=lambda n: (data.x_test[:n, None],),
                                     parity_samples=32, show_progress=False, task="classification",
                                     max_loss="off")  # sizes and speed here; accuracy is measured above
        p50 = {enc: [] for enc, _ in ENCODINGS}
        load = {enc: [] for enc, _ in ENCODINGS}
        for _ in range(args.rounds):
            for enc, _ in ENCODINGS:
                b = benchmark(arts[enc].path, runs=args.runs, threads=1, min_seconds=0.3)
                p50[enc].append(b["latency"]["p50_ms"])
                load[enc].append(b["load_ms"])
        rows = {}
        for enc, opset in ENCODINGS:
            m = arts[enc].manifest
            s = m["compression"]["summary"]
            rows[enc] = {
                "opset": opset, "bytes": arts[enc].model_bytes, "ratio_to_fp32_params": arts[enc].model_bytes / (params * 4),
                "weight_bytes_written": s["bytes_written"], "weight_bytes_expected": s["expected_bytes"],
                "decompressed_layers": len(s["decompressed_layers"]),
                "formats": sorted({r["encoded"]["format"] for r in m["compression"]["ledger"]}),
                "parity_ok": m["parity"]["ok"], "parity_max_abs_err": m["parity"]["metrics"]["max_abs_err"],
                "p50_ms_median": statistics.median(p50[enc]), "load_ms_median": statistics.median(load[enc]),
                "latency_ratio_to_dense": statistics.median(e / d for e, d in zip(p50[enc], p50["dense"])),
                "load_ratio_to_dense": statistics.median(e / d for e, d in zip(load[enc], load["dense"])),
            }
            print(name, enc, json.dumps(rows[enc]), file=sys.stderr)
        res["recipes"][name] = rows
    Path(args.out).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
