"""Export a Llama-style decoder as prefill + decode methods, with its tokenizer, and check parity.

Both methods share one signature: ``(tokens, start_pos, k_cache, v_cache) -> (logits, k_cache, v_cache)``;
prefill takes ``prefill_len`` tokens, decode one. ExecuTorch holds both methods in one
.pte (XNNPACK-delegated); ONNX writes one file per method; TFLite one file with two
signatures. Core ML is not offered yet for LLMs (see docs/llm.md).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import torch

from edgekit.artifact import TensorSpec, load_artifact, staging_dir, write_manifest
from edgekit.errors import EdgekitError, UnknownChoice
from edgekit.exporters.base import captured_native_output, diagnose
from edgekit.exporters.pipeline import producer_versions

LLM_TARGETS = ("executorch", "onnx", "tflite")
METHODS = ("prefill", "decode")


def method_inputs(model, length: int) -> tuple[torch.Tensor, ...]:
    k, v = model.empty_cache(1)
    return torch.zeros(1, length, dtype=torch.long), torch.zeros(1, dtype=torch.long), k, v


def export_llm(model, tokenizer_file: str | Path, target: str, out_dir: str | Path, *, name: str = "llama",
               prefill_len: int = 16, parity_tokens: np.ndarray | None = None, skip_layers=(),
               manifest_extra: dict | None = None):
    if target not in LLM_TARGETS:
        raise UnknownChoice("LLM target", target, LLM_TARGETS)
    from edgekit.model_zoo.llama import LlamaStep

    model = model.eval()
    model.skip = frozenset(skip_layers)
    step = LlamaStep(model).eval()
    examples = {"prefill": method_inputs(model, prefill_len), "decode": method_inputs(model, 1)}
    out_dir = Path(out_dir)
    with staging_dir(out_dir) as stage:
        with captured_native_output() as log:
            programs = {}
            try:
                programs = {m: torch.export.export(step, examples[m]) for m in METHODS}
                files = _CONVERTERS[target](step, programs, examples, stage)
            except EdgekitError:
                raise
            except Exception as exc:
                raise diagnose(exc, programs.get("decode"), target, log) from exc
        shutil.copy(tokenizer_file, stage / "tokenizer.json")
        names = ("tokens", "start_pos", "k_cache", "v_cache")
        out_names = ("logits", "k_cache_out", "v_cache_out")
        signature = {}
        for m in METHODS:
            outs = [o.detach().numpy() for o in step(*examples[m])]
            signature[m] = {"file": files[m],
                            "inputs": [TensorSpec.of(n, x.numpy()).to_json() for n, x in zip(names, examples[m])],
                            "outputs": [TensorSpec.of(n, y).to_json() for n, y in zip(out_names, outs)]}
        manifest = {
            "kind": "edgekit-llm",
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "producer": producer_versions(),
            "model": {"name": name, "class": type(model).__name__,
                      "parameters": int(sum(p.numel() for p in model.parameters())),
                      "config": dataclasses.asdict(model.cfg)},
            "target": target, "options": {"prefill_len": prefill_len}, "precision": "fp32",
            "model_file": files["decode"], "methods": signature, "tokenizer": "tokenizer.json",
            "skip_layers": sorted(model.skip),
            "signature": {"inputs": signature["decode"]["inputs"], "outputs": signature["decode"]["outputs"]},
            "compression": {"recipe": None, "ledger": []},
        } | (manifest_extra or {})
        write_manifest(stage, manifest)
        if parity_tokens is not None:
            from edgekit.generate import LLMSession
            with captured_native_output():
                session = LLMSession(stage)
            manifest["parity"] = llm_parity(model, session, parity_tokens, prefill_len)
            write_manifest(stage, manifest)
            if not manifest["parity"]["ok"]:
                from edgekit.errors import ParityError
                raise ParityError(target, manifest["parity"]["metrics"], manifest["parity"]["tolerance"])
    model.skip = frozenset()
    return load_artifact(out_dir)


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
    ok, tol = parity.passes(metrics, "fp32")
    return {"mode": "numeric", "ok": ok, "precision": "fp32", "tolerance": tol, "metrics": metrics,
            "input_source": f"pydoc text: {prefill_len}-token prompt + {len(rest)} teacher-forced decode steps"}


def _to_executorch(step, programs, examples, stage: Path) -> dict:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    edge = to_edge_transform_and_lower(programs, partitioner=[XnnpackPartitioner()])
    (stage / "model.pte").write_bytes(edge.to_executorch().buffer)
    return {m: "model.pte" for m in METHODS}


def _to_onnx(step, programs, examples, stage: Path) -> dict:
    for m in METHODS:
        torch.onnx.export(programs[m], examples[m], dynamo=True, opset_version=18, verbose=False).save(
            str(stage / f"{m}.onnx"))
    return {m: f"{m}.onnx" for m in METHODS}


def _to_tflite(step, programs, examples, stage: Path) -> dict:
    import litert_torch

    converted = (litert_torch.signature("prefill", step, examples["prefill"])
                 .signature("decode", step, examples["decode"]).convert())
    converted.export(str(stage / "model.tflite"))
    return {m: "model.tflite" for m in METHODS}


def llm_compression_section(model) -> dict:
    """The manifest's compression section for an LLM whose weights carry LUT records (eDKM checkpoints).

    No LLM target stores tables yet, so every row is ``decompressed: dense fp32``; ``expected_bytes`` is
    the clustered size (indices packed at their bit width + fp16 tables).
    """
    from edgekit.exporters.base import DECOMPRESSED
    from edgekit.exporters.llm_compress import layer_bytes
    from edgekit.exporters.compression.record import compressed_layers

    rows = []
    for name, (module, rec) in compressed_layers(model).items():
        shape = tuple(module.weight.shape)
        b = layer_bytes(shape, rec.bits)
        rows.append({"layer": name, "shape": list(shape), "requested": rec.to_json(), "capability": DECOMPRESSED,
                     "encoded": {"kind": DECOMPRESSED, "format": "dense fp32"},
                     "expected_bytes": b["indices"] + b["table"], "dense_bytes": b["fp32"],
                     "bytes_written": b["fp32"]})
    written = sum(r["bytes_written"] for r in rows)
    dense = sum(r["dense_bytes"] for r in rows)
    return {"recipe": None, "ledger": rows, "summary": {
        "layers": len(rows), "bytes_written": written, "dense_bytes": dense,
        "expected_bytes": sum(r["expected_bytes"] for r in rows), "ratio_to_dense": written / dense if dense else 1.0,
        "decompressed_layers": [r["layer"] for r in rows], "allowed_decompressed": True}}


_CONVERTERS = {"executorch": _to_executorch, "onnx": _to_onnx, "tflite": _to_tflite}
