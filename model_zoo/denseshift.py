"""DenseShift: zero-free low-bit power-of-two (shift) networks.

Paper: Li et al., "DenseShift: Towards Accurate and Efficient Low-Bit
Power-of-Two Quantization", ICCV 2023, arXiv 2208.09708. Reference demo code:
huawei-noah/noah-research ``S3-Training/dsconv2d.py`` at 4b5c2aa (3-bit only).

A b-bit weight is ``w = s * 2^S`` with sign s in {-1, +1} and S in {0 .. 2^(b-1)-1}:
no zero, all 2^b codes used. Training reparameterises it with real latents
``weight_sign`` and ``weight_scale[j]`` (j < m = 2^(b-1)-1):

    B_j = bin01(W_j),  S_j = (S_{j-1} + 1) * B_j  (S = trailing run of ones)
    s   = bin+-(W_sign)
    forward  w = s * 2^S;   backward through  w_bw = s * sqrt(S + 1)

with straight-through (identity) gradients through both binarisers. Latents
start at N(0, 1e-3) (the paper's low-variance init; std 1e-3 here).

Choices: 2- and 4-bit follow the 3-bit rule ([R] in docs/ALGORITHMS.md §3).
Each layer multiplies by a fixed power-free ``scale`` buffer (sqrt(2/fan_in) /
2^(m/2)) so layers without a following BatchNorm (the head in ``quantize_all``
mode) start at a sensible magnitude; every deployed weight is therefore exactly
``scale * (+-2^k)``. In eval mode a layer runs an ordinary conv/linear on a
buffer holding those values, refreshed on ``.eval()`` and after loading a state
dict, so ``torch.export`` sees a constant and every target stores +-2^k * scale
(BN folding, where a converter does it, multiplies each output channel by one
factor, which keeps the form per channel).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as Fn
from torch import nn

from edgekit.errors import EdgekitError
from edgekit.model_zoo.common import image_classifier_spec, seed_bn_stats
from edgekit.model_zoo.registry import register_family
from edgekit.spec import ModelSpec

PAPER = "Li et al. 2023 (ICCV), arXiv 2208.09708"
BITS = (2, 3, 4)
LATENT_STD = 1e-3


# ---------------------------------------------------------------- blocks


def _ste(x: torch.Tensor, hard: torch.Tensor) -> torch.Tensor:
    """``hard`` forward, identity gradient to ``x`` (no clipping)."""
    return x + (hard - x).detach()


def bin01(x: torch.Tensor) -> torch.Tensor:
    return _ste(x, (x > 0).to(x.dtype))


def bin_pm(x: torch.Tensor) -> torch.Tensor:
    return _ste(x, torch.where(x >= 0, 1.0, -1.0).to(x.dtype))


def shift_exponent(latents: torch.Tensor) -> torch.Tensor:
    """S in {0..m} from m binary latents: S_j = (S_{j-1} + 1) * bin01(W_j)."""
    s = torch.zeros_like(latents[0])
    for w in latents:
        s = (s + 1) * bin01(w)
    return s


def shift_weight(sign_latent: torch.Tensor, scale_latents: torch.Tensor) -> torch.Tensor:
    """``s * 2^S`` forward, gradients through the ``s * sqrt(S + 1)`` surrogate."""
    s, S = bin_pm(sign_latent), shift_exponent(scale_latents)
    surrogate = s * torch.sqrt(S + 1)
    return surrogate + (s * torch.pow(2.0, S) - surrogate).detach()


class _ShiftBase(nn.Module):
    """Latents, the deployed-weight buffer and its refresh on eval / load."""

    def __init__(self, shape: tuple[int, ...], fan_in: int, bits: int):
        super().__init__()
        if bits not in BITS:
            raise EdgekitError("bad_config", f"DenseShift bits={bits} unsupported; choose one of {BITS}",
                               fix="pass bits=3 (the paper's setting), 2 or 4")
        self.bits, m = bits, 2 ** (bits - 1) - 1
        self.weight_sign = nn.Parameter(torch.randn(shape) * LATENT_STD)
        self.weight_scale = nn.Parameter(torch.randn(m, *shape) * LATENT_STD)
        # A power of two times sqrt(2/fan_in): keeps w exactly scale * 2^k in float arithmetic.
        self.register_buffer("scale", torch.tensor(math.sqrt(2.0 / fan_in) / 2 ** (m / 2)), persistent=True)
        self.register_buffer("weight", torch.empty(shape), persistent=False)
        self.register_load_state_dict_post_hook(lambda module, _keys: module.refresh())
        self.refresh()

    @torch.no_grad()
    def refresh(self) -> None:
        """Recompute the deployed weight ``scale * s * 2^S`` from the latents."""
        self.weight.copy_(self.scale * shift_weight(self.weight_sign, self.weight_scale))

    def train(self, mode: bool = True):
        super().train(mode)
        if not mode:
            self.refresh()
        return self

    def current_weight(self) -> torch.Tensor:
        if self.training:
            return self.scale * shift_weight(self.weight_sign, self.weight_scale)
        return self.weight

    def codes(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(sign in {-1,+1}, exponent S in {0..m}) of every weight: 1 + (b-1) bits each."""
        with torch.no_grad():
            return bin_pm(self.weight_sign), shift_exponent(self.weight_scale)


