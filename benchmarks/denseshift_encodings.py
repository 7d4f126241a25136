"""DenseShift 3-bit layers per target: artifact and weight bytes with and without their compact encoding.

    .venv/bin/python benchmarks/denseshift_encodings.py --runs 50 --out docs/zoo_results/denseshift_encodings.json

Each target is exported twice: as before (ONNX/TFLite ``pow2_int8=False``, Core ML iOS17)
and with the encoding (``pow2_int8=True``, the default; Core ML iOS18: 3-bit tables).
ExecuTorch has no encoding (dense fp32). Weight bytes are the compression ledger's
(the 13 shift layers of ``denseshift_tiny``); parity is the pipeline's gate on 8 digits
samples (Core ML: structural, prediction needs macOS); p50 is 1 thread, in a child process,
the two variants of a target benchmarked alternately (``--rounds``), median of rounds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

# target -> (options as before, options with the encoding); None: no encoding for that target
VARIANTS = {
    "onnx": ({"pow2_int8": False}, {"pow2_int8": True}),
    "tflite": ({"pow2_int8": False}, {"pow2_int8": True}),
    "coreml": ({"minimum_deployment_target": "iOS17"}, {"minimum_deployment_target": "iOS18"}),
    "executorch": ({}, None),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["denseshift_tiny"])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default="docs/zoo_results/denseshift_encodings.json")
    args = ap.parse_args()

    import torch

    from edgekit.bench import benchmark
    from edgekit.exporters.pipeline import export_model
    from edgekit.model_zoo import get_spec

    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="edgekit-denseshift-"))
    rows = []
    for name in args.models:
        spec = get_spec(name)
        model = spec.build().eval()
        for target, variants in VARIANTS.items():
            arts = {}
            for label, options in zip(("before", "encoded"), variants):
                if options is not None:
                    arts[label] = export_model(model, spec.example_inputs(0), target, work / name / target / label,
                                               name=name, options=options, input_names=spec.input_names,
                                               dataset=spec.dataset, parity_samples=8, show_progress=False)
            p50 = {label: [] for label in arts}
            for _ in range(args.rounds if target != "coreml" else 0):
                for label, art in arts.items():
                    p50[label].append(benchmark(art.path, runs=args.runs, threads=1,
                                                min_seconds=0.5)["latency"]["p50_ms"])
            for label, art in arts.items():
                comp, parity = art.manifest["compression"], art.manifest["parity"]
                rows.append({
                    "model": name, "target": target, "variant": label, "options": variants[label == "encoded"],
                    "file_bytes": art.model_bytes,
                    "weight_bytes": comp["summary"]["bytes_written"],
                    "dense_weight_bytes": comp["summary"]["dense_bytes"],
                    "expected_bytes": comp["summary"]["expected_bytes"],
                    "formats": sorted({r["encoded"]["format"] for r in comp["ledger"]}),
                    "parity_mode": parity["mode"], "parity_ok": parity["ok"],
                    "cosine_min": parity.get("metrics", {}).get("cosine_min"),
                    "max_abs_err": parity.get("metrics", {}).get("max_abs_err"),
                    "p50_ms": statistics.median(p50[label]) if p50[label] else None,
                })
                print(json.dumps(rows[-1]), flush=True)
                Path(args.out).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
