"""Store power-of-two weights as int8 in a .tflite flatbuffer, losslessly.

The TFLite counterpart of ``exporters/onnx/pow2_int8.py``: every float32 constant
weight of a CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV or FULLY_CONNECTED op that
is exactly ±2^k times a per-output-channel scale over at most 7 octaves (2- and
3-bit shift weights, BatchNorm folded or not) becomes an int8 tensor with that
per-channel scale (zero point 0) feeding a DEQUANTIZE op whose float output the
op reads, as ai-edge-quantizer's weight-only recipes lay it out. int8 * scale is
exact in float32, so the model computes with the same weights bit for bit, in a
quarter of the bytes. The interpreter dequantizes a constant input once, at the
first run. Anything that does not convert exactly is left alone.
"""

from __future__ import annotations

import numpy as np

from edgekit.exporters.exact_int8 import exact_int8

# op -> (weight input index, output-channel axis of the weight)
WEIGHT_INPUTS = {"CONV_2D": (1, 0), "DEPTHWISE_CONV_2D": (1, 3), "TRANSPOSE_CONV": (1, 0),
                 "FULLY_CONNECTED": (1, 0)}
DEQUANTIZE_VERSION = 5  # TFLite op version of DEQUANTIZE with per-channel int8 input (tools/versioning/op_version.cc)
MIN_RUNTIME = "2.7.0"  # first TFLite runtime with DEQUANTIZE v5 (tools/versioning/runtime_version.cc)


def encode(buf: bytes, lossy=None, errors: dict | None = None, exact: bool = True) -> tuple[bytes, dict[str, int]]:
    """Rewrite eligible weights of a .tflite flatbuffer.

    ``lossy(tensor name) -> bool`` picks weights that may be rounded to int8 (symmetric, per
    channel: scale = peak / 127) when they are not exactly int8 — the opt-in re-quantization of
    clustered layers; their max abs error goes into ``errors``.
    Returns (new flatbuffer, {weight tensor name: bytes now stored (int8 values + fp32 scales)})."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as fb

    model = fb.ModelT.InitFromPackedBuf(buf, 0)
    names = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
    kinds = [names.get(max(c.builtinCode, c.deprecatedBuiltinCode)) for c in model.operatorCodes]
    dequantize = None
    converted: dict[str, int] = {}
    # a buffer shared by several tensors (e.g. across signatures' subgraphs) is left alone
    uses = np.bincount([t.buffer for sg in model.subgraphs for t in sg.tensors], minlength=len(model.buffers))
    for sg in model.subgraphs:
        weights = {}  # tensor index -> output-channel axis
        for op in sg.operators:
            index, axis = WEIGHT_INPUTS.get(kinds[op.opcodeIndex], (None, None))
            if index is not None and len(op.inputs) > index and op.inputs[index] >= 0:
                weights.setdefault(op.inputs[index], axis)
        dequantized = {}  # int8 tensor index -> float tensor index the ops now read
        for ti, axis in weights.items():
            t = sg.tensors[ti]
            data = model.buffers[t.buffer].data
            if t.type != fb.TensorType.FLOAT32 or data is None or uses[t.buffer] != 1:
                continue
            w = np.moveaxis(np.frombuffer(bytes(data), np.float32).reshape(t.shape), axis, 0)
            may_round = lossy is not None and lossy(t.name.decode())
            found = exact_int8(w) if exact or may_round else None
            if found is None and may_round:
                found = rounded_int8(w)
                if errors is not None:
                    errors[t.name.decode()] = float(np.abs(
                        found[0].astype(np.float32) * found[1].reshape(-1, *[1] * (w.ndim - 1)) - w).max())
            if found is None:
                continue
            q, scale = found
            model.buffers[t.buffer].data = np.ascontiguousarray(np.moveaxis(q, 0, axis)).view(np.uint8).ravel()
            t.type = fb.TensorType.INT8
            t.quantization = fb.QuantizationParametersT()
            t.quantization.scale, t.quantization.zeroPoint = scale.tolist(), [0] * len(scale)
            t.quantization.quantizedDimension = axis
            out = fb.TensorT()  # the float weight the ops read: DEQUANTIZE's output
            out.name, out.shape, out.type = t.name + b"_dequantized", list(t.shape), fb.TensorType.FLOAT32
            sg.tensors.append(out)
            dequantized[ti] = len(sg.tensors) - 1
            converted[t.name.decode()] = int(q.size + scale.size * 4)
        if not dequantized:
            continue
        for op in sg.operators:
            op.inputs = [dequantized.get(i, i) for i in op.inputs]
        if dequantize is None:
            dequantize = _opcode(model, fb)
        new_ops = []
        for ti, out in dequantized.items():
            dq = fb.OperatorT()
            dq.opcodeIndex, dq.inputs, dq.outputs = dequantize, [ti], [out]
            new_ops.append(dq)
        sg.operators[:0] = new_ops  # constants' dequantization runs first
    if not converted:
        return buf, {}
    _raise_min_runtime(model)
    builder = flatbuffers.Builder(len(buf) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), converted


def rounded_int8(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-channel int8 (axis 0): the nearest of 255 levels, scale = channel peak / 127."""
    flat = w.reshape(w.shape[0], -1)
    peak = np.abs(flat).max(axis=1)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(flat / scale[:, None]), -127, 127).astype(np.int8)
    return q.reshape(w.shape), scale


