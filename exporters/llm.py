"""Export a Llama-style decoder as prefill + decode methods, with its tokenizer, and check parity.

Both methods share one signature: ``(tokens, start_pos, k_cache, v_cache) -> (logits, k_cache, v_cache)``;
prefill takes ``prefill_len`` tokens, decode one. The export runs the same staged skeleton as every
artifact (exporters/staged.py); the target's own code is its package's ``llm`` module
(``exporters/<target>/llm.py``): ExecuTorch holds both methods in one .pte with an in-place cache
(and a ``reset`` method); ONNX writes one file per method; TFLite one file with two signatures;
Core ML one multifunction .mlpackage (iOS18) whose two functions share one copy of the weights.
Core ML can't run on Linux: there its parity is structural.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import shutil
from pathlib import Path

import numpy as np
import torch

from edgekit.artifact import RESET_SIGNATURE, TensorSpec
from edgekit.errors import UnknownChoice
from edgekit.exporters.base import captured_native_output
from edgekit.exporters.pipeline import producer_versions
from edgekit.targets import LLM, names_with, target_info

LLM_TARGETS = names_with(LLM)
INPUT_NAMES = ("tokens", "start_pos", "k_cache", "v_cache")
OUTPUT_NAMES = ("logits", "k_cache_out", "v_cache_out")
METHODS = ("prefill", "decode")


def method_inputs(model, length: int) -> tuple[torch.Tensor, ...]:
    k, v = model.empty_cache(1)
    return torch.zeros(1, length, dtype=torch.long), torch.zeros(1, dtype=torch.long), k, v


def target_module(target: str):
    """``exporters/<target>/llm.py``: its ``convert(step, programs, examples, stage, options) -> {method: file}``,
    ``KV_CACHE`` ("in_place" or "explicit") and, where it has them, ``check_options`` and ``structural_parity``."""
    return importlib.import_module(f"{target_info(target).exporter}.llm")


def export_llm(model, tokenizer_file: str | Path, target: str, out_dir: str | Path, *, name: str = "llama",
               prefill_len: int = 16, parity_tokens: np.ndarray | None = None, skip_layers=(),
               manifest_extra: dict | None = None, weights: str = "fp32", group_size: int = 32,
               options: dict | None = None, kernels: str = "none", allow_decompressed: bool = False,
               attention: str = "auto"):
    """``weights``: fp32, or int4/int8 linear weights for ExecuTorch (exporters/llm_weights.py);
    parity is then taken against the quantized PyTorch model at int8 tolerance. ``options``: the target's
    options (fields of its options dataclass that LLM exports take, exporters/llm_options.py).
    ``kernels="edgekit"``: clustered / shift linears run on edgekit ops at their bit width (llm_kernels.py);
    parity is taken against the clustered PyTorch model at fp32 tolerance (``"edgekit-q8"``: int8 activations,
    at int8 tolerance). A clustered model that the target
    stores dense fails with ``compression_lost`` unless ``allow_decompressed`` (as ``export_model``).
    ``attention``: ``edgekit`` runs each layer's attention on one ``edgekit::attention`` op (ExecuTorch; reads
    only the cache positions in use), ``graph`` on the model's own ops, ``auto`` edgekit with ``kernels``."""
    if target not in LLM_TARGETS:
        raise UnknownChoice("LLM target", target, LLM_TARGETS)
    from edgekit.exporters.llm_kernels import check_kernels, resolve_attention, set_kernel_attention, swap_llm
    from edgekit.exporters.llm_options import llm_options
    from edgekit.exporters.llm_weights import check_weights, quantized_copy
    from edgekit.exporters.staged import ExportSteps, staged_export
    from edgekit.model_zoo.llama import LlamaStep

    check_weights(weights, target, group_size)
    check_kernels(kernels, target, weights)
    attention = resolve_attention(attention, kernels, target)
    opts, conv = llm_options(target, options), target_module(target)
    getattr(conv, "check_options", lambda o: None)(opts)
    source, ledger, native = model.eval(), [], None
    if weights != "fp32":
        model, ledger = quantized_copy(source, weights, group_size)
    model.skip = frozenset(skip_layers)
    traced = model
    if kernels != "none":  # the traced copy calls edgekit ops; `model` stays the parity reference
        traced, native = swap_llm(model, kernels)
    set_kernel_attention(traced, attention == "edgekit")  # the in-place step only; parity runs the model's graph
    step = LlamaStep(traced).eval()
    examples = {"prefill": method_inputs(model, prefill_len), "decode": method_inputs(model, 1)}
    in_place = conv.KV_CACHE == "in_place"

    def describe(stage: Path, files: dict) -> dict:
        from edgekit.exporters.llm_options import llm_fields

        target_weights = files.pop("weights", None)  # per-layer storage, where a target reports it
        shutil.copy(tokenizer_file, stage / "tokenizer.json")
        signature = method_signatures(step, examples, files, in_place)
        manifest = llm_manifest_header(model, name, target, prefill_len) | {
            "precision": getattr(opts, "compute_precision", None) or ("int8" if weights != "fp32" or kernels
                                                                      == "edgekit-q8" else "fp32"),
            "weights": weights,
            "model_file": files["decode"], "methods": signature, "tokenizer": "tokenizer.json",
            "skip_layers": sorted(model.skip), "kv_cache": conv.KV_CACHE,
            "signature": {"inputs": signature["decode"]["inputs"], "outputs": signature["decode"]["outputs"]},
            "compression": {"recipe": None, "ledger": []},
        } | (manifest_extra or {})
        manifest["options"] |= {n: getattr(opts, n) for n in llm_fields(target)}  # the target's, as used
        if native is not None:
            from edgekit.exporters.llm_kernels import file_bytes

            target_weights = file_bytes(stage / files["decode"], traced, native)
            manifest["options"]["executorch_kernels"] = kernels
        if target == "executorch":
            manifest["options"]["executorch_attention"] = attention
        from edgekit.exporters.compression.record import compressed_layers
        if weights == "fp32" and compressed_layers(model):  # clustered (eDKM, --recipe): the ledger and its gate
            manifest["compression"] = llm_compression_section(model, target_weights, target=target,
                                                              allow_decompressed=allow_decompressed)
        if ledger:
            from edgekit.exporters.llm_weights import weights_section
            params = sum(p.numel() for p in source.parameters())
            manifest["compression"] = weights_section(weights, group_size, ledger,
                                                      (stage / files["decode"]).stat().st_size, params * 4)
        return manifest

    def parity(stage: Path, files: dict, manifest: dict) -> dict | None:
        structural = getattr(conv, "structural_parity", None)  # Core ML off macOS
        if structural is not None and (record := structural(stage / files["decode"], manifest["methods"])):
            return record
        if parity_tokens is None:
            return None
        from edgekit.generate import LLMSession
        with captured_native_output():
            session = LLMSession(stage)
        return llm_parity(model, session, parity_tokens, prefill_len)

    try:
        return staged_export(out_dir, ExportSteps(
            target=target, trace=lambda: {m: torch.export.export(step, examples[m]) for m in METHODS},
            convert=lambda programs, stage: conv.convert(step, programs, examples, stage, opts),
            describe=describe, parity=parity, options=opts, diagnose_method="decode"))
    finally:
        model.skip = source.skip = frozenset()
        set_kernel_attention(traced, False)


