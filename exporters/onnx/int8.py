"""ONNX int8: ONNX Runtime's quantizer on the exported fp32 model (QDQ format, static or dynamic).

Static: ``quantize_static`` with a CalibrationDataReader over the calibration samples writes
QuantizeLinear/DequantizeLinear pairs around every quantizable op: weights int8 per output
channel (symmetric), activations uint8 per tensor (asymmetric) — the u8s8 form ONNX Runtime
fuses into QLinearConv / integer MatMul kernels on x86 (VNNI's VPDPBUSD multiplies u8 x s8).
Observers: minmax (MinMax), percentile (Percentile), entropy (Entropy); ONNX Runtime has no MSE
calibrator, so ``mse`` is refused here. Dynamic: ``quantize_dynamic`` on MatMul/Gemm (Linear);
convolutions stay fp32 (the ledger says why). Layers kept in fp32 are excluded by node.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.exporters.base import DECOMPRESSED, NATIVE

WEIGHT_OPS = ("Conv", "Gemm", "MatMul", "ConvTranspose")


def quantize_int8(model, path: Path, plan) -> dict[str, dict]:
    """Quantize the .onnx at ``path`` in place; returns {layer: ledger facts read from the written file}."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_dynamic, quantize_static)

    from edgekit.exporters.compression.int8 import int8_layers

    if plan.config.io != "float32":
        raise EdgekitError("int8_io_unsupported", f"int8 io={plan.config.io!r} is not available for onnx "
                           "(its QDQ model keeps float inputs and outputs)",
                           fix="use io='float32' for onnx; int8/uint8 I/O is offered on tflite")
    proto = onnx.load(str(path))
    wanted = set(int8_layers(model)) - set(plan.keep_fp32)
    exclude = [n.name for n in proto.graph.node if n.op_type in WEIGHT_OPS and len(n.input) > 1
               and n.input[1].removesuffix(".weight") not in wanted]
    tmp = path.with_suffix(".int8.onnx")
    overrides: dict = {}
    if plan.config.activations == "dynamic":
        quantize_dynamic(str(path), str(tmp), per_channel=True, weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul", "Gemm"], nodes_to_exclude=exclude)
        reason = "ONNX Runtime's dynamic int8 covers MatMul/Gemm (Linear); convolutions stay fp32"
    else:
        method = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
                  "entropy": CalibrationMethod.Entropy}.get(plan.config.observer)
        if method is None:
            raise EdgekitError("int8_observer_unsupported", f"observer {plan.config.observer!r} is not available for "
                               "onnx (ONNX Runtime calibrates with minmax, percentile or entropy)",
                               fix="use observer minmax, percentile or entropy for onnx",
                               details={"target": "onnx", "observer": plan.config.observer})
        names = [i.name for i in proto.graph.input]

        class Reader(CalibrationDataReader):
            def __init__(self):
                self._it = iter([dict(zip(names, s)) for s in plan.samples])

            def get_next(self):
                return next(self._it, None)

        overrides = exact_overrides(proto, wanted)
        quantize_static(str(path), str(tmp), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=method,
                        nodes_to_exclude=exclude,
                        extra_options={"WeightSymmetric": True, "ActivationSymmetric": False,
                                       "CalibPercentile": float(plan.config.percentile),
                                       # fp32 layers read the float tensor before a Q/DQ pair: keep its Relu
                                       "QDQKeepRemovableActivations": bool(exclude),
                                       # shift weights keep their exact scale (no bias-driven rescaling)
                                       "TensorQuantOverrides": overrides,
                                       "QDQDisableWeightAdjustForInt32Bias": bool(overrides)})
        reason = "ONNX Runtime's quantizer left this layer's op unquantized"
    _rewrite(tmp, set(exclude))
    tmp.replace(path)
    for leftover in path.parent.glob("*.onnx.data"):  # calibration side files, never part of the artifact
        leftover.unlink()
    written = weights_in_file(path)
    exact = {n.removesuffix(".weight") for n in overrides} if plan.config.activations == "static" else set()
    out = {}
    for name in int8_layers(model):
        if name in written:
            out[name] = written[name] | {"encoded": NATIVE} | ({"error": 0.0} if name in exact else {})
        else:
            out[name] = {"ops": ["fp32"], "encoded": DECOMPRESSED, "reason": plan.keep_fp32.get(name, reason)}
    return out