def weight_tensor_names(buf: bytes) -> list[str]:
    """Names of the float32 constant weights the rewrite can touch (for mapping them to layers first)."""
    from ai_edge_litert import schema_py_generated as fb

    model = fb.ModelT.InitFromPackedBuf(buf, 0)
    names = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
    kinds = [names.get(max(c.builtinCode, c.deprecatedBuiltinCode)) for c in model.operatorCodes]
    out = []
    for sg in model.subgraphs:
        for op in sg.operators:
            index, _ = WEIGHT_INPUTS.get(kinds[op.opcodeIndex], (None, None))
            if index is not None and len(op.inputs) > index and op.inputs[index] >= 0:
                out.append(sg.tensors[op.inputs[index]].name.decode())
    return out


def _opcode(model, fb) -> int:
    for i, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == fb.BuiltinOperator.DEQUANTIZE:
            code.version = max(code.version, DEQUANTIZE_VERSION)
            return i
    code = fb.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = fb.BuiltinOperator.DEQUANTIZE
    code.version = DEQUANTIZE_VERSION
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def layer_of_tensor(model, tensor_names) -> dict[str, str]:
    """{tflite tensor name: module name} for weight tensors whose name holds one weight layer's module path.

    litert-torch names a constant after the modules it came from, ``;``-separated, each as
    ``<root class>/<class>_<attribute>/...`` (e.g. ``...DenseShiftResNet/...Sequential_layers/...
    BasicBlock_0/...ShiftConv2d_conv1;1``); a folded BatchNorm adds its own path, which has no
    rank >= 2 weight, so at most one conv/linear path matches."""
    def cls(m):
        return f"{type(m).__module__}.{type(m).__qualname__}"

    paths, root = {}, cls(model)
    for name, m in model.named_modules():
        if not name:
            continue
        w = getattr(m, "weight", None)
        if w is None or getattr(w, "ndim", 0) < 2:
            continue
        parts, node = [root], model
        for attr in name.split("."):
            node = getattr(node, attr)  # Sequential/ModuleList children too ('0', '1', ...)
            parts.append(f"{cls(node)}_{attr}")
        paths["/".join(parts)] = name
    out = {}
    for tensor in tensor_names:
        found = {paths[p] for p in tensor.split(";") if p in paths}
        if len(found) == 1:
            out[tensor] = found.pop()
    return out


def _raise_min_runtime(model) -> None:
    """Keep the ``min_runtime_version`` metadata (informational) truthful after adding DEQUANTIZE v5."""
    for meta in model.metadata or []:
        data = model.buffers[meta.buffer].data
        if meta.name != b"min_runtime_version" or data is None:
            continue
        old = bytes(data).rstrip(b"\0").decode()
        if old.replace(".", "").isdigit() and _version(old) < _version(MIN_RUNTIME):
            model.buffers[meta.buffer].data = np.frombuffer(MIN_RUNTIME.encode().ljust(len(data), b"\0"), np.uint8)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))
