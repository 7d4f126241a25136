"""Train a registered classifier on digits at its input size; safetensors checkpoints, held-out accuracy.

    >>> from edgekit.model_zoo.train import TrainConfig, train
    >>> result = train("resnet_tiny", TrainConfig(epochs=1), show_progress=False)  # doctest: +SKIP
    >>> 0.0 <= result.accuracy <= 1.0  # doctest: +SKIP
    True

The recipe is the same for every family (AdamW, cosine schedule, small random
translations) so families compare on one footing; the seed fixes the data
order, the augmentation and the initialisation.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.model_zoo.data import digits
from edgekit.model_zoo.registry import get_spec


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 15
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4  # on every parameter, shift latents included (the DenseShift recipe)
    shift_frac: float = 0.0625  # random translation as a share of the input size (2 px at 32, none at 8)
    seed: int = 0

    def __post_init__(self):
        for name in ("epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise EdgekitError("bad_config", f"train {name}={getattr(self, name)} must be >= 1",
                                   fix=f"pass --{name.replace('_', '-')} 1 or more")
        if not self.lr > 0:
            raise EdgekitError("bad_config", f"train lr={self.lr} must be > 0", fix="pass a positive --lr, e.g. 2e-3")


@dataclass
class TrainResult:
    model_name: str
    accuracy: float
    seconds: float
    params: int
    checkpoint: str | None
    config: dict
    model: object = None

    def summary(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "model"}


def _shift(x, px: int, gen):
    """Random translation by up to ``px`` pixels (zero fill) per batch element."""
    import torch

    if px == 0:
        return x
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (px, px, px, px), value=float(x.min()))
    dy = torch.randint(0, 2 * px + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * px + 1, (n,), generator=gen)
    return torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])


def evaluate(model, x: np.ndarray, y: np.ndarray, batch_size: int = 256) -> float:
    import torch

    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            logits = model(torch.from_numpy(x[i:i + batch_size]))
            correct += int((logits.argmax(1).numpy() == y[i:i + batch_size]).sum())
    return correct / len(x)


def train(name: str, config: TrainConfig = TrainConfig(), *, out_dir: str | Path | None = None,
          show_progress: bool = True, **overrides) -> TrainResult:
    """Train zoo model ``name`` on the digits train split; accuracy on the held-out test split."""
    import torch

    from edgekit.model_zoo.loop import train_steps

    spec = get_spec(name, **overrides)
    example = spec.example_inputs(0)
    if len(example) != 1 or example[0].ndim != 4 or spec.task != "classification":
        raise EdgekitError("not_trainable", f"model {name!r} is not a digits classifier of the zoo",
                           fix="train a zoo classifier: see `edgekit zoo list`")
    chans, size = example[0].shape[1], example[0].shape[-1]
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    x_train, y_train = digits(size, chans, split="train")
    x_test, y_test = digits(size, chans, split="test")
    model = spec.build()
    shift_px = int(config.shift_frac * size)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps = config.epochs * -(-len(x_train) // config.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=steps, pct_start=0.15)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)

    def epoch_batches():  # a new order each epoch, drawn when the epoch starts
        for _ in range(config.epochs):
            model.train()
            order = torch.randperm(len(xt), generator=gen)
            yield from (order[i:i + config.batch_size] for i in range(0, len(xt), config.batch_size))

    batches = epoch_batches()

    def loss_fn(_step: int):
        idx = next(batches)
        return torch.nn.functional.cross_entropy(model(_shift(xt[idx], shift_px, gen)), yt[idx])

    start = time.perf_counter()
    train_steps(range(steps), loss_fn, opt, sched=sched, desc=f"train {name}", show_progress=show_progress,
                postfix_every=1)
    seconds = time.perf_counter() - start
    accuracy = evaluate(model, x_test, y_test)
    result = TrainResult(name, accuracy, seconds, sum(p.numel() for p in model.parameters()), None,
                         asdict(config) | {"overrides": overrides}, model.eval())
    if out_dir is not None:
        result.checkpoint = str(save_checkpoint(model, Path(out_dir), name, result.summary()))
    return result


def save_checkpoint(model, out_dir: Path, name: str, meta: dict) -> Path:
    """``<out_dir>/<name>.safetensors`` with the training summary as metadata (and a .json beside it)."""
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.safetensors"
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={"edgekit": json.dumps(meta)})
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2))
    return path


def load_checkpoint(name: str, path: str | Path, **overrides):
    """Build zoo model ``name`` and load a checkpoint written by ``train``."""
    from safetensors.torch import load_file

    model = get_spec(name, **overrides).build()
    model.load_state_dict(load_file(str(path)))
    return model.eval()
