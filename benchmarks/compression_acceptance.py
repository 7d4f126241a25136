"""Acceptance numbers for compression that survives export (issue 4).

Trains a zoo CNN on the digits data, applies each recipe, measures held-out
accuracy against fp32, exports every compressed model to every target and
records bytes, ratio to fp32, parity against the compressed PyTorch model and the
encoded kind per target. Writes docs/compression_results.md (and .json).

    .venv/bin/python benchmarks/compression_acceptance.py [--epochs 8] [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import edgekit

ROOT = Path(__file__).resolve().parents[1]
TARGETS = edgekit.TARGETS
# rows of the recipe x target table: (target, export options); defaults everywhere except the Core ML deployment
# target, plus ExecuTorch with the opt-in int8 re-quantization of compressed layers
VARIANTS = {"coreml": ("coreml", {"minimum_deployment_target": "iOS18"}), "executorch": ("executorch", None),
            "executorch+int8": ("executorch", {"requantize": "dynamic_int8"}), "tflite": ("tflite", None),
            "onnx": ("onnx", None)}
# recipe -> accuracy-drop gate (points) and Core ML ratio gate: compressed .mlpackage bytes over the bytes of
# the uncompressed model's fp32 .mlpackage (both packages carry the same fixed overhead: program, BN, biases)
GATES = {"palettize4": (1.0, 0.16), "dkm2": (2.0, None), "sparse50_palettize4": (1.5, None),
         "shift3_qat": (1.5, None)}


def main(argv=None) -> int:
    import torch

    from edgekit.exporters.compression import compress, compressed_layers, load_recipe
    from edgekit.exporters.compression.coreml_encode import read_tables
    from edgekit.exporters.compression.finetune import accuracy, digits_data, train
    from edgekit.exporters.pipeline import export_model
    from edgekit.model_zoo import get_spec

    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=float, default=10)
    p.add_argument("--recipes", nargs="*", default=list(GATES))
    p.add_argument("--out", default=str(ROOT / "docs" / "compression_results"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    overrides = dict(widths=(16, 32, 64, 128), img_size=16)
    spec = get_spec("resnet_tiny", **overrides)
    data = digits_data(16, 3)
    t0 = time.time()
    base = spec.build()
    fit = train(base, data, args.epochs, 3e-3, seed=0)
    acc32 = accuracy(base, data.x_test, data.y_test)
    params = sum(p.numel() for p in base.parameters())
    results = {"model": "resnet_tiny" + json.dumps(overrides), "params": params, "fp32_bytes": params * 4,
               "fp32_accuracy": acc32, "train": fit | {"epochs": args.epochs, "seconds": time.time() - t0},
               "recipes": {}}
    examples = (data.x_test[:1],)
    work = Path(tempfile.mkdtemp())
    # dense references: the uncompressed model on every target
    dense = {}
    for target in TARGETS:
        opts = {"minimum_deployment_target": "iOS18"} if target == "coreml" else None
        art = export_model(base, examples, target, work / "dense" / target, options=opts, show_progress=False)
        dense[target] = art.model_bytes
    # the fp32 artifact: every target but Core ML already exports fp32; Core ML defaults to fp16
    art = export_model(base, examples, "coreml", work / "dense" / "coreml_fp32", show_progress=False,
                       options={"minimum_deployment_target": "iOS18", "compute_precision": "fp32"})
    fp32_artifact = dict(dense, coreml=art.model_bytes)
    results["dense_artifact_bytes"] = dense
    results["fp32_artifact_bytes"] = fp32_artifact
    for name in args.recipes:
        recipe = load_recipe(name)
        t0 = time.time()
        model, report = compress(base, recipe, data, seed=0)
        acc = accuracy(model, data.x_test, data.y_test)
        row = {"accuracy": acc, "drop": acc32 - acc, "compress_seconds": time.time() - t0,
               "weight_ratio_expected": report.ratio(), "targets": {}}
        if name.startswith("shift"):
            row["all_weights_pow2_times_scale"] = all(
                _pow2(m.weight.detach().numpy(), r.scale) for m, r in compressed_layers(model).values())
        for target, (kind, opts) in VARIANTS.items():
            try:
                art = export_model(model, examples, kind, work / name / target, options=opts, recipe=recipe,
                                   allow_decompressed=True, dataset=lambda n: (data.x_test[:n, None],),
                                   parity_samples=32, show_progress=False, task="classification",
                                   max_loss="off")  # this table measures accuracy itself; the cost is recorded
            except Exception as e:  # noqa: BLE001 - the table shows the failure
                row["targets"][target] = {"error": str(e)[:300]}
                continue
            comp = art.manifest["compression"]["summary"]
            par = art.manifest["parity"]
            encoded = sorted({r["encoded"]["kind"] + ":" + r["encoded"]["format"]
                              for r in art.manifest["compression"]["ledger"]})
            t = {"bytes": art.model_bytes, "ratio_to_fp32_params": art.model_bytes / (params * 4),
                 "ratio_to_fp32_artifact": art.model_bytes / fp32_artifact[kind],
                 "ratio_to_dense_artifact": art.model_bytes / dense[kind], "options": opts,
                 "weight_bytes_written": comp["bytes_written"], "decompressed_layers": len(comp["decompressed_layers"]),
                 "encoded": encoded, "counts": {k: sum(1 for r in art.manifest["compression"]["ledger"]
                                                        if r["encoded"]["kind"] == k)
                                                for k in ("native", "re-quantized", "decompressed")},
                 "max_weight_error": max((r["encoded"].get("max_abs_error", 0.0)
                                          for r in art.manifest["compression"]["ledger"]), default=0.0),
                 "parity": {k: par.get(k) for k in ("mode", "ok")} |
                 {k: par.get("metrics", {}).get(k) for k in ("cosine_min", "top1", "max_abs_err")},
                 "cost": {k: (par.get("cost") or {}).get("per_output", [{}])[0].get(k)
                          for k in ("top1_flip", "cos_loss", "rel_l2")}}
            if target == "coreml" and name.startswith("shift"):
                tables = read_tables(art.path / "model.mlpackage")
                scales = {("p_" + n.replace(".", "_") + "_weight_to_fp16_palettized"): r.scale
                          for n, (m, r) in compressed_layers(model).items()}
                t["coreml_tables_pow2_times_scale"] = all(_pow2(tables[k], s) for k, s in scales.items())
            row["targets"][target] = t
        gate_drop, gate_ratio = GATES.get(name, (None, None))
        row["gates"] = {"drop_max": gate_drop, "coreml_ratio_max": gate_ratio,
                        "drop_ok": gate_drop is None or row["drop"] <= gate_drop}
        if gate_ratio is not None and "bytes" in row["targets"].get("coreml", {}):
            row["gates"]["coreml_ratio_ok"] = row["targets"]["coreml"]["ratio_to_fp32_artifact"] <= gate_ratio
        results["recipes"][name] = row
        print(f"{name}: acc {acc:.2f} (fp32 {acc32:.2f}) gates {row['gates']}", file=sys.stderr)
    Path(args.out + ".json").write_text(json.dumps(results, indent=2))
    Path(args.out + ".md").write_text(render(results, " ".join(["benchmarks/compression_acceptance.py"] + (argv or sys.argv[1:]))))
    return 0


def _counts(t: dict) -> str:
    parts = [f"{n} {k}" for k, n in t.get("counts", {}).items() if n]
    if t.get("max_weight_error"):
        parts.append(f"max weight error {t['max_weight_error']:.1e}")
    return ", ".join(parts)


def _pow2(values: np.ndarray, scale: float) -> bool:
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[v != 0]
    k = np.log2(np.abs(v) / scale)
    return bool(np.allclose(k, np.round(k), atol=1e-3))


def render(res: dict, command: str) -> str:
    lines = ["# Compression acceptance results", "",
             f"Command: `.venv/bin/python {command}` (this machine, 1 thread; CPU only; Core ML checked structurally).",
             "", f"Model {res['model']}: {res['params']:,} parameters, fp32 weights {res['fp32_bytes']:,} B, "
             f"held-out accuracy {res['fp32_accuracy']:.2f}% after {res['train']['epochs']} epochs.", "",
             "| recipe | accuracy | drop (gate) | Core ML bytes / fp32 Core ML artifact (gate) | / fp32 weights |",
             "|---|---|---|---|---|"]
    for name, r in res["recipes"].items():
        g = r["gates"]
        c = r["targets"].get("coreml", {})
        ratio = f"{c['ratio_to_fp32_artifact']:.3f}" if "bytes" in c else "failed"
        weights = f"{c['ratio_to_fp32_params']:.3f}" if "bytes" in c else "failed"
        lines.append(f"| {name} | {r['accuracy']:.2f}% | {r['drop']:+.2f} ({g['drop_max']}) | {ratio} "
                     f"({g['coreml_ratio_max'] or '-'}) | {weights} |")
    lines += ["", "Recipe x target (bytes, ratio to fp32 weights, ratio to the same target's fp32 artifact of the "
              "uncompressed model, ratio to its default dense artifact (Core ML: fp16), parity vs the compressed "
              "PyTorch model, encoded kinds from the ledger):", "",
              "| recipe | target | bytes | / fp32 weights | / fp32 artifact | / dense artifact | parity | encoded |",
              "|---|---|---|---|---|---|---|---|"]
    for name, r in res["recipes"].items():
        for target, t in r["targets"].items():
            if "error" in t:
                lines.append(f"| {name} | {target} | failed | | | | | {t['error'][:80]} |")
                continue
            p = t["parity"]
            par = (f"{p['mode']} {'ok' if p['ok'] else 'FAIL'}" + (f", cos {p['cosine_min']:.5f}, top1 {p['top1']:.2f}"
                   if p.get("cosine_min") is not None else ""))
            lines.append(f"| {name} | {target} | {t['bytes']:,} | {t['ratio_to_fp32_params']:.3f} | "
                         f"{t['ratio_to_fp32_artifact']:.3f} | {t['ratio_to_dense_artifact']:.3f} | {par} | "
                         f"{'; '.join(t['encoded'])} ({_counts(t)}) |")
    lines += ["", "Dense artifacts of the uncompressed model: " +
              ", ".join(f"{k} {v:,} B" for k, v in res["dense_artifact_bytes"].items()) +
              f"; fp32 Core ML artifact {res['fp32_artifact_bytes']['coreml']:,} B", ""]
    for name, r in res["recipes"].items():
        if "all_weights_pow2_times_scale" in r:
            lines.append(f"- {name}: every PyTorch weight ±2^k x layer scale: {r['all_weights_pow2_times_scale']}; "
                         f"every Core ML table entry: {r['targets'].get('coreml', {}).get('coreml_tables_pow2_times_scale')}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
