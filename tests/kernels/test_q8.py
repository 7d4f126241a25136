"""Int8-activation ("q8") LUT kernels: every fast path gives the scalar reference's bits (integer sums),
the reference equals an independent NumPy model of the quantization bit for bit, and the result stays
within the stated quantization error bound of the exact fp32 product."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgekit.errors import EdgekitError
from edgekit.kernels.bitpack import pack_bits

FAST = ("avx2", "avx512")
# (N, K, group_size): partial blocks, K tails of every field width (8, 10, 16), groups splitting blocks
SHAPES = [(1, 1, 0), (37, 53, 0), (50, 70, 24), (64, 128, 16), (129, 101, 32), (45, 333, 7)]
F32 = np.float32


def _skip_unless_q8(nk, isa: str) -> None:
    if not nk.q8_isa_supported(isa):
        pytest.skip(f"no int8-activation {isa} path on this CPU (AVX-512 needs VNNI + VBMI; best: {nk.best_q8_isa()})")


def _weight(nk, rng, fmt: str, bits: int, n: int, k: int, gs: int, fp16: bool):
    """(packed weight, fp32 tables (groups, 2^bits), group of each row, indices, row scales)."""
    scale = rng.uniform(0.5, 2.0, n).astype(F32)
    idx = rng.integers(0, 2 ** bits, (n, k), dtype=np.uint8)
    if fmt == "shift":
        lv = 2.0 ** np.arange(2 ** (bits - 1))
        tables = np.concatenate([-lv[::-1], lv]).astype(F32)[None]  # the exporter's record order
        return nk.pack_shift(pack_bits(idx, bits), bits, scale, shape=(n, k)), tables, np.zeros(n, int), idx, scale
    groups = 1 if gs == 0 else -(-n // gs)
    tables = rng.standard_normal((groups, 2 ** bits)).astype(np.float16 if fp16 else F32)
    w = nk.pack_lut(pack_bits(idx, bits), tables, bits, gs, row_scale=scale, shape=(n, k))
    return w, tables.astype(F32), np.arange(n) // (gs or n), idx, scale


def _q8_model(tables, group_of, idx, scale, x, bias):
    """The documented q8 arithmetic in NumPy (float32 operations, int64 sums): returns y and the
    quantized operands."""
    amax_t = np.abs(tables).max(axis=1)
    st = np.where(amax_t > 0, amax_t / F32(127), F32(1)).astype(F32)
    tq = np.clip(np.rint(tables / st[:, None]), -127, 127).astype(np.int64)
    amax = np.abs(x).max(axis=1).astype(F32)
    inv = np.where(amax > 0, F32(127) / np.where(amax > 0, amax, F32(1)), F32(0)).astype(F32)
    xq = ((x * inv[:, None]).astype(F32) + F32(12582912)).astype(F32) - F32(12582912)
    sx = (amax / F32(127)).astype(F32)
    s = xq.astype(np.int64) @ tq[group_of[:, None], idx].T
    y = s.astype(F32) * (sx[:, None] * st[group_of][None, :]).astype(F32)
    y = (y * scale[None, :]).astype(F32)
    if bias is not None:
        y = (y + bias[None, :]).astype(F32)
    return y, st, sx


def check_fast_equals_reference(nk, make, rng, isa: str, shapes) -> int:
    """isa's q8 path equals the scalar one on the weights make(bits, n, k, gs, fp16) (2, 3, 4 bits) x
    shapes x M in {1, 3, 9} x 1 and 3 threads, with a bias; returns the number of cases."""
    cases = 0
    for bits in (2, 3, 4):
        for n, k, gs in shapes:
            w, *_ = make(bits, n, k, gs, bool(cases % 2))
            bias = rng.standard_normal(n).astype(F32)
            for m in (1, 3, 9):
                x = rng.standard_normal((m, k)).astype(F32)
                ref = nk.linear(w, x, bias, isa="scalar", activations="q8")
                for threads in (1, 3):
                    y = nk.linear(w, x, bias, threads=threads, isa=isa, activations="q8")
                    assert np.array_equal(y, ref), (bits, n, k, gs, m, threads, np.abs(y - ref).max())
                cases += 1
    return cases


@pytest.mark.parametrize("isa", FAST)
@pytest.mark.parametrize("fmt", ["lut", "shift"])
def test_q8_fast_path_equals_reference(nk, isa, fmt):
    _skip_unless_q8(nk, isa)
    rng = np.random.default_rng(17 + len(isa) + len(fmt))
    assert check_fast_equals_reference(nk, lambda *a: _weight(nk, rng, fmt, *a), rng, isa, SHAPES) == 3 * len(SHAPES) * 3


def check_reference_equals_model(nk, make, rng, shapes) -> None:
    """The scalar q8 path of the weights make(bits, n, k, gs, fp16) -> (w, tables, group_of, idx,
    scale) equals _q8_model bit for bit (and the best path on GEMV)."""
    for bits in (2, 3, 4):
        for n, k, gs in shapes:
            w, tables, group_of, idx, scale = make(bits, n, k, gs, bits == 3)
            bias = rng.standard_normal(n).astype(F32)
            x = (rng.standard_normal((5, k)) * rng.uniform(0.01, 100, (5, 1))).astype(F32)
            x[2] = 0  # an all-zero row: scale 0, y = bias
            want, *_ = _q8_model(tables, group_of, idx, scale, x, bias)
            got = nk.linear(w, x, bias, isa="scalar", activations="q8")
            assert np.array_equal(got, want), (bits, n, k, gs, np.abs(got - want).max())
            assert np.array_equal(got[2], bias)
            assert np.array_equal(nk.linear(w, x[0], bias, activations="q8"), want[0])  # GEMV, best path


def check_error_bound(nk, make, rng, rel_max: float) -> None:
    """|y_q8 - y| <= row_scale * (st / 2 * sum|x| + 127 st * sx / 2 * K) per output against the exact
    product; relative L2 error quantized (> 1e-4) and below rel_max; the exact kernels stay the default."""
    for bits in (2, 3, 4):
        n, k = 300, 1000
        w, tables, group_of, idx, scale = make(bits, n, k, 16, True)
        x = rng.standard_normal((4, k)).astype(F32)
        dense = tables[group_of[:, None], idx].astype(np.float64) * scale[:, None]
        exact = x.astype(np.float64) @ dense.T
        y = nk.linear(w, x, activations="q8")
        _, st, sx = _q8_model(tables, group_of, idx, scale, x, None)
        bound = scale[None, :] * (st[group_of][None, :] / 2 * np.abs(x).sum(1, keepdims=True)
                                  + 127 * st[group_of][None, :] * sx[:, None] / 2 * k)
        err = np.abs(y - exact)
        assert (err <= bound * 1.001 + 1e-5).all(), float((err / bound).max())
        rel = np.linalg.norm(y - exact) / np.linalg.norm(exact)
        assert 1e-4 < rel < rel_max, (bits, rel)  # quantized (not exact), and small
        assert np.abs(nk.linear(w, x) - exact).max() < 1e-4 * np.abs(exact).max()


@pytest.mark.parametrize("fmt", ["lut", "shift"])
def test_q8_reference_equals_numpy_model(nk, fmt):
    """Bit for bit: the quantization (x per row, tables per table), the int32 sum and the one rescale."""
    rng = np.random.default_rng(5)
    check_reference_equals_model(nk, lambda *a: _weight(nk, rng, fmt, *a), rng, SHAPES[1:])


def test_q8_error_within_bound_of_fp32_product(nk):
    """Table rounding plus activation rounding; on Gaussian data the relative error (L2) is ~1% at 2-4 bits."""
    rng = np.random.default_rng(9)
    check_error_bound(nk, lambda *a: _weight(nk, rng, "lut", *a), rng, 0.02)


@pytest.mark.parametrize("isa", FAST)
def test_q8_gemm_m64_gemv_tiles_and_borrowed_arrays(nk, isa):
    """GEMM at M = 64, GEMV over several 8-block tiles (one table, a table per block, blocks mixing
    two), and a borrowed (wrapped) weight ending at a guard page: same bits as the reference."""
    _skip_unless_q8(nk, isa)
    from tests.kernels.test_native import _guarded_copy

    rng = np.random.default_rng(23)
    for bits, gs in ((4, 0), (4, 16), (3, 0), (2, 128), (3, 24)):
        w, *_ = _weight(nk, rng, "lut", bits, 520, 4100, gs, fp16=True)
        for m in (64, 1):
            x = rng.standard_normal((m, 4100)).astype(F32)
            assert np.array_equal(nk.linear(w, x, threads=2, isa=isa, activations="q8"),
                                  nk.linear(w, x, isa="scalar", activations="q8"))
        a = w.arrays()
        data, keep = _guarded_copy(a["data"])
        wrapped = nk.wrap(a["format"], a["n"], a["k"], a["bits"], a["group_size"], data, a["tables"], a["row_scale"])
        assert np.array_equal(nk.linear(wrapped, x, isa=isa, activations="q8"),
                              nk.linear(w, x, isa="scalar", activations="q8"))
        del wrapped


def test_q8_refusals(nk):
    rng = np.random.default_rng(1)
    w, *_ = _weight(nk, rng, "lut", 4, 20, 40, 0, fp16=False)
    x = rng.standard_normal(40).astype(F32)
    with pytest.raises(EdgekitError) as e:
        nk.linear(w, x, activations="int4")
    assert e.value.code == "bad_activations" and "q8" in str(e.value)
    other = "neon" if nk.best_isa() != "neon" else "avx2"
    assert not nk.q8_isa_supported(other)
    with pytest.raises(EdgekitError) as e:
        nk.linear(w, x, isa=other, activations="q8")
    assert e.value.code == "isa_unavailable" and other in str(e.value)


def avx2_cases_equal_reference(make, bits_list, shapes) -> int:
    """isa='avx2' equals the scalar q8 path on the weights make(rng, bits, n, k, gs), M in {1, 5},
    2 threads; returns the number of cases (run in a child process by run_without_avx_vnni)."""
    from edgekit.kernels import _native as nk

    rng, cases = np.random.default_rng(3), 0
    for bits in bits_list:
        for n, k, gs in shapes:
            w = make(rng, bits, n, k, gs)
            for m in (1, 5):
                x = rng.standard_normal((m, k)).astype(F32)
                ref = nk.linear(w, x, isa="scalar", activations="q8")
                assert np.array_equal(nk.linear(w, x, threads=2, isa="avx2", activations="q8"), ref), (bits, n, k, m)
                cases += 1
    return cases


def run_without_avx_vnni(code: str) -> list[str]:
    """The words `code` prints, run in a child process with EDGEKIT_KERNELS_NO_AVXVNNI=1."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, EDGEKIT_KERNELS_NO_AVXVNNI="1", PYTHONPATH=str(root))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.split()


