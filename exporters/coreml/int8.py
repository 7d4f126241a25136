"""Core ML int8: 8-bit linear weights (symmetric, per output channel) with coremltools.optimize.

Weights become ``constexpr_affine_dequantize`` (iOS16/17) or ``constexpr_blockwise_shift_scale``
(iOS18) over int8 data; compute stays in the package's precision (fp16 by default). Activation
quantization (coremltools' ``linear_quantize_activations``, iOS17+) calibrates by running Core ML
predictions, which need macOS: on Linux the package is weight-only int8, and the manifest says so.
"""

from __future__ import annotations

from edgekit.exporters.base import DECOMPRESSED, NATIVE


def refuse_shift(model) -> None:
    """Shift weights (a shift recipe or DenseShift layers) cannot be int8 here: coremltools picks its own scale."""
    from edgekit.errors import EdgekitError
    from edgekit.exporters.compression.int8 import int8_layers
    from edgekit.exporters.compression.record import get_record

    shift = [n for n, m in int8_layers(model).items() if {"shift", "denseshift"} & set(get_record(m).steps)]
    if shift:
        raise EdgekitError(
            "int8_combination_unsupported",
            f"target 'coreml' cannot run shift weights as exact int8 with int8 activations (layers {', '.join(shift[:4])}"
            f"{' ...' if len(shift) > 4 else ''}): its linear quantizer sets its own scale and Core ML's activation "
            "quantization needs macOS", fix="export these layers to coreml with their shift encoding (the shift recipe "
            "alone, --coreml-target iOS18: exact 3-bit tables), or use int8 on executorch, tflite or onnx",
            details={"target": "coreml", "layers": shift})


def quantize_weights(model, mlmodel, compute_precision: str, plan):
    """(mlmodel with int8 weights, {layer: ledger facts read from the program})."""
    import coremltools.optimize as cto

    from edgekit.exporters.compression.coreml_encode import _weight_consts, layer_encodings
    from edgekit.exporters.compression.int8 import int8_layers

    import numpy as np

    consts = _weight_consts(mlmodel)
    dtype = np.float16 if compute_precision == "fp16" else np.float32
    names: dict[str, str] = {}
    for layer, module in int8_layers(model).items():
        if layer in plan.keep_fp32:
            continue
        w = module.weight.detach().cpu().numpy().astype(dtype)
        match = [n for n, v in consts.items() if v.shape == w.shape and np.array_equal(v.astype(dtype), w)
                 and n not in names.values()]
        if match:
            names[layer] = match[0]
    config = cto.coreml.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8", granularity="per_channel",
                                                weight_threshold=1)
    mlmodel = cto.coreml.linear_quantize_weights(
        mlmodel, cto.coreml.OptimizationConfig(op_name_configs={c: config for c in names.values()}))
    enc = layer_encodings(mlmodel, names)
    out = {}
    for layer in int8_layers(model):
        e = enc.get(layer)
        if e is not None and e["ops"] != ["const"]:
            out[layer] = {"ops": e["ops"] + ["int8 weights", f"{compute_precision} activations"], "encoded": NATIVE,
                          "index_bits": 8, "bytes": e["bytes"]}
        else:
            out[layer] = {"ops": ["fp32"], "encoded": DECOMPRESSED, "reason": plan.keep_fp32.get(
                layer, "no weight constant of the converted program holds this layer's values")}
    return mlmodel, out