def method_signatures(step, examples: dict, files: dict, in_place: bool) -> dict:
    """{method: file, inputs, outputs} from running ``step``; an in-place cache is no input or output, and
    adds ``reset`` (zeroes the shared cache buffers: a new conversation)."""
    io_count = (2, 1) if in_place else (4, 3)
    signature = {}
    for m in METHODS:
        outs = [o.detach().numpy() for o in step(*examples[m])]
        signature[m] = {"file": files[m],
                        "inputs": [TensorSpec.of(n, x.numpy()).to_json()
                                   for n, x in zip(INPUT_NAMES[:io_count[0]], examples[m])],
                        "outputs": [TensorSpec.of(n, y).to_json() for n, y in zip(OUTPUT_NAMES[:io_count[1]], outs)]}
    if in_place:
        signature["reset"] = {"file": files["decode"], **RESET_SIGNATURE}
    return signature


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


def llm_compression_section(model, encodings: dict | None = None, *, target: str | None = None,
                            allow_decompressed: bool = False) -> dict:
    """The manifest's compression section for an LLM whose weights carry LUT records (eDKM checkpoints, --recipe).

    ``encodings`` (Core ML, edgekit kernels) says per layer how the artifact stores it: lookup tables, native.
    Without it the target stored the layer ``decompressed: dense fp32``. ``expected_bytes`` is what the
    layer's record needs (``WeightRecord.expected_bytes``: indices at their bit width + fp16 tables, + a 2:4
    mask; fp16 values + mask for sparsity alone). As for classifiers (compression.ledger), layers
    stored in no fewer bytes than dense fail the export (``compression_lost``, naming ``target``) unless
    ``allow_decompressed``; wider tables than asked fail it always (``compression_widened``).
    """
    from edgekit.exporters.base import DECOMPRESSED, NATIVE
    from edgekit.exporters.compression.ledger import CompressionWidened, raise_if_lost, widening
    from edgekit.exporters.compression.provenance import get_provenance
    from edgekit.exporters.compression.record import compressed_layers
    rows = []
    for name, (module, rec) in compressed_layers(model).items():
        shape = tuple(module.weight.shape)
        # what the record needs (tables, indices, a 2:4 mask or 2:4 values alone: any recipe), against fp32
        b = {"expected": rec.expected_bytes(shape), "fp32": int(np.prod(shape)) * 4}
        enc = (encodings or {}).get(name)
        if enc and enc["ops"] != ["const"]:
            edgekit = enc["ops"][0].startswith("edgekit::")  # fp32 dense on ExecuTorch, fp16 on Core ML
            rows.append({"layer": name, "shape": list(shape), "requested": rec.to_json(), "capability": NATIVE,
                         "encoded": {"kind": NATIVE, "format": "+".join(enc["ops"]), "index_bits": enc["index_bits"]}
                         | {k: enc[k] for k in ("bytes_from", "activations", "fused_into") if k in enc},
                         "expected_bytes": b["expected"],
                         "dense_bytes": b["fp32"] if edgekit else b["fp32"] // 2,
                         "bytes_written": enc["bytes"]})
            if wide := widening(rec.bits, enc):
                rows[-1]["widened"] = wide
            continue
        rows.append({"layer": name, "shape": list(shape), "requested": rec.to_json(), "capability": DECOMPRESSED,
                     "encoded": {"kind": DECOMPRESSED, "format": "dense fp32"},
                     "expected_bytes": b["expected"], "dense_bytes": b["fp32"],
                     "bytes_written": b["fp32"]})
    if widened := [r for r in rows if "widened" in r]:  # never silent, even with allow_decompressed
        raise CompressionWidened(target or "coreml", widened)
    tableless = any(r["requested"]["bits"] is None for r in rows if r["capability"] == DECOMPRESSED)
    raise_if_lost(target or "this target", rows, allow_decompressed, fix=LLM_SPARSE_LOST_FIX if tableless else LLM_LOST_FIX)
    written = sum(r["bytes_written"] for r in rows)
    dense = sum(r["dense_bytes"] for r in rows)
    prov = get_provenance(model)  # export-llm --recipe
    return {"recipe": {"name": prov.recipe.name, "hash": prov.recipe.hash()} if prov is not None else None,
            "ledger": rows, "summary": {
                "layers": len(rows), "bytes_written": written, "dense_bytes": dense,
                "expected_bytes": sum(r["expected_bytes"] for r in rows),
                "ratio_to_dense": written / dense if dense else 1.0,
                "decompressed_layers": [r["layer"] for r in rows if r["encoded"]["kind"] == DECOMPRESSED],
                "allowed_decompressed": allow_decompressed}}


# Sparsity alone (no table): no edgekit kernel or Core ML lookup table stores it (compression_lost's fix).
LLM_SPARSE_LOST_FIX = ("2:4 sparsity alone has no table for edgekit's kernels or Core ML: compress with a table too, "
                       "--recipe sparse24_palettize4 (2:4 + 4-bit tables: edgekit::sparse_lut_linear with "
                       "--executorch-kernels edgekit), or pass --allow-decompressed to keep a dense fp32 artifact")
# What keeps a clustered LLM's tables (compression_lost's fix for LLM exports).
LLM_LOST_FIX = ("keep the tables: --executorch-kernels edgekit (ExecuTorch on edgekit's kernels, needs `make native`) "
                "or --target coreml (constexpr_lut_to_dense); or pass --allow-decompressed "
                "(export_llm(..., allow_decompressed=True)) to keep a dense fp32 artifact")