def lut_avx2_cases() -> int:
    from edgekit.kernels import _native as nk

    return avx2_cases_equal_reference(lambda rng, *a: _weight(nk, rng, "lut", *a, fp16=False)[0], (2, 3, 4), SHAPES)


def test_q8_avx2_without_avx_vnni_equals_reference(nk):
    """The AVX2 q8 path without AVX-VNNI (pmaddubsw products; EDGEKIT_KERNELS_NO_AVXVNNI=1 keeps it on
    CPUs that have AVX-VNNI, where the in-process tests above run the vpdpbusd version)."""
    _skip_unless_q8(nk, "avx2")
    out = run_without_avx_vnni("from tests.kernels.test_q8 import lut_avx2_cases; print('ok', lut_avx2_cases())")
    assert out == ["ok", str(3 * len(SHAPES) * 2)]


def q8_pass_digest() -> str:
    """The pass this process runs and a digest of q8 products over row lengths with every tail."""
    import hashlib

    from edgekit.kernels import _native as nk

    rng = np.random.default_rng(11)
    h = hashlib.sha256()
    for k in (1, 15, 16, 17, 33, 100, 4099):
        w = nk.pack_lut(rng.integers(0, 16, (20, k), np.uint8), rng.standard_normal((1, 16)).astype(F32), 4)
        x = (rng.standard_normal((3, k)) * rng.choice([1e-3, 1.0, 50.0], (3, 1))).astype(F32)
        x[0] = np.clip(x[0], -100, 100)
        x[0, 0] = 127.0  # row 0: max |x| = 127, so x is its own int8 value before rounding ...
        if k > 1:
            x[0, k // 2] = 2.5  # ... and this one is half-way: rounded to even
        h.update(nk.linear(w, x, isa="scalar", activations="q8").tobytes())
    return f"{nk.q8_pass()} {h.hexdigest()}"


@pytest.mark.parametrize("name", ["scalar", "avx2", "avx512"])
def test_activation_pass_builds_give_the_same_bits(nk, name):
    """The AVX-512, AVX2 and baseline builds of the activation pass (quantize + sum), each forced in a
    child process with EDGEKIT_KERNELS_Q8_PASS, give the same products: a CPU with less than AVX-512
    (CI may be one) runs the bits this one checks."""
    import os
    import subprocess
    import sys

    supported = {"scalar": True, "avx2": nk.isa_supported("avx2"), "avx512": nk.isa_supported("avx512")}
    if not supported[name]:
        pytest.skip(f"this CPU lacks {name} (best here: {nk.best_isa()})")
    root = Path(__file__).resolve().parents[2]
    code = "from tests.kernels.test_q8 import q8_pass_digest; print(q8_pass_digest())"
    out = {}
    for forced in (name, ""):
        env = dict(os.environ, EDGEKIT_KERNELS_Q8_PASS=forced, PYTHONPATH=str(root))
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root,
                              timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        out[forced] = done.stdout.split()
    assert out[name][0] == name                      # the forced build ran
    assert out[""][0] == nk.q8_pass()                # unforced: the widest this CPU runs
    assert out[name][1] == out[""][1]                # and the same bits
