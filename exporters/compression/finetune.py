"""A small training loop for digits-sized models: training from scratch, fine-tuning,
and the training-time passes (DKM, shift QAT, gradual sparsity) via ``on_step``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass
class TrainData:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    batch_size: int = 64

    def steps_per_epoch(self) -> int:
        return -(-len(self.x_train) // self.batch_size)


def digits_data(img_size: int = 32, channels: int = 1, batch_size: int = 64, seed: int = 0) -> TrainData:
    """The digits train/test split (80/20, fixed by ``seed``) at the model's input size."""
    from edgekit.model_zoo.data import digits

    xtr, ytr = digits(img_size, channels, "train", seed)
    xte, yte = digits(img_size, channels, "test", seed)
    return TrainData(xtr, ytr, xte, yte, batch_size)


def train(model, data: TrainData, epochs: float, lr: float = 1e-3, *, weight_decay: float = 0.0,
          on_step: Callable[[int], None] | None = None, params=None, seed: int = 0) -> dict:
    """Adam + cosine decay for ``epochs`` (fractions allowed). ``on_step(step)`` runs after each
    optimizer step (step counts from 1); passes use it to update masks or clamp latents."""
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(data.x_train)
    y = torch.from_numpy(data.y_train)
    total = max(1, int(round(epochs * data.steps_per_epoch())))
    opt = torch.optim.Adam(list(params if params is not None else model.parameters()), lr=lr,
                           weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, total)
    model.train()
    step, losses = 0, []
    while step < total:
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), data.batch_size):
            idx = order[i:i + data.batch_size]
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            losses.append(float(loss.detach()))
            if on_step is not None:
                on_step(step)
            if step >= total:
                break
    model.eval()
    return {"steps": total, "final_loss": float(np.mean(losses[-10:]))}


def accuracy(model, x: np.ndarray, y: np.ndarray, batch: int = 256) -> float:
    """Top-1 accuracy in percent (eval mode)."""
    import torch

    model.eval()
    hits = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            hits += int((model(torch.from_numpy(x[i:i + batch])).argmax(1).numpy() == y[i:i + batch]).sum())
    return 100.0 * hits / len(x)


def data_for_spec(spec, batch_size: int = 64) -> TrainData:
    """Digits at the input size and channels of an image model's example input (N, C, H, W)."""
    from edgekit.errors import EdgekitError

    x = spec.example_inputs(0)[0]
    if x.ndim != 4 or x.shape[2] != x.shape[3]:
        raise EdgekitError("no_training_data", f"model '{spec.name}' takes {tuple(x.shape)}, not square images",
                           fix="training-time recipes from the CLI need an image model; call compress(model, "
                               "recipe, data=TrainData(...)) from Python with your own data")
    return digits_data(int(x.shape[2]), int(x.shape[1]), batch_size)
