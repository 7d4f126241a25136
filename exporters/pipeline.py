"""One export: convert, write reference I/O, check parity, write the manifest.

The artifact is built in a staging directory and renamed into place only when
every step (parity gate included) has passed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.metadata as md
import platform
from pathlib import Path

import numpy as np

from edgekit import parity
from edgekit.artifact import Artifact, TensorSpec, load_artifact, write_reference_io
from edgekit.errors import EdgekitError
from edgekit.exporters import get_exporter
from edgekit.exporters.base import captured_native_output
from edgekit.outputs import parse_output_kinds
from edgekit.exporters.rewrites import export_rewrites
from edgekit.progress import progress
from edgekit.spec import forward_arg_names, random_like
from edgekit.targets import converter_packages

PRODUCERS = ("edgekit-sdk", "torch", *converter_packages(), "numpy")  # the manifest's producer versions


def producer_versions() -> dict[str, str]:
    versions = {}
    for dist in PRODUCERS:
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    versions["python"] = platform.python_version()
    return versions


def run_torch(model, inputs: tuple[np.ndarray, ...]) -> list[np.ndarray]:
    import torch
    from torch.utils._pytree import tree_flatten

    with torch.no_grad():
        out = model(*[torch.from_numpy(np.array(x, order="C", copy=True)) for x in inputs])
    leaves, _ = tree_flatten(out)
    return [leaf.detach().cpu().numpy() for leaf in leaves if isinstance(leaf, torch.Tensor)]


def parity_inputs(example: tuple[np.ndarray, ...], samples: int, dataset=None, seed: int = 0) -> list[tuple]:
    """Real samples from the spec's dataset when there is one, else seeded random."""
    if dataset is not None:
        data = dataset(samples)
        return [tuple(arr[i] for arr in data) for i in range(min(samples, len(data[0])))]
    return [random_like(example, seed + i) for i in range(samples)]


