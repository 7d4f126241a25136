"""TFLite file of an LLM: one .tflite with a signature per method (prefill, decode), explicit KV cache I/O.

TFLiteOptions has no field an LLM export takes (``llm_fields("tflite")`` is empty): litert-torch's
defaults, fp32.
"""

from __future__ import annotations

from pathlib import Path

from edgekit.exporters.tflite import TFLiteOptions

KV_CACHE = "explicit"


def convert(step, programs: dict, examples: dict, stage: Path, options: TFLiteOptions) -> dict:
    """{method: file}: both methods as signatures of ``model.tflite`` (converted from ``step``, not the programs)."""
    import litert_torch

    from edgekit.exporters.llm import METHODS

    converter = litert_torch
    for m in METHODS:
        converter = converter.signature(m, step, examples[m])
    converter.convert().export(str(stage / "model.tflite"))
    return {m: "model.tflite" for m in METHODS}
