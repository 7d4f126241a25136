"""The record a compressed weight carries: its compressed form, for exporters and the ledger.

Kinds: ``lut`` (palette of values + indices), ``shift`` (±2^k times a layer scale,
a fixed palette), ``sparse`` (zeros + mask) and combinations ``lut+sparse``,
``shift+sparse``. Values are kept fp16-representable so an fp16 target stores
them bit-exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

ATTR = "edgekit_compression"  # attribute name on the nn.Module
KINDS = ("lut", "shift", "sparse", "lut+sparse", "shift+sparse", "int8")  # int8: see int8.py


@dataclass(frozen=True)
class WeightRecord:
    kind: str                       # one of KINDS
    bits: int | None = None         # index bits per weight (None for sparse only)
    group_size: int = 0             # output channels per table; 0 = one table per tensor
    per_channel_scale: bool = False
    sparsity: float = 0.0           # share of exact zeros enforced by a mask
    steps: tuple[str, ...] = ()     # config type tags that produced it, in order
    lut: np.ndarray | None = field(default=None, compare=False, repr=False)   # (tables, K)
    scale: float | None = None      # layer scale of shift weights
    origin: str = "recipe"          # "recipe" (set by compress) or "architecture" (the layer is low-bit by design)

    def with_step(self, tag: str, **changes) -> "WeightRecord":
        return replace(self, steps=self.steps + (tag,), **changes)

    def to_json(self) -> dict:
        out = {"kind": self.kind, "bits": self.bits, "group_size": self.group_size,
               "per_channel_scale": self.per_channel_scale, "sparsity": round(self.sparsity, 6),
               "steps": list(self.steps)}
        if self.scale is not None:
            out["scale"] = self.scale
        if self.origin != "recipe":
            out["origin"] = self.origin
        return out

    def expected_bytes(self, shape: tuple[int, ...]) -> int:
        """Bytes an encoding faithful to this record needs (indices + tables + mask + scales, fp16 values)."""
        numel = int(np.prod(shape))
        out_ch = shape[0] if shape else 1
        if self.kind == "int8":  # int8 values + an fp32 scale per output channel
            return numel + out_ch * 4
        if self.kind == "sparse":
            nnz = round(numel * (1 - self.sparsity))
            return numel // 8 + nnz * 2
        nnz = round(numel * (1 - self.sparsity)) if "sparse" in self.kind else numel
        tables = 1 if self.group_size in (0, None) else -(-out_ch // self.group_size)
        total = -(-nnz * self.bits // 8) + tables * (2 ** self.bits) * 2
        if "sparse" in self.kind:
            total += -(-numel // 8)
        if self.per_channel_scale:
            total += out_ch * 2
        return total


def get_record(module) -> WeightRecord | None:
    return getattr(module, ATTR, None)


def set_record(module, record: WeightRecord | None) -> None:
    # a plain attribute: deepcopy keeps it, torch.export ignores it
    object.__setattr__(module, ATTR, record)


def compressed_layers(model) -> dict[str, tuple[object, WeightRecord]]:
    """name -> (module, record) for every module whose weight carries a record."""
    return {name: (m, r) for name, m in model.named_modules() if (r := get_record(m)) is not None}


def architecture_records(model) -> dict[str, tuple[object, WeightRecord]]:
    """name -> (module, record) for layers compressed by design that carry no recipe record.

    DenseShift layers (``model_zoo/denseshift.py``) hold b-bit weights ±2^S x their layer
    scale: a ``shift`` record with those bits. Exporters that can store them compressed
    (Core ML iOS18: a b-bit table; ONNX/TFLite: exact int8) do, and the ledger lists them
    on every target; other targets keep them dense without failing the export, since no
    recipe asked for the compression (see ``ledger.compression_section``)."""
    from edgekit.model_zoo.denseshift import shift_layers

    return {name: (m, WeightRecord(kind="shift", bits=m.bits, scale=float(m.scale), steps=("denseshift",),
                                   origin="architecture"))
            for name, m in shift_layers(model).items() if get_record(m) is None}


def ledger_layers(model) -> dict[str, tuple[object, WeightRecord]]:
    """The layers the compression ledger lists: recipe records, then architecture ones."""
    return compressed_layers(model) | architecture_records(model)


def fp16_exact(x: np.ndarray) -> np.ndarray:
    """Round to the nearest fp16 value, kept as float32 (so fp16 targets store it exactly)."""
    return np.asarray(x, dtype=np.float32).astype(np.float16).astype(np.float32)
