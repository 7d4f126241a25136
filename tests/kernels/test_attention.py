"""ek_attention: causal attention over a KV cache, reading only the positions in use (the Llama's decode and
prefill attention in .pte files exported with edgekit kernels). Every ISA path returns the scalar reference's
bits; the reference equals softmax(q k^T / sqrt(hd)) v over the unmasked positions (NumPy, float64)."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.errors import EdgekitError
from edgekit.kernels import _native as nk

ISAS = ("scalar", "avx2", "avx512", "neon")
# (kv heads, query heads per kv head, new tokens t, cache length S, head dim, start position)
SHAPES = [(1, 1, 1, 1, 1, 0), (4, 3, 1, 256, 64, 40), (4, 3, 1, 256, 64, 255), (2, 2, 5, 37, 19, 7),
          (3, 4, 3, 50, 33, 47), (1, 2, 16, 16, 80, 0), (2, 1, 4, 9, 16, 2)]


def numpy_attention(q, k, v, start, t):
    out = np.empty(q.shape, np.float64)
    for g in range(q.shape[0]):
        for r in range(q.shape[1]):
            p = start + r % t + 1  # row r sits at position start + r % t and sees 0 .. that
            s = k[g, :p].astype(np.float64) @ q[g, r] / np.sqrt(q.shape[2])
            w = np.exp(s - s.max())
            out[g, r] = (w / w.sum()) @ v[g, :p]
    return out


def inputs(kv, rep, t, s, hd, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((kv, rep * t, hd), np.float32) * 2, rng.standard_normal((kv, s, hd), np.float32) * 2,
            rng.standard_normal((kv, s, hd), np.float32))


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_every_isa_returns_the_reference_bits_and_the_reference_is_softmax_attention(shape):
    kv, rep, t, s, hd, start = shape
    q, k, v = inputs(kv, rep, t, s, hd)
    ref = nk.attention(q, k, v, start, t, isa="scalar")
    np.testing.assert_allclose(ref, numpy_attention(q, k, v, start, t), rtol=0, atol=2e-6)
    ran = ["scalar"]
    for isa in ISAS[1:]:
        if nk.isa_supported(isa):
            assert np.array_equal(nk.attention(q, k, v, start, t, isa=isa), ref), isa
            ran.append(isa)
    assert np.array_equal(nk.attention(q, k, v, start, t), ref)  # auto: the best path here
    assert len(ran) >= 1


def test_positions_beyond_the_rows_in_use_are_never_read():
    q, k, v = inputs(2, 3, 2, 20, 24)
    ref = nk.attention(q, k, v, 5, 2)
    k[:, 7:], v[:, 7:] = np.nan, np.nan  # rows 7.. are past start + t: garbage there must not matter
    assert np.array_equal(nk.attention(q, k, v, 5, 2), ref)


@pytest.mark.parametrize("start, t, rows, why", [(15, 2, 4, "start + t"), (-1, 1, 3, "start"), (0, 2, 3, "multiple")])
def test_bad_shapes_are_refused_with_the_rule(start, t, rows, why):
    q, k, v = np.zeros((2, rows, 8), np.float32), np.zeros((2, 16, 8), np.float32), np.zeros((2, 16, 8), np.float32)
    with pytest.raises(EdgekitError) as e:
        nk.attention(q, k, v, start, t)
    assert e.value.code == "bad_shape" and "start + t <= s" in str(e.value)
    with pytest.raises(EdgekitError, match="do not match"):
        nk.attention(q, k[:, :, :4], v, 0, 1)
