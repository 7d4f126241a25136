"""Export a Llama-style decoder as prefill + decode methods, with its tokenizer, and check parity.

Both methods share one signature: ``(tokens, start_pos, k_cache, v_cache) -> (logits, k_cache, v_cache)``;
prefill takes ``prefill_len`` tokens, decode one. ExecuTorch holds both methods in one
.pte (XNNPACK-delegated); ONNX writes one file per method; TFLite one file with two
signatures; Core ML one multifunction .mlpackage (iOS18) whose two functions share
one copy of the weights. Core ML can't run on Linux: there its parity is structural.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import platform
import shutil
from pathlib import Path

import numpy as np
import torch

from edgekit.artifact import RESET_SIGNATURE, TensorSpec, load_artifact, staging_dir, write_manifest
from edgekit.errors import EdgekitError, UnknownChoice
from edgekit.exporters.base import captured_native_output, diagnose
from edgekit.exporters.pipeline import producer_versions
from edgekit.targets import LLM, names_with

LLM_TARGETS = names_with(LLM)
# Targets whose artifact keeps the KV cache inside (in place), not as inputs/outputs.
IN_PLACE_CACHE = ("executorch",)
OUTPUT_NAMES = ("logits", "k_cache_out", "v_cache_out")
METHODS = ("prefill", "decode")


def method_inputs(model, length: int) -> tuple[torch.Tensor, ...]:
    k, v = model.empty_cache(1)
    return torch.zeros(1, length, dtype=torch.long), torch.zeros(1, dtype=torch.long), k, v


def export_llm(model, tokenizer_file: str | Path, target: str, out_dir: str | Path, *, name: str = "llama",
               prefill_len: int = 16, parity_tokens: np.ndarray | None = None, skip_layers=(),
               manifest_extra: dict | None = None, weights: str = "fp32", group_size: int = 32,
               options: dict | None = None, kernels: str = "none"):
    """``weights``: fp32, or int4/int8 linear weights for ExecuTorch (exporters/llm_weights.py);
    parity is then taken against the quantized PyTorch model at int8 tolerance. ``options``: the target's
    options (fields of its options dataclass that LLM exports take, exporters/llm_options.py).
    ``kernels="edgekit"``: clustered / shift linears run on edgekit ops at their bit width (llm_kernels.py);
    parity is taken against the clustered PyTorch model at fp32 tolerance."""
    if target not in LLM_TARGETS:
        raise UnknownChoice("LLM target", target, LLM_TARGETS)
    from edgekit.exporters.llm_weights import check_weights, quantized_copy
    from edgekit.model_zoo.llama import LlamaStep

    from edgekit.exporters.llm_kernels import check_kernels, file_bytes, swap_llm

    check_weights(weights, target, group_size)
    check_kernels(kernels, target, weights)
    from edgekit.exporters.llm_options import llm_fields, llm_options

    opts = llm_options(target, options)
    source, ledger, native = model.eval(), [], None
    if weights != "fp32":
        model, ledger = quantized_copy(source, weights, group_size)
    model.skip = frozenset(skip_layers)
    traced = model
    if kernels == "edgekit":  # the traced copy calls edgekit ops; `model` stays the parity reference
        traced, native = swap_llm(model)
    step = LlamaStep(traced).eval()
    examples = {"prefill": method_inputs(model, prefill_len), "decode": method_inputs(model, 1)}
    out_dir = Path(out_dir)
    with staging_dir(out_dir) as stage:
        with captured_native_output() as log:
            programs = {}
            try:
                programs = {m: torch.export.export(step, examples[m]) for m in METHODS}
                files = _CONVERTERS[target](step, programs, examples, stage, opts)
                target_weights = files.pop("weights", None)  # per-layer storage, where a target reports it
            except EdgekitError:
                raise
            except Exception as exc:
                raise diagnose(exc, programs.get("decode"), target, log) from exc
        shutil.copy(tokenizer_file, stage / "tokenizer.json")
        names = ("tokens", "start_pos", "k_cache", "v_cache")
        out_names = OUTPUT_NAMES
        signature = {}
        io_count = (2, 1) if target in IN_PLACE_CACHE else (4, 3)
        for m in METHODS:
            outs = [o.detach().numpy() for o in step(*examples[m])]
            signature[m] = {"file": files[m],
                            "inputs": [TensorSpec.of(n, x.numpy()).to_json()
                                       for n, x in zip(names[:io_count[0]], examples[m])],
                            "outputs": [TensorSpec.of(n, y).to_json() for n, y in zip(out_names[:io_count[1]], outs)]}
        if target in IN_PLACE_CACHE:  # zeroes the shared cache buffers: a new conversation
            signature["reset"] = {"file": files["decode"], **RESET_SIGNATURE}
        manifest = llm_manifest_header(model, name, target, prefill_len) | {
            "precision": getattr(opts, "compute_precision", None) or ("int8" if weights != "fp32" else "fp32"),
            "weights": weights,
            "model_file": files["decode"], "methods": signature, "tokenizer": "tokenizer.json",
            "skip_layers": sorted(model.skip),
            "kv_cache": "in_place" if target in IN_PLACE_CACHE else "explicit",
            "signature": {"inputs": signature["decode"]["inputs"], "outputs": signature["decode"]["outputs"]},
            "compression": {"recipe": None, "ledger": []},
        } | (manifest_extra or {})
        manifest["options"] |= {n: getattr(opts, n) for n in llm_fields(target)}  # the target's, as used
        from edgekit.exporters.compression.record import compressed_layers
        if native is not None:
            target_weights = file_bytes(stage / files["decode"], traced, native)
            manifest["options"]["executorch_kernels"] = kernels
        if weights == "fp32" and compressed_layers(model):
            manifest["compression"] = llm_compression_section(model, target_weights)
            from edgekit.exporters.compression.provenance import get_provenance
            if (prov := get_provenance(model)) is not None:  # export-llm --recipe
                manifest["compression"]["recipe"] = {"name": prov.recipe.name, "hash": prov.recipe.hash()}
        if ledger:
            from edgekit.exporters.llm_weights import weights_section
            params = sum(p.numel() for p in source.parameters())
            manifest["compression"] = weights_section(weights, group_size, ledger,
                                                      (stage / files["decode"]).stat().st_size, params * 4)
        write_manifest(stage, manifest)
        if target == "coreml" and platform.system() != "Darwin":
            manifest["parity"] = coreml_llm_structure(stage / files["decode"], signature)
            write_manifest(stage, manifest)
            if not manifest["parity"]["ok"]:
                raise EdgekitError("structural_check_failed", "the Core ML LLM package does not match the model: "
                                   + "; ".join(manifest["parity"]["problems"]), fix="report this as a bug")
        elif parity_tokens is not None:
            from edgekit.generate import LLMSession
            with captured_native_output():
                session = LLMSession(stage)
            manifest["parity"] = llm_parity(model, session, parity_tokens, prefill_len)
            write_manifest(stage, manifest)
            if not manifest["parity"]["ok"]:
                from edgekit.errors import ParityError
                raise ParityError(target, manifest["parity"]["metrics"], manifest["parity"]["tolerance"])
    model.skip = source.skip = frozenset()
    return load_artifact(out_dir)


def llm_manifest_header(model, name: str, target: str, prefill_len: int) -> dict:
    """The manifest fields every LLM artifact shares (plain and FiRST)."""
    return {
        "kind": "edgekit-llm",
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "producer": producer_versions(),
        "model": {"name": name, "class": type(model).__name__,
                  "parameters": int(sum(p.numel() for p in model.parameters())),
                  "config": dataclasses.asdict(model.cfg)},
        "target": target, "options": {"prefill_len": prefill_len},
    }


def llm_parity(model, session, tokens: np.ndarray, prefill_len: int, decode_steps: int = 32) -> dict:
    """Prefill a real prompt then teacher-force ``decode_steps`` tokens through torch and the artifact."""
    from edgekit import parity

    prompt, rest = tokens[:prefill_len], tokens[prefill_len: prefill_len + decode_steps]
    ref_logits, got_logits = [], []
    k, v = model.empty_cache(1)
    kn, vn = session.empty_cache()
    with torch.no_grad():
        lg, k, v = model(torch.from_numpy(prompt[None]), torch.tensor([0]), k, v)
    glg, kn, vn = session.prefill_chunk(prompt, 0, kn, vn)
    ref_logits.append(lg[0, -1].numpy()), got_logits.append(glg[-1])
    for i, tok in enumerate(rest):
        pos = prefill_len + i
        with torch.no_grad():
            lg, k, v = model(torch.tensor([[int(tok)]]), torch.tensor([pos]), k, v)
        glg, kn, vn = session.decode(int(tok), pos, kn, vn)
        ref_logits.append(lg[0, -1].numpy()), got_logits.append(glg)
    metrics = parity.compare([r[None] for r in ref_logits], [g[None] for g in got_logits])
    precision = session.manifest["precision"]
    ok, tol = parity.passes(metrics, precision)
    return {"mode": "numeric", "ok": ok, "precision": precision, "tolerance": tol, "metrics": metrics,
            "input_source": f"pydoc text: {prefill_len}-token prompt + {len(rest)} teacher-forced decode steps"}


def _to_executorch(step, programs, examples, stage: Path, options) -> dict:
    """prefill, decode and reset over one in-place KV cache that the three methods share."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import ExecutorchBackendConfig, to_edge_transform_and_lower
    from executorch.exir.passes import MemoryPlanningPass

    from edgekit.model_zoo.llama import LlamaInPlaceStep

    inplace, reset = LlamaInPlaceStep(step.model).eval(), LlamaInPlaceStep(step.model, reset=True).eval()
    one = torch.zeros(1, dtype=torch.long)
    with torch.no_grad():
        programs = {m: torch.export.export(inplace, examples[m][:2]) for m in METHODS}
        programs["reset"] = torch.export.export(reset, (one,))
        partitioner = [XnnpackPartitioner()] if options.delegate == "xnnpack" else []
        edge = to_edge_transform_and_lower(programs, partitioner=partitioner)
        program = edge.to_executorch(ExecutorchBackendConfig(
            memory_planning_pass=MemoryPlanningPass(alloc_graph_input=False, share_mutable_buffers=True),
            emit_mutable_buffer_names=True, run_reinplace_pass=True))
    (stage / "model.pte").write_bytes(program.buffer)
    return {m: "model.pte" for m in METHODS}


