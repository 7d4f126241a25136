"""PHNNs: parameterized hypercomplex convolution (PHC) and PHM linear layers, PHC-ResNets.

Papers:
- Grassucci, Zhang, Comminiello, "PHNNs: Lightweight Neural Networks via
  Parameterized Hypercomplex Convolutions", IEEE TNNLS 2022, arXiv 2110.04176.
- Zhang et al., "Beyond Fully-Connected Layers with Quaternions: Parameterization
  of Hypercomplex Multiplications with 1/n Parameters", ICLR 2021.
- Reference code: eleGAN23/HyperNets (``layers/ph_layers.py``, ``models/phc/phcresnet.py``).

A PHC layer's weight is a sum of Kronecker products on the channel axes,
``W = sum_i A_i (x) F_i`` with A (n, n, n) and F (n, out/n, in/n, *k), so it stores
n^3 + out*in*k^2/n numbers instead of out*in*k^2; MACs equal the dense layer's.

Forward forms (``PHCForm``), all the same function:
- ``"kron"``: build W (a rank-6 intermediate for 2-D) and run one dense conv —
  the readable reference; Core ML rejects rank > 5, so not for export.
- ``"factorised"`` (default, docs/ALGORITHMS.md §10): fold the n input-channel
  groups into the batch axis, run one conv with the stacked filters [F_1; ...; F_n],
  contract with A in one matmul. Every tensor is rank <= 4 and only A and F are
  stored, so an exported artifact keeps the 1/n weight bytes.
- ``fold_phc(model)`` replaces every PH layer by a dense nn.Conv/nn.Linear holding
  the folded W (1x bytes, plain conv on every runtime).

Choices: the conv bias that HyperNets registers but never applies is off by
default (``bias=False``; BN follows every conv) and applied when on. Init is
principled rather than the repo's xavier-on-raw-tensors quirk: A ~ U(+-sqrt(3)/n)
(Var 1/n^2) and F ~ N(0, 2/(in/n * k^2)), which gives W the He variance 2/(in*k^2).
Inputs are the grey digit repeated to ``in_chans`` channels (HyperNets pads RGB
to 4 channels [0,R,G,B]; the role is the same: make n divide the input width).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as Fn
from torch import nn

from edgekit.errors import EdgekitError
from edgekit.model_zoo.common import image_classifier_spec, seed_bn_stats
from edgekit.model_zoo.registry import register_family
from edgekit.spec import ModelSpec

PAPER = "Grassucci et al. 2022, arXiv 2110.04176 (PHC); Zhang et al. ICLR 2021 (PHM)"
FORMS = ("factorised", "kron")


# ---------------------------------------------------------------- blocks


def kron_weight(A: torch.Tensor, F: torch.Tensor) -> torch.Tensor:
    """``W[r*o+p, c*m+q, ...] = sum_i A[i, r, c] * F[i, p, q, ...]`` (torch.kron on the channel axes)."""
    n, o, m = F.shape[0], F.shape[1], F.shape[2]
    return torch.einsum("irc,ipq...->rpcq...", A, F).reshape(n * o, n * m, *F.shape[3:])


def _check_divisible(kind: str, n: int, cin: int, cout: int) -> None:
    if n < 1 or cin % n or cout % n:
        ok = [d for d in range(1, min(cin, cout) + 1) if cin % d == 0 and cout % d == 0]
        raise EdgekitError(
            "bad_config",
            f"{kind}: n={n} must divide in={cin} and out={cout}; valid n: {ok[:12]}",
            fix="choose n from the valid list, or widths divisible by n (the 'large' PHC-ResNets use 60/120/240/516)",
        )


class _PHBase(nn.Module):
    """A and F parameters, the forward-form switch and the shared init."""

    def __init__(self, n: int, cin: int, cout: int, kernel: tuple[int, ...], bias: bool, form: str):
        super().__init__()
        if form not in FORMS:
            raise EdgekitError("bad_config", f"PH layer form {form!r} unknown; choose one of {FORMS}",
                               fix="use 'factorised' for export, 'kron' as the readable reference")
        _check_divisible(type(self).__name__, n, cin, cout)
        self.n, self.in_features, self.out_features, self.form = n, cin, cout, form
        self.A = nn.Parameter(torch.empty(n, n, n))
        self.F = nn.Parameter(torch.empty(n, cout // n, cin // n, *kernel))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        bound = math.sqrt(3) / n
        nn.init.uniform_(self.A, -bound, bound)
        receptive = math.prod(kernel)
        nn.init.normal_(self.F, 0.0, math.sqrt(2.0 / ((cin // n) * receptive)))

    def weight(self) -> torch.Tensor:
        """The dense weight this layer represents."""
        return kron_weight(self.A, self.F)

    def _mix(self, z: torch.Tensor, batch: int, spatial: tuple[int, ...]) -> torch.Tensor:
        """z (batch*n [c], n*o [i,p], *spatial) -> y (batch, n*o [r,p], *spatial) via A."""
        n, o = self.n, self.out_features // self.n
        # A2[r, c*n + i] = A[i, r, c]: one matmul does the sum over (i, c).
        a2 = self.A.permute(1, 2, 0).reshape(n, n * n)
        y = torch.matmul(a2, z.reshape(batch, n * n, -1))
        y = y.reshape(batch, n * o, *spatial)
        return y


class PHConv(_PHBase):
    """PHC convolution, 1-D or 2-D (``dim``), for any n dividing both channel counts."""

    def __init__(self, cin: int, cout: int, kernel: int, n: int, stride: int = 1, padding: int = 0,
                 dim: int = 2, bias: bool = False, form: str = "factorised"):
        if dim not in (1, 2):
            raise EdgekitError("bad_config", f"PHConv dim={dim} unsupported; choose 1 or 2", fix="pass dim=1 or 2")
        super().__init__(n, cin, cout, (kernel,) * dim, bias, form)
        self.dim, self.kernel_size, self.stride, self.padding = dim, kernel, stride, padding
        self._conv = Fn.conv2d if dim == 2 else Fn.conv1d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.form == "kron":
            return self._conv(x, self.weight(), self.bias, self.stride, self.padding)
        b, n, m = x.shape[0], self.n, self.in_features // self.n
        xs = x.reshape(b * n, m, *x.shape[2:])  # channel groups into the batch axis
        stacked = self.F.reshape(-1, *self.F.shape[2:])  # [F_1; ...; F_n]: (n*o, m, *k)
        z = self._conv(xs, stacked, None, self.stride, self.padding)
        y = self._mix(z, b, tuple(z.shape[2:]))
        if self.bias is not None:
            y = y + self.bias.reshape(1, -1, *([1] * self.dim))
        return y

    def to_dense(self) -> nn.Module:
        cls = nn.Conv2d if self.dim == 2 else nn.Conv1d
        dense = cls(self.in_features, self.out_features, self.kernel_size, self.stride, self.padding,
                    bias=self.bias is not None)
        with torch.no_grad():
            dense.weight.copy_(self.weight())
            if self.bias is not None:
                dense.bias.copy_(self.bias)
        return dense


class PHMLinear(_PHBase):
    """PHM linear: ``y = x W^T + b`` with ``W = sum_i A_i (x) S_i`` (the F tensor here)."""

    def __init__(self, cin: int, cout: int, n: int, bias: bool = True, form: str = "factorised"):
        super().__init__(n, cin, cout, (), bias, form)
        nn.init.normal_(self.F, 0.0, math.sqrt(1.0 / (cin // n)))  # W variance 1/in, like a linear head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.form == "kron":
            return Fn.linear(x, self.weight(), self.bias)
        lead, n, m = x.shape[:-1], self.n, self.in_features // self.n
        b = math.prod(lead) if lead else 1
        stacked = self.F.reshape(-1, m)  # (n*o, m)
        z = Fn.linear(x.reshape(b * n, m), stacked)  # (b*n [c], n*o [i,p])
        y = self._mix(z, b, ()).reshape(*lead, self.out_features)
        return y if self.bias is None else y + self.bias

    def to_dense(self) -> nn.Linear:
        dense = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None)
        with torch.no_grad():
            dense.weight.copy_(self.weight())
            if self.bias is not None:
                dense.bias.copy_(self.bias)
        return dense


def fold_phc(model: nn.Module) -> tuple[nn.Module, dict]:
    """A copy of ``model`` with every PH layer folded into a dense layer, and a report."""
    model = copy.deepcopy(model)
    folded = []
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, _PHBase):
                setattr(module, child_name, child.to_dense())
                folded.append(f"{name}.{child_name}".lstrip("."))
    return model, {"pass": "fold_phc", "folded": folded}


def set_phc_form(model: nn.Module, form: str) -> nn.Module:
    """Switch every PH layer of ``model`` (in place) to ``form``; returns the model."""
    if form not in FORMS:
        raise EdgekitError("bad_config", f"PH layer form {form!r} unknown; choose one of {FORMS}",
                           fix="use 'factorised' or 'kron'; fold_phc() gives the dense form")
    for m in model.modules():
        if isinstance(m, _PHBase):
            m.form = form
    return model


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int, n: int, bias: bool):
        super().__init__()
        self.conv1 = PHConv(cin, planes, 3, n, stride, 1, bias=bias)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = PHConv(planes, planes, 3, n, 1, 1, bias=bias)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _shortcut(cin, planes, stride, n, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = Fn.relu(self.bn1(self.conv1(x)))
        return Fn.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int, n: int, bias: bool):
        super().__init__()
        self.conv1 = PHConv(cin, planes, 1, n, bias=bias)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = PHConv(planes, planes, 3, n, stride, 1, bias=bias)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = PHConv(planes, planes * 4, 1, n, bias=bias)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.shortcut = _shortcut(cin, planes * 4, stride, n, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = Fn.relu(self.bn1(self.conv1(x)))
        out = Fn.relu(self.bn2(self.conv2(out)))
        return Fn.relu(self.bn3(self.conv3(out)) + self.shortcut(x))


def _shortcut(cin: int, cout: int, stride: int, n: int, bias: bool) -> nn.Module:
    if stride == 1 and cin == cout:
        return nn.Identity()
    return nn.Sequential(PHConv(cin, cout, 1, n, stride, bias=bias), nn.BatchNorm2d(cout))


# ---------------------------------------------------------------- model


@dataclass(frozen=True)
class PHCResNetConfig:
    """CIFAR-style PHC-ResNet (3x3 s1 stem, no max-pool, 4x4 average pool, real linear head)."""

    block: str
    depths: tuple[int, ...]
    widths: tuple[int, ...]
    n: int
    num_classes: int = 10
    in_chans: int = 4
    img_size: int = 32
    conv_bias: bool = False  # True reproduces HyperNets' parameter counts (its conv bias is never applied)

    def __post_init__(self):
        if self.block not in ("basic", "bottleneck"):
            raise EdgekitError("bad_config", f"PHC-ResNet block {self.block!r} unknown; choose basic or bottleneck",
                               fix="block='basic' (ResNet-18/34) or 'bottleneck' (ResNet-50+)")
        if len(self.depths) != len(self.widths):
            raise EdgekitError("bad_config", f"depths {self.depths} and widths {self.widths} differ in length",
                               fix="give one width per stage")
        for c in (self.in_chans, *self.widths):
            _check_divisible("PHCResNet", self.n, c, self.widths[0])
        if self.img_size % 8:
            raise EdgekitError("bad_config", f"PHC-ResNet img_size={self.img_size} must be a multiple of 8",
                               fix="use 32 (the CIFAR size) or another multiple of 8")


class PHCResNet(nn.Module):
    def __init__(self, cfg: PHCResNetConfig):
        super().__init__()
        self.cfg = cfg
        block = BasicBlock if cfg.block == "basic" else Bottleneck
        self.conv1 = PHConv(cfg.in_chans, cfg.widths[0], 3, cfg.n, 1, 1, bias=cfg.conv_bias)
        self.bn1 = nn.BatchNorm2d(cfg.widths[0])
        layers, cin = [], cfg.widths[0]
        for i, (w, d) in enumerate(zip(cfg.widths, cfg.depths)):
            for j in range(d):
                layers.append(block(cin, w, 2 if (j == 0 and i > 0) else 1, cfg.n, cfg.conv_bias))
                cin = w * block.expansion
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(Fn.relu(self.bn1(self.conv1(x))))
        return self.fc(out.mean((2, 3)))  # = avg_pool2d(4) at 32x32, any size here


# ---------------------------------------------------------------- variants

_STD = (64, 128, 256, 512)
_LARGE = (60, 120, 240, 516)  # divisible by 2, 3 and 4
cfgs: dict[str, dict] = {
    "phc_resnet18": dict(block="basic", depths=(2, 2, 2, 2), widths=_STD, n=4, in_chans=4),
    "phc_resnet50": dict(block="bottleneck", depths=(3, 4, 6, 3), widths=_STD, n=4, in_chans=4),
    "phc_resnet18_large": dict(block="basic", depths=(2, 2, 2, 2), widths=_LARGE, n=3, in_chans=3),
    "phc_resnet50_large": dict(block="bottleneck", depths=(3, 4, 6, 3), widths=_LARGE, n=3, in_chans=3),
    "phnn_tiny": dict(block="basic", depths=(1, 1, 1, 1), widths=(16, 32, 64, 128), n=4, in_chans=4),
}


def _create(name: str, **overrides) -> ModelSpec:
    cfg = PHCResNetConfig(**(cfgs[name] | overrides))

    def build() -> PHCResNet:
        model = PHCResNet(cfg)
        seed_bn_stats(model)
        return model.eval()

    return image_classifier_spec(name, "phnn", PAPER, build, cfg.img_size, cfg.in_chans, n=cfg.n)


register_family(cfgs, _create)
