"""Exact rewrites applied to a model while it is exported (never to the user's module afterwards).

PReLU on an input that is not rank 4 (a Linear followed by PReLU) breaks three
converters: XNNPACK's ChannelsLastTaggedReshapePass ("Attempting to convert non-NHWC
compatible node to NHWC"), Core ML's prelu (rank 3/5 only with one shared alpha)
and litert-torch, which lowers it as relu(x) - a * relu(-x) and then folds the -x
into a second, negated copy of the Linear's weight (the .tflite holds W and -W).
While exporting, such a PReLU computes ``relu(x) + a * min(x, 0)`` instead: the
same value bit for bit in IEEE arithmetic (each term is either exactly 0 or the
exact product prelu computes), with ops every target has, and no negation to fold.
Rank-4 PReLU (after a conv) keeps the native op, which every target runs.
"""

from __future__ import annotations

import contextlib
from typing import Iterator


def _exact_prelu(module):
    import torch
    import torch.nn.functional as F

    def forward(x):
        if x.ndim == 4:
            return F.prelu(x, module.weight)
        w = module.weight
        if w.numel() > 1 and x.ndim >= 2:
            w = w.reshape([1, -1] + [1] * (x.ndim - 2))
        return F.relu(x) + w * torch.clamp(x, max=0.0)

    return forward


@contextlib.contextmanager
def export_rewrites(model) -> Iterator[list[str]]:
    """Within the block, the model's PReLU layers compute the exact decomposition above.

    Yields the names of the rewritten layers (for the manifest)."""
    import torch

    patched = [(name, m) for name, m in model.named_modules() if isinstance(m, torch.nn.PReLU)]
    for _, m in patched:
        m.forward = _exact_prelu(m)  # instance attribute: module paths (nn_module_stack) stay the same
    try:
        yield [name for name, _ in patched]
    finally:
        for _, m in patched:
            del m.forward
