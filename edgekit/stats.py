"""Latency statistics that say how much they can be trusted.

A percentile is only an estimate when too few runs were timed to observe it:
p90 needs at least 64 runs and p99 at least 662 (the smallest n for which the
sample order statistic bounds the true percentile at 95% confidence with one
run beyond it). Outliers are counted (Tukey fences), never dropped.
"""

from __future__ import annotations

import numpy as np

MIN_RUNS_FOR = {"p90": 64, "p99": 662}


def summarize(times_s: list[float] | np.ndarray) -> dict:
    """Summary in milliseconds of a list of run times in seconds."""
    t = np.asarray(times_s, dtype=np.float64) * 1e3
    n = int(t.size)
    if n == 0:
        raise ValueError("no timed runs")
    q1, q3 = np.percentile(t, [25, 75])
    iqr = q3 - q1
    trim = int(n * 0.1)
    trimmed = np.sort(t)[trim: n - trim] if n - 2 * trim > 0 else t
    mean = float(t.mean())
    std = float(t.std(ddof=1)) if n > 1 else 0.0
    return {
        "runs": n,
        "min_ms": float(t.min()),
        "p50_ms": float(np.percentile(t, 50)),
        "p90_ms": float(np.percentile(t, 90)),
        "p99_ms": float(np.percentile(t, 99)),
        "max_ms": float(t.max()),
        "mean_ms": mean,
        "trimmed_mean_ms": float(trimmed.mean()),
        "std_ms": std,
        "cv": std / mean if mean > 0 else 0.0,
        "outliers": int(np.sum((t < q1 - 1.5 * iqr) | (t > q3 + 1.5 * iqr))),
        "estimates": sorted(p for p, need in MIN_RUNS_FOR.items() if n < need),
    }
