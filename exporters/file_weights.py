"""The weight tensors an artifact file really holds, read back from the file.

One reader per format, each returning ``Stored`` entries: a constant the model
reads (after any in-file decoding: TFLite DEQUANTIZE, ONNX constant subgraphs such
as lookup-table Gathers, Core ML constexpr ops), the bytes the file spends on it
(values + scales + tables + indices) and its decoded float values. The compression
ledger maps layers to these entries by value (``compression/file_ledger.py``),
never by converter tensor names, so duplicated or renamed weights are found.

Formats: .tflite (flatbuffer buffers, ai_edge_litert schema), .onnx (initializers
and Constant nodes), .mlpackage (MIL const/constexpr ops; bytes from the
weight.bin blob headers), .pte (ExecuTorch program: constant segment tensors, and
the named-data segments where the XNNPACK delegate keeps its constants).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MIN_ELEMENTS = 16  # smaller constants are shapes, axes and scalars, not weights


@dataclass
class Stored:
    name: str                          # tensor/const name(s) in the file
    nbytes: int                        # bytes the file spends on it
    dtype: str                         # storage type (e.g. float32, int8, uint4+lut)
    shape: tuple[int, ...]
    values: np.ndarray | None = None   # decoded float values as the model reads them
    raw: np.ndarray | None = None      # raw integers when the file holds no scale for them (XNNPACK int8)

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    @property
    def is_weight(self) -> bool:
        """At least two axes longer than 1: a weight matrix or kernel, not a bias, scale or shape."""
        has_data = self.values is not None or self.raw is not None or self.dtype.startswith("constexpr")
        return sum(1 for s in self.shape if s > 1) >= 2 and self.numel >= MIN_ELEMENTS and has_data


def read_stored(path: str | Path) -> list[Stored]:
    """The constants of the model file at ``path`` (a .tflite, .onnx, .pte or .mlpackage)."""
    from edgekit.targets import SUFFIXES, target_for_suffix

    path = Path(path)
    target = target_for_suffix(path.suffix)
    if target is None:
        from edgekit.errors import UnknownChoice

        raise UnknownChoice("model file suffix", path.suffix, sorted(SUFFIXES))
    return globals()[f"_{target.name}"](path)  # one reader per target below: _coreml, _onnx, ...


def weight_bytes(stored: list[Stored]) -> int:
    """Bytes of the weight tensors (``Stored.is_weight``) found in the file."""
    return sum(s.nbytes for s in stored if s.is_weight)


# --- TFLite -------------------------------------------------------------------------------------------------

_TFL_NP = {"FLOAT32": np.float32, "FLOAT16": np.float16, "INT32": np.int32, "UINT8": np.uint8, "INT64": np.int64,
           "INT16": np.int16, "INT8": np.int8, "FLOAT64": np.float64, "BOOL": np.bool_}


def _tflite(path: Path) -> list[Stored]:
    from ai_edge_litert import schema_py_generated as fb

    buf = path.read_bytes()
    model = fb.ModelT.InitFromPackedBuf(buf, 0)
    type_names = {v: k for k, v in vars(fb.TensorType).items() if not k.startswith("_")}
    seen: set[int] = set()  # a buffer shared by several tensors is stored once
    out = []
    for sg in model.subgraphs:
        for t in sg.tensors:
            b = model.buffers[t.buffer] if 0 <= t.buffer < len(model.buffers) else None
            if b is None or t.buffer in seen:
                continue
            data = bytes(b.data) if b.data is not None else (buf[b.offset:b.offset + b.size] if b.size else b"")
            if not data:
                continue
            seen.add(t.buffer)
            kind = type_names.get(t.type, str(t.type))
            shape = tuple(int(s) for s in (t.shape if t.shape is not None else ()))
            nbytes, values = len(data), None
            q = t.quantization
            scale = np.asarray(q.scale, np.float64) if q is not None and q.scale is not None else None
            if kind in _TFL_NP:
                arr = np.frombuffer(data, _TFL_NP[kind])[: int(np.prod(shape)) if shape else None]
                arr = arr.reshape(shape) if shape and arr.size == int(np.prod(shape)) else arr
                if kind.startswith("FLOAT"):
                    values = arr.astype(np.float32)
                elif scale is not None and scale.size:
                    zero = np.asarray(q.zeroPoint if q.zeroPoint is not None else [0], np.float64)
                    values = _dequant(arr, scale, zero, int(q.quantizedDimension or 0))
                    nbytes += scale.size * 4  # the per-channel scales the file stores with it
            out.append(Stored(t.name.decode(errors="replace"), nbytes, kind.lower(), shape, values))
    return out


def _dequant(arr: np.ndarray, scale: np.ndarray, zero: np.ndarray, axis: int) -> np.ndarray:
    shape = [1] * arr.ndim
    if scale.size > 1 and arr.ndim:
        shape[axis] = -1
    return ((arr.astype(np.float64) - zero.reshape(shape if zero.size > 1 else [1] * arr.ndim))
            * scale.reshape(shape if scale.size > 1 else [1] * arr.ndim)).astype(np.float32)


# --- ONNX ---------------------------------------------------------------------------------------------------

def _onnx(path: Path) -> list[Stored]:
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(path))
    g = proto.graph
    consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    size = {i.name: _onnx_bytes(i) for i in g.initializer}
    for node in g.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            t = node.attribute[0].t
            consts[node.output[0]], size[node.output[0]] = numpy_helper.to_array(t), _onnx_bytes(t)
    # values computed from constants only (lookup-table Gathers, DequantizeLinear): the model reads those
    derived: dict[str, set[str]] = {}  # derived value -> the stored constants it is built from
    for node in g.node:
        if node.op_type == "Constant" or not node.input:
            continue
        ins = [i for i in node.input if i]
        if ins and all(i in consts or i in derived for i in ins):
            roots = set().union(*[derived.get(i, {i} if i in consts else set()) for i in ins])
            for o in node.output:
                derived[o] = roots
    readers = {i for node in g.node for i in node.input if i and node.output and node.output[0] not in derived}
    readers |= {o.name for o in g.output}
    frontier = [v for v in derived if v in readers]
    values = _evaluate(proto, frontier) if frontier else {}
    out, used = [], set()
    for v in frontier:
        roots = derived[v] - used
        used |= roots
        arr = values.get(v)
        kinds = "+".join(sorted({str(consts[r].dtype) for r in roots}))
        out.append(Stored(v, sum(size[r] for r in roots), kinds, tuple(arr.shape) if arr is not None else (),
                          arr.astype(np.float32) if arr is not None and arr.dtype.kind == "f" else None))
    for name, arr in consts.items():
        if name in used or name not in readers:
            continue
        out.append(Stored(name, size[name], str(arr.dtype), tuple(arr.shape),
                          arr.astype(np.float32) if arr.dtype.kind == "f" else None))
    return out


def _onnx_bytes(t) -> int:
    """Bytes a TensorProto holds: raw_data when present, else its typed field, sub-byte types packed."""
    from onnx import TensorProto, helper

    if t.raw_data:
        return len(t.raw_data)
    numel = int(np.prod(t.dims)) if t.dims else 1
    if t.data_type in (TensorProto.UINT4, TensorProto.INT4):
        return -(-numel // 2)
    return numel * helper.tensor_dtype_to_np_dtype(t.data_type).itemsize


def _evaluate(proto, names: list[str]) -> dict[str, np.ndarray]:
    """Values of constant-only subgraph outputs, computed by ONNX Runtime (as it folds them at load)."""
    import onnx
    import onnxruntime as ort

    g = proto.graph
    model = onnx.helper.make_model(
        onnx.helper.make_graph(list(g.node), "consts", [], [onnx.helper.make_empty_tensor_value_info(n) for n in names],
                               list(g.initializer)),
        opset_imports=list(proto.opset_import), ir_version=proto.ir_version)
    model = _prune(model, names)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3  # unused initializers of the pruned copy are expected
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return dict(zip(names, sess.run(names, {})))


def _prune(model, names: list[str]):
    """Keep only the nodes the requested outputs need."""
    needed, keep = set(names), []
    for node in reversed(list(model.graph.node)):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed |= {i for i in node.input if i}
    del model.graph.node[:]
    model.graph.node.extend(reversed(keep))
    return model


# --- Core ML ------------------------------------------------------------------------------------------------

_BLOB_HEADER = struct.Struct("<IIQQ")  # sentinel, data type, size in bytes, data offset (MIL blob storage v2)


def _coreml(path: Path) -> list[Stored]:
    import coremltools as ct
    from coremltools.converters.mil.frontend.milproto.load import load as load_program

    spec = ct.utils.load_spec(str(path))
    weights = path / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"
    blob = weights.read_bytes() if weights.exists() else b""
    const_bytes: dict[str, int] = {}  # op output name -> bytes of its stored values (const and constexpr ops)
    for fn in spec.mlProgram.functions.values():
        for block in fn.block_specializations.values():
            for op in block.operations:
                if op.type != "const" and not op.type.startswith("constexpr_"):
                    continue
                # iOS16/17 constexpr ops hold their data as attributes, iOS18 ones as inline input values
                values = [v for k, v in op.attributes.items() if k != "name"]
                values += [b.value for arg in op.inputs.values() for b in arg.arguments if b.HasField("value")]
                const_bytes[op.outputs[0].name] = sum(_value_bytes(v, blob) for v in values)
    prog = load_program(spec, specification_version=spec.specificationVersion, file_weights_dir=str(weights.parent))
    out, used = [], set()
    for fn in prog.functions.values():
        ops = list(fn.operations)
        for op in ops:
            if not op.op_type.startswith("constexpr_"):
                continue
            roots = {v.op.outputs[0].name for v in op.inputs.values()
                     if getattr(v, "op", None) is not None and v.op.op_type == "const"} - used
            used |= roots
            values = _materialize(op)
            nbytes = const_bytes.get(op.outputs[0].name, 0) + sum(const_bytes.get(r, 0) for r in roots)
            out.append(Stored(op.outputs[0].name, nbytes, op.op_type,
                              tuple(values.shape) if values is not None else (), values))
        for op in ops:
            name = op.outputs[0].name
            if op.op_type != "const" or name in used or name not in const_bytes:
                continue
            if all(u.op_type.startswith("constexpr_") for u in op.outputs[0].child_ops) and op.outputs[0].child_ops:
                continue
            val = op.outputs[0].val
            arr = np.asarray(val) if isinstance(val, np.ndarray) else None
            used.add(name)
            out.append(Stored(name, const_bytes[name], str(arr.dtype) if arr is not None else "scalar",
                              tuple(arr.shape) if arr is not None else (),
                              arr.astype(np.float32) if arr is not None and arr.dtype.kind == "f" else None))
    return out


def _value_bytes(val, blob: bytes) -> int:
    if val.HasField("blobFileValue"):
        return int(_BLOB_HEADER.unpack_from(blob, val.blobFileValue.offset)[2])
    return len(val.immediateValue.SerializeToString())


def _materialize(op) -> np.ndarray | None:
    for method in ("materialized_val_inference", "value_inference"):
        fn = getattr(op, method, None)
        if fn is None:
            continue
        try:
            val = fn()
        except Exception:  # noqa: BLE001 - an op without value inference is reported without values
            continue
        val = val[0] if isinstance(val, (tuple, list)) else val
        if isinstance(val, np.ndarray):
            return val.astype(np.float32) if val.dtype.kind == "f" else None
    return None


# --- ExecuTorch ---------------------------------------------------------------------------------------------

_ET_NP = {6: np.float32, 5: np.float16, 1: np.int8, 0: np.uint8, 3: np.int32, 4: np.int64, 7: np.float64,
          2: np.int16, 15: np.uint16}


def _executorch(path: Path) -> list[Stored]:
    from executorch.exir._serialize._program import deserialize_pte_binary

    pte = deserialize_pte_binary(path.read_bytes())
    program = pte.program
    out = []
    for plan in program.execution_plan:
        for i, ev in enumerate(plan.values):
            t = getattr(ev.val, "data_buffer_idx", None)
            if not t or ev.val.allocation_info is not None:
                continue  # index 0 is the reserved empty buffer; allocated tensors are activations
            dtype = _ET_NP.get(int(ev.val.scalar_type))
            shape = tuple(int(s) for s in ev.val.sizes)
            numel = int(np.prod(shape)) if shape else 1
            if dtype is None:
                continue
            data = bytes(program.constant_buffer[t].storage)[: numel * np.dtype(dtype).itemsize]
            arr = np.frombuffer(data, dtype).reshape(shape)
            out.append(Stored(f"{plan.name}.value{i}", len(data), np.dtype(dtype).name, shape,
                              arr.astype(np.float32) if arr.dtype.kind == "f" else None,
                              None if arr.dtype.kind == "f" else arr))
    named = pte.named_data
    blobs = {key: bytes(named.buffers[entry.buffer_index]) for key, entry in named.pte_data.items()} if named else {}
    for plan in program.execution_plan:
        for delegate in plan.delegates:
            if delegate.id == "XnnpackBackend" and delegate.processed.location == 0:  # INLINE after restore
                data = bytes(program.backend_delegate_data[delegate.processed.index].data)
                out += _xnnpack_constants(data, blobs)
    return out


_XNN_NP = {1: np.float32, 2: np.float16, 3: np.int8, 4: np.uint8, 5: np.int32, 6: np.int8, 7: np.int32,
           12: np.int32, 14: np.uint16}


def _xnnpack_constants(blob: bytes, named: dict[str, bytes]) -> list[Stored]:
    """Constants of one XNNPACK delegate blob: dtype and dims from its graph, bytes from the named data
    (or the blob's own constant section); int8 per-channel weights decoded with their scales."""
    import json
    import os
    import tempfile

    from executorch.backends.xnnpack.serialization.xnnpack_graph_serialize import XNNHeader
    from executorch.exir._serialize._flatbuffer import _flatc_decompile

    header = XNNHeader.from_bytes(blob[:XNNHeader.EXPECTED_LENGTH])
    graph_bytes = blob[header.flatbuffer_offset:header.flatbuffer_offset + header.flatbuffer_size]
    const_base = header.constant_data_offset
    import executorch.backends.xnnpack.serialization.xnnpack_graph_serialize as ser

    schema = os.path.join(os.path.dirname(ser.__file__), "schema.fbs")
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "graph.bin"), "wb") as f:
            f.write(graph_bytes)
        _flatc_decompile(tmp, schema, os.path.join(tmp, "graph.bin"), ["--raw-binary"])
        text = open(os.path.join(tmp, "graph.json")).read()
    # flatc writes non-finite floats (clamp bounds) as bare inf / nan, which JSON lacks
    graph = json.loads(re.sub(r"(?<=[:\[,\s])(-?)(inf|nan)(?=[,\]\s}])", r'"\1\2"', text))
    table = graph.get("constant_data", [])
    out, scale_keys = [], set()
    for value in graph.get("xvalues", []):
        kind = value.get("xvalue_union_type")
        body = value.get("xvalue_union", {})
        tensor = body.get("tensor_value", body) if kind == "XNNQuantizedTensorValue" else body
        idx = int(tensor.get("constant_buffer_idx", 0))
        if not idx or idx >= len(table):
            continue
        entry = table[idx]
        key = entry.get("named_key") or ""
        data = named.get(key) if key else blob[const_base + int(entry["offset"]):
                                                  const_base + int(entry["offset"]) + int(entry["size"])]
        if data is None:
            continue
        code = _XNN_CODES.get(tensor.get("datatype"), tensor.get("datatype"))
        shape = tuple(int(d) for d in tensor.get("dims", []))
        dtype = _XNN_NP.get(code)
        numel = int(np.prod(shape)) if shape else 1
        nbytes, values, raw = len(data), None, None
        if dtype is not None and len(data) >= numel * np.dtype(dtype).itemsize:
            arr = np.frombuffer(data[:numel * np.dtype(dtype).itemsize], dtype).reshape(shape)
            if arr.dtype.kind == "f":
                values = arr.astype(np.float32)
            else:
                raw = arr
                quant = body.get("quant_params", {}) if kind == "XNNQuantizedTensorValue" else {}
                scale = quant.get("scale")
                sidx = int(quant.get("scale_buffer_idx", 0) or 0)
                if (not isinstance(scale, list) or not scale) and 0 < sidx < len(table):
                    s_entry = table[sidx]  # scales kept as their own constant (fp32) beside the int8 codes
                    s_key = s_entry.get("named_key") or ""
                    s_data = named.get(s_key) if s_key else blob[const_base + int(s_entry["offset"]):
                                                                  const_base + int(s_entry["offset"]) + int(s_entry["size"])]
                    if s_data:
                        scale = np.frombuffer(s_data[:4 * int(quant.get("num_scales", len(s_data) // 4))],
                                              np.float32).tolist()
                        scale_keys.add(s_key or f"xnnpack.const{sidx}")
                if isinstance(scale, list) and scale:
                    scale = np.asarray(scale, np.float64)
                    values = _dequant(arr, scale, np.zeros(1), int(quant.get("channel_dim", 0)))
                    nbytes += scale.size * 4
                elif isinstance(scale, (int, float)):
                    values = (arr.astype(np.float64) * scale).astype(np.float32)
        out.append(Stored(key or f"xnnpack.const{idx}", nbytes, np.dtype(dtype).name if dtype else str(code),
                          shape, values, raw))
    return [s for s in out if s.name not in scale_keys]  # scales are counted with their weight


_XNN_CODES = {"xnn_datatype_fp32": 1, "xnn_datatype_fp16": 2, "xnn_datatype_qint8": 3, "xnn_datatype_quint8": 4,
              "xnn_datatype_qint32": 5, "xnn_datatype_qcint8": 6, "xnn_datatype_qcint32": 7,
              "xnn_datatype_int32": 12, "xnn_datatype_bf16": 14}
