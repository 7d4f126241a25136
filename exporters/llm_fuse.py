"""Fuse the Llama projections that read the same input into one edgekit op: q/k/v, and gate/up.

A hook of ``llm_kernels.swap_llm``: after the compressed Linears became ``EdgekitLinear`` ops, each
attention's q, k and v (and each MLP's gate and up) that are all LUT layers of one op and bit width
(no bias, no row scale) are replaced by one op over their concatenated rows (``qkv_proj``,
``gate_up_proj``; the model splits the output). The fused layer keeps every part's table: tables
per group of rows, the group the gcd of the parts' row counts (and group sizes). Exact: each output
row is the same table lookup over the same input (the int8 ops quantize the shared input once, with
the same per-row scale). The packed form is checked to decode to the concatenated weights; a group
that does not qualify stays as separate ops. The ledger keeps one row per original layer, marked
``fused_into`` with its ``rows`` of the fused op.
"""

from __future__ import annotations

import math

import numpy as np

GROUPS = (("self_attn", ("q_proj", "k_proj", "v_proj"), "qkv_proj"),
          ("mlp", ("gate_proj", "up_proj"), "gate_up_proj"))
_LUT_OPS = ("lut_linear", "lut_linear_q8")


def _lut(module, rec) -> tuple[np.ndarray, np.ndarray, int, np.ndarray] | None:
    """(weight, tables (G, 2**bits), group_size, indices) of a plain LUT layer, or None."""
    from edgekit.exporters.executorch.native_kernels import _indices

    if rec.kind != "lut" or rec.per_channel_scale or rec.lut is None or rec.lut.shape[1] > 2 ** rec.bits:
        return None
    w = module.weight.detach().cpu().numpy().astype(np.float32)
    tables = np.zeros((rec.lut.shape[0], 2 ** rec.bits), np.float32)
    tables[:, :rec.lut.shape[1]] = rec.lut
    idx = _indices(w, tables, rec.group_size)
    return None if idx is None else (w, tables, rec.group_size, idx)


def _fuse_group(model, swapped, encodings: dict, parent: str, parts: tuple, fused_name: str) -> bool:
    from edgekit.exporters.compression.record import compressed_layers
    from edgekit.kernels import _native as nk
    from edgekit.kernels.executorch_ops import edgekit_linear

    names = [f"{parent}.{p}" for p in parts]
    if not all(n in encodings for n in names):
        return False
    mods = [swapped.get_submodule(n) for n in names]
    ops = {(m.op, m.bits, m.in_features) for m in mods}
    if len(ops) != 1 or mods[0].op not in _LUT_OPS or any(m.bias.numel() or m.scale.numel() for m in mods):
        return False
    layers = compressed_layers(model)
    found = [_lut(*layers[n]) for n in names]
    if any(f is None for f in found):
        return False
    rows = [f[0].shape[0] for f in found]
    g = math.gcd(*rows, *(f[2] for f in found if f[2]))
    tables = np.concatenate([t[(np.arange(0, n, g) // gs) if gs else np.zeros(n // g, np.int64)]
                             for (_, t, gs, _), n in zip(found, rows)])
    packed = nk.pack_lut(np.concatenate([f[3] for f in found]), tables, mods[0].bits, g)
    if not np.array_equal(packed.dense(), np.concatenate([f[0] for f in found])):
        return False  # never store a lossy encoding
    holder = swapped.get_submodule(parent)
    setattr(holder, fused_name, edgekit_linear(mods[0].op, packed.arrays(), None))
    r0 = 0
    for name, part, n in zip(names, parts, rows):
        delattr(holder, part)
        encodings[name] = encodings[name] | {"fused_into": f"{parent}.{fused_name}", "rows": [r0, r0 + n]}
        r0 += n
    return True


def fuse_llm(model, swapped, encodings: dict) -> int:
    """Fuse q/k/v and gate/up of every block of ``swapped`` (in place; ``model``: the compressed original,
    whose records give the tables and indices); ``encodings`` updated. Returns the number of fused ops."""
    fused = 0
    for i in range(len(swapped.layers)):
        for sub, parts, fused_name in GROUPS:
            fused += _fuse_group(model, swapped, encodings, f"layers.{i}.{sub}", parts, fused_name)
    return fused
