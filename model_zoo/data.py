"""Real data available offline: scikit-learn's digits images (1,797 8x8 grey scans)."""

from __future__ import annotations

import numpy as np

from edgekit.errors import MissingDependency


def digits(size: int = 8, channels: int = 1, split: str = "all", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Digits as float32 NCHW images resized (nearest or bilinear) to ``size``, standardised.

    split: "train" (80%), "test" (20%, held out, fixed by ``seed``) or "all".
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise MissingDependency("scikit-learn", "export", "the digits data set") from e
    data = load_digits()
    images = data.images.astype(np.float32) / 16.0
    labels = data.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(images))
    cut = int(0.8 * len(images))
    idx = {"train": order[:cut], "test": order[cut:], "all": order}[split]
    x = resize(images[idx], size)
    x = (x - 0.3) / 0.4  # roughly zero mean, unit variance over the set
    x = np.repeat(x[:, None], channels, axis=1)
    return np.ascontiguousarray(x, dtype=np.float32), labels[idx]


def resize(images: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of (N, H, W) to (N, size, size), align_corners=False."""
    n, h, w = images.shape
    if (h, w) == (size, size):
        return images
    ys = np.clip((np.arange(size) + 0.5) * h / size - 0.5, 0, h - 1)
    xs = np.clip((np.arange(size) + 0.5) * w / size - 0.5, 0, w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    wy, wx = (ys - y0)[None, :, None], (xs - x0)[None, None, :]
    top = images[:, y0][:, :, x0] * (1 - wx) + images[:, y0][:, :, x1] * wx
    bottom = images[:, y1][:, :, x0] * (1 - wx) + images[:, y1][:, :, x1] * wx
    return (top * (1 - wy) + bottom * wy).astype(np.float32)


def digits_samples(size: int, channels: int, n: int, seed: int = 0) -> tuple[np.ndarray]:
    """``n`` held-out digits as batch-1 samples, shape (n, 1, C, size, size), for parity runs."""
    x, _ = digits(size, channels, split="test", seed=seed)
    if n > len(x):
        x = np.concatenate([x] + [digits(size, channels, split="train", seed=seed)[0]])
    return (x[:n, None],)
