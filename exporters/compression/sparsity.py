"""Magnitude sparsity: one-shot (per layer or global) and gradual (Zhu & Gupta cubic schedule),
unstructured, N:M (e.g. 2:4) or blocks of consecutive weights along a row.

Mask rule (TF-MOT ``_update_mask``): keep the k = max(1, round(N (1 - s))) largest
|w|; weights tied at the threshold are kept, so realised sparsity can be a hair
below target. Pruned weights are zeroed after every optimizer step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgekit.exporters.compression.config import CompressionConfig, register_config
from edgekit.exporters.compression.recipe import register_handler
from edgekit.exporters.compression.record import WeightRecord, get_record, set_record
from edgekit.sortsafe import argsort

STRUCTURES = ("unstructured", "n:m", "block")
SCOPES = ("layer", "global")
SCHEDULES = ("one_shot", "gradual")


@register_config
@dataclass(frozen=True)
class SparsityConfig(CompressionConfig):
    type_tag = "sparsity"
    version = 1

    sparsity: float = 0.5
    structure: str = "unstructured"
    n: int = 2                 # n:m keeps n of every m consecutive weights
    m: int = 4
    block_size: int = 4        # block: consecutive weights along a row, scored by mean |w|
    scope: str = "layer"       # global: one threshold over every targeted layer (unstructured only)
    schedule: str = "one_shot"
    initial_sparsity: float = 0.0
    begin_step: int = 0
    end_step: int = 0          # gradual: s_f is reached exactly here; (end-begin) % frequency == 0
    frequency: int = 10
    epochs: float = 0.0        # gradual: fine-tuning length (must cover end_step)
    lr: float = 1e-3

    @property
    def training(self) -> bool:  # type: ignore[override]
        return self.schedule == "gradual"

    def __post_init__(self):
        self.check("sparsity", 0.0 <= self.sparsity < 1.0, self.sparsity, "a float in [0, 1)")
        self.check("structure", self.structure in STRUCTURES, self.structure, ", ".join(STRUCTURES))
        self.check("scope", self.scope in SCOPES, self.scope, ", ".join(SCOPES))
        self.check("schedule", self.schedule in SCHEDULES, self.schedule, ", ".join(SCHEDULES))
        if self.structure == "n:m":
            self.check("n", 0 < self.n < self.m, (self.n, self.m), "0 < n < m, e.g. n=2, m=4")
        if self.structure == "block":
            self.check("block_size", self.block_size >= 2, self.block_size, "an integer >= 2")
        if self.scope == "global":
            self.check("scope", self.structure == "unstructured", self.scope, "'layer' for n:m and block")
        if self.schedule == "gradual":
            self.check("end_step", self.end_step > self.begin_step >= 0, self.end_step, "> begin_step >= 0")
            self.check("frequency", self.frequency >= 1, self.frequency, "an integer >= 1")
            span = self.end_step - self.begin_step
            self.check("end_step", span % self.frequency == 0, self.end_step,
                       f"begin_step + a multiple of frequency ({self.frequency})",
                       f"set end_step={self.begin_step + (span // self.frequency + 1) * self.frequency}: otherwise the "
                       "last mask update falls before end_step and the final sparsity is never reached")
            self.check("initial_sparsity", 0.0 <= self.initial_sparsity <= self.sparsity, self.initial_sparsity,
                       f"a float in [0, sparsity={self.sparsity}]")
            self.check("epochs", self.epochs > 0, self.epochs, "> 0 with schedule='gradual'")

    def skip_reason(self, module) -> str | None:
        row = int(module.weight[0].numel()) if module.weight.dim() else 1
        if self.structure == "n:m" and row % self.m:
            return (f"{self.n}:{self.m} sparsity needs rows of a multiple of {self.m} weights; "
                    f"this layer's rows have {row}")
        return None


def cubic_sparsity(step: int, cfg: SparsityConfig) -> float:
    """Zhu & Gupta: s_t = s_f + (s_i - s_f) (1 - p)^3, p = clip((t - t0) / (t_end - t0), 0, 1)."""
    p = min(max((step - cfg.begin_step) / (cfg.end_step - cfg.begin_step), 0.0), 1.0)
    return cfg.sparsity + (cfg.initial_sparsity - cfg.sparsity) * (1.0 - p) ** 3


def is_update_step(step: int, cfg: SparsityConfig) -> bool:
    return cfg.begin_step <= step <= cfg.end_step and (step - cfg.begin_step) % cfg.frequency == 0


def magnitude_mask(w: np.ndarray, sparsity: float, threshold: float | None = None) -> np.ndarray:
    """Keep-mask (True = kept) of the largest |w|; ties at the threshold are kept."""
    a = np.abs(w)
    if threshold is None:
        keep = max(1, int(round(a.size * (1 - sparsity))))
        threshold = np.partition(a.ravel(), a.size - keep)[a.size - keep]
    return a >= threshold


def nm_mask(w: np.ndarray, n: int, m: int, layer: str | None = None) -> np.ndarray:
    rows = w.reshape(w.shape[0], -1)
    if rows.shape[1] % m:
        from edgekit.exporters.compression.config import ConfigError
        where = f" of layer '{layer}'" if layer else ""
        err = ConfigError("SparsityConfig", "m", m, f"a divisor of the row length {rows.shape[1]}{where}",
                          f"exclude this layer with by_name={{{(layer or '<name>')!r}: None}} or pick another m")
        err.details["layer"] = layer
        raise err
    groups = np.abs(rows).reshape(rows.shape[0], -1, m)
    order = argsort(-groups, axis=-1, kind="stable")  # sort-safe: w may be float16
    keep = np.zeros_like(groups, dtype=bool)
    np.put_along_axis(keep, order[..., :n], True, axis=-1)
    return keep.reshape(w.shape)


def block_mask(w: np.ndarray, sparsity: float, block: int) -> np.ndarray:
    rows = w.reshape(w.shape[0], -1)
    pad = (-rows.shape[1]) % block
    scores = np.abs(np.pad(rows, ((0, 0), (0, pad)))).reshape(rows.shape[0], -1, block).mean(-1)
    keep_blocks = magnitude_mask(scores, sparsity)
    keep = np.repeat(keep_blocks, block, axis=1)[:, :rows.shape[1]]
    return keep.reshape(w.shape)


def masks_for(targets: dict, sparsity_of) -> dict[str, np.ndarray]:
    """Keep-masks for every target at the sparsity ``sparsity_of(cfg)``."""
    weights = {n: m.weight.detach().cpu().numpy() for n, (m, _) in targets.items()}
    out = {}
    global_names = [n for n, (_, c) in targets.items() if c.scope == "global"]
    threshold = None
    if global_names:
        cfg = targets[global_names[0]][1]
        allw = np.concatenate([np.abs(weights[n]).ravel() for n in global_names])
        keep = max(1, int(round(allw.size * (1 - sparsity_of(cfg)))))
        threshold = np.partition(allw, allw.size - keep)[allw.size - keep]
    for name, (module, cfg) in targets.items():
        w = weights[name]
        if cfg.structure == "n:m":
            out[name] = nm_mask(w, cfg.n, cfg.m, layer=name)
        elif cfg.structure == "block":
            out[name] = block_mask(w, sparsity_of(cfg), cfg.block_size)
        else:
            out[name] = magnitude_mask(w, sparsity_of(cfg), threshold if cfg.scope == "global" else None)
    return out


def apply_masks(targets: dict, masks: dict[str, np.ndarray]) -> None:
    import torch

    with torch.no_grad():
        for name, (module, _) in targets.items():
            module.weight.mul_(torch.from_numpy(masks[name]).to(module.weight.dtype))


def record_sparsity(targets: dict, cfg_tag: str) -> None:
    for name, (module, cfg) in targets.items():
        s = float((module.weight == 0).float().mean())
        prev = get_record(module)
        kind = "sparse" if prev is None else (prev.kind if "sparse" in prev.kind else f"{prev.kind}+sparse")
        set_record(module, (prev or WeightRecord(kind="sparse")).with_step(cfg_tag, kind=kind, sparsity=s))


@register_handler(SparsityConfig)
def _sparsify(model, targets, ctx) -> dict:
    gradual = {n: t for n, t in targets.items() if t[1].schedule == "gradual"}
    oneshot = {n: t for n, t in targets.items() if t[1].schedule == "one_shot"}
    note = {}
    if oneshot:
        apply_masks(oneshot, masks_for(oneshot, lambda c: c.sparsity))
    if gradual:
        note = _gradual(model, gradual, ctx)
    record_sparsity(targets, SparsityConfig.type_tag)
    return note


def _gradual(model, targets: dict, ctx) -> dict:
    from edgekit.errors import EdgekitError
    from edgekit.exporters.compression.finetune import train

    cfg = next(iter(targets.values()))[1]
    total = int(round(cfg.epochs * ctx.data.steps_per_epoch()))
    if cfg.end_step > total:
        raise EdgekitError("bad_schedule", f"gradual sparsity end_step={cfg.end_step} is past the last training "
                           f"step ({total} = {cfg.epochs} epochs x {ctx.data.steps_per_epoch()} steps)",
                           fix=f"set end_step <= {total} or raise epochs")
    state = {"masks": masks_for(targets, lambda c: cubic_sparsity(0, c)) if cfg.begin_step == 0 else None,
             "history": []}
    if state["masks"] is not None:
        apply_masks(targets, state["masks"])
        state["history"].append((0, cubic_sparsity(0, cfg)))

    def on_step(step: int) -> None:
        if is_update_step(step, cfg):
            state["masks"] = masks_for(targets, lambda c: cubic_sparsity(step, c))
            state["history"].append((step, cubic_sparsity(step, cfg)))
        if state["masks"] is not None:
            apply_masks(targets, state["masks"])

    fit = train(model, ctx.data, cfg.epochs, cfg.lr, on_step=on_step, seed=ctx.seed)
    return fit | {"schedule": state["history"]}