def export_model(
    model,
    example_inputs: tuple[np.ndarray, ...],
    target: str,
    out_dir: str | Path,
    *,
    name: str = "model",
    options: dict | None = None,
    input_names: tuple[str, ...] | None = None,
    dataset=None,
    parity_samples: int = 32,
    parity_gate: bool = True,
    seed: int = 0,
    show_progress: bool = True,
    manifest_extra: dict | None = None,
    recipe=None,
    allow_decompressed: bool = False,
    original=None,
    max_loss=None,
    output_kinds: dict[str, str] | list[str] | None = None,
    task: str | None = None,
    exclude=None,
    only=None,
    strict: bool = False,
    train_data=None,
) -> Artifact:
    """Export ``model`` to ``target`` into the artifact directory ``out_dir``.

    A compressed model (from ``compress``) is checked twice: against itself (conversion
    fidelity, the parity gate) and against the original model (compression cost, the
    ``max_loss`` gate: ``[OUTPUT:]METRIC=VALUE`` items, a dict, or "off"; see edgekit.loss).
    With ``recipe`` and an uncompressed ``model``, the model is compressed first (``exclude``,
    ``only``, ``strict``, ``train_data`` as in ``compress``; label-free distillation by default).
    ``output_kinds``/``task`` pick the metrics per output (edgekit.outputs).
    """
    import torch

    from edgekit.exporters.compression.ledger import check_capabilities, compression_section
    from edgekit.exporters.compression.provenance import get_provenance
    from edgekit.loss import parse_max_loss
    from edgekit.outputs import has_labels, resolve_output_kinds

    exporter = get_exporter(target)
    exporter.ensure_available()
    opts = exporter.make_options(options)
    user_limits = parse_max_loss(max_loss)
    declared = parse_output_kinds(output_kinds)
    if recipe is not None and get_provenance(model) is None:
        model = _compress_for_export(model, recipe, example_inputs, dataset, train_data, exclude, only, strict)
    prov = get_provenance(model)
    original = original if original is not None else (prov.original if prov is not None else None)
    recipe = prov.recipe if prov is not None else recipe  # exclude/only folded in
    check_capabilities(model, exporter)
    model = model.eval()
    # A fresh copy: numpy views can carry 0 strides on size-1 axes, which ExecuTorch rejects.
    example_inputs = tuple(np.array(x, order="C", copy=True) for x in example_inputs)
    from edgekit.exporters.compression.int8 import prepare_export

    prepare_export(model, example_inputs, dataset, parity_samples)  # int8 recipes: calibration, fallback
    names = tuple(input_names or forward_arg_names(model, len(example_inputs)))
    ref_out = run_torch(model, example_inputs)
    out_names = tuple(f"output_{i}" for i in range(len(ref_out)))
    kinds = resolve_output_kinds([r.shape for r in ref_out], task=task, declared=declared,
                                 labelled=has_labels(dataset), names=out_names)
    if original is not None:  # a bad --max-loss fails now, not after the slow conversion
        from edgekit.loss import effective_limits, recipe_kinds

        effective_limits(out_names, kinds, recipe_kinds(recipe), user_limits)
    torch_inputs = tuple(torch.from_numpy(x) for x in example_inputs)

    from edgekit.exporters.staged import ExportSteps, staged_export

    def describe(stage: Path, result) -> dict:
        write_reference_io(stage, dict(zip(names, example_inputs)), dict(zip(out_names, ref_out)))
        from edgekit.exporters.compression.int8 import write_plot

        write_plot(model, stage)  # int8 recipes: int8_sensitivity.png when matplotlib (bench extra) is there
        inputs = [TensorSpec.of(n, x).to_json() for n, x in zip(names, example_inputs)]
        outputs = [TensorSpec.of(n, y).to_json() for n, y in zip(out_names, ref_out)]
        manifest = {
            "kind": "edgekit-artifact",
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "producer": producer_versions(),
            "model": {"name": name, "class": type(model).__name__,
                      "parameters": int(sum(p.numel() for p in model.parameters()))},
            "target": target,
            "options": dataclasses.asdict(opts),
            "precision": result.precision,
            "model_file": result.model_file,
            "signature": {"inputs": inputs, "outputs": outputs},
            # one method; LLM artifacts list several (edgekit.artifact.MethodSpec)
            "methods": {"forward": {"file": result.model_file, "inputs": list(inputs), "outputs": list(outputs)}},
            "target_info": result.info,
            "compression": compression_section(model, exporter, result, recipe,
                                               allow_decompressed=allow_decompressed,
                                               model_file=stage / result.model_file),
        } | (manifest_extra or {})
        manifest["signature"]["output_kinds"] = dict(zip(out_names, kinds))
        return manifest

    def parity_record(stage: Path, result, manifest: dict) -> dict:
        record, cases, outputs = check_parity(model, load_artifact(stage), result, example_inputs, ref_out,
                                              parity_samples, dataset, seed, show_progress, kinds)
        record["gate"] = parity_gate
        if original is not None:
            from edgekit.exporters.compression.cost import measure_cost

            measured_on = "artifact" if outputs is not None else f"compressed PyTorch model ({target} cannot run here)"
            if outputs is None:  # the compressed model stands in for an artifact this machine cannot run
                outputs = [list(o) for o in zip(*(run_torch(model, c) for c in cases))]
            record["cost"] = measure_cost(original, cases, outputs, out_names, kinds, measured_on, recipe, user_limits)
        return record

    def gate_cost(manifest: dict) -> None:  # the --max-loss gate, after the parity gate
        if original is not None:
            from edgekit.exporters.compression.cost import cost_gate

            cost_gate(target, manifest["parity"])

    return staged_export(out_dir, ExportSteps(
        target=target, trace=lambda: {"forward": torch.export.export(model, torch_inputs)},
        convert=lambda programs, stage: exporter.convert(model, programs["forward"], torch_inputs, opts, stage),
        describe=describe, parity=parity_record, parity_gate=parity_gate, gates=(gate_cost,), options=opts,
        context=lambda: export_rewrites(model)))


