"""Helpers every family file shares: the digits-backed ModelSpec and seeded BatchNorm statistics."""

from __future__ import annotations

import functools
from typing import Callable

import numpy as np

from edgekit.model_zoo.data import digits_samples
from edgekit.spec import ModelSpec


def image_classifier_spec(name: str, family: str, paper: str, build: Callable, img_size: int,
                          in_chans: int, **hints) -> ModelSpec:
    """A ModelSpec whose inputs are digits resized to ``img_size`` with ``in_chans`` channels."""
    return ModelSpec(
        name=name,
        family=family,
        paper=paper,
        build=build,
        example_inputs=lambda seed=0: (digits_samples(img_size, in_chans, 1, seed)[0][0],),
        dataset=functools.partial(digits_samples, img_size, in_chans),
        input_names=("image",),
        hints={"img_size": img_size, "in_chans": in_chans} | hints,
    )


def seed_bn_stats(model) -> None:
    """Non-trivial BatchNorm statistics (seeded) so BN folding is exercised by every export."""
    import torch
    from torch import nn

    rng = np.random.default_rng(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            m.running_mean.copy_(torch.from_numpy(rng.normal(0, 0.1, m.num_features).astype(np.float32)))
            m.running_var.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, m.num_features).astype(np.float32)))
