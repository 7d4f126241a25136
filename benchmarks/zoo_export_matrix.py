"""Every *_tiny variant x every target: artifact bytes, parity, p50 latency; writes docs/zoo_results/export_matrix.json.

Also records the PHC factorised-vs-folded ONNX weight bytes. Core ML cannot run
off macOS: its row has bytes and the structural check, no latency.

    .venv/bin/python benchmarks/zoo_export_matrix.py --runs 50
    .venv/bin/python benchmarks/zoo_export_matrix.py --runs 50 --models denseshift_tiny   # refresh those rows

With ``--models``, rows of the other models already in ``--out`` are kept.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import edgekit
from edgekit.errors import EdgekitError
from edgekit.model_zoo import get_spec, list_models


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--out", default="docs/zoo_results/export_matrix.json")
    ap.add_argument("--models", default="*_tiny", help="glob over registered names (default: every *_tiny)")
    args = ap.parse_args()
    names = list_models(args.models)
    if not names:
        raise SystemExit(f"--models {args.models!r} matches no registered model; see `edgekit zoo list`")
    old = json.loads(Path(args.out).read_text()) if Path(args.out).exists() and args.models != "*_tiny" else []
    rows = [r for r in old if r["model"] not in names]
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            spec = get_spec(name)
            model = spec.build()
            for target in edgekit.TARGETS:
                row = {"model": name, "family": spec.family, "target": target}
                try:
                    art = edgekit.export(model, spec.example_inputs(0), target, Path(tmp) / name / target,
                                         input_names=spec.input_names, dataset=spec.dataset, parity_samples=8,
                                         show_progress=False)
                    p = art.manifest["parity"]
                    row |= {"bytes": art.model_bytes, "parity_ok": p["ok"], "parity_mode": p["mode"],
                            "cosine_min": p.get("metrics", {}).get("cosine_min")}
                    if target != "coreml":
                        row["p50_ms"] = edgekit.benchmark(art.path, runs=args.runs)["latency"]["p50_ms"]
                except EdgekitError as err:
                    row["error"] = str(err).splitlines()[0]
                rows.append(row)
                rows.sort(key=lambda r: (r["model"], edgekit.TARGETS.index(r["target"])))
                Path(args.out).write_text(json.dumps(rows, indent=2))
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
