"""ExecuTorch int8: XNNPACKQuantizer (PT2E) -> quantized XNNPACK delegate.

Static: weights int8 per output channel (symmetric), activations int8 per tensor with ranges
from the calibration samples; XNNPACK runs the quantized conv/linear/add/pool kernels (QS8).
Dynamic: int8 weights, activations quantized per run (Linear and non-depthwise Conv2d; a
Conv2d followed by ReLU stays fp32 in ExecuTorch 1.5.1's dynamic patterns, and the ledger says so).
"""

from __future__ import annotations

from edgekit.exporters.base import DECOMPRESSED, NATIVE


def quantize_int8(model, exported_program, example_inputs, plan):
    """(exported program with int8 layers, {layer: ledger facts})."""
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )

    from edgekit.exporters.compression import int8_pt2e
    from edgekit.exporters.compression.int8 import int8_layers

    layers, dynamic, quantizer = int8_pt2e.plan_quantizer(model, plan, XNNPACKQuantizer, get_symmetric_quantization_config,
                                                          "executorch")
    converted = int8_pt2e.quantize(exported_program, example_inputs, quantizer, [] if dynamic else plan.samples)
    facts = int8_pt2e.weight_facts(converted, layers)
    acts = "dynamic int8 activations" if dynamic else "static int8 activations"
    weights = {}
    for name in int8_layers(model):
        if name in facts:
            f = facts[name]
            weights[name] = {"ops": ["int8 per-channel", acts, "XNNPACK"], "encoded": NATIVE, "index_bits": 8,
                             "bytes": f["numel"] + 4 * f["channels"]}
        else:
            weights[name] = {"ops": ["fp32"], "encoded": DECOMPRESSED, "reason": plan.keep_fp32.get(
                name, "XNNPACKQuantizer has no int8 pattern for this layer" +
                (" (dynamic: Conv2d+ReLU, depthwise and 1-D convs stay fp32)" if dynamic else ""))}
    return torch.export.export(converted, example_inputs), weights
