"""Power-of-two weights as exact int8 (shared by the ONNX and TFLite exporters).

A weight whose values are all ±s·2^k with at most 7 octaves per output channel
(2- and 3-bit shift weights, e.g. DenseShift, even after BatchNorm folding) equals
int8 values ±{1, 2, 4, ..., 64} times a per-channel scale exactly, so storing it
as int8 plus a dequantize step is lossless and a quarter of the fp32 bytes.
"""

from __future__ import annotations

import numpy as np


def exact_int8(w: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(int8 values, per-channel scale along axis 0) with q * scale == w exactly, or None."""
    if w.dtype != np.float32 or w.ndim < 2 or w.size < 16:
        return None
    flat = w.reshape(w.shape[0], -1).astype(np.float64)
    peak = np.abs(flat).max(axis=1)
    if np.any(peak == 0):
        return None
    mant, _ = np.frexp(flat / peak[:, None])  # powers of two have mantissa exactly +-0.5
    if not np.all((np.abs(mant) == 0.5) | (flat == 0)):
        return None
    scale = peak / 64.0  # peak -> 64: magnitudes 64, 32, ..., 1 cover 7 octaves
    q = flat / scale[:, None]
    if np.any(np.abs(q[flat != 0]) < 1):
        return None
    q8 = q.astype(np.int8)
    if not np.array_equal(q8.astype(np.float64) * scale[:, None], flat):
        return None
    return q8.reshape(w.shape), scale.astype(np.float32)
