"""Keep clustered (lookup-table) weights compressed in an ONNX model, losslessly.

ONNX has no lookup-table op, but ``Gather(table, indices)`` is one. A weight
whose values come from at most 2^b distinct values per channel group (k-means
palettization, DKM, sparse + k-means, shift) is stored as b-bit indices and the
fp32 table(s) of the values it holds; a few nodes rebuild the dense weight:

    packed (default, any opset >= 17): indices in f-bit fields, f = 1, 2, 4 or 8 (the
        smallest >= b), 8/f fields per uint8 byte, planar: byte j holds element
        i*M + j in bits [i*f, (i+1)*f). BitShift + Mod split the planes, Concat
        joins them, (Slice,) Reshape, Cast -> int32, (Add group offsets,) Gather.
    uint4: ONNX's own 4-bit type (opset >= 21, b <= 4): Cast -> int32 -> Gather.
    uint8: one index per byte: Cast -> int32 -> Gather.

Every node's inputs are initializers, so ONNX Runtime folds the weight back to a
dense constant once, when the session is created: inference runs on the same
kernels as a dense model (see docs/compression.md for the measured load and run
times). The encoding is verified value-for-value before it replaces the weight;
a weight that does not fit is left dense and the ledger says so.

All layout constants of this format live here (ENCODINGS, FIELD_BITS).
"""

from __future__ import annotations

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.kernels.bitpack import pack_bits, pack_planar

ENCODINGS = ("packed", "uint4", "uint8", "dense")
FIELD_BITS = (1, 2, 4, 8)      # widths of a packed index field (fields never straddle a byte)
UINT4_MIN_OPSET = 21           # the opset that introduced the UINT4 type for Cast
# Substrings of the names of the nodes that rebuild encoded weights (lut: here; dequantize: pow2_int8.py).
# The exporter's optimiser must not constant-fold them.
ENCODING_NODE_PREFIXES = ("_lut_", "_dequantize")


def field_bits(bits: int, encoding: str) -> int:
    """Bits one index occupies in ``encoding`` for a b-bit table."""
    if encoding == "uint8":
        return 8
    if encoding == "uint4":
        return 4
    return next(f for f in FIELD_BITS if f >= bits)


def check_encoding(encoding: str, opset: int) -> None:
    if encoding not in ENCODINGS:
        raise EdgekitError("bad_option", f"ONNX lut_encoding '{encoding}' unknown; choose one of "
                           f"{', '.join(ENCODINGS)}",
                           fix="pass lut_encoding='packed' (default: smallest, any opset), 'uint4' (opset >= 21), "
                               "'uint8' or 'dense'")
    if encoding == "uint4" and opset < UINT4_MIN_OPSET:
        raise EdgekitError("bad_option", f"ONNX lut_encoding 'uint4' needs opset >= {UINT4_MIN_OPSET}; opset is {opset}",
                           fix=f"pass opset={UINT4_MIN_OPSET} or higher, or lut_encoding='packed' (same size for "
                               "3-4 bit tables, smaller for 1-2 bit, any opset)")


