"""2:4-sparse + table weights with int8 activations ("q8", sparse24_lut q8): the AVX-512 path gives the
scalar reference's bits (integer sums; the AVX2 path with and without AVX-VNNI too), the reference equals the NumPy model of the documented q8
arithmetic bit for bit (the same model as the LUT q8 kernels: a dropped weight has table value 0), and
the result stays within the stated quantization error bound of the exact fp32 product."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.errors import EdgekitError
from edgekit.kernels.bitpack import pack_bits
from tests.kernels.test_native import _guarded_copy, _keep24
from tests.kernels.test_q8 import (
    _q8_model,
    _skip_unless_q8,
    avx2_cases_equal_reference,
    check_error_bound,
    check_fast_equals_reference,
    check_reference_equals_model,
    run_without_avx_vnni,
)

F32 = np.float32
# (N, K, group_size): rows not a multiple of 16, K not a multiple of 32 (a partial last chunk and a
# partial last group of 4), one row, groups splitting 16-row blocks
SHAPES = [(1, 1, 0), (37, 53, 0), (50, 70, 24), (64, 128, 16), (129, 101, 32), (45, 333, 7)]


def _sparse_weight(nk, rng, bits: int, n: int, k: int, gs: int, fp16: bool):
    """(packed 2:4 weight, fp32 tables (groups, 2^bits) with entry 0 = 0, group of each row, dense
    indices (0 where dropped), row scales)."""
    groups = 1 if gs == 0 else -(-n // gs)
    tables = rng.standard_normal((groups, 2 ** bits)).astype(np.float16 if fp16 else F32)
    tables[:, 0] = 0  # sparse palettization reserves a 0 entry
    keep = _keep24(rng, n, k)  # some groups keep only one: padded with a 0-valued code
    idx = np.where(keep, rng.integers(1, 2 ** bits, (n, k)), 0).astype(np.uint8)
    scale = rng.uniform(0.5, 2.0, n).astype(F32)
    w = nk.pack_sparse24_lut(pack_bits(idx, bits), tables, bits, gs, row_scale=scale, shape=(n, k))
    return w, tables.astype(F32), np.arange(n) // (gs or n), idx, scale


@pytest.mark.parametrize("isa", ("avx2", "avx512"))
def test_sparse_q8_fast_path_equals_reference(nk, isa):
    """4-bit codes (the SIMD tile) and 2-/3-bit codes (the reference inside the SIMD path) x 6
    shapes x M in {1, 3, 9} x 1 and 3 threads: the reference's bits."""
    _skip_unless_q8(nk, isa)
    rng = np.random.default_rng(41 + len(isa))
    cases = check_fast_equals_reference(nk, lambda *a: _sparse_weight(nk, rng, *a), rng, isa, SHAPES)
    assert cases == 3 * len(SHAPES) * 3


@pytest.mark.parametrize("isa", ("avx2", "avx512"))
def test_sparse_q8_gemm_m64_gemv_tiles_and_borrowed_arrays(nk, isa):
    """M = 64 GEMM (4-row tiles and tails), multi-tile GEMV (4 blocks a tile; one table, a
    table per block, blocks mixing two), and a borrowed (wrapped) weight ending at a guard page whose
    int8 corrections are computed from the borrowed codes: same bits as the reference."""
    _skip_unless_q8(nk, isa)
    rng = np.random.default_rng(43)
    for gs in (0, 16, 24):
        w, *_ = _sparse_weight(nk, rng, 4, 200, 1100, gs, fp16=True)  # 13 blocks: 4- and 8-block tiles + tails
        for m in (64, 1):
            x = rng.standard_normal((m, 1100)).astype(F32)
            ref = nk.linear(w, x, isa="scalar", activations="q8")
            assert np.array_equal(nk.linear(w, x, threads=2, isa=isa, activations="q8"), ref), (gs, m)
        a = w.arrays()
        data, _mapping = _guarded_copy(a["data"])
        wrapped = nk.wrap(a["format"], a["n"], a["k"], a["bits"], a["group_size"], data, a["tables"], a["row_scale"])
        for path in (isa, "scalar"):
            assert np.array_equal(nk.linear(wrapped, x, isa=path, activations="q8"),
                                  nk.linear(w, x, isa="scalar", activations="q8")), (gs, path)
        del wrapped


