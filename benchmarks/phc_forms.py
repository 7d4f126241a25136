"""PHC export forms: factorised (keeps A and F, ~1/n weight bytes) vs folded dense, per runtime.

    .venv/bin/python benchmarks/phc_forms.py --rounds 3 --out docs/zoo_results/phc_forms.json

Both forms compute the same function; each is exported to ExecuTorch, TFLite and
ONNX and benchmarked at batch 1, 1 thread, in fresh processes, rounds interleaved
(factorised, folded, factorised, folded, ...). The ratio is folded p50 /
factorised p50 within a round (> 1: factorised is faster); median over rounds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

RUNTIMES = ("executorch", "tflite", "onnx")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["phnn_tiny"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--out", default="docs/zoo_results/phc_forms.json")
    args = ap.parse_args()

    from edgekit.bench import benchmark
    from edgekit.exporters.pipeline import export_model
    from edgekit.model_zoo import get_spec
    from edgekit.model_zoo.phnn import fold_phc

    work = Path(tempfile.mkdtemp(prefix="edgekit-phc-"))
    rows = []
    for name in args.models:
        spec = get_spec(name)
        factorised = spec.build().eval()
        folded, _ = fold_phc(factorised)
        examples = spec.example_inputs(0)
        arts = {}
        for form, model in (("factorised", factorised), ("folded", folded)):
            for rt in RUNTIMES:
                arts[(form, rt)] = export_model(model, examples, rt, work / name / form / rt, name=name,
                                                input_names=spec.input_names, dataset=spec.dataset,
                                                parity_samples=8, show_progress=False)
        for rt in RUNTIMES:
            p50 = {"factorised": [], "folded": []}
            for _ in range(args.rounds):
                for form in ("factorised", "folded"):
                    p50[form].append(benchmark(arts[(form, rt)].path, runs=args.runs, threads=1,
                                               min_seconds=0.5)["latency"]["p50_ms"])
            ratios = [d / f for f, d in zip(p50["factorised"], p50["folded"])]
            row = {"model": name, "runtime": rt,
                   "factorised_bytes": arts[("factorised", rt)].model_bytes,
                   "folded_bytes": arts[("folded", rt)].model_bytes,
                   "factorised_p50_ms": statistics.median(p50["factorised"]),
                   "folded_p50_ms": statistics.median(p50["folded"]),
                   "folded_over_factorised": statistics.median(ratios),
                   "range": [min(ratios), max(ratios)], "n": spec.hints.get("n")}
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    Path(args.out).write_text(json.dumps(rows, indent=2))
    print("| model | runtime | bytes factorised / folded | p50 ms factorised / folded | folded / factorised |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['runtime']} | {r['factorised_bytes']:,} / {r['folded_bytes']:,} | "
              f"{r['factorised_p50_ms']:.3f} / {r['folded_p50_ms']:.3f} | {r['folded_over_factorised']:.2f}x "
              f"({r['range'][0]:.2f}..{r['range'][1]:.2f}) |")


if __name__ == "__main__":
    main()