def lut_form(w: np.ndarray, bits: int, group_size: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Split ``w`` (channels first) into (indices uint8, table fp32, offset per channel int32), or None.

    Channels are grouped by ``group_size`` (0: one table for the tensor); each group's
    table holds the distinct values of the group (at most 2^bits, else None), and
    ``table[offset[channel] + indices] == w`` exactly."""
    if w.dtype != np.float32 or w.ndim < 1 or w.size < 16:
        return None
    rows = w.reshape(w.shape[0], -1)
    size = rows.shape[0] if group_size in (0, None) else group_size
    tables, indices = [], np.empty(rows.shape, np.uint8)
    offsets = np.empty(rows.shape[0], np.int32)
    start = 0
    for g in range(0, rows.shape[0], size):
        block = rows[g:g + size]
        values, inverse = np.unique(block, return_inverse=True)  # float32 (checked above): sort-safe
        if values.size > 2 ** bits:
            return None
        indices[g:g + size] = inverse.reshape(block.shape)
        offsets[g:g + size] = start
        tables.append(values)
        start += values.size
    table = np.concatenate(tables).astype(np.float32)
    if not np.array_equal(table[offsets[:, None] + indices], rows):  # never store a lossy encoding
        return None
    return indices.reshape(w.shape), table, offsets


def _uint4_tensor(name: str, indices: np.ndarray):
    from onnx import TensorProto, helper

    raw = pack_bits(indices, 4).tobytes()  # ONNX uint4: low nibble first, the LSB-first stream
    return helper.make_tensor(name, TensorProto.UINT4, indices.shape, raw, raw=True)


def encode_weight(init_name: str, w: np.ndarray, bits: int, group_size: int, axis: int,
                  encoding: str) -> dict | None:
    """Replace initializer ``init_name`` (value ``w``) by its LUT form. Returns the ledger facts, or None."""
    from onnx import TensorProto, helper, numpy_helper

    found = lut_form(np.moveaxis(w, axis, 0), bits, group_size)
    if found is None:
        return None
    indices, table, offsets = found
    indices = np.moveaxis(indices, 0, axis)
    field = field_bits(bits, encoding)
    p = f"{init_name}_lut"
    inits, nodes = [numpy_helper.from_array(table, f"{p}_table")], []
    if encoding == "uint4":
        inits.append(_uint4_tensor(f"{p}_idx_u4", indices))
        nodes.append(helper.make_node("Cast", [f"{p}_idx_u4"], [f"{p}_idx"], to=TensorProto.INT32))
        ops = ["uint4", "Cast", "Gather"]
    elif field == 8:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(indices, np.uint8), f"{p}_idx_u8"))
        nodes.append(helper.make_node("Cast", [f"{p}_idx_u8"], [f"{p}_idx"], to=TensorProto.INT32))
        ops = ["uint8", "Cast", "Gather"]
    else:
        planes = 8 // field
        packed = pack_planar(indices, field)
        inits += [numpy_helper.from_array(packed, f"{p}_packed"),
                  numpy_helper.from_array(np.array(1 << field, np.uint8), f"{p}_mod"),
                  numpy_helper.from_array(np.array(indices.shape, np.int64), f"{p}_shape")]
        parts = []
        for i in range(planes):
            src = f"{p}_packed"
            if i:
                inits.append(numpy_helper.from_array(np.array(i * field, np.uint8), f"{p}_shift{i}"))
                nodes.append(helper.make_node("BitShift", [src, f"{p}_shift{i}"], [f"{p}_sh{i}"], direction="RIGHT"))
                src = f"{p}_sh{i}"
            if i < planes - 1:
                nodes.append(helper.make_node("Mod", [src, f"{p}_mod"], [f"{p}_plane{i}"]))
                src = f"{p}_plane{i}"
            parts.append(src)
        nodes.append(helper.make_node("Concat", parts, [f"{p}_flat"], axis=0))
        flat = f"{p}_flat"
        if packed.size * planes != indices.size:
            inits += [numpy_helper.from_array(np.array([0], np.int64), f"{p}_start"),
                      numpy_helper.from_array(np.array([indices.size], np.int64), f"{p}_end")]
            nodes.append(helper.make_node("Slice", [flat, f"{p}_start", f"{p}_end"], [f"{p}_cut"]))
            flat = f"{p}_cut"
        nodes += [helper.make_node("Reshape", [flat, f"{p}_shape"], [f"{p}_idx8"]),
                  helper.make_node("Cast", [f"{p}_idx8"], [f"{p}_idx"], to=TensorProto.INT32)]
        ops = [f"uint{field}-packed", "BitShift", "Mod", "Cast", "Gather"]
    idx = f"{p}_idx"
    if np.any(offsets):  # one table per channel group: shift each channel's indices to its table
        shape = [1] * w.ndim
        shape[axis] = -1
        inits.append(numpy_helper.from_array(offsets.reshape(shape), f"{p}_offsets"))
        nodes.append(helper.make_node("Add", [idx, f"{p}_offsets"], [f"{p}_gidx"]))
        idx = f"{p}_gidx"
        ops.append("Add")
    nodes.append(helper.make_node("Gather", [f"{p}_table", idx], [init_name], axis=0))
    for i, node in enumerate(nodes):
        node.name = f"{p}_node{i}"
    stored = sum(_tensor_bytes(t) for t in inits)
    return {"inits": inits, "nodes": nodes, "ops": ops, "bytes": stored, "index_bits": field,
            "table_entries": int(table.size)}


def _tensor_bytes(t) -> int:
    from onnx import numpy_helper

    if t.raw_data:
        return len(t.raw_data)
    return int(numpy_helper.to_array(t).nbytes)


def encode(model, layers: dict[str, tuple[int, int]], encoding: str = "packed") -> dict[str, dict]:
    """Rewrite the weights of ``layers`` ({initializer name: (bits, group size)}) in ``model`` in place.

    Returns {initializer name: {"ops", "bytes", "index_bits", "table_entries"}} for the weights
    encoded; the others stay dense."""
    from onnx import numpy_helper

    if encoding == "dense" or not layers:
        return {}
    graph = model.graph
    matmul_weights = {n.input[1] for n in graph.node if n.op_type == "MatMul" and len(n.input) > 1}
    done, new_nodes = {}, []
    for init in list(graph.initializer):
        if init.name not in layers:
            continue
        bits, group = layers[init.name]
        w = numpy_helper.to_array(init)
        axis = w.ndim - 1 if init.name in matmul_weights else 0
        enc = encode_weight(init.name, w, bits, group, axis, encoding)
        if enc is None:
            continue
        graph.initializer.remove(init)
        graph.initializer.extend(enc.pop("inits"))
        new_nodes += enc.pop("nodes")
        done[init.name] = enc
    for node in reversed(new_nodes):
        graph.node.insert(0, node)
    return done
