import math

import numpy as np
import pytest

from edgekit import parity


def test_identical_outputs_are_perfect():
    ref = [np.array([[1.0, 2.0, 3.0]]), np.array([[3.0, 1.0, 0.5]])]
    m = parity.compare(ref, [r.copy() for r in ref])
    assert m["max_abs_err"] == 0.0
    assert m["cosine_min"] == pytest.approx(1.0)
    assert m["psnr_db"] == math.inf
    assert m["top1"] == 1.0
    assert parity.passes(m, "fp32")[0]


def test_known_error_values():
    ref = [np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])]
    got = [np.array([[1.0, 0.1]]), np.array([[0.2, 1.0]])]
    m = parity.compare(ref, got)
    assert m["max_abs_err"] == pytest.approx(0.2)
    assert m["cosine_min"] == pytest.approx(1 / math.sqrt(1.04))
    # mse = (0.01 + 0.04) / 4; peak 1
    assert m["psnr_db"] == pytest.approx(10 * math.log10(1 / 0.0125))
    assert m["top1"] == 1.0
    ok, tol = parity.passes(m, "fp32")
    assert not ok and tol["cosine_min"] == 0.99999


def test_top1_disagreement_counts():
    ref = [np.array([[2.0, 1.0]])] * 4
    got = [np.array([[2.0, 1.0]])] * 3 + [np.array([[1.0, 2.0]])]
    assert parity.compare(ref, got)["top1"] == 0.75


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape mismatch"):
        parity.compare([np.zeros((1, 3))], [np.zeros((1, 4))])
