"""TFLite int8: litert-torch's PT2E quantizer -> a full-integer .tflite (QS8 XNNPACK kernels).

Static: weights int8 per output channel, activations int8 per tensor (calibrated). The
converter makes the model's inputs and outputs int8 as well; ``io`` decides what the
artifact exposes: ``float32`` (default: a QUANTIZE op after each input and a DEQUANTIZE
before each output are added to the flatbuffer, so the artifact takes the same arrays as
the fp32 one), ``int8`` (as converted) or ``uint8`` (QUANTIZE ops requantize uint8 <-> int8,
zero point + 128). Dynamic: int8 weights with activations quantized per run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.exporters.base import DECOMPRESSED, NATIVE

WEIGHT_OPS = {"CONV_2D": 1, "DEPTHWISE_CONV_2D": 1, "FULLY_CONNECTED": 1, "TRANSPOSE_CONV": 1}


def convert_int8(model, example_inputs, plan, path: Path) -> dict[str, dict]:
    """Write the int8 .tflite to ``path``; returns {layer: ledger facts read from the written file}."""
    import litert_torch
    import torch
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
    from litert_torch.quantize.quant_config import QuantConfig

    from edgekit.exporters.compression import int8_pt2e
    from edgekit.exporters.compression.int8 import int8_layers

    layers, dynamic, quantizer = int8_pt2e.plan_quantizer(model, plan, PT2EQuantizer, get_symmetric_quantization_config,
                                                          "tflite")
    exported = torch.export.export(model, example_inputs)
    converted = int8_pt2e.quantize(exported, example_inputs, quantizer, [] if dynamic else plan.samples,
                                  fold=False)
    edge = litert_torch.convert(converted, example_inputs, quant_config=QuantConfig(pt2e_quantizer=quantizer))
    edge.export(str(path))
    if not dynamic and plan.config.io != "int8":
        path.write_bytes(set_io_type(path.read_bytes(), plan.config.io))
    written = weights_in_file(model, path.read_bytes())
    acts = "dynamic" if dynamic else "static"
    out = {}
    for name in int8_layers(model):
        if name in written:
            out[name] = written[name] | {"encoded": NATIVE, "ops": ["int8 per-channel", f"{acts} int8 activations",
                                                                     written[name]["op"]]}
        else:
            out[name] = {"ops": ["fp32"], "encoded": DECOMPRESSED,
                         "reason": plan.keep_fp32.get(name, "litert-torch's quantizer left this layer float")}
    return out


def weights_in_file(model, buf: bytes) -> dict[str, dict]:
    """Per layer: its int8 weight tensor in the flatbuffer (bits from the type, bytes from the buffer + scales)."""
    from ai_edge_litert import schema_py_generated as fb

    from edgekit.exporters.tflite.pow2_int8 import layer_of_tensor

    m = fb.ModelT.InitFromPackedBuf(buf, 0)
    names = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
    kinds = [names.get(max(c.builtinCode, c.deprecatedBuiltinCode)) for c in m.operatorCodes]
    found = {}
    for sg in m.subgraphs:
        for op in sg.operators:
            kind = kinds[op.opcodeIndex]
            if kind not in WEIGHT_OPS or len(op.inputs) <= WEIGHT_OPS[kind]:
                continue
            t = sg.tensors[op.inputs[WEIGHT_OPS[kind]]]
            data = m.buffers[t.buffer].data if t.buffer < len(m.buffers) else None
            if t.type != fb.TensorType.INT8 or data is None:
                continue
            q = t.quantization
            extra = (len(q.scale) * 4 + len(q.zeroPoint) * 8) if q is not None and q.scale is not None else 0
            # litert-torch names a FULLY_CONNECTED weight after a wrapper: its bias carries the layer's path
            bias = sg.tensors[op.inputs[2]].name.decode() if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
            found[t.name.decode()] = ({"op": kind, "index_bits": 8, "bytes": int(len(data)) + extra}, bias)
    layers = layer_of_tensor(model, list(found))
    by_bias = layer_of_tensor(model, [b for _, b in found.values() if b])
    out = {}
    for tensor, (facts, bias) in found.items():
        layer = layers.get(tensor) or by_bias.get(bias)
        if layer is not None:
            out[layer] = facts
    return out


def set_io_type(buf: bytes, io: str) -> bytes:
    """Give an int8-I/O flatbuffer float32 or uint8 inputs/outputs (QUANTIZE / DEQUANTIZE at the boundary)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as fb

    m = fb.ModelT.InitFromPackedBuf(buf, 0)
    quant, dequant = _opcode(m, fb, fb.BuiltinOperator.QUANTIZE), _opcode(m, fb, fb.BuiltinOperator.DEQUANTIZE)
    new_type = fb.TensorType.FLOAT32 if io == "float32" else fb.TensorType.UINT8
    for sg in m.subgraphs:
        swap: dict[int, int] = {}
        head, tail = [], []
        for role, indices in (("in", sg.inputs), ("out", sg.outputs)):
            for ti in indices:
                t = sg.tensors[ti]
                if t.type != fb.TensorType.INT8 or ti in swap:
                    continue
                outer = fb.TensorT()
                outer.name, outer.shape, outer.type = t.name, list(t.shape), new_type
                if t.shapeSignature is not None:
                    outer.shapeSignature = list(t.shapeSignature)
                if io == "uint8":
                    outer.quantization = fb.QuantizationParametersT()
                    outer.quantization.scale = list(t.quantization.scale)
                    outer.quantization.zeroPoint = [int(z) + 128 for z in t.quantization.zeroPoint]
                t.name = t.name + b"_int8"
                sg.tensors.append(outer)
                swap[ti] = len(sg.tensors) - 1
                op = fb.OperatorT()
                if role == "in":
                    op.opcodeIndex, op.inputs, op.outputs = quant, [swap[ti]], [ti]
                    head.append(op)
                else:
                    op.opcodeIndex = dequant if io == "float32" else quant
                    op.inputs, op.outputs = [ti], [swap[ti]]
                    tail.append(op)
        sg.inputs = [swap.get(i, i) for i in sg.inputs]
        sg.outputs = [swap.get(i, i) for i in sg.outputs]
        sg.operators = head + list(sg.operators) + tail
    for sig in m.signatureDefs or []:
        sg = m.subgraphs[sig.subgraphIndex]
        for tmap, indices in ((sig.inputs, sg.inputs), (sig.outputs, sg.outputs)):
            by_name = {sg.tensors[i].name: i for i in indices}
            for tm in tmap or []:
                old = sg.tensors[tm.tensorIndex].name.removesuffix(b"_int8")
                tm.tensorIndex = by_name.get(old, tm.tensorIndex)
    builder = flatbuffers.Builder(len(buf) + 4096)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _opcode(m, fb, builtin: int) -> int:
    for i, code in enumerate(m.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin:
            return i
    code = fb.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = builtin
    code.version = 2  # QUANTIZE v2 / DEQUANTIZE v2: int8
    m.operatorCodes.append(code)
    return len(m.operatorCodes) - 1


def dequantize_outputs(values: list[np.ndarray], details: list[dict]) -> list[np.ndarray]:
    """int8/uint8 outputs -> float (for int8-I/O artifacts)."""
    out = []
    for v, d in zip(values, details):
        scale, zero = d.get("quantization", (0.0, 0))
        out.append((v.astype(np.float32) - zero) * scale if scale else v)
    return out
