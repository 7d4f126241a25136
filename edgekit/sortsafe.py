"""Sorting that never depends on NumPy's float16 sort.

NumPy 2.x's AVX-512 float16 sort (the ``AVX512_ICL`` path that CPUs without
AVX512-FP16 take, e.g. AMD Zen 4) can return unsorted output: ``np.sort`` is not
monotone and ``np.unique`` returns duplicates. Every float16 -> float32 cast is
exact, so sorting the float32 copy gives the right answer on every CPU at the cost
of a transient copy. Use these helpers wherever an array may be float16;
``float16_sort_selftest`` checks the installed NumPy on this CPU (``edgekit doctor``).

    >>> import numpy as np
    >>> unique(np.array([2, -1, 2, 0.5], np.float16)).tolist()
    [-1.0, 0.5, 2.0]
"""

from __future__ import annotations

import numpy as np


def _safe(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) if x.dtype == np.float16 else x


def unique(x, **kwargs):
    """``np.unique`` with float16 input sorted as float32; values come back in the input dtype."""
    x = np.asarray(x)
    if x.dtype != np.float16:
        return np.unique(x, **kwargs)
    out = np.unique(x.astype(np.float32), **kwargs)
    if isinstance(out, tuple):
        return (out[0].astype(np.float16),) + tuple(out[1:])
    return out.astype(np.float16)


def sort(x, axis: int = -1) -> np.ndarray:
    """``np.sort`` with float16 input sorted as float32 (returned as float16)."""
    x = np.asarray(x)
    return np.sort(_safe(x), axis=axis).astype(x.dtype, copy=False)


def argsort(x, axis: int = -1, kind: str | None = None) -> np.ndarray:
    """``np.argsort`` with float16 input sorted as float32."""
    return np.argsort(_safe(np.asarray(x)), axis=axis, kind=kind)


# Arrays the buggy path mis-sorts: 8 values of both signs (shift levels), repeated at random
# to sizes past the small-array insertion sort (seen: 4096+ elements; 1024 and below sort fine).
SELFTEST_SIZES = (4096, 8192, 36864)


def float16_sort_selftest(trials: int = 4) -> dict:
    """Run the installed NumPy's float16 sort and unique on arrays with 8 known distinct values.

    Returns {"affected": bool, "unique_counts": [...], "monotone": bool, "numpy": version}. Cheap
    (a few ms), deterministic for a given CPU and NumPy build."""
    levels = np.array([-4, -2, -1, -0.5, 0.5, 1, 2, 4], np.float16) * np.float16(0.0087)
    rng = np.random.default_rng(0)
    counts, monotone = [], True
    for size in SELFTEST_SIZES:
        for _ in range(trials):
            x = levels[rng.integers(0, levels.size, size)]
            counts.append(int(np.unique(x).size))
            s = np.sort(x).astype(np.float32)
            a = x[np.argsort(x)].astype(np.float32)
            monotone &= bool(np.all(np.diff(s) >= 0) and np.all(np.diff(a) >= 0))
    affected = not monotone or any(c != levels.size for c in counts)
    return {"affected": affected, "unique_counts": sorted(set(counts)), "expected_unique": int(levels.size),
            "monotone": monotone, "numpy": np.__version__}
