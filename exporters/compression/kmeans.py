"""Weighted 1-D k-means (numpy reference): the clustering behind post-training palettization.

Like coremltools' fast mode, it clusters the distinct values weighted by their
counts, so a tensor of a million fp16 weights costs at most 65,536 points.
"""

from __future__ import annotations

import numpy as np


def kmeans1d(values: np.ndarray, k: int, *, max_iter: int = 100, tol: float = 0.0) -> np.ndarray:
    """Sorted centroids (<= k, fewer only when there are fewer distinct values) minimising the SSE."""
    x = np.asarray(values, dtype=np.float64).ravel()  # float64: never NumPy's float16 sort
    if x.size == 0:
        return np.zeros(0, dtype=np.float64)
    uniq, counts = np.unique(x, return_counts=True)
    if uniq.size <= k:
        return uniq
    w = counts.astype(np.float64)
    # init: weighted quantiles (deterministic; good for 1-D)
    cdf = np.cumsum(w) / w.sum()
    c = uniq[np.minimum(np.searchsorted(cdf, (np.arange(k) + 0.5) / k), uniq.size - 1)]
    c = np.unique(c)
    while c.size < k:  # duplicate quantiles: split the widest cluster's range
        gaps = np.diff(uniq)
        c = np.unique(np.append(c, uniq[np.argmax(gaps)] + gaps.max() / 2))
    for _ in range(max_iter):
        labels = assign(uniq, c)
        sums = np.bincount(labels, weights=w * uniq, minlength=k)
        mass = np.bincount(labels, weights=w, minlength=k)
        new = np.where(mass > 0, sums / np.maximum(mass, 1e-300), c)
        if np.max(np.abs(new - c)) <= tol:
            c = new
            break
        c = np.sort(new)
    return np.sort(c)


def assign(values: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid (centroids sorted ascending)."""
    c = np.asarray(centroids, dtype=np.float64)
    mids = (c[1:] + c[:-1]) / 2
    return np.searchsorted(mids, np.asarray(values, dtype=np.float64), side="left").astype(np.int64)
