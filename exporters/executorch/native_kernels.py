"""``--executorch-kernels edgekit``: compressed Linear layers stay at their bit width in the .pte.

Each ``nn.Linear`` (and 1x1 ``nn.Conv2d``) whose weight carries a compression record is replaced by an ``EdgekitLinear``
(``kernels/executorch_ops.py``) holding the packed kernel layout; the program calls
``edgekit::lut_linear`` / ``shift_linear`` / ``sparse_lut_linear``, run by the native kernels
(``libedgekit_executorch_ops.so``, loaded by ``edgekit.runtime`` before the program).
``--executorch-kernels edgekit-q8`` calls ``lut_linear_q8`` / ``shift_linear_q8`` instead (int8 activations,
one scale per row; opt-in, not exact) and refuses 2:4 layers.

Kinds: ``lut`` (tables per tensor or per group of rows, 2-4 bits), ``lut+sparse`` (2:4 when every
group of 4 keeps at most 2, else a plain table holding 0), ``shift`` (2-4 bits, layer scale). A layer
is converted only when the packed form decodes to its weight exactly; others stay dense (the ledger
says so): per-channel-scaled tables (the record does not keep the scales), ``shift+sparse``, 1-bit
or > 4-bit tables, convolutions other than 1x1 (stride 1, no padding, one group).
"""

from __future__ import annotations

import copy

import numpy as np

# "edgekit-q8": the same packed weights, run with int8 activations (one scale per row; opt-in, not exact:
# ``edgekit::lut_linear_q8`` / ``shift_linear_q8``, parity at the int8 tolerance); 2:4 layers are refused
KERNELS = ("none", "edgekit", "edgekit-q8")
Q8_KERNELS = "edgekit-q8"
Q8_ACTIVATIONS = "int8 per row"  # the ledger's words for the q8 ops' activations
_ROWS = 256  # rows per chunk when matching weights to table entries (bounds the temporary)


def _indices(w: np.ndarray, tables: np.ndarray, group_size: int) -> np.ndarray | None:
    """Index of every weight in its row group's table, or None if a weight is not a table value."""
    n = w.shape[0]
    size = group_size or n
    idx = np.empty(w.shape, np.uint8)
    for r0 in range(0, n, _ROWS):
        rows = w[r0:r0 + _ROWS]
        t = tables[np.arange(r0, r0 + rows.shape[0]) // size]                   # (rows, entries)
        best = np.abs(rows[:, :, None] - t[:, None, :]).argmin(-1).astype(np.uint8)
        if not np.array_equal(np.take_along_axis(t, best.astype(np.int64), 1), rows):
            return None
        idx[r0:r0 + rows.shape[0]] = best
    return idx


def _is_24(w: np.ndarray) -> bool:
    k = w.shape[1]
    pad = np.zeros((w.shape[0], -k % 4), w.dtype)
    groups = np.concatenate([w, pad], 1).reshape(w.shape[0], -1, 4)
    return bool(((groups != 0).sum(-1) <= 2).all())


def pack_layer(module, rec) -> tuple[str, object] | None:
    """(op name, PackedMatrix) for a compressed Linear, or None when it stays dense."""
    from edgekit.kernels import _native as nk

    w = module.weight.detach().cpu().numpy().astype(np.float32)
    w = w.reshape(w.shape[0], -1)  # a 1x1 convolution is a Linear over channels
    if rec.bits not in (2, 3, 4) or rec.lut is None:
        return None
    if rec.kind == "shift":
        table = np.asarray(rec.lut, np.float32)[:1]
        codes = _indices(w, table, 0)
        if codes is None or rec.scale is None:
            return None
        op, packed = "shift_linear", nk.pack_shift(codes, rec.bits, float(rec.scale))
    elif rec.kind in ("lut", "lut+sparse") and not rec.per_channel_scale:
        tables = np.zeros((rec.lut.shape[0], 2 ** rec.bits), np.float32)
        if rec.lut.shape[1] > 2 ** rec.bits:
            return None
        tables[:, :rec.lut.shape[1]] = rec.lut
        idx = _indices(w, tables, rec.group_size)
        if idx is None:
            return None
        if rec.kind == "lut+sparse" and _is_24(w):
            op, packed = "sparse_lut_linear", nk.pack_sparse24_lut(idx, tables, rec.bits, rec.group_size,
                                                                   keep=w != 0)
        else:
            op, packed = "lut_linear", nk.pack_lut(idx, tables, rec.bits, rec.group_size)
    else:
        return None
    if not np.array_equal(packed.dense(), w):  # never store a lossy encoding
        return None
    return op, packed


def _is_conv1x1(module) -> bool:
    from torch import nn

    return (isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1) and module.stride == (1, 1)
            and module.padding == (0, 0) and module.dilation == (1, 1) and module.groups == 1)


def swap_compressed_linears(model, kernels: str = "edgekit") -> tuple[object, dict]:
    """A copy of ``model`` with compressed Linears replaced by edgekit ops; ledger facts per layer.

    ``kernels="edgekit-q8"``: the int8-activation ops (``*_q8``) for every format."""
    from torch import nn

    from edgekit.errors import EdgekitError
    from edgekit.exporters.base import NATIVE
    from edgekit.exporters.compression.record import compressed_layers
    from edgekit.kernels.executorch_ops import Q8_SUFFIX, edgekit_linear

    out = copy.deepcopy(model)
    layers = compressed_layers(out)
    weights = {}
    for name, (module, rec) in layers.items():
        if not (isinstance(module, nn.Linear) or _is_conv1x1(module)):
            continue
        found = pack_layer(module, rec)
        if found is None:
            continue
        op, packed = found
        q8 = kernels == Q8_KERNELS
        op = op + Q8_SUFFIX if q8 else op
        new = edgekit_linear(op, packed.arrays(), module.bias, conv1x1=_is_conv1x1(module))
        parent_name, _, attr = name.rpartition(".")
        setattr(out.get_submodule(parent_name) if parent_name else out, attr, new)
        weights[name] = {"ops": [f"edgekit::{op}"], "bytes": new.stored_bytes(), "index_bits": rec.bits,
                         "encoded": NATIVE} | ({"activations": Q8_ACTIVATIONS} if q8 else {})
    return out, weights
