"""CompressionReport: what each step did to each layer (bits, unique values, sparsity, error)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgekit.exporters.compression.record import get_record
from edgekit.sortsafe import unique


@dataclass
class LayerReport:
    name: str
    module: str
    shape: tuple[int, ...]
    kind: str | None          # record kind, None = left dense
    bits: int | None
    unique_values: int
    sparsity: float
    weight_rel_error: float   # ||W - W0|| / ||W0||
    fp32_bytes: int
    expected_bytes: int

    def to_json(self) -> dict:
        return self.__dict__ | {"shape": list(self.shape)}


@dataclass
class CompressionReport:
    recipe: str
    recipe_hash: str
    layers: list[LayerReport] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)   # layers a config could not apply to, with the reason

    @classmethod
    def build(cls, recipe, original: dict, model, steps: list[dict], skipped=()) -> "CompressionReport":
        rep = cls(recipe.name, recipe.hash(), steps=steps, skipped=list(skipped))
        modules = dict(model.named_modules())
        for name, w0 in original.items():
            m = modules[name]
            w = m.weight.detach().cpu().numpy()
            ref = w0.cpu().numpy()
            rec = get_record(m)
            fp32 = int(w.size * 4)
            rep.layers.append(LayerReport(
                name=name, module=type(m).__name__, shape=tuple(w.shape),
                kind=rec.kind if rec else None, bits=rec.bits if rec else None,
                unique_values=int(unique(w).size), sparsity=float(np.mean(w == 0)),  # unique: sort-safe
                weight_rel_error=float(np.linalg.norm(w - ref) / (np.linalg.norm(ref) or 1.0)),
                fp32_bytes=fp32, expected_bytes=rec.expected_bytes(w.shape) if rec else fp32,
            ))
        return rep

    @property
    def compressed(self) -> list[LayerReport]:
        return [r for r in self.layers if r.kind]

    def ratio(self) -> float:
        """Expected weight bytes over fp32 weight bytes (conv/linear weights only)."""
        return sum(r.expected_bytes for r in self.layers) / max(1, sum(r.fp32_bytes for r in self.layers))

    def to_json(self) -> dict:
        return {"recipe": self.recipe, "recipe_hash": self.recipe_hash, "weight_bytes_ratio": self.ratio(),
                "steps": self.steps, "layers": [r.to_json() for r in self.layers], "skipped": self.skipped}

    def table(self) -> str:
        from edgekit.report import table

        rows = [[r.name, r.module, "x".join(map(str, r.shape)), r.kind or "dense", r.bits or "-",
                 r.unique_values, f"{r.sparsity:.3f}", f"{r.weight_rel_error:.4f}", r.expected_bytes]
                for r in self.layers]
        text = table(["layer", "type", "shape", "kind", "bits", "unique", "sparsity", "rel err", "bytes"], rows)
        return text + "".join(f"\nskipped {s['layer']} (step {s['step']}, {s['type']}): {s['reason']}"
                              for s in self.skipped)