def _to_onnx(step, programs, examples, stage: Path, options) -> dict:
    from edgekit.exporters.onnx.clean import strip_file

    for m in METHODS:
        torch.onnx.export(programs[m], examples[m], dynamo=True, opset_version=int(options.opset), verbose=False).save(
            str(stage / f"{m}.onnx"))
        strip_file(stage / f"{m}.onnx")  # no stack traces or source paths of this machine in the artifact
    return {m: f"{m}.onnx" for m in METHODS}


def _to_tflite(step, programs, examples, stage: Path, options) -> dict:
    import litert_torch

    converted = (litert_torch.signature("prefill", step, examples["prefill"])
                 .signature("decode", step, examples["decode"]).convert())
    converted.export(str(stage / "model.tflite"))
    return {m: "model.tflite" for m in METHODS}


def _to_coreml(step, programs, examples, stage: Path, options) -> dict:
    """Both methods as functions of one iOS18 multifunction package: weights stored once.
    Clustered layers (eDKM checkpoints) keep their tables: constexpr_lut_to_dense, 3/4-bit indices."""
    if options.minimum_deployment_target != "iOS18":
        raise EdgekitError("bad_option", f"a Core ML LLM is one multifunction package, which needs iOS18; "
                           f"minimum_deployment_target is {options.minimum_deployment_target}",
                           fix="pass --coreml-target iOS18 (the default for LLMs)")
    import tempfile

    import coremltools as ct

    from edgekit.exporters.compression import coreml_encode
    from edgekit.exporters.compression.record import compressed_layers

    clustered, encodings = compressed_layers(step.model), {}
    with tempfile.TemporaryDirectory() as tmp:
        desc = ct.utils.MultiFunctionDescriptor()
        for m in METHODS:
            mlmodel = ct.convert(programs[m].run_decompositions({}),
                                 minimum_deployment_target=getattr(ct.target, options.minimum_deployment_target),
                                 compute_precision=getattr(ct.precision, f"FLOAT{options.compute_precision[2:]}"),
                                 skip_model_load=True)
            if clustered:
                mlmodel, consts = coreml_encode.encode(mlmodel, clustered, options.compute_precision)
                encodings = coreml_encode.layer_encodings(mlmodel, consts)
            spec = mlmodel.get_spec()
            for old, new in zip([o.name for o in spec.description.output], OUTPUT_NAMES):
                ct.utils.rename_feature(spec, old, new)
            ct.models.MLModel(spec, weights_dir=mlmodel.weights_dir, skip_model_load=True).save(f"{tmp}/{m}.mlpackage")
            desc.add_function(f"{tmp}/{m}.mlpackage", src_function_name="main", target_function_name=m)
        desc.default_function_name = "decode"
        ct.utils.save_multifunction(desc, str(stage / "model.mlpackage"))
    return {m: "model.mlpackage" for m in METHODS} | {"weights": encodings}


