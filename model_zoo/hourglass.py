"""Hourglass MLP: a frozen random lift, then wide-narrow-wide residual blocks.

Paper: Chen, Lee, Liao, Shiu, "Rethinking the shape convention of an MLP",
arXiv 2510.01796 (2025). No public code; the spec follows docs/ALGORITHMS.md §4.

    z_0 = W_in x                         W_in (d_z x d_x), random, never trained
    z_{i+1} = z_i + W2 act(W1 norm(z_i))   W1 (d_h x d_z), W2 (d_z x d_h), d_h < d_z
    y = W_out z_L

The conventional baseline keeps the skip stream at the input width and makes the
branch wide (narrow-wide-narrow, d_h > d_x, no lift).

Choices ([R] in the reference, all configurable): pre-LayerNorm, GELU,
W_in ~ N(0, 1/d_x) drawn from a fixed seed and **stored as a buffer** (a
constant in every artifact: regenerating it on device is not bit-reproducible),
W2 zero-initialised so every block starts as the identity. Images are flattened.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from edgekit.errors import EdgekitError
from edgekit.model_zoo.common import image_classifier_spec
from edgekit.model_zoo.registry import register_family
from edgekit.spec import ModelSpec

PAPER = "Chen et al. 2025, arXiv 2510.01796"
KINDS = ("hourglass", "conventional")
NORMS = ("layernorm", "none")
ACTS = ("gelu", "relu")


# ---------------------------------------------------------------- blocks


class ResidualBlock(nn.Module):
    """x + W2 act(W1 norm(x)); wide-narrow-wide when d_h < width, narrow-wide-narrow otherwise."""

    def __init__(self, width: int, hidden: int, norm: str, act: str, zero_init: bool):
        super().__init__()
        self.norm = nn.LayerNorm(width) if norm == "layernorm" else nn.Identity()
        self.fc1 = nn.Linear(width, hidden)
        self.act = nn.GELU() if act == "gelu" else nn.ReLU()
        self.fc2 = nn.Linear(hidden, width)
        if zero_init:
            nn.init.zeros_(self.fc2.weight)
            nn.init.zeros_(self.fc2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(self.act(self.fc1(self.norm(x))))


# ---------------------------------------------------------------- model


@dataclass(frozen=True)
class HourglassConfig:
    """``kind="hourglass"``: lift d_in -> d_z (frozen), blocks at d_z with bottleneck d_h < d_z.
    ``kind="conventional"``: no lift, blocks at d_in with hidden d_h > d_in."""

    d_in: int
    d_out: int
    d_h: int
    depth: int
    d_z: int = 0
    kind: str = "hourglass"
    norm: str = "layernorm"
    act: str = "gelu"
    zero_init: bool = True
    lift_seed: int = 0
    img_size: int = 8
    in_chans: int = 1

    def __post_init__(self):
        for what, value, choices in (("kind", self.kind, KINDS), ("norm", self.norm, NORMS), ("act", self.act, ACTS)):
            if value not in choices:
                raise EdgekitError("bad_config", f"hourglass {what}={value!r} unknown; choose one of {choices}",
                                   fix=f"pass {what}= one of {', '.join(choices)}")
        if self.kind == "hourglass" and not (self.d_h < self.d_z and self.d_z > self.d_in):
            raise EdgekitError(
                "bad_config",
                f"an hourglass needs d_h < d_z and d_z > d_in; got d_in={self.d_in}, d_z={self.d_z}, d_h={self.d_h}",
                fix="lift to a wider d_z and make the residual branch narrower (or use kind='conventional')",
            )
        if self.d_in != self.in_chans * self.img_size**2:
            raise EdgekitError("bad_config", f"d_in={self.d_in} must equal in_chans*img_size^2 = "
                               f"{self.in_chans * self.img_size ** 2}", fix="set d_in to the flattened input size")

    @property
    def width(self) -> int:
        return self.d_z if self.kind == "hourglass" else self.d_in


class HourglassMLP(nn.Module):
    def __init__(self, cfg: HourglassConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.kind == "hourglass":
            g = torch.Generator().manual_seed(cfg.lift_seed)
            lift = torch.randn(cfg.d_z, cfg.d_in, generator=g) / math.sqrt(cfg.d_in)
            self.register_buffer("w_in", lift)  # frozen: a buffer is never handed to the optimiser
        else:
            self.w_in = None
        self.blocks = nn.Sequential(*[ResidualBlock(cfg.width, cfg.d_h, cfg.norm, cfg.act, cfg.zero_init)
                                      for _ in range(cfg.depth)])
        self.norm = nn.LayerNorm(cfg.width) if cfg.norm == "layernorm" else nn.Identity()
        self.head = nn.Linear(cfg.width, cfg.d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x.flatten(1)
        if self.w_in is not None:
            z = z @ self.w_in.t()
        return self.head(self.norm(self.blocks(z)))


def trainable_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ---------------------------------------------------------------- variants

cfgs: dict[str, dict] = {
    "hourglass_mlp_digits": dict(d_in=64, d_out=10, d_z=512, d_h=64, depth=4),
    "conventional_mlp_digits": dict(d_in=64, d_out=10, d_h=512, depth=4, kind="conventional"),
    "hourglass_tiny": dict(d_in=64, d_out=10, d_z=128, d_h=16, depth=2),
}


def _create(name: str, **overrides) -> ModelSpec:
    cfg = HourglassConfig(**(cfgs[name] | overrides))

    def build() -> HourglassMLP:
        return HourglassMLP(cfg).eval()

    return image_classifier_spec(name, "hourglass", PAPER, build, cfg.img_size, cfg.in_chans)


register_family(cfgs, _create)
