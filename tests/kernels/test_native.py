"""Native kernels: every fast path equals the scalar reference bit for bit, and the reference
equals a NumPy decode of the exporter's packed format (within fp32 rounding of a reordered sum)."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.errors import EdgekitError
from edgekit.kernels.bitpack import pack_bits, unpack_bits

FAST = ("avx2", "avx512")
# (N, K, group_size): partial blocks, K tails of every field width, groups that split 16-row blocks
SHAPES = [(1, 1, 0), (37, 53, 0), (50, 70, 24), (64, 128, 16), (129, 101, 32), (45, 333, 7)]


def _skip_unless(nk, isa: str) -> None:
    if not nk.isa_supported(isa):
        pytest.skip(f"this CPU lacks the {isa} path (best here: {nk.best_isa()})")


def _keep24(rng, n: int, k: int) -> np.ndarray:
    keep = np.zeros((n, k), bool)
    for g in range(0, k, 4):
        width = min(4, k - g)
        for r in range(n):
            count = min(width, 2 if rng.random() > 0.25 else 1)  # some groups keep only one
            keep[r, g + rng.choice(width, count, replace=False)] = True
    return keep


def _weights(nk, rng, fmt: str, bits: int, n: int, k: int, gs: int, fp16: bool):
    """(packed weight, dense fp32 W from a NumPy decode of the same inputs)."""
    groups = 1 if gs == 0 else -(-n // gs)
    group_of = np.arange(n) // (gs or n)
    scale = rng.uniform(0.5, 2.0, n).astype(np.float32)
    if fmt == "shift":
        codes = rng.integers(0, 2 ** bits, (n, k), dtype=np.uint8)
        lv = 2.0 ** np.arange(2 ** (bits - 1))
        table = np.concatenate([-lv[::-1], lv]).astype(np.float32)  # the exporter's record order
        return nk.pack_shift(pack_bits(codes, bits), bits, scale, shape=(n, k)), table[codes] * scale[:, None]
    tables = rng.standard_normal((groups, 2 ** bits)).astype(np.float16 if fp16 else np.float32)
    idx = rng.integers(0, 2 ** bits, (n, k), dtype=np.uint8)
    if fmt == "sparse24_lut":
        tables[:, 0] = 0  # sparse palettization reserves a 0 entry
        keep = _keep24(rng, n, k)
        idx = np.where(keep, np.maximum(idx, 1), 0).astype(np.uint8)
        w = nk.pack_sparse24_lut(pack_bits(idx, bits), tables, bits, gs, row_scale=scale, shape=(n, k))
    else:
        w = nk.pack_lut(pack_bits(idx, bits), tables, bits, gs, row_scale=scale, shape=(n, k))
    dense = tables.astype(np.float32)[group_of[:, None], idx] * scale[:, None]
    return w, dense


@pytest.mark.parametrize("isa", FAST)
@pytest.mark.parametrize("fmt", ["lut", "shift", "sparse24_lut"])
def test_fast_path_equals_reference(nk, isa, fmt):
    _skip_unless(nk, isa)
    rng = np.random.default_rng(hash((isa, fmt)) % 2 ** 32)
    cases = 0
    for bits in (2, 3, 4):
        for n, k, gs in SHAPES:
            w, _ = _weights(nk, rng, fmt, bits, n, k, gs, fp16=bool(cases % 2))
            bias = rng.standard_normal(n).astype(np.float32)
            for m in (1, 3, 9, 17):
                x = rng.standard_normal((m, k)).astype(np.float32)
                ref = nk.linear(w, x, bias, isa="scalar")
                for threads in (1, 2, 3):
                    y = nk.linear(w, x, bias, threads=threads, isa=isa)
                    assert np.array_equal(y, ref), (bits, n, k, gs, m, threads, np.abs(y - ref).max())
                cases += 1
    assert cases == 3 * len(SHAPES) * 4


@pytest.mark.parametrize("isa", FAST)
def test_gemm_m64_and_gemv_large(nk, isa):
    """The tuned ranges: GEMM at M = 64 and a GEMV with several 8-block tiles per thread."""
    _skip_unless(nk, isa)
    rng = np.random.default_rng(7)
    # group sizes: one table; a table per block (8-block tiles of 8 tables); 24 rows (blocks mixing two)
    for fmt, bits, gs in (("lut", 4, 0), ("sparse24_lut", 4, 0), ("lut", 4, 16), ("sparse24_lut", 4, 16),
                          ("lut", 3, 0), ("lut", 2, 128), ("lut", 4, 24)):
        w, dense = _weights(nk, rng, fmt, bits, 520, 260, gs, fp16=True)
        for m in (64, 1):
            x = rng.standard_normal((m, 260)).astype(np.float32)
            y = nk.linear(w, x, threads=2, isa=isa)
            assert np.array_equal(y, nk.linear(w, x, isa="scalar"))
            np.testing.assert_allclose(y, x @ dense.T, rtol=1e-4, atol=1e-4)


def _guarded_copy(a: np.ndarray):
    """A copy of ``a`` whose last byte is the last readable byte before an unmapped page (so a
    kernel reading past a borrowed array faults), and the mapping keeping it alive."""
    import ctypes
    import mmap

    page = mmap.PAGESIZE
    size = -(-a.nbytes // page) * page
    mem = mmap.mmap(-1, size + page, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    base = ctypes.addressof(ctypes.c_char.from_buffer(mem))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    assert libc.mprotect(base + size, page, 0) == 0, "mprotect failed"  # PROT_NONE guard page
    out = np.frombuffer(mem, dtype=a.dtype, count=a.size, offset=size - a.nbytes)
    out[:] = a.ravel()
    return out, mem


@pytest.mark.parametrize("isa", ("scalar",) + FAST)
def test_borrowed_arrays_are_not_read_past_their_end(nk, isa):
    """ek_matrix_wrap borrows arrays (a .pte's buffers) with no padding: the GEMV must not read past
    the data's end (the 4-bit paths load word rows at byte offsets 1..3), checked with a guard page."""
    _skip_unless(nk, isa) if isa != "scalar" else None
    rng = np.random.default_rng(11)
    for fmt in ("lut", "sparse24_lut"):
        for bits in (2, 3, 4):
            w, _ = _weights(nk, rng, fmt, bits, 150, 200, 0, fp16=False)
            a = w.arrays()
            data, keep = _guarded_copy(a["data"])
            wrapped = nk.wrap(a["format"], a["n"], a["k"], a["bits"], a["group_size"], data, a["tables"], a["row_scale"])
            x = rng.standard_normal(200).astype(np.float32)
            assert np.array_equal(nk.linear(wrapped, x, isa=isa), nk.linear(w, x, isa="scalar"))
            del wrapped


@pytest.mark.parametrize("fmt", ["lut", "shift", "sparse24_lut"])
def test_reference_matches_numpy_decode(nk, fmt):
    """The scalar path computes x W^T for W decoded by NumPy from the exporter's bit stream:
    decode exactly, products within the rounding bound of a reordered fp32 sum."""
    rng = np.random.default_rng(3)
    for bits in (2, 3, 4):
        for n, k, gs in SHAPES:
            w, dense = _weights(nk, rng, fmt, bits, n, k, gs, fp16=True)
            assert np.array_equal(w.dense(), dense.astype(np.float32))
            x = rng.standard_normal((2, k)).astype(np.float32)
            bias = rng.standard_normal(n).astype(np.float32)
            y = nk.linear(w, x, bias, isa="scalar")
            exact = x.astype(np.float64) @ dense.T.astype(np.float64) + bias
            bound = 1e-6 * (np.abs(x) @ np.abs(dense).T + np.abs(bias)) * max(1.0, k / 64)
            assert np.all(np.abs(y - exact) <= bound), (bits, n, k, np.abs(y - exact).max())


def test_exporter_records_run_native(nk):
    """Weights made by the compression passes (k-means palettization with per-group tables and row
    scales; shift quantization) run natively and give the product of the clustered weight."""
    from edgekit.exporters.compression.palettize import palettize_array
    from edgekit.exporters.compression.shift import levels, shift_quantize

    rng = np.random.default_rng(5)
    w = rng.standard_normal((40, 96)).astype(np.float32)
    x = rng.standard_normal(96).astype(np.float32)
    clustered, tables, scale = palettize_array(w, 3, group_size=8, per_channel_scale=True)
    rows = clustered / scale[:, None]
    group = np.arange(40) // 8
    idx = np.abs(rows[:, :, None] - tables[group][:, None, :]).argmin(-1).astype(np.uint8)
    packed = nk.pack_lut(pack_bits(idx, 3), tables.astype(np.float16), 3, 8, row_scale=scale, shape=(40, 96))
    assert np.array_equal(packed.dense(), clustered)
    np.testing.assert_allclose(nk.linear(packed, x), clustered @ x, rtol=1e-5, atol=1e-5)

    q, layer_scale = shift_quantize(w, 3)
    table = np.concatenate([-levels(3)[::-1], levels(3)]) * layer_scale
    codes = np.abs(q[:, :, None] - table).argmin(-1).astype(np.uint8)
    shifted = nk.pack_shift(codes, 3, layer_scale)
    assert np.array_equal(shifted.dense(), q)
    np.testing.assert_allclose(nk.linear(shifted, x), q @ x, rtol=1e-5, atol=1e-5)
    assert np.array_equal(unpack_bits(pack_bits(codes, 3), 3, codes.size), codes.ravel())


def test_bad_inputs_name_the_value(nk):
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 16, (8, 8), dtype=np.uint8)
    with pytest.raises(EdgekitError, match="exceeds 3 bits"):
        nk.pack_lut(idx, np.zeros((1, 8), np.float32), 3)
    with pytest.raises(EdgekitError, match="bits = 5 is invalid"):
        nk.pack_lut(idx, np.zeros((1, 32), np.float32), 5)
    with pytest.raises(EdgekitError, match="need 2"):
        nk.pack_lut(idx, np.zeros((1, 16), np.float32), 4, group_size=4)
    dense_ones = np.ones((4, 8), np.uint8)
    with pytest.raises(EdgekitError, match="more than 2 of 4"):
        nk.pack_sparse24_lut(dense_ones, np.array([0, 1, 2, 3], np.float32), 2)
    w = nk.pack_lut(idx, np.arange(16, dtype=np.float32), 4)
    with pytest.raises(EdgekitError, match="does not match"):
        nk.linear(w, np.zeros(9, np.float32))
    with pytest.raises(EdgekitError, match="unknown"):
        nk.linear(w, np.zeros(8, np.float32), isa="sse")
    for isa in ("avx2", "avx512", "neon"):
        if not nk.isa_supported(isa):
            with pytest.raises(EdgekitError, match="not available"):
                nk.linear(w, np.zeros(8, np.float32), isa=isa)


def test_missing_library_names_the_build_command(nk, monkeypatch, tmp_path):
    monkeypatch.setenv("EDGEKIT_KERNELS_LIB", str(tmp_path / "nope.so"))
    nk.lib.cache_clear()
    try:
        with pytest.raises(EdgekitError, match="make native") as err:
            nk.lib()
        assert err.value.code == "native_kernels_missing"
    finally:
        monkeypatch.delenv("EDGEKIT_KERNELS_LIB")
        nk.lib.cache_clear()


def test_probes(nk):
    a = np.ones(100_003, np.float32)
    for threads in (1, 2):
        assert nk.stream_sum(a, threads) == 100_003.0
    assert nk.fma_peak(1000, 2) == 2 * (nk.fma_peak(1000, 1))
