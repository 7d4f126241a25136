"""The exact int8 encoding of power-of-two weights used by the ONNX exporter."""

import numpy as np

from edgekit.exporters.onnx.pow2_int8 import exact_int8


def test_shift_weights_round_trip_exactly():
    rng = np.random.default_rng(0)
    scale = rng.uniform(0.01, 2.0, size=(8, 1, 1, 1)).astype(np.float32)
    k = rng.integers(0, 4, size=(8, 4, 3, 3))                      # 3-bit: 4 magnitudes
    w = (scale * rng.choice([-1.0, 1.0], size=k.shape) * 2.0 ** -k).astype(np.float32)
    q, s = exact_int8(w)
    assert q.dtype == np.int8 and s.shape == (8,)
    np.testing.assert_array_equal(q.astype(np.float32) * s[:, None, None, None], w)


def test_other_weights_are_left_alone():
    rng = np.random.default_rng(1)
    assert exact_int8(rng.standard_normal((8, 4, 3, 3)).astype(np.float32)) is None
    k = rng.integers(0, 9, size=(8, 16))                            # 9 octaves: beyond int8
    w = (rng.choice([-1.0, 1.0], size=k.shape) * 2.0 ** -k).astype(np.float32)
    w[:, 0] = 1.0
    w[:, 1] = 2.0 ** -8
    assert exact_int8(w) is None
    assert exact_int8(np.zeros((8, 16), np.float32)) is None
