"""The 3-bit LUT / SHIFT layout of 32 columns in 3 words (3.0 bits a weight, kernels/src/matrix.h):
the packed words decode in NumPy to the input indices, sizes follow 3 * ceil(K / 32) words a row, every
fast path (fp32 and int8 activations) gives the scalar reference's bits on the shapes that exercise
the 32-column units (K < 32, K not a multiple of 32, partial blocks, grouped tables), and data packed
with the former 3.2-bit layout is refused with the fix (re-export), not read as garbage."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.errors import EdgekitError
from edgekit.kernels.bitpack import pack_bits
from tests.kernels.test_q8 import _skip_unless_q8, _weight, avx2_cases_equal_reference, run_without_avx_vnni

FAST = ("avx2", "avx512")
# (N, K, group_size): K below one unit, at and around unit multiples, odd; rows not a multiple of 16;
# groups of rows splitting blocks (7, 24) and one table per block (16)
SHAPES = [(1, 5, 0), (17, 31, 0), (33, 32, 7), (16, 33, 16), (45, 95, 24), (9, 97, 0), (64, 130, 16), (3, 64, 0)]


def _decode3(data: np.ndarray, n: int, k: int) -> np.ndarray:
    """The indices of a 3-bit LUT / SHIFT weight, decoded from its packed words by the documented layout."""
    units = -(-k // 32)
    d = data.view(np.uint32).reshape(-1, units, 3, 16).astype(np.uint64)  # block, unit, word, row of block
    w0, w1, w2 = d[:, :, 0], d[:, :, 1], d[:, :, 2]
    tail = ((w0 >> 6) & 0x03030303) | ((w2 >> 4) & 0x0C0C0C0C) | ((w1 >> 2) & 0x30303030)
    words = np.stack([w0, w1, w2, tail], axis=2)                            # block, unit, word i, row
    cols = np.empty(d.shape[:2] + (32, 16), np.uint64)
    for c in range(32):                                                      # column 8i + 4h + b
        i, h, b = c // 8, (c % 8) // 4, c % 4
        cols[:, :, c] = (words[:, :, i] >> np.uint64(8 * b + 3 * h)) & 7
    full = cols.transpose(0, 3, 1, 2).reshape(-1, units * 32)                # rows, columns (padded)
    assert not full[n:].any() and not full[:, k:].any(), "padding indices must be 0"
    return full[:n, :k].astype(np.uint8)


def test_packed_words_decode_to_the_indices(nk):
    rng = np.random.default_rng(5)
    for n, k, _ in SHAPES + [(100, 4096, 0)]:
        idx = rng.integers(0, 8, (n, k), dtype=np.uint8)
        for w in (nk.pack_lut(pack_bits(idx, 3), rng.standard_normal((1, 8)).astype(np.float32), 3, shape=(n, k)),
                  nk.pack_shift(idx, 3, 0.5)):
            assert np.array_equal(_decode3(w.arrays()["data"], n, k), idx), (n, k)


def test_sizes_are_3_bits_a_weight(nk):
    """3 * ceil(K / 32) words a row (2 and 4 bits keep their words; 2:4 sizes: test_sparse_layout.py)."""
    lib = nk.lib()
    for k in (1, 31, 32, 33, 64, 100, 4096, 11008):
        blocks = 1  # 16 rows
        assert lib.ek_packed_words(0, 16, k, 3) == blocks * 16 * 3 * -(-k // 32)
        assert lib.ek_packed_words(1, 16, k, 3) == blocks * 16 * 3 * -(-k // 32)
        assert lib.ek_packed_words(0, 16, k, 4) == 16 * -(-k // 8)
        assert lib.ek_packed_words(0, 16, k, 2) == 16 * -(-k // 16)
    assert lib.ek_packed_words(0, 16, 64, 5) == -1
    w = nk.pack_lut(np.zeros((4096, 4096), np.uint8), np.zeros((1, 8), np.float32), 3)
    index_bytes = w.nbytes - 8 * 4  # one table of 8 fp32 entries
    assert index_bytes * 8 / (4096 * 4096) == 3.0
    assert w.arrays()["data"].size == lib.ek_packed_words(0, 4096, 4096, 3)


@pytest.mark.parametrize("isa", FAST)
def test_fast_paths_equal_reference_on_unit_edges(nk, isa):
    if not nk.isa_supported(isa):
        pytest.skip(f"this CPU lacks the {isa} path (best here: {nk.best_isa()})")
    rng = np.random.default_rng(23 + len(isa))
    cases = 0
    for fmt in ("lut", "shift"):
        for n, k, gs in SHAPES:
            w, *_ = _weight(nk, rng, fmt, 3, n, k, gs, fp16=bool(cases % 2))
            bias = rng.standard_normal(n).astype(np.float32)
            for m in (1, 3, 9, 64):
                x = rng.standard_normal((m, k)).astype(np.float32)
                ref = nk.linear(w, x, bias, isa="scalar")
                for threads in (1, 3):
                    assert np.array_equal(nk.linear(w, x, bias, threads=threads, isa=isa), ref), (fmt, n, k, gs, m)
                cases += 1
    assert cases == 2 * len(SHAPES) * 4


@pytest.mark.parametrize("isa", FAST)
def test_q8_fast_paths_equal_reference_on_unit_edges(nk, isa):
    _skip_unless_q8(nk, isa)
    rng = np.random.default_rng(29 + len(isa))
    cases = 0
    for fmt in ("lut", "shift"):
        for n, k, gs in SHAPES:
            w, *_ = _weight(nk, rng, fmt, 3, n, k, gs, fp16=bool(cases % 2))
            for m in (1, 3, 9, 64):
                x = rng.standard_normal((m, k)).astype(np.float32)
                ref = nk.linear(w, x, isa="scalar", activations="q8")
                for threads in (1, 3):
                    y = nk.linear(w, x, threads=threads, isa=isa, activations="q8")
                    assert np.array_equal(y, ref), (fmt, n, k, gs, m, threads)
                cases += 1
    assert cases == 2 * len(SHAPES) * 4


def lut3_avx2_cases() -> int:
    from edgekit.kernels import _native as nk

    return avx2_cases_equal_reference(lambda rng, *a: _weight(nk, rng, "lut", *a, fp16=True)[0], (3,), SHAPES)


def test_q8_avx2_without_avx_vnni_on_unit_edges(nk):
    _skip_unless_q8(nk, "avx2")
    out = run_without_avx_vnni("from tests.kernels.test_lut3_layout import lut3_avx2_cases; "
                               "print('ok', lut3_avx2_cases())")
    assert out == ["ok", str(len(SHAPES) * 2)]


def _old_layout_words(n: int, k: int) -> int:
    """uint32 words of a 3-bit weight in the former layout (10 indices a word, 3.2 bits a weight)."""
    return -(-n // 16) * 16 * -(-k // 10)


def test_wrap_refuses_data_of_the_former_layout(nk):
    rng = np.random.default_rng(2)
    n, k = 40, 64
    w, *_ = _weight(nk, rng, "lut", 3, n, k, 0, fp16=False)
    a = w.arrays()
    old = np.zeros(_old_layout_words(n, k), np.uint32)
    assert old.size != a["data"].size
    with pytest.raises(EdgekitError, match="another layout") as err:
        nk.wrap(a["format"], n, k, 3, 0, old, a["tables"], a["row_scale"])
    assert err.value.code == "packed_layout_mismatch" and "re-export" in err.value.fix
    assert err.value.details == {"words": old.size, "expected_words": a["data"].size, "format": "lut", "bits": 3,
                                 "shape": [n, k]}
    with pytest.raises(EdgekitError, match="another layout"):  # too many words: refused too
        nk.wrap(a["format"], n, k, 3, 0, np.concatenate([a["data"], a["data"][:16]]), a["tables"], a["row_scale"])
    ok = nk.wrap(a["format"], n, k, 3, 0, a["data"], a["tables"], a["row_scale"])
    x = rng.standard_normal(k).astype(np.float32)
    assert np.array_equal(nk.linear(ok, x), nk.linear(w, x))