def exact_overrides(proto, layers: set[str]) -> dict[str, list[dict]]:
    """Per-channel scale overrides for weights that are exactly int8 x a per-channel scale (shift weights)."""
    from onnx import numpy_helper

    from edgekit.exporters.exact_int8 import exact_int8

    def axis0(n) -> bool:  # output channels on axis 0: Conv, and Gemm with transB=1 (a Linear weight)
        return n.op_type == "Conv" or n.op_type == "Gemm" and any(a.name == "transB" and a.i == 1 for a in n.attribute)

    used = {n.input[1] for n in proto.graph.node if axis0(n) and len(n.input) > 1}
    out = {}
    for init in proto.graph.initializer:
        if init.name not in used or init.name.removesuffix(".weight") not in layers:
            continue
        found = exact_int8(numpy_helper.to_array(init))
        if found is not None:
            out[init.name] = [{"scale": np.float32(s), "zero_point": np.int8(0)} for s in found[1]]
            out[init.name][0]["axis"] = 0
    return out


def _rewrite(path: Path, fp32_nodes: set[str]) -> None:
    """Strip the exporter's per-node debug metadata and re-route the fp32 nodes' inputs (``_float_inputs``).

    torch.onnx writes each node's Python stack trace, module path and FX node as ``metadata_props``
    (26 KB of the 138 KB resnet_tiny int8 file, with the exporting machine's source paths); no
    runtime reads them, the QDQ artifact ships without them."""
    import onnx

    from edgekit.exporters.onnx.clean import strip_debug_metadata

    proto = onnx.load(str(path))
    strip_debug_metadata(proto)
    if fp32_nodes:
        _float_inputs(proto, fp32_nodes)
    onnx.save(proto, str(path))


def _float_inputs(proto, nodes: set[str]) -> None:
    """Feed the fp32 nodes the float tensor in front of their input's Quantize/Dequantize pair.

    ONNX Runtime (>= 1.21) quantizes a float Conv/Gemm/MatMul weight at load time when the node sits between
    a DequantizeLinear and a QuantizeLinear, so a layer kept in fp32 must not read a dequantized input."""
    producer = {o: n for n in proto.graph.node for o in n.output}
    for node in proto.graph.node:
        if node.name not in nodes:
            continue
        dq = producer.get(node.input[0])
        q = producer.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
        if q is not None and q.op_type == "QuantizeLinear":
            node.input[0] = q.input[0]
    used = {i for n in proto.graph.node for i in n.input} | {o.name for o in proto.graph.output}
    for _ in range(2):  # drop the Dequantize, then the Quantize, left without consumers
        dead = [n for n in proto.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")
                and not any(o in used for o in n.output)]
        for n in dead:
            proto.graph.node.remove(n)
        used = {i for n in proto.graph.node for i in n.input} | {o.name for o in proto.graph.output}


def weights_in_file(path: Path) -> dict[str, dict]:
    """Per layer: the int8 weight initializer read back from the .onnx (bits from its type, bytes from its data)."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(path))
    inits = {i.name: i for i in proto.graph.initializer}
    consumers = {}
    for node in proto.graph.node:
        for i in node.input:
            consumers.setdefault(i, []).append(node)
    out = {}
    for node in proto.graph.node:
        if node.op_type != "DequantizeLinear" or node.input[0] not in inits:
            continue
        q = inits[node.input[0]]
        if q.data_type not in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8) or len(q.dims) < 2:
            continue
        users = consumers.get(node.output[0], [])
        if not any(u.op_type in WEIGHT_OPS for u in users):
            continue
        layer = q.name.removesuffix("_quantized").removesuffix(".weight")
        extra = sum(numpy_helper.to_array(inits[i]).nbytes for i in node.input[1:] if i in inits)
        bits = 8 * numpy_helper.to_array(q).dtype.itemsize
        out[layer] = {"ops": ["int8 per-channel", "DequantizeLinear", users[0].op_type], "index_bits": bits,
                      "bytes": int(np.prod(q.dims)) * bits // 8 + int(extra)}
    for node in proto.graph.node:  # dynamic quantization: MatMulInteger / DynamicQuantizeMatMul read int8 directly
        if node.op_type in ("MatMulInteger", "DynamicQuantizeMatMul") and len(node.input) > 1 \
                and node.input[1] in inits:
            q = inits[node.input[1]]
            layer = q.name.removesuffix("_quantized").removesuffix(".weight")
            extra = sum(numpy_helper.to_array(inits[i]).nbytes for i in node.input[2:] if i in inits)
            out[layer] = {"ops": ["int8 per-channel", node.op_type], "index_bits": 8,
                          "bytes": int(np.prod(q.dims)) + int(extra)}
    return out
