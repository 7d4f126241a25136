"""A small training loop for digits-sized models: training from scratch, fine-tuning,
and the training-time passes (DKM, shift QAT, gradual sparsity) via ``on_step``.

Two kinds of data: ``TrainData`` (inputs + class labels: cross-entropy) and
``DistillData`` (inputs only: the model learns the original model's outputs, a
label-free distillation that fits any model, detectors and encoders included).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

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


@dataclass
class DistillData:
    """Label-free fine-tuning data: the model's own inputs (leading axis = batch axis of the model);
    the loss is the output-variance-normalised MSE to ``teacher`` (the original model) on them."""

    inputs: tuple[np.ndarray, ...]
    teacher: Any = None       # compress() fills in the original model
    batch_size: int = 64
    source: str = "random"    # "dataset" (real samples) or "random(seed=...)" (the example inputs' distribution)

    def steps_per_epoch(self) -> int:
        return -(-len(self.inputs[0]) // self.batch_size)

    def fingerprint(self) -> str:
        import hashlib

        h = hashlib.sha256(f"distill:{self.batch_size}".encode())
        for a in self.inputs:
            h.update(str((a.shape, a.dtype)).encode())
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()[:16]


# Sized like digits fine-tuning (16 steps per epoch), capped in memory for large inputs.
DISTILL_SAMPLES, DISTILL_STEPS_PER_EPOCH, DISTILL_MAX_BYTES = 1024, 16, 128 << 20


def distill_data(model, example_inputs: tuple[np.ndarray, ...], dataset=None, *, samples: int = DISTILL_SAMPLES,
                 seed: int = 1000) -> DistillData:
    """Inputs for label-free fine-tuning: ``dataset(samples)`` when the model has real samples, else
    seeded random inputs like ``example_inputs`` (seeds from 1000: parity's seeds 0..N stay unseen).
    The batch is the inputs' leading axis; a model that only runs at batch 1 is fed one at a time."""
    import torch

    from edgekit.spec import random_like

    per_sample = sum(np.asarray(x).nbytes for x in example_inputs) or 1
    n = max(1, min(samples, DISTILL_MAX_BYTES // per_sample))
    if dataset is not None:
        data = dataset(n)
        cases = [tuple(np.asarray(arr[i]) for arr in data) for i in range(min(n, len(data[0])))]
        source = "dataset"
    else:
        cases = [random_like(tuple(np.asarray(x) for x in example_inputs), seed + i) for i in range(n)]
        source = f"random(seed={seed}..{seed + n - 1})"
    inputs = tuple(np.concatenate([c[j] for c in cases], axis=0) for j in range(len(cases[0])))
    batch = max(1, min(64, len(cases) // DISTILL_STEPS_PER_EPOCH))
    try:  # does the model take a batch larger than its example's?
        with torch.no_grad():
            model.eval()(*[torch.from_numpy(np.ascontiguousarray(a[:2])) for a in inputs])
    except Exception:  # noqa: BLE001 - any failure means: feed one example at a time
        inputs = tuple(np.concatenate([c[j] for c in cases[:DISTILL_STEPS_PER_EPOCH * 4]], axis=0)
                       for j in range(len(cases[0])))
        batch = int(np.asarray(example_inputs[0]).shape[0]) if np.asarray(example_inputs[0]).ndim else 1
    return DistillData(inputs, None, batch, source)


def distill_loss(student_out, teacher_out):
    """Sum over the output tensors of MSE / (variance of the teacher's output): scale-free per output."""
    import torch
    from torch.utils._pytree import tree_flatten

    s_leaves, _ = tree_flatten(student_out)
    t_leaves, _ = tree_flatten(teacher_out)
    loss = 0.0
    for s, t in zip(s_leaves, t_leaves):
        if isinstance(s, torch.Tensor) and s.is_floating_point():
            loss = loss + torch.mean((s - t) ** 2) / (t.var(unbiased=False) + 1e-8)
    return loss


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
    distill = isinstance(data, DistillData)
    if distill:
        xs = tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in data.inputs)
        data.teacher.eval()
    else:
        xs = (torch.from_numpy(data.x_train),)
        y = torch.from_numpy(data.y_train)
    x = xs[0]
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
            if distill:
                batch = tuple(a[idx] for a in xs)
                with torch.no_grad():
                    target = data.teacher(*batch)
                loss = distill_loss(model(*batch), target)
            else:
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


def data_for_spec(spec, batch_size: int = 64, model=None) -> TrainData | DistillData:
    """Labelled digits for the zoo's digits classifiers; for every other model, label-free
    distillation data (its real samples when the spec has a dataset, else random example-like inputs)."""
    x = spec.example_inputs(0)[0]
    if spec.hints.get("data") == "digits" and x.ndim == 4 and x.shape[2] == x.shape[3]:
        return digits_data(int(x.shape[2]), int(x.shape[1]), batch_size)
    return distill_data(model if model is not None else spec.build(), spec.example_inputs(0), spec.dataset)
