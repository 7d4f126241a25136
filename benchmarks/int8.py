"""int8 vs fp32 on trained zoo CNNs: held-out digits accuracy, bytes and latency per target, one run.

    nice .venv/bin/python benchmarks/int8.py --epochs 3 --rounds 3 --models resnet18_digits
    nice .venv/bin/python benchmarks/int8.py --epochs 3 --rounds 3 \
        --models vovnet19_slim_digits,denseshift_resnet18_digits

Trains (or reuses, under --work/ckpt) resnet_tiny, vovnet_tiny and denseshift_tiny (or --models) on the
digits train split, exports each to ExecuTorch, TFLite and ONNX in fp32 and with the ``int8`` recipe
(static, min-max observer, 128 calibration samples from the train split; the cost gate off, its
verdict recorded), measures accuracy on the 360 held-out digits through each artifact's runtime and
the images whose int8 top-1 changed (with their fp32 margins), where the file's bytes go (weights /
other constants / structure, read from the file), and latency (fresh process per measurement, p50)
at 1 and 2 threads, fp32 and int8 interleaved in every round; ratios are taken within a round, of the
p50s and of the fastest runs, medians over rounds. Merges into docs/int8_results.json (other models' rows are kept).
``--recount`` recomputes accuracy from the artifacts under --work; ``--reuse`` skips exports done.

A DenseShift model's default fp32 TFLite and ONNX artifacts already store its 2-3 bit shift weights as
exact int8 (``pow2_int8``), so for those cells a dense fp32 artifact (``pow2_int8`` off) is exported too
and the int8 file is also compared with it (``fp32_dense``, ``bytes_ratio_dense``); ``--dense-baseline``
adds just that to models already in --out.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

MODELS = ("resnet_tiny", "vovnet_tiny", "denseshift_tiny")  # the real-size ones (--models, above) take ~1 h on 2 cores
TARGETS = ("executorch", "tflite", "onnx")
DENSE_TARGETS = ("tflite", "onnx")  # the targets whose fp32 export stores shift weights as int8 (pow2_int8)
OUT = "docs/int8_results.json"


def trained(name: str, epochs: int, work: Path):
    from edgekit.model_zoo.train import TrainConfig, load_checkpoint, train

    ckpt = work / "ckpt" / f"{name}.safetensors"
    if ckpt.exists():
        return load_checkpoint(name, ckpt)
    return train(name, TrainConfig(epochs=epochs), out_dir=work / "ckpt", show_progress=False).model


def file_bytes(model_file: Path) -> dict:
    """Where an artifact's bytes go, read from the file: weight tensors (values + their scales and zero
    points), other constants (biases, BatchNorm shifts, quantization parameters stored as tensors) and the
    rest (the format's graph: ops, tensor descriptors, names, per-tensor quantization parameters, padding)."""
    from edgekit.exporters.file_weights import read_stored, weight_bytes

    stored = read_stored(model_file)
    total, weights = model_file.stat().st_size, weight_bytes(stored)
    constants = sum(s.nbytes for s in stored)
    return {"file": total, "weights": weights, "other_constants": constants - weights, "structure": total - constants}


def dense_baseline(model, examples, target: str, out_dir: Path, name: str, dataset, reuse: bool) -> dict:
    """The fp32 artifact with every weight stored dense fp32 (``pow2_int8`` off): the baseline a shift
    model's int8 file is compared with when its default fp32 artifact stores the shift weights as int8."""
    from edgekit.exporters.pipeline import export_model

    from edgekit.artifact import load_artifact

    if reuse and (out_dir / "manifest.json").exists():
        art = load_artifact(out_dir)
    else:
        art = export_model(model, examples, target, out_dir, name=name, dataset=dataset, show_progress=False,
                           options={"pow2_int8": False}, parity_gate=False, parity_samples=8)
    return {"bytes": art.model_bytes, "file_bytes": file_bytes(art.model_file), "options": {"pow2_int8": False}}


def shift_codes(model_file: Path) -> dict:
    """How many of the file's conv/linear weight tensors hold, per output channel, only codes +-2^k x peak / 64
    (k <= 6): the exact int8 form of 2-3 bit shift weights, as opposed to a rounding at peak / 127."""
    from edgekit.exporters.file_weights import read_stored

    n = exact = 0
    for s in read_stored(model_file):
        v = s.raw if s.raw is not None else s.values
        if not s.is_weight or v is None:
            continue
        flat = np.abs(np.asarray(v, dtype=np.float64)).reshape(s.shape[0], -1)  # output channel first in every format
        codes = flat / np.maximum(flat.max(1, keepdims=True), 1e-30) * 64
        n += 1
        exact += bool(np.all(np.isin(np.round(codes, 4), [1, 2, 4, 8, 16, 32, 64])))
    return {"weight_tensors": n, "exact_shift_int8": exact}


def has_shift_layers(model) -> bool:
    from edgekit.model_zoo.denseshift import shift_layers

    return bool(shift_layers(model))


def add_dense_baselines(args, cells: dict) -> None:
    """``--dense-baseline``: the dense fp32 artifact of every shift model's TFLite/ONNX cell in --out."""
    from edgekit.model_zoo import get_spec
    from edgekit.model_zoo.denseshift import shift_layers

    for name, row in cells.items():
        spec = get_spec(name)
        model = trained(name, args.epochs, Path(args.work))
        if not has_shift_layers(model):
            continue
        n_shift = len(shift_layers(model))
        for target in TARGETS:  # where the int8 artifacts are still under --work
            for path in (Path(args.work) / name / f"{target}_int8").glob("model.*"):
                row["targets"][target]["int8"]["shift_codes"] = shift_codes(path) | {"shift_layers": n_shift}
        for target in DENSE_TARGETS:
            cell = row["targets"][target]
            cell["fp32_dense"] = dense_baseline(model, spec.example_inputs(0), target,
                                                Path(args.work) / name / f"{target}_fp32_dense", name, spec.dataset,
                                                args.reuse)
            cell["bytes_ratio_dense"] = cell["int8"]["bytes"] / cell["fp32_dense"]["bytes"]
            print(name, target, f"dense fp32 {cell['fp32_dense']['bytes']:,} B, int8/dense "
                  f"{cell['bytes_ratio_dense']:.3f}", flush=True)


def merge(out: Path, results: dict) -> dict:
    """The results file with this run's models replaced (other models' rows and earlier runs kept)."""
    old = json.loads(out.read_text()) if out.exists() else {}
    runs = [r for r in old.get("runs", []) if not set(r["models"]) <= set(results["models"])]
    runs.append({k: results[k] for k in ("command", "machine_before", "machine_after") if k in results}
                | {"models": list(results["models"])})
    return {"command": results["command"], "machine_before": results["machine_before"],
            "models": old.get("models", {}) | results["models"], "machine_after": results.get("machine_after"),
            "runs": runs}


def logits(path: Path, x: np.ndarray) -> np.ndarray:
    """The artifact's outputs for every image, batch 1, through its runtime."""
    from edgekit import runtime

    session = runtime.load(path, threads=2)
    return np.stack([np.asarray(session.run([x[i:i + 1]])[0]).reshape(-1) for i in range(len(x))])


def agreement(fp32: np.ndarray, int8: np.ndarray, y: np.ndarray) -> dict:
    """Held-out accuracy of both, and the images whose top-1 int8 changed: how many, which way, and the fp32
    top-1 margin (top-1 minus top-2 logit) of those images against the median margin."""
    top = np.sort(fp32, axis=1)
    margin = top[:, -1] - top[:, -2]
    a, b = fp32.argmax(1), int8.argmax(1)
    changed = a != b
    return {"fp32_accuracy": float(np.mean(a == y)), "int8_accuracy": float(np.mean(b == y)),
            "flips_vs_fp32": int(changed.sum()), "fixed": int(np.sum(changed & (b == y))),
            "broken": int(np.sum(changed & (a == y))), "flipped_fp32_margins": [float(m) for m in margin[changed]],
            "median_fp32_margin": float(np.median(margin))}


def recount(args, cells: dict) -> None:
    """Accuracy and top-1 changes from the artifacts already under --work (no export, no latency)."""
    from edgekit.model_zoo import get_spec
    from edgekit.model_zoo.data import digits

    for name, row in cells.items():
        spec = get_spec(name)
        x, y = digits(spec.hints["img_size"], spec.hints["in_chans"], split="test")
        for target, cell in row["targets"].items():
            got = {v: logits(Path(args.work) / name / f"{target}_{v}", x) for v in ("fp32", "int8")}
            record(cell, agreement(got["fp32"], got["int8"], y))
            print(name, target, {k: cell[k] for k in ("accuracy_delta_points", "flips_vs_fp32")}, flush=True)


def record(cell: dict, agree: dict) -> None:
    cell["fp32"]["accuracy"], cell["int8"]["accuracy"] = agree["fp32_accuracy"], agree["int8_accuracy"]
    cell["accuracy_delta_points"] = 100 * (agree["int8_accuracy"] - agree["fp32_accuracy"])
    cell["flips_vs_fp32"] = cell["int8"]["flips_vs_fp32"] = agree["flips_vs_fp32"]
    cell["agreement"] = agree


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--work", default="out/int8_bench")
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--recount", action="store_true",
                    help="only recompute accuracy and top-1 changes from the artifacts under --work into --out")
    ap.add_argument("--reuse", action="store_true",
                    help="load artifacts already under --work instead of exporting them again (after an interruption)")
    ap.add_argument("--dense-baseline", action="store_true",
                    help="only add the dense fp32 (pow2_int8 off) TFLite/ONNX baseline of the shift models in --out")
    ap.add_argument("--untrained", action="store_true",
                    help="size and latency only: the zoo's initial weights, no training, no accuracy")
    args = ap.parse_args()
    import torch
    from edgekit.exporters.compression import compress
    from edgekit.exporters.pipeline import export_model
    from edgekit.model_zoo import get_spec
    from edgekit.model_zoo.data import digits
    from edgekit.model_zoo.denseshift import shift_layers
    from edgekit.model_zoo.train import evaluate

    from edgekit.artifact import load_artifact
    from edgekit.bench import benchmark, machine_info

    torch.set_num_threads(2)
    if args.recount or args.dense_baseline:
        old = json.loads(Path(args.out).read_text())
        (recount if args.recount else add_dense_baselines)(args, {m: old["models"][m] for m in args.models.split(",")})
        flag = "--recount" if args.recount else "--dense-baseline"
        old["runs"] = [r for r in old.get("runs", []) if not (flag in r["command"] and set(r["models"]) <= set(
            args.models.split(",")))]  # an earlier run of the same kind over these models is superseded
        old["runs"].append({"command": f"nice .venv/bin/python benchmarks/int8.py {flag} --models "
                                           f"{args.models}", "models": args.models.split(",")})
        Path(args.out).write_text(json.dumps(old, indent=2))
        return
    work = Path(args.work)
    results = {"command": "nice .venv/bin/python benchmarks/int8.py " + f"--epochs {args.epochs} --rounds "
               f"{args.rounds} --runs {args.runs} --models {args.models}" + (" --untrained" if args.untrained else "")
               + (" --reuse" if args.reuse else "") + (f" --out {args.out}" if args.out != OUT else ""),
               "machine_before": machine_info(), "models": {}}
    arts = {}
    for name in args.models.split(","):
        spec = get_spec(name)
        size, chans = spec.hints["img_size"], spec.hints["in_chans"]
        x_test, y_test = digits(size, chans, split="test")
        x_train, _ = digits(size, chans, split="train")
        t0 = time.time()
        model = spec.build() if args.untrained else trained(name, args.epochs, work)
        row = {"torch_accuracy": None if args.untrained else evaluate(model, x_test, y_test),
               "trained": not args.untrained, "train_or_load_s": time.time() - t0, "targets": {}}
        int8_model, _ = compress(model, "int8", data=x_train[:128, None])  # 128 train images, batch axis
        examples = spec.example_inputs(0)
        for target in TARGETS:
            cell = row["targets"][target] = {}
            for variant, m in (("fp32", model), ("int8", int8_model)):
                t0, reused = time.time(), False
                out_dir = work / name / f"{target}_{variant}"
                if args.reuse and (out_dir / "manifest.json").exists():
                    art, reused = load_artifact(out_dir), True
                else:  # measured whatever the cost: the default int8 gate's verdict is recorded, not enforced
                    art = export_model(m, examples, target, out_dir, name=name, dataset=spec.dataset,
                                       show_progress=False, parity_gate=False, max_loss="off")
                arts[(name, target, variant)] = art.path
                cell[variant] = {"bytes": art.model_bytes, "export_s": None if reused else time.time() - t0,
                                 "reused": reused,
                                 "file_bytes": file_bytes(art.model_file),
                                 "parity": art.manifest["parity"]["metrics"], "parity_ok": art.manifest["parity"]["ok"],
                                 "cost": art.manifest["parity"].get("cost"),
                                 "accuracy": None}
                if not args.untrained:
                    cell[variant]["logits"] = logits(art.path, x_test)
                if variant == "int8" and has_shift_layers(model):
                    cell[variant]["shift_codes"] = shift_codes(art.model_file) | {"shift_layers": len(shift_layers(model))}
                if variant == "int8":
                    s = art.manifest["compression"]["summary"]
                    cell[variant]["ledger"] = {k: s[k] for k in ("bytes_written", "dense_bytes", "decompressed_layers")}
            cell["bytes_ratio"] = cell["int8"]["bytes"] / cell["fp32"]["bytes"]
            cell["weights_ratio"] = cell["int8"]["file_bytes"]["weights"] / cell["fp32"]["file_bytes"]["weights"]
            if target in DENSE_TARGETS and has_shift_layers(model):
                cell["fp32_dense"] = dense_baseline(model, examples, target, work / name / f"{target}_fp32_dense", name,
                                                    spec.dataset, args.reuse)
                cell["bytes_ratio_dense"] = cell["int8"]["bytes"] / cell["fp32_dense"]["bytes"]
            cell["accuracy_delta_points"] = None
            if not args.untrained:
                record(cell, agreement(cell["fp32"].pop("logits"), cell["int8"].pop("logits"), y_test))
            print(name, target, json.dumps({k: cell.get(k) for k in ("bytes_ratio", "weights_ratio",
                                                                    "accuracy_delta_points", "flips_vs_fp32")}),
                  flush=True)
        results["models"][name] = row
        Path(args.out).write_text(json.dumps(merge(Path(args.out), results), indent=2))
    # latency: interleaved rounds, fp32 and int8 back to back (order alternating), fresh process each
    lat: dict[str, list] = {}
    for r in range(args.rounds):
        for name in args.models.split(","):
            for target in TARGETS:
                for threads in (1, 2):
                    key = f"{name}/{target}/{threads}"
                    order = ("fp32", "int8") if r % 2 == 0 else ("int8", "fp32")
                    got = {v: benchmark(arts[(name, target, v)], runs=args.runs, threads=threads,
                                        min_seconds=0.5)["latency"] for v in order}
                    p50 = {v: got[v]["p50_ms"] for v in order}
                    fastest = {f"{v}_min": got[v]["min_ms"] for v in order}
                    lat.setdefault(key, []).append({"round": r, **p50, **fastest, "speedup": p50["fp32"] / p50["int8"],
                                                    "speedup_min": fastest["fp32_min"] / fastest["int8_min"]})
        print(f"round {r} done, load {os.getloadavg()}", flush=True)
    for key, rounds in lat.items():
        name, target, threads = key.split("/")
        cell = results["models"][name]["targets"][target].setdefault("latency", {})
        cell[threads] = {"rounds": rounds, "fp32_p50_ms": float(np.median([x["fp32"] for x in rounds])),
                         "int8_p50_ms": float(np.median([x["int8"] for x in rounds])),
                         "speedup_median": float(np.median([x["speedup"] for x in rounds])),
                         # fastest runs: a run shorter than a scheduler slice is preempted or not, so on a shared
                         # machine a ~2 ms p50 lands on either mode; the fastest run is the uncontended time
                         "fp32_min_ms": float(np.median([x["fp32_min"] for x in rounds])),
                         "int8_min_ms": float(np.median([x["int8_min"] for x in rounds])),
                         "speedup_min_median": float(np.median([x["speedup_min"] for x in rounds]))}
        print(key, f"speedup {cell[threads]['speedup_median']:.2f}x", flush=True)
    results["machine_after"] = machine_info()
    Path(args.out).write_text(json.dumps(merge(Path(args.out), results), indent=2))


if __name__ == "__main__":
    main()
