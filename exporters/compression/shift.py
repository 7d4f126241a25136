"""Shift (DenseShift) quantization: every weight is ±2^S times its layer's scale, S in 0..2^(b-1)-1.

Zero-free (1 sign bit + b-1 exponent bits, all 2^b codes used). Post-training:
round to the nearest level, with the layer scale chosen to minimise the squared
error. QAT: the sign-scale decomposition of DenseShift (ALGORITHMS.md §3.2) with
straight-through binarisers and the sqrt(S+1) backward surrogate, initialised from
the post-training rounding. Weights a sparsity step pruned stay zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgekit.exporters.compression.config import CompressionConfig, register_config
from edgekit.exporters.compression.kmeans import assign
from edgekit.exporters.compression.recipe import register_handler
from edgekit.exporters.compression.record import WeightRecord, fp16_exact, get_record, set_record


@register_config
@dataclass(frozen=True)
class ShiftQuantConfig(CompressionConfig):
    type_tag = "shift"
    version = 1

    bits: int = 3
    qat: bool = False
    epochs: float = 0.0
    lr: float = 1e-3

    @property
    def training(self) -> bool:  # type: ignore[override]
        return self.qat

    def __post_init__(self):
        self.check("bits", self.bits in (2, 3, 4), self.bits, "2, 3 or 4")
        if self.qat:
            self.check("epochs", self.epochs > 0, self.epochs, "> 0 with qat=True")


def levels(bits: int) -> np.ndarray:
    """Magnitudes 2^0 .. 2^(2^(b-1)-1)."""
    return 2.0 ** np.arange(2 ** (bits - 1))


def shift_round(w: np.ndarray, scale: float, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(sign in {-1,+1}, exponent S) of the nearest level scale * ±2^S (0 maps to +)."""
    lv = levels(bits) * scale
    sign = np.where(w < 0, -1.0, 1.0)
    return sign, assign(np.abs(w), lv)


def best_scale(w: np.ndarray, bits: int) -> float:
    """fp16-exact layer scale minimising the squared rounding error (grid over 2^(-4..+1) of max/2^m)."""
    a = np.abs(w[w != 0]) if np.any(w != 0) else np.ones(1)
    top = float(a.max()) / levels(bits)[-1]
    best, best_err = top, np.inf
    for t in np.linspace(-4, 1, 41):
        s = float(fp16_exact(np.array(top * 2.0**t)))
        if s <= 0:
            continue
        sign, e = shift_round(a, s, bits)
        err = float(np.sum((a - s * 2.0**e) ** 2))
        if err < best_err:
            best, best_err = s, err
    return best


def shift_quantize(w: np.ndarray, bits: int, pruned: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    scale = best_scale(w if pruned is None else np.where(pruned, 0, w), bits)
    sign, e = shift_round(w, scale, bits)
    q = (sign * scale * 2.0**e).astype(np.float32)
    if pruned is not None:
        q[pruned] = 0.0
    return q, scale


def _record(module, bits: int, scale: float, pruned: np.ndarray | None) -> None:
    prev = get_record(module)
    sparse = pruned is not None and bool(pruned.any())
    lut = np.concatenate([-levels(bits)[::-1], levels(bits)]) * scale
    set_record(module, (prev or WeightRecord(kind="shift")).with_step(
        ShiftQuantConfig.type_tag, kind="shift+sparse" if sparse else "shift", bits=bits, group_size=0,
        per_channel_scale=False, sparsity=float(pruned.mean()) if sparse else 0.0, lut=lut[None], scale=scale))


def _pruned(module) -> np.ndarray | None:
    rec = get_record(module)
    return module.weight.detach().cpu().numpy() == 0 if rec is not None and "sparse" in rec.kind else None


def dense_shift_weight(bits: int, scale: float, pruned=None):
    """A parametrization (for torch.nn.utils.parametrize) with latents (sign, B_1..B_m)."""
    return _make_param_class()(bits, scale, pruned)


def _make_param_class():
    import torch
    from torch import nn

    def ste(value, surrogate):
        return surrogate + (value - surrogate).detach()

    class _DenseShift(nn.Module):
        def __init__(self, bits: int, scale: float, pruned: torch.Tensor | None, init_latent: float = 1e-2):
            super().__init__()
            self.m = 2 ** (bits - 1) - 1
            self.bits = bits
            self.init_latent = init_latent
            self.register_buffer("scale", torch.tensor(float(scale)))
            self.register_buffer("keep", None if pruned is None else (~pruned).float())

        def forward(self, sign_latent, b_latents):
            s = ste(torch.where(sign_latent >= 0, 1.0, -1.0), sign_latent)         # bin±, 0 -> +1
            S = torch.zeros_like(sign_latent)
            for j in range(self.m):                                               # S_j = (S_{j-1}+1) B_j
                b = ste((b_latents[j] > 0).float(), b_latents[j])                 # bin01, 0 -> 0
                S = (S + 1) * b
            surrogate = s * torch.sqrt(S + 1)
            value = s.detach() * torch.pow(2.0, S.detach())
            w = ste(value, surrogate) * self.scale
            return w if self.keep is None else w * self.keep

        def right_inverse(self, w):
            """Latents reproducing the post-training rounding of ``w``."""
            a = (w / self.scale).detach()
            sign = torch.where(a < 0, -1.0, 1.0)
            lv = torch.pow(2.0, torch.arange(self.m + 1, dtype=w.dtype))
            S = (a.abs().unsqueeze(-1) - lv).abs().argmin(-1)
            # S = length of the trailing run of ones in (B_1..B_m)
            j = torch.arange(1, self.m + 1).view(-1, *([1] * w.dim()))
            ones = j > (self.m - S).unsqueeze(0)
            b = torch.where(ones, 1.0, -1.0) * self.init_latent
            return sign * self.init_latent, b

    return _DenseShift


@register_handler(ShiftQuantConfig)
def _shift(model, targets, ctx) -> dict:
    import torch

    ptq = {n: t for n, t in targets.items() if not t[1].qat}
    qat = {n: t for n, t in targets.items() if t[1].qat}
    for name, (module, cfg) in targets.items():
        pruned = _pruned(module)
        q, scale = shift_quantize(module.weight.detach().cpu().numpy(), cfg.bits, pruned)
        with torch.no_grad():
            module.weight.copy_(torch.from_numpy(q))
        if name in ptq:
            _record(module, cfg.bits, scale, pruned)
        else:
            module._edgekit_shift = (cfg.bits, scale, pruned)
    return _qat(model, qat, ctx) if qat else {}


def _qat(model, targets: dict, ctx) -> dict:
    import torch
    from torch.nn.utils import parametrize

    from edgekit.exporters.compression.finetune import train

    for name, (module, cfg) in targets.items():
        bits, scale, pruned = module._edgekit_shift
        p = dense_shift_weight(bits, scale, None if pruned is None else torch.from_numpy(pruned))
        parametrize.register_parametrization(module, "weight", p, unsafe=True)
    cfg = next(iter(targets.values()))[1]
    fit = train(model, ctx.data, cfg.epochs, cfg.lr, seed=ctx.seed)
    for name, (module, cfg) in targets.items():
        bits, scale, pruned = module._edgekit_shift
        parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
        del module._edgekit_shift
        _record(module, bits, scale, pruned)
    return fit