def test_sparse_q8_reference_equals_numpy_model(nk):
    """Bit for bit: the quantization (x per row, tables per table), the int32 sum over the kept weights
    (a dropped weight's 0 table value quantizes to 0) and the one rescale."""
    rng = np.random.default_rng(47)
    check_reference_equals_model(nk, lambda *a: _sparse_weight(nk, rng, *a), rng, SHAPES[1:])


def test_sparse_q8_numpy_model_of_the_simd_formula(nk):
    """The AVX-512 formula, modelled independently: per row, sum over kept weights of
    (xq + 128) * tq, minus 128 * (sum of the row's kept tq) (a per-row constant), equals the int32 sum
    S that the scalar reference rescales; and |S| stays below 2^31 at the largest K allowed."""
    rng = np.random.default_rng(53)
    n, k = 40, 300
    w, tables, group_of, idx, scale = _sparse_weight(nk, rng, 4, n, k, 0, fp16=False)
    x = rng.standard_normal((3, k)).astype(F32)
    y, st, sx = _q8_model(tables, group_of, idx, scale, x, None)
    tq = np.clip(np.rint(tables / st[:, None]), -127, 127).astype(np.int64)[group_of[:, None], idx]
    amax = np.abs(x).max(axis=1).astype(F32)
    xq = ((x * (F32(127) / amax)[:, None]).astype(F32) + F32(12582912)).astype(F32) - F32(12582912)
    xu = xq.astype(np.int64) + 128  # the unsigned operand, 1..255
    assert xu.min() >= 1 and xu.max() <= 255
    s_simd = xu @ tq.T - 128 * tq.sum(axis=1)[None, :]
    s = xq.astype(np.int64) @ tq.T
    assert np.array_equal(s_simd, s)
    want = (s.astype(F32) * (sx[:, None] * st[group_of][None, :]).astype(F32) * scale).astype(F32)
    assert np.array_equal(want, y)
    assert np.array_equal(nk.linear(w, x, activations="q8"), want)
    assert 66000 // 2 * 255 * 127 < 2 ** 31  # the kernels' K limit (EK_Q8_MAX_K), half of it kept


def test_sparse_q8_error_within_bound_of_fp32_product(nk):
    """|y_q8 - y| within the stated bound (table plus activation rounding) of the exact fp32 product;
    relative error quantized, not exact, ~1%."""
    rng = np.random.default_rng(59)
    check_error_bound(nk, lambda *a: _sparse_weight(nk, rng, *a), rng, 0.03)


def test_sparse_q8_refusals(nk):
    """An ISA this CPU lacks is refused naming the best one here; auto picks one."""
    rng = np.random.default_rng(61)
    w, *_ = _sparse_weight(nk, rng, 4, 20, 40, 0, fp16=False)
    x = rng.standard_normal(40).astype(F32)
    with pytest.raises(EdgekitError) as e:
        nk.linear(w, x, isa="neon", activations="q8")
    assert e.value.code == "isa_unavailable" and "neon" in str(e.value) and "2:4" in str(e.value)
    assert np.array_equal(nk.linear(w, x, activations="q8"), nk.linear(w, x, isa="scalar", activations="q8"))


def sparse_avx2_cases() -> int:
    from edgekit.kernels import _native as nk

    return avx2_cases_equal_reference(lambda rng, *a: _sparse_weight(nk, rng, *a, fp16=False)[0], (4, 3),
                                      SHAPES + [(200, 1100, 24)])


def test_sparse_q8_avx2_without_avx_vnni_equals_reference(nk):
    """The AVX2 2:4 q8 path without AVX-VNNI (pmaddubsw products; EDGEKIT_KERNELS_NO_AVXVNNI=1 keeps it
    on CPUs that have AVX-VNNI, where the in-process tests run the vpdpbusd version)."""
    _skip_unless_q8(nk, "avx2")
    out = run_without_avx_vnni("from tests.kernels.test_sparse_q8 import sparse_avx2_cases; print('ok', sparse_avx2_cases())")
    assert out == ["ok", str(2 * (len(SHAPES) + 1) * 2)]
