"""Helpers every family file shares: the digits-backed ModelSpec and seeded BatchNorm statistics."""

from __future__ import annotations

from typing import Callable

import numpy as np

from edgekit.model_zoo.data import digits, digits_samples
from edgekit.spec import ModelSpec


class DigitsDataset:
    """``dataset(n)``: n held-out digits as batch-1 samples; ``labels(n)``: their classes (a labelled
    dataset tells the parity check that the model's [batch, C] output is class scores)."""

    def __init__(self, size: int, channels: int):
        self.size, self.channels = size, channels

    def __call__(self, n: int, seed: int = 0) -> tuple[np.ndarray]:
        return digits_samples(self.size, self.channels, n, seed)

    def labels(self, n: int, seed: int = 0) -> np.ndarray:
        _, y = digits(self.size, self.channels, split="test", seed=seed)
        if n > len(y):
            y = np.concatenate([y, digits(self.size, self.channels, split="train", seed=seed)[1]])
        return y[:n]


def image_classifier_spec(name: str, family: str, paper: str, build: Callable, img_size: int,
                          in_chans: int, **hints) -> ModelSpec:
    """A ModelSpec whose inputs are digits resized to ``img_size`` with ``in_chans`` channels."""
    return ModelSpec(
        name=name,
        family=family,
        paper=paper,
        build=build,
        example_inputs=lambda seed=0: (digits_samples(img_size, in_chans, 1, seed)[0][0],),
        dataset=DigitsDataset(img_size, in_chans),
        input_names=("image",),
        hints={"img_size": img_size, "in_chans": in_chans, "data": "digits"} | hints,
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