def _compress_for_export(model, recipe, example_inputs, dataset, train_data, exclude, only, strict):
    from edgekit.exporters.compression import compress, load_recipe
    from edgekit.exporters.compression.finetune import distill_data

    recipe = load_recipe(recipe)
    if recipe.training and train_data is None:
        train_data = distill_data(model, tuple(example_inputs), dataset)
    return compress(model, recipe, train_data, exclude=exclude, only=only, strict=strict)[0]


def check_parity(model, artifact: Artifact, result, example_inputs, ref_out, samples, dataset, seed, show_progress,
                 kinds=None) -> tuple[dict, list[tuple], list[list[np.ndarray]] | None]:
    """(parity record, the inputs, the artifact's outputs per output; None where it cannot run here)."""
    from edgekit import runtime

    target = artifact.target
    cases = parity_inputs(example_inputs, samples, dataset, seed)
    kinds = list(kinds or [None] * len(ref_out))
    if target == "coreml" and not runtime.available_runtimes_for("coreml")["available"]:
        from edgekit.exporters.coreml.structure import structural_check
        ins, outs = artifact.reference_io()
        return structural_check(result.info["structure"], ins, outs), cases, None
    with captured_native_output():  # runtimes print banners on load
        session = runtime.load(artifact.path)
    refs: list[list[np.ndarray]] = [[] for _ in ref_out]
    gots: list[list[np.ndarray]] = [[] for _ in ref_out]
    for case in progress(cases, desc=f"parity {target}", enabled=show_progress):
        for i, (r, g) in enumerate(zip(run_torch(model, case), session.run(list(case)))):
            refs[i].append(r)
            gots[i].append(np.asarray(g).reshape(r.shape))
    per_output = [{"name": f"output_{i}", "kind": k} | parity.compare(r, g, k)
                  for i, (r, g, k) in enumerate(zip(refs, gots, kinds))]
    # The gate looks at the worst output.
    worst = min(per_output, key=lambda m: m["cosine_min"])
    ok, tol = parity.passes(worst, result.precision)
    return {"mode": "numeric", "ok": ok, "precision": result.precision, "tolerance": tol,
            "input_source": "dataset" if dataset is not None else f"random(seed={seed})",
            "metrics": worst, "per_output": per_output}, cases, gots


def export_spec(spec, targets, out_root: str | Path, *, options: dict[str, dict] | None = None,
                parity_samples: int = 32, parity_gate: bool = True, show_progress: bool = True,
                on_start=None, on_result=None, recipe=None, train_data=None,
                allow_decompressed: bool = False, max_loss=None, output_kinds=None, exclude=None, only=None,
                strict: bool = False) -> dict[str, Artifact | EdgekitError]:
    """Export one ModelSpec to several targets under ``out_root/<target>``.

    A target that fails does not stop the others; its error is returned in its place.
    With ``recipe``, the model is compressed once (through the compression cache) before
    every export; training-time recipes get ``train_data`` or ``finetune.data_for_spec``.
    """
    model = spec.build().eval()
    if recipe is not None:
        from edgekit.exporters.compression import load_recipe
        from edgekit.exporters.compression.cache import cached_compress
        from edgekit.exporters.compression.finetune import data_for_spec

        recipe = load_recipe(recipe)
        if recipe.training and train_data is None:
            train_data = data_for_spec(spec, model=model)
        model, _ = cached_compress(model, recipe, train_data, exclude=exclude, only=only, strict=strict)
    kinds = spec.output_kinds | parse_output_kinds(output_kinds)
    examples = spec.example_inputs(0)
    results: dict[str, Artifact | EdgekitError] = {}
    for target in targets:
        if on_start:
            on_start(target)
        try:
            results[target] = export_model(
                model, examples, target, Path(out_root) / target, name=spec.name,
                options=(options or {}).get(target), input_names=spec.input_names, dataset=spec.dataset,
                parity_samples=parity_samples, parity_gate=parity_gate, show_progress=show_progress,
                recipe=recipe, allow_decompressed=allow_decompressed, max_loss=max_loss, output_kinds=kinds,
                task=spec.task,
            )
        except EdgekitError as err:
            results[target] = err
        if on_result:
            on_result(target, results[target])
    return results
