"""Store power-of-two weights as int8 in an ONNX model, losslessly.

A weight whose values are all ±s·2^k with at most 7 magnitudes per output channel
(2- and 3-bit shift weights, e.g. DenseShift) equals int8 values ±{1, 2, 4, ..., 64}
times a per-channel scale exactly. Such initializers become int8 plus a
DequantizeLinear node, a quarter of the bytes and bit-identical after
dequantization (``edgekit.exporters.exact_int8``). Anything that does not convert
exactly is left alone.
"""

from __future__ import annotations

import numpy as np

from edgekit.exporters.exact_int8 import exact_int8

WEIGHT_OPS = {"Conv": 1, "ConvTranspose": 1, "Gemm": 1, "MatMul": 1}


def encode(model) -> dict[str, int]:
    """Rewrite eligible weight initializers of ``model`` (onnx.ModelProto) in place.

    Returns {initializer name: bytes now stored (int8 values + fp32 scales)}."""
    from onnx import helper, numpy_helper

    graph = model.graph
    weight_names = {n.input[i] for n in graph.node if n.op_type in WEIGHT_OPS
                    for i in [WEIGHT_OPS[n.op_type]] if len(n.input) > i}
    # MatMul weights are (in, out): quantize along the last axis instead.
    matmul_weights = {n.input[1] for n in graph.node if n.op_type == "MatMul" and len(n.input) > 1}
    converted, new_nodes = {}, []
    for init in list(graph.initializer):
        if init.name not in weight_names:
            continue
        w = numpy_helper.to_array(init)
        axis = w.ndim - 1 if init.name in matmul_weights else 0
        found = exact_int8(np.moveaxis(w, axis, 0))
        if found is None:
            continue
        q, scale = found
        q = np.moveaxis(q, 0, axis)
        graph.initializer.remove(init)
        graph.initializer.extend([numpy_helper.from_array(np.ascontiguousarray(q), f"{init.name}_int8"),
                                  numpy_helper.from_array(scale, f"{init.name}_scale")])
        new_nodes.append(helper.make_node("DequantizeLinear", [f"{init.name}_int8", f"{init.name}_scale"],
                                          [init.name], axis=axis, name=f"{init.name}_dequantize"))
        converted[init.name] = int(q.size + scale.size * 4)
    for node in reversed(new_nodes):
        graph.node.insert(0, node)
    return converted
