"""Store compressed Conv2d/Linear weights smaller in a .pte: XNNPACK dynamic int8 (opt-in, lossy).

XNNPACK has no lookup-table op and (ExecuTorch 1.5.1 docs) no weight-only
quantization; what it runs is int8 weights (symmetric, per output channel) with
int8 activations, static or dynamic. ``requantize="dynamic_int8"`` annotates only
the compressed layers with the XNNPACK quantizer's dynamic per-channel config
(activations quantized per tensor at run time, no calibration data needed), so a
clustered weight becomes int8 x per-channel scale: 1 byte per weight instead of 4.
The weight's error against its cluster values (after the conv+BatchNorm fold that
prepare_pt2e applies, i.e. the fp32 weight the layer would otherwise compute with)
is measured and written to the ledger as ``re-quantized``; parity is then checked at int8 tolerance.

Limits (ExecuTorch 1.5.1's XNNPACKQuantizer): dynamic quantization covers Linear
and non-depthwise Conv2d, but a Conv2d whose only user is a ReLU is left to the
static conv+relu pattern, so those layers stay fp32 (the ledger says
``decompressed``); depthwise and 1-D convs likewise.
"""

from __future__ import annotations

import numpy as np

REQUANTIZE = ("none", "dynamic_int8")
ANNOTATION_KEY = "quantization_annotation"  # torchao.quantization.pt2e's node.meta key


def requantize(model, exported_program, example_inputs):
    """Returns (exported program with int8 compressed layers, {layer: ledger facts})."""
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from edgekit.exporters.base import layer_of
    from edgekit.exporters.compression.record import compressed_layers

    layers = compressed_layers(model)

    class _CompressedOnly(XNNPACKQuantizer):
        # set_module_name() also filters the weight's get_attr node, which carries no module stack,
        # so it annotates nothing for convs: annotate globally, then keep only the compressed layers.
        def annotate(self, gm):
            gm = super().annotate(gm)
            for node in gm.graph.nodes:
                if node.op == "call_function" and ANNOTATION_KEY in node.meta and layer_of(node) not in layers:
                    del node.meta[ANNOTATION_KEY]
            return gm

    quantizer = _CompressedOnly().set_global(get_symmetric_quantization_config(is_per_channel=True, is_dynamic=True))
    prepared = prepare_pt2e(exported_program.module(), quantizer)
    prepared(*example_inputs)
    folded = _float_weights(prepared, layers)  # prepare_pt2e folds BatchNorm into the conv weight
    converted = convert_pt2e(prepared)
    facts = {}
    for node in converted.graph.nodes:
        if node.op != "call_function" or "dequantize_per_channel" not in str(node.target):
            continue
        q_node, scale_node = node.args[0], node.args[1]
        user = next(iter(node.users), None)
        name = layer_of(user) if user is not None else None
        if name not in layers or q_node.op != "get_attr" or scale_node.op != "get_attr":
            continue
        q = _attr(converted, q_node.target).detach().numpy()
        scale = _attr(converted, scale_node.target).detach().numpy().astype(np.float64)
        axis = int(node.args[3])
        shape = [1] * q.ndim
        shape[axis] = -1
        weight = folded.get(name, layers[name][0].weight.detach().numpy()).astype(np.float64)
        error = float(np.abs(q.astype(np.float64) * scale.reshape(shape) - weight).max())
        facts[name] = {"ops": ["int8 per-channel", "dynamic int8 activations", "XNNPACK"], "encoded": "re-quantized",
                       "error": error, "bytes": int(q.size + scale.size * 4), "index_bits": 8}
    return torch.export.export(converted, example_inputs), facts


def _float_weights(prepared, layers) -> dict[str, np.ndarray]:
    """Per compressed layer: the fp32 weight its conv/linear node reads in the prepared graph."""
    from edgekit.exporters.base import layer_of

    out = {}
    for node in prepared.graph.nodes:
        if node.op != "call_function" or len(node.args) < 2 or not hasattr(node.args[1], "op"):
            continue
        name = layer_of(node)
        src = node.args[1]
        while src.op == "call_module" and src.args:  # through the weight observer
            src = src.args[0]
        if name in layers and src.op == "get_attr" and name not in out:
            value = _attr(prepared, src.target)
            if value is not None and tuple(value.shape) == tuple(layers[name][0].weight.shape):
                out[name] = value.detach().numpy()
    return out


def _attr(module, dotted: str):
    for part in dotted.split("."):
        module = getattr(module, part, None)
        if module is None:
            return None
    return module
