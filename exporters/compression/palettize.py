"""Post-training k-means palettization: each weight becomes an entry of a small table.

Tables are per tensor or per group of output channels, optionally after a
per-output-channel scale (rows normalised by their max |w|). Table values are
rounded to fp16 so Core ML stores exactly the values the PyTorch model uses.
A weight that is already sparse keeps its zeros: one table entry is reserved for 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgekit.exporters.compression.config import CompressionConfig, register_config
from edgekit.exporters.compression.kmeans import assign, kmeans1d
from edgekit.exporters.compression.recipe import register_handler
from edgekit.exporters.compression.record import WeightRecord, fp16_exact, get_record, set_record

GRANULARITIES = ("per_tensor", "per_grouped_channel")


@register_config
@dataclass(frozen=True)
class PalettizeConfig(CompressionConfig):
    type_tag = "palettize"
    version = 1

    bits: int = 4
    granularity: str = "per_tensor"
    group_size: int = 0             # output channels per table, for per_grouped_channel
    per_channel_scale: bool = False

    def __post_init__(self):
        self.check("bits", isinstance(self.bits, int) and 1 <= self.bits <= 8, self.bits, "an integer 1..8")
        self.check("granularity", self.granularity in GRANULARITIES, self.granularity, " or ".join(GRANULARITIES))
        if self.granularity == "per_grouped_channel":
            self.check("group_size", self.group_size >= 1, self.group_size, "an integer >= 1 with per_grouped_channel",
                       "set group_size (e.g. 16) or use granularity='per_tensor'")
        else:
            self.check("group_size", self.group_size == 0, self.group_size, "0 with per_tensor",
                       "drop group_size or set granularity='per_grouped_channel'")


def channel_groups(out_channels: int, group_size: int) -> list[slice]:
    size = out_channels if group_size in (0, None) else group_size
    return [slice(i, min(i + size, out_channels)) for i in range(0, out_channels, size)]


def palettize_array(w: np.ndarray, bits: int, group_size: int = 0, per_channel_scale: bool = False,
                    keep_zeros: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Cluster ``w`` (out channels first). Returns (clustered weight, tables (groups, <=2^bits), scales or None).

    ``keep_zeros`` (bool mask of pruned weights) stays exactly zero and costs one table entry.
    """
    w = np.asarray(w, dtype=np.float32)
    rows = w.reshape(w.shape[0], -1)
    scale = None
    if per_channel_scale:
        scale = fp16_exact(np.max(np.abs(rows), axis=1))
        scale[scale == 0] = 1.0
        rows = rows / scale[:, None]
    pruned = None if keep_zeros is None else keep_zeros.reshape(rows.shape)
    k = 2 ** bits - (1 if pruned is not None else 0)
    out = np.empty_like(rows)
    tables = []
    for g in channel_groups(rows.shape[0], group_size):
        block = rows[g]
        live = block if pruned is None else block[~pruned[g]]
        c = fp16_exact(kmeans1d(live, max(k, 1)))
        c = np.unique(c)  # fp16 rounding can merge neighbours (c is float32: sort-safe)
        q = c[assign(block, c)] if c.size else np.zeros_like(block)
        if pruned is not None:
            q = np.where(pruned[g], 0.0, q)
            c = np.unique(np.append(c, 0.0))
        out[g] = q
        tables.append(np.pad(c, (0, 2 ** bits - c.size)) if c.size <= 2 ** bits else c)
    if scale is not None:
        out = out * scale[:, None]
    return out.reshape(w.shape).astype(np.float32), np.stack(tables), scale


def write_lut(module, clustered: np.ndarray, bits: int, tables: np.ndarray, cfg_tag: str,
              group_size: int = 0, per_channel_scale: bool = False, sparsity: float | None = None) -> None:
    """Write the clustered weight into ``module.weight`` and record its LUT form."""
    import torch

    prev = get_record(module)
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(clustered))
    sparse = sparsity is not None and sparsity > 0
    base = prev or WeightRecord(kind="lut")
    set_record(module, base.with_step(
        cfg_tag, kind="lut+sparse" if sparse else "lut", bits=bits, group_size=group_size,
        per_channel_scale=per_channel_scale, sparsity=float(sparsity or 0.0), lut=tables, scale=None))


def pruned_mask(module) -> np.ndarray | None:
    """The zeros a previous sparsity step enforced, if any."""
    rec = get_record(module)
    if rec is None or "sparse" not in rec.kind:
        return None
    return module.weight.detach().cpu().numpy() == 0


@register_handler(PalettizeConfig)
def _palettize(model, targets, ctx) -> dict:
    for name, (module, cfg) in targets.items():
        mask = pruned_mask(module)
        w = module.weight.detach().cpu().numpy()
        clustered, tables, _ = palettize_array(w, cfg.bits, cfg.group_size, cfg.per_channel_scale, mask)
        write_lut(module, clustered, cfg.bits, tables, cfg.type_tag, cfg.group_size, cfg.per_channel_scale,
                  None if mask is None else float(mask.mean()))
    return {}