def coreml_llm_structure(package: Path, signature: dict) -> dict:
    """Each function's I/O names and shapes against the torch model's; ops and weight encodings."""
    from edgekit.exporters.coreml.structure import describe_mlpackage

    problems, functions = [], {}
    for m, sig in signature.items():
        found = describe_mlpackage(package, function=m)
        functions[m] = {"ops": sum(found["ops"].values()), "weight_encodings": found["weight_encodings"]}
        for kind in ("inputs", "outputs"):
            want = [(t["name"], list(t["shape"])) for t in sig[kind]]
            got = [(f["name"], f["shape"]) for f in found[kind]]
            if got != want:
                problems.append(f"{m} {kind}: package {got} vs model {want}")
        if not found["ops"]:
            problems.append(f"function {m} has no ops")
    return {"mode": "structural", "ok": not problems, "problems": problems, "functions": functions,
            "weight_file_bytes": found["weight_file_bytes"],
            "reason": "Core ML prediction needs macOS; checked each function's names, shapes, ops and weights"}


def llm_compression_section(model, encodings: dict | None = None) -> dict:
    """The manifest's compression section for an LLM whose weights carry LUT records (eDKM checkpoints).

    ``encodings`` (Core ML) says per layer how the package stores it: lookup tables, native. Without it
    the target stored the layer ``decompressed: dense fp32``. ``expected_bytes`` is the clustered size
    (indices packed at their bit width + fp16 tables).
    """
    from edgekit.exporters.base import DECOMPRESSED, NATIVE
    from edgekit.exporters.llm_compress import layer_bytes
    from edgekit.exporters.compression.ledger import CompressionWidened, widening
    from edgekit.exporters.compression.record import compressed_layers

    rows = []
    for name, (module, rec) in compressed_layers(model).items():
        shape = tuple(module.weight.shape)
        b = layer_bytes(shape, rec.bits)
        enc = (encodings or {}).get(name)
        if enc and enc["ops"] != ["const"]:
            edgekit = enc["ops"][0].startswith("edgekit::")  # fp32 dense on ExecuTorch, fp16 on Core ML
            rows.append({"layer": name, "shape": list(shape), "requested": rec.to_json(), "capability": NATIVE,
                         "encoded": {"kind": NATIVE, "format": "+".join(enc["ops"]), "index_bits": enc["index_bits"]}
                         | ({"bytes_from": enc["bytes_from"]} if "bytes_from" in enc else {}),
                         "expected_bytes": b["indices"] + b["table"],
                         "dense_bytes": b["fp32"] if edgekit else b["fp32"] // 2,
                         "bytes_written": enc["bytes"]})
            continue
        rows.append({"layer": name, "shape": list(shape), "requested": rec.to_json(), "capability": DECOMPRESSED,
                     "encoded": {"kind": DECOMPRESSED, "format": "dense fp32"},
                     "expected_bytes": b["indices"] + b["table"], "dense_bytes": b["fp32"],
                     "bytes_written": b["fp32"]})
    for r, (name, (_, rec)) in zip(rows, compressed_layers(model).items()):
        if r["encoded"]["kind"] == NATIVE and (wide := widening(rec.bits, (encodings or {}).get(name, {}))):
            r["widened"] = wide
    if widened := [r for r in rows if "widened" in r]:
        raise CompressionWidened("coreml", widened)
    written = sum(r["bytes_written"] for r in rows)
    dense = sum(r["dense_bytes"] for r in rows)
    return {"recipe": None, "ledger": rows, "summary": {
        "layers": len(rows), "bytes_written": written, "dense_bytes": dense,
        "expected_bytes": sum(r["expected_bytes"] for r in rows), "ratio_to_dense": written / dense if dense else 1.0,
        "decompressed_layers": [r["layer"] for r in rows if r["encoded"]["kind"] == DECOMPRESSED],
        "allowed_decompressed": True}}


_CONVERTERS = {t: globals()[f"_to_{t}"] for t in LLM_TARGETS}  # one converter per target above: _to_onnx, ...