class ShiftConv2d(_ShiftBase):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0, bits: int = 3):
        super().__init__((cout, cin, kernel, kernel), cin * kernel * kernel, bits)
        self.stride, self.padding = stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return Fn.conv2d(x, self.current_weight(), None, self.stride, self.padding)


class ShiftLinear(_ShiftBase):
    def __init__(self, cin: int, cout: int, bits: int = 3):
        super().__init__((cout, cin), cin, bits)
        self.bias = nn.Parameter(torch.zeros(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return Fn.linear(x, self.current_weight(), self.bias)


def _conv(cin: int, cout: int, k: int, stride: int, padding: int, bits: int | None) -> nn.Module:
    if bits is None:
        return nn.Conv2d(cin, cout, k, stride, padding, bias=False)
    return ShiftConv2d(cin, cout, k, stride, padding, bits)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, bits: int | None):
        super().__init__()
        self.conv1 = _conv(cin, cout, 3, stride, 1, bits)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = _conv(cout, cout, 3, 1, 1, bits)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(_conv(cin, cout, 1, stride, 0, bits), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = Fn.relu(self.bn1(self.conv1(x)))
        return Fn.relu(self.bn2(self.conv2(out)) + identity)


# ---------------------------------------------------------------- model


@dataclass(frozen=True)
class DenseShiftConfig:
    """DenseShift-ResNet. ``bits=None`` is the same network in fp32 (the baseline).

    Like the paper, the stem conv and the head stay float unless ``quantize_all``.
    """

    widths: tuple[int, ...]
    depths: tuple[int, ...]
    bits: int | None = 3
    quantize_all: bool = False
    num_classes: int = 10
    in_chans: int = 3
    img_size: int = 32

    def __post_init__(self):
        if self.bits is not None and self.bits not in BITS:
            raise EdgekitError("bad_config", f"DenseShift bits={self.bits} unsupported; choose one of {BITS} or None",
                               fix="pass bits=3 (the paper's setting), 2, 4, or None for the fp32 baseline")
        if len(self.widths) != len(self.depths) or not self.widths:
            raise EdgekitError("bad_config", f"widths {self.widths} and depths {self.depths} differ in length",
                               fix="give one width per stage")


class DenseShiftResNet(nn.Module):
    """CIFAR-style basic-block ResNet (3x3 s1 stem) with shift convs in every block."""

    def __init__(self, cfg: DenseShiftConfig):
        super().__init__()
        self.cfg = cfg
        edge_bits = cfg.bits if cfg.quantize_all else None
        self.stem = _conv(cfg.in_chans, cfg.widths[0], 3, 1, 1, edge_bits)
        self.bn = nn.BatchNorm2d(cfg.widths[0])
        layers, cin = [], cfg.widths[0]
        for i, (w, d) in enumerate(zip(cfg.widths, cfg.depths)):
            for j in range(d):
                layers.append(BasicBlock(cin, w, 2 if (j == 0 and i > 0) else 1, cfg.bits))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.fc = ShiftLinear(cin, cfg.num_classes, edge_bits) if edge_bits else nn.Linear(cin, cfg.num_classes)
        for m in self.modules():  # He init for the float convs (the shift latents keep their own init)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(Fn.relu(self.bn(self.stem(x))))
        return self.fc(out.mean((2, 3)))


def shift_layers(model: nn.Module) -> dict[str, _ShiftBase]:
    return {name: m for name, m in model.named_modules() if isinstance(m, _ShiftBase)}


# ---------------------------------------------------------------- variants

cfgs: dict[str, dict] = {
    "denseshift_resnet18_digits": dict(widths=(64, 128, 256, 512), depths=(2, 2, 2, 2), bits=3),
    "denseshift_resnet10_digits": dict(widths=(32, 64, 128, 256), depths=(1, 1, 1, 1), bits=3),
    "denseshift_tiny": dict(widths=(8, 16, 32, 64), depths=(1, 1, 1, 1), bits=3, quantize_all=True),
}


def _create(name: str, **overrides) -> ModelSpec:
    cfg = DenseShiftConfig(**(cfgs[name] | overrides))

    def build() -> DenseShiftResNet:
        with torch.random.fork_rng():  # latents are drawn in __init__: a reproducible build
            torch.manual_seed(0)
            model = DenseShiftResNet(cfg)
        seed_bn_stats(model)
        return model.eval()

    return image_classifier_spec(name, "denseshift", PAPER, build, cfg.img_size, cfg.in_chans, bits=cfg.bits)


register_family(cfgs, _create)
