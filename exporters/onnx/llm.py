"""ONNX files of an LLM: one per method (prefill, decode), explicit KV cache inputs and outputs, at the options' opset."""

from __future__ import annotations

from pathlib import Path

from edgekit.exporters.onnx import ONNXOptions

KV_CACHE = "explicit"


def convert(step, programs: dict, examples: dict, stage: Path, options: ONNXOptions) -> dict:
    """{method: file}: ``<method>.onnx`` from each method's torch.export program."""
    import torch

    from edgekit.exporters.llm import METHODS
    from edgekit.exporters.onnx.clean import strip_file

    for m in METHODS:
        torch.onnx.export(programs[m], examples[m], dynamo=True, opset_version=int(options.opset), verbose=False).save(
            str(stage / f"{m}.onnx"))
        strip_file(stage / f"{m}.onnx")  # no stack traces or source paths of this machine in the artifact
    return {m: f"{m}.onnx" for m in METHODS}
