"""DKM: differentiable k-means clustering during fine-tuning (ALGORITHMS.md §5.1).

Each training forward runs ``iters`` soft k-means iterations from the previous
step's centroids: D = (x - c)^2, A = softmax(-D / tau), C = A^T x / colsum(A),
and uses W~ = A C, so the task loss trains weights and centroids together. Weights
are divided by their (initial) std first, so ``tau`` is in units of that std^2 and
does not depend on the layer's scale. Eval mode and ``finalize`` use the hard
assignment W = C[argmin D]; the result is recorded as a LUT like palettization.

``edkm=True`` wraps the forward in eDKM's saved-tensor hooks (see ``edkm.py``).
``weight_dtype="bfloat16"`` (or ``"float16"``) clusters the 16-bit rounding of the
weights — the math stays in the weights' dtype and the gradient reaches the fp32
weights straight through the rounding — which is what lets eDKM store each N x K
map as its <= 65,536 distinct rows when the master weights are fp32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgekit.exporters.compression.config import CompressionConfig, register_config
from edgekit.exporters.compression.kmeans import kmeans1d
from edgekit.exporters.compression.palettize import palettize_array, pruned_mask, write_lut
from edgekit.exporters.compression.recipe import register_handler


WEIGHT_DTYPES = ("native", "float16", "bfloat16")


@register_config
@dataclass(frozen=True)
class DKMConfig(CompressionConfig):
    type_tag = "dkm"
    version = 1
    training = True

    bits: int = 2
    tau: float = 0.01          # temperature, in units of the layer's weight variance
    iters: int = 3
    epochs: float = 3.0
    lr: float = 5e-4
    edkm: bool = False         # eDKM saved-tensor hooks (uniquify 16-bit rows, offload, shard)
    shard: bool = False        # eDKM: shard saved tensors across torch.distributed ranks
    weight_dtype: str = "native"  # "native", or cluster the "float16"/"bfloat16" rounding (see docstring)

    def __post_init__(self):
        self.check("bits", isinstance(self.bits, int) and 1 <= self.bits <= 8, self.bits, "an integer 1..8")
        self.check("tau", self.tau > 0, self.tau, "a float > 0 (e.g. 0.01)")
        self.check("iters", self.iters >= 1, self.iters, "an integer >= 1")
        self.check("epochs", self.epochs > 0, self.epochs, "> 0")
        if self.shard:
            self.check("edkm", self.edkm, self.shard, "shard=True only with edkm=True")
        self.check("weight_dtype", self.weight_dtype in WEIGHT_DTYPES, self.weight_dtype, " or ".join(WEIGHT_DTYPES))


def dkm_iterate(x, centroids, tau: float, iters: int):
    """Soft k-means on a column x (N, 1) from centroids (K,). Returns (A @ C as (N,), new centroids)."""
    import torch

    c = centroids.view(1, -1)
    for _ in range(iters):
        d = (x - c) ** 2                                      # (N, K), squared distance
        a = torch.softmax(-d / tau, dim=1)
        c = (a * x).sum(0, keepdim=True) / a.sum(0, keepdim=True).clamp_min(1e-12)
    return (a * c).sum(1), c.view(-1)


def _make_param_class():
    import torch
    from torch import nn

    class _DKM(nn.Module):
        def __init__(self, w: torch.Tensor, cfg: DKMConfig, pruned: torch.Tensor | None):
            super().__init__()
            self.tau, self.iters, self.cfg = cfg.tau, cfg.iters, cfg
            live = w if pruned is None else w[~pruned]
            k = 2 ** cfg.bits - (1 if pruned is not None else 0)
            sigma = float(live.std()) or 1.0
            init = kmeans1d(live.detach().cpu().numpy() / sigma, k)
            self.register_buffer("sigma", torch.tensor(sigma))
            self.register_buffer("centroids", torch.tensor(np.pad(init, (0, k - init.size), mode="edge"),
                                                           dtype=w.dtype))
            self.register_buffer("keep", None if pruned is None else (~pruned).to(w.dtype))
            self.hooks = None  # an edkm.SavedTensorPacker when eDKM is on

        def forward(self, w):
            x = (w / self.sigma).reshape(-1, 1)
            if self.training:
                column = x
                if self.cfg.weight_dtype != "native":
                    column = x.detach().to(getattr(torch, self.cfg.weight_dtype))
                    x = x + (column.to(x.dtype) - x).detach()  # 16-bit values, gradient straight through
                if self.hooks is not None:
                    self.hooks.reset()  # the previous step's backward has run: drop its bookkeeping
                    with self.hooks.scope(column):
                        soft, c = dkm_iterate(x, self.centroids, self.tau, self.iters)
                else:
                    soft, c = dkm_iterate(x, self.centroids, self.tau, self.iters)
                self.centroids = c.detach()   # warm start for the next step
                out = soft
            else:
                out = self.centroids[(x - self.centroids.view(1, -1)).abs().argmin(1)]
            out = out.view_as(w) * self.sigma
            return out if self.keep is None else out * self.keep

    return _DKM


@register_handler(DKMConfig)
def _dkm(model, targets, ctx) -> dict:
    import torch
    from torch.nn.utils import parametrize

    from edgekit.exporters.compression.edkm import SavedTensorPacker
    from edgekit.exporters.compression.finetune import train

    cls = _make_param_class()
    masks = {}
    for name, (module, cfg) in targets.items():
        mask = pruned_mask(module)
        masks[name] = mask
        p = cls(module.weight.detach(), cfg, None if mask is None else torch.from_numpy(mask))
        if cfg.edkm:
            p.hooks = SavedTensorPacker(shard=cfg.shard)
        parametrize.register_parametrization(module, "weight", p, unsafe=True)
    cfg = next(iter(targets.values()))[1]
    fit = train(model, ctx.data, cfg.epochs, cfg.lr, seed=ctx.seed)
    for name, (module, cfg) in targets.items():
        module.eval()
        parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
        # finalize: snap to fp16-exact table entries (one more k-means on the hard-assigned values)
        mask = masks[name]
        clustered, tables, _ = palettize_array(module.weight.detach().cpu().numpy(), cfg.bits, 0, False, mask)
        write_lut(module, clustered, cfg.bits, tables, cfg.type_tag, 0, False,
                  None if mask is None else float(mask.mean()))
    return fit
