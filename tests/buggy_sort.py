"""Emulate NumPy 2.x's broken AVX-512 float16 sort on any CPU (for tests).

The buggy sort returns a permutation that is not monotone; ``np.unique`` built on it
returns duplicates (the issue's example: 14 values for 8 distinct ones). ``install``
patches ``numpy.sort``, ``numpy.argsort`` and ``numpy.unique`` so that float16 input
gets such an order: sorted, then every run of ``CHUNK`` elements reversed, which breaks
order at each boundary between equal-value runs. Other dtypes are untouched.
"""

from __future__ import annotations

import numpy as np

CHUNK = 7
_real = {"sort": np.sort, "argsort": np.argsort, "unique": np.unique}


def _buggy_order(x: np.ndarray) -> np.ndarray:
    order = _real["argsort"](x.astype(np.float32), kind="stable")
    n = order.size
    chunks = [order[i:i + CHUNK][::-1] for i in range(0, n, CHUNK)]
    return np.concatenate(chunks) if chunks else order


def buggy_sort(a, axis=-1, **kwargs):
    a = np.asarray(a)
    if a.dtype != np.float16 or a.ndim != 1:
        return _real["sort"](a, axis=axis, **kwargs)
    return a[_buggy_order(a)]


def buggy_argsort(a, axis=-1, **kwargs):
    a = np.asarray(a)
    if a.dtype != np.float16 or a.ndim != 1:
        return _real["argsort"](a, axis=axis, **kwargs)
    return _buggy_order(a)


def buggy_unique(ar, return_index=False, return_inverse=False, return_counts=False, axis=None, **kwargs):
    a = np.asarray(ar)
    column = axis == 0 and a.ndim == 2 and a.shape[1] == 1  # coremltools: unique rows of a (N, 1) array
    if a.dtype != np.float16 or not (axis is None or column):
        return _real["unique"](ar, return_index=return_index, return_inverse=return_inverse,
                               return_counts=return_counts, axis=axis, **kwargs)
    flat = a.reshape(-1)
    perm = _buggy_order(flat)
    aux = flat[perm]
    first = np.concatenate([[True], aux[1:] != aux[:-1]])  # numpy's own algorithm on the bad order
    values = aux[first]
    out = [values.reshape(-1, 1) if column else values]
    run = np.cumsum(first) - 1
    if return_index:
        out.append(perm[first])
    if return_inverse:
        inv = np.empty(flat.size, np.int64)
        inv[perm] = run
        out.append(inv.reshape(-1, 1) if column else (inv if axis is None else inv))
    if return_counts:
        out.append(np.bincount(run))
    return out[0] if len(out) == 1 else tuple(out)


def install(monkeypatch) -> None:
    monkeypatch.setattr(np, "sort", buggy_sort)
    monkeypatch.setattr(np, "argsort", buggy_argsort)
    monkeypatch.setattr(np, "unique", buggy_unique)
