"""Matching stored tensors to layer weights by value: the forms converters write."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.exporters.compression.file_ledger import _match, _rows_of
from edgekit.exporters.file_weights import Stored

RNG = np.random.default_rng(0)
W = RNG.standard_normal((16, 8, 3, 3)).astype(np.float32)
L = RNG.standard_normal((24, 40)).astype(np.float32)


def _m(w, v, dtype="float32"):
    return _match(Stored("t", v.nbytes, dtype, v.shape, v.astype(np.float32)), w, np.sort(np.abs(w.ravel())))


@pytest.mark.parametrize("stored, form", [
    (W, "W"),
    (np.transpose(W, (0, 2, 3, 1)), "W permuted (0, 2, 3, 1)"),          # TFLite / XNNPACK OHWI
    (-L, "-W"),                                                            # litert's PReLU duplicate
    (L.T.copy(), "W permuted (1, 0)"),                                     # ONNX MatMul
    (W.astype(np.float16), "W"),                                           # Core ML fp16
])
def test_layouts_signs_and_rounding(stored, form):
    w = L if stored.size == L.size else W
    assert _m(w, stored, str(stored.dtype)) == form


def test_folded_norms_match_as_channel_scales():
    bn = RNG.uniform(0.5, 2.0, 16).astype(np.float32)
    assert _m(W, np.transpose(W * bn[:, None, None, None], (0, 2, 3, 1))).startswith("W x channel scales")
    gamma = RNG.uniform(0.5, 2.0, 40).astype(np.float32)  # LayerNorm gamma folded into a Linear's inputs
    assert _m(L, L * gamma[None, :] * 0.125) == "W x channel scales"


def test_other_weights_do_not_match():
    other = RNG.standard_normal(L.shape).astype(np.float32)
    assert _m(L, other) is None
    assert _m(L, L + 0.05) is None


def test_gathered_rows_of_an_embedding():
    table = RNG.standard_normal((50, 12)).astype(np.float32)
    assert _rows_of(table, table[[3, 3, 7, 0]][None])
    assert not _rows_of(table, table[[3, 7]] + 0.1)
