"""ctypes binding of the native kernels (libedgekit_kernels.so, built by ``make native``); no torch.

    >>> from edgekit.kernels import _native as nk
    >>> w = nk.pack_lut(indices, tables, bits=4)          # (N, K) uint8 indices, (1, 16) fp16 table
    >>> y = nk.linear(w, x, threads=2)                    # x (K,) or (M, K) float32 -> (N,) / (M, N)

The library is looked up in ``$EDGEKIT_KERNELS_LIB`` (a path), then next to this file in
``_build/``. Formats and arithmetic are documented in ``include/edgekit_kernels.h``.
"""

from __future__ import annotations

import ctypes
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from edgekit.errors import EdgekitError

LIB_NAME = "libedgekit_kernels.so"
BUILD_COMMAND = "make native"
ISAS = {"auto": -1, "scalar": 0, "avx2": 1, "avx512": 2, "neon": 3}
FORMATS = {0: "lut", 1: "shift", 2: "sparse24_lut"}

_u8p = ctypes.POINTER(ctypes.c_uint8)
_f32p = ctypes.POINTER(ctypes.c_float)


def library_path() -> Path:
    env = os.environ.get("EDGEKIT_KERNELS_LIB")
    return Path(env) if env else Path(__file__).resolve().parent / "_build" / LIB_NAME


@lru_cache(maxsize=1)
def lib() -> ctypes.CDLL:
    """The loaded library; a missing build raises EdgekitError naming the command that builds it."""
    path = library_path()
    if not path.is_file():
        raise EdgekitError("native_kernels_missing", f"the native kernel library {path} is not built",
                           fix=f"run `{BUILD_COMMAND}` in the edgekit checkout (needs cmake, ninja and a C "
                               "compiler; nothing is downloaded)", details={"path": str(path)})
    so = ctypes.CDLL(str(path))
    vp, i, sz = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
    sigs = {
        "ek_isa_supported": (i, [i]), "ek_isa_best": (i, []), "ek_isa_name": (ctypes.c_char_p, [i]),
        "ek_kernels_last_error": (ctypes.c_char_p, []),
        "ek_pack_lut": (vp, [i, i, i, _u8p, i, vp, i, i, _f32p]),
        "ek_pack_shift": (vp, [i, i, i, _u8p, i, _f32p]),
        "ek_pack_sparse24_lut": (vp, [i, i, i, _u8p, i, vp, i, i, _f32p, _u8p]),
        "ek_matrix_free": (None, [vp]), "ek_matrix_rows": (i, [vp]), "ek_matrix_cols": (i, [vp]),
        "ek_matrix_bytes": (sz, [vp]), "ek_decode": (i, [vp, _f32p]),
        # raw addresses (ndarray.ctypes.data): ~1.6 us a call less than POINTER conversions
        "ek_linear": (i, [vp, vp, i, vp, vp, i, i]),
        "ek_linear_q8": (i, [vp, vp, i, vp, vp, i, i]),
        "ek_q8_isa_supported": (i, [i]), "ek_q8_isa_best": (i, []), "ek_q8_pass_name": (ctypes.c_char_p, []),
        "ek_matrix_info": (None, [vp, ctypes.POINTER(ctypes.c_int64)]),
        "ek_matrix_copy": (None, [vp, ctypes.c_void_p, _f32p, _f32p]),
        "ek_matrix_wrap": (vp, [i, i, i, i, i, ctypes.c_void_p, _f32p, _f32p]),
        "ek_packed_words": (ctypes.c_int64, [i, i, i, i]),
        "ek_set_default_threads": (None, [i]), "ek_default_threads": (i, []),
        "ek_set_pool_spin_us": (None, [i]), "ek_pool_spin_us": (i, []),
        "ek_stream_sum": (ctypes.c_float, [_f32p, sz, i, i]),
        "ek_fma_peak": (ctypes.c_double, [ctypes.c_long, i, i]),
        "ek_attention": (i, [_f32p, _f32p, _f32p, i, i, i, i, i, i, _f32p, i]),
    }
    for name, (res, args) in sigs.items():
        fn = getattr(so, name)
        fn.restype, fn.argtypes = res, args
    return so


def _error(what: str) -> str:
    return (lib().ek_kernels_last_error() or b"").decode() or what


def _isa(name: str) -> int:
    if name not in ISAS:
        raise EdgekitError("unknown_isa", f"ISA {name!r} unknown; choose one of {', '.join(ISAS)}",
                           fix="pass isa='auto' (the best this CPU runs) or one of the names listed")
    return ISAS[name]


def isa_supported(name: str) -> bool:
    """True when this build has the ``name`` path and this CPU runs it."""
    return bool(lib().ek_isa_supported(_isa(name)))


def best_isa() -> str:
    return lib().ek_isa_name(lib().ek_isa_best()).decode()


def q8_isa_supported(name: str) -> bool:
    """True when the int8-activation kernels have a ``name`` path here (AVX-512: with VNNI and VBMI)."""
    return bool(lib().ek_q8_isa_supported(_isa(name)))


def best_q8_isa() -> str:
    return lib().ek_isa_name(lib().ek_q8_isa_best()).decode()


def q8_pass() -> str:
    """The build of the int8 activation pass this process runs: avx512, avx2 or scalar (same bits)."""
    return lib().ek_q8_pass_name().decode()


def _ptr(a: np.ndarray | None, ctype):
    return None if a is None else a.ctypes.data_as(ctypes.POINTER(ctype))


class PackedMatrix:
    """A weight in the kernel layout (owns the native memory)."""

    def __init__(self, handle: int, fmt: str, bits: int):
        if not handle:
            raise EdgekitError("bad_packed_weight", _error("packing failed"),
                               fix="pass indices < 2**bits, tables of 2**bits entries per group, a 2:4 mask")
        self._h, self.format, self.bits = ctypes.c_void_p(handle), fmt, bits
        self.shape = (lib().ek_matrix_rows(self._h), lib().ek_matrix_cols(self._h))

    @property
    def nbytes(self) -> int:
        """Bytes one product reads of the weight: index words + tables + row scales."""
        return int(lib().ek_matrix_bytes(self._h))

    @property
    def nbytes_q8(self) -> int:
        """Bytes one int8-activation product reads: index words + int8 tables (64 B) + row scales
        (+ 2:4: the int32 correction per row)."""
        info = (ctypes.c_int64 * 8)()
        lib().ek_matrix_info(self._h, info)
        n, blocks, sparse = int(info[1]), -(-int(info[1]) // 16), int(info[0]) == 2
        block_words = int(info[5]) - (16 + 16 * blocks if sparse else 0)  # 2:4 data: + layout mark + q8_corr
        return block_words * 4 + int(info[6]) * 64 + (n * 4 if info[7] else 0) + (blocks * 64 if sparse else 0)

    def arrays(self) -> dict:
        """The packed layout as arrays (to store, e.g. in a .pte) + the scalars ``wrap`` needs."""
        info = (ctypes.c_int64 * 8)()
        lib().ek_matrix_info(self._h, info)
        fmt, n, k, bits, group, nwords, ntables, has_scale = (int(v) for v in info)
        data = np.empty(nwords, np.uint32)
        tables = np.empty((ntables, 16), np.float32)
        scale = np.empty(n, np.float32) if has_scale else None
        lib().ek_matrix_copy(self._h, data.ctypes.data, _ptr(tables, ctypes.c_float), _ptr(scale, ctypes.c_float))
        return {"format": fmt, "n": n, "k": k, "bits": bits, "group_size": group, "data": data, "tables": tables,
                "row_scale": scale}

    def dense(self) -> np.ndarray:
        out = np.empty(self.shape, np.float32)
        lib().ek_decode(self._h, _ptr(out, ctypes.c_float))
        return out

    def __del__(self):
        h = getattr(self, "_h", None)
        if h is not None and h.value:
            lib().ek_matrix_free(h)
            self._h = ctypes.c_void_p()


def _indices(indices: np.ndarray, shape: tuple[int, int] | None, bits: int) -> tuple[np.ndarray, int, int, int]:
    """(buffer, index_bits_in, N, K): one index per byte (2-D array) or the bitpack stream + shape."""
    a = np.ascontiguousarray(indices, dtype=np.uint8)
    if a.ndim == 2:
        return a, 8, a.shape[0], a.shape[1]
    if shape is None:
        raise EdgekitError("bad_indices", f"indices of shape {a.shape} need shape=(N, K) when given as a "
                           "packed stream", fix="pass a 2-D (N, K) uint8 array, or the stream and shape=(N, K)")
    n, k = shape
    need = -(-n * k * bits // 8)
    if a.size < need:
        raise EdgekitError("bad_indices", f"{a.size} bytes hold fewer than {n}x{k} indices of {bits} bits "
                           f"({need} bytes)", fix="pass the full kernels.bitpack.pack_bits stream")
    return a, bits, n, k


def _tables(tables: np.ndarray, bits: int) -> tuple[np.ndarray, int]:
    t = np.asarray(tables)
    if t.ndim == 1:
        t = t[None]
    if t.shape[-1] != 2 ** bits:
        raise EdgekitError("bad_tables", f"tables of shape {t.shape} must have {2 ** bits} entries per row for "
                           f"{bits} bits", fix="pad each table to 2**bits entries (the record's lut does)")
    if t.dtype == np.float16:
        return np.ascontiguousarray(t), 1
    return np.ascontiguousarray(t, dtype=np.float32), 0


def _check_groups(t: np.ndarray, n: int, group_size: int) -> None:
    want = 1 if group_size == 0 else -(-n // group_size)
    if t.shape[0] != want:
        raise EdgekitError("bad_tables", f"{t.shape[0]} tables for {n} rows with group_size {group_size}; "
                           f"need {want}", fix="one table per tensor (group_size=0) or per group of rows")


def _scale(row_scale, n: int) -> np.ndarray | None:
    if row_scale is None:
        return None
    s = np.ascontiguousarray(np.broadcast_to(np.asarray(row_scale, np.float32), (n,)))
    return s


def pack_lut(indices: np.ndarray, tables: np.ndarray, bits: int, group_size: int = 0,
             row_scale=None, shape: tuple[int, int] | None = None) -> PackedMatrix:
    """W[n, k] = tables[n // group_size][indices[n, k]] (* row_scale[n])."""
    idx, inbits, n, k = _indices(indices, shape, bits)
    t, fp16 = _tables(tables, bits)
    _check_groups(t, n, group_size)
    s = _scale(row_scale, n)
    h = lib().ek_pack_lut(n, k, bits, _ptr(idx, ctypes.c_uint8), inbits, t.ctypes.data, fp16, group_size,
                          _ptr(s, ctypes.c_float))
    return PackedMatrix(h, "lut", bits)


def pack_shift(codes: np.ndarray, bits: int, scale, shape: tuple[int, int] | None = None) -> PackedMatrix:
    """W = ±2^e x scale (layer scalar or per row); codes index the exporter's shift table."""
    idx, inbits, n, k = _indices(codes, shape, bits)
    s = _scale(scale, n)
    h = lib().ek_pack_shift(n, k, bits, _ptr(idx, ctypes.c_uint8), inbits, _ptr(s, ctypes.c_float))
    return PackedMatrix(h, "shift", bits)


def pack_sparse24_lut(indices: np.ndarray, tables: np.ndarray, bits: int, group_size: int = 0,
                      row_scale=None, keep: np.ndarray | None = None,
                      shape: tuple[int, int] | None = None) -> PackedMatrix:
    """2:4 sparse LUT weight; ``keep`` (N, K) bool marks kept weights (default: table value != 0)."""
    idx, inbits, n, k = _indices(indices, shape, bits)
    t, fp16 = _tables(tables, bits)
    _check_groups(t, n, group_size)
    s = _scale(row_scale, n)
    kp = None if keep is None else np.ascontiguousarray(keep, dtype=np.uint8).reshape(n, k)
    h = lib().ek_pack_sparse24_lut(n, k, bits, _ptr(idx, ctypes.c_uint8), inbits, t.ctypes.data, fp16,
                                   group_size, _ptr(s, ctypes.c_float), _ptr(kp, ctypes.c_uint8))
    return PackedMatrix(h, "sparse24_lut", bits)


def wrap(fmt: int, n: int, k: int, bits: int, group_size: int, data: np.ndarray, tables: np.ndarray,
         row_scale: np.ndarray | None = None) -> PackedMatrix:
    """A PackedMatrix over arrays from ``PackedMatrix.arrays()`` (kept alive by it, not copied)."""
    data = np.ascontiguousarray(data).view(np.uint32)
    words = int(lib().ek_packed_words(int(fmt), int(n), int(k), int(bits)))
    if data.size != words:  # the library reads `words` words: fewer would read past the array, others garbage
        name = FORMATS.get(int(fmt), str(fmt))
        raise EdgekitError(
            "packed_layout_mismatch",
            f"packed {name} data of {data.size} words does not match this kernel library's {bits}-bit layout "
            f"for {n} x {k} ({words} words): it was packed by an edgekit with another layout (3-bit weights "
            "before 3.0 bits a weight, 32 columns in 3 words; 2:4 weights before 3-bit position codes)" if words > 0 else
            f"format {fmt}, bits {bits}, shape {n} x {k} is not a packed weight this library runs",
            fix="re-export the artifact (or repack the weight) with this edgekit",
            details={"words": int(data.size), "expected_words": words, "format": name, "bits": int(bits),
                     "shape": [int(n), int(k)]})
    tables = np.ascontiguousarray(tables, dtype=np.float32)
    scale = None if row_scale is None else np.ascontiguousarray(row_scale, dtype=np.float32)
    h = lib().ek_matrix_wrap(int(fmt), int(n), int(k), int(bits), int(group_size), data.ctypes.data,
                             _ptr(tables, ctypes.c_float), _ptr(scale, ctypes.c_float))
    if not h and "re-export" in _error(""):  # a size that matches but no layout mark (2:4)
        raise EdgekitError("packed_layout_mismatch", _error(""),
                           fix="re-export the artifact (or repack the weight) with this edgekit",
                           details={"format": FORMATS.get(int(fmt), str(fmt)), "shape": [int(n), int(k)]})
    m = PackedMatrix(h, FORMATS.get(int(fmt), "?"), int(bits))
    m._keep = (data, tables, scale)
    return m


def set_default_threads(threads: int) -> None:
    """Threads of ek_linear calls that pass none (the ExecuTorch ops)."""
    lib().ek_set_default_threads(int(threads))


def set_pool_spin_us(us: int) -> None:
    """How long idle pool workers spin for the next product before they sleep (default 200 us; the
    EDGEKIT_POOL_SPIN_US environment variable sets it when the pool's first worker starts)."""
    lib().ek_set_pool_spin_us(int(us))


def pool_spin_us() -> int:
    return int(lib().ek_pool_spin_us())


ACTIVATIONS = ("fp32", "q8")


def linear(w: PackedMatrix, x: np.ndarray, bias: np.ndarray | None = None, threads: int = 1,
           isa: str = "auto", out: np.ndarray | None = None, activations: str = "fp32") -> np.ndarray:
    """x (K,) or (M, K) float32 -> x W^T (+ bias): (N,) or (M, N).

    ``activations="q8"`` (opt-in, not exact; LUT, SHIFT and 2:4 weights): each row of x and each table are
    quantized to int8 with one scale, the sums run in int32 (docs/kernels.md, "int8 activations")."""
    if activations not in ACTIVATIONS:
        raise EdgekitError("bad_activations", f"activations={activations!r} is unknown; choose one of "
                           f"{', '.join(ACTIVATIONS)}", fix="pass activations='fp32' (exact, the default) or 'q8'")
    n, k = w.shape
    xa = np.ascontiguousarray(x, dtype=np.float32)
    if xa.shape[-1] != k or xa.ndim not in (1, 2):
        raise EdgekitError("bad_shape", f"x of shape {xa.shape} does not match the weight's {k} columns",
                           fix=f"pass x of shape ({k},) or (M, {k})")
    m = 1 if xa.ndim == 1 else xa.shape[0]
    shape = (m, n) if xa.ndim == 2 else (n,)
    y = out if out is not None else np.empty(shape, np.float32)
    if out is not None and (out.dtype != np.float32 or out.shape != shape or not out.flags.c_contiguous
                            or not out.flags.writeable):
        raise EdgekitError("bad_shape", f"out of {out.dtype} {out.shape} cannot hold the result",
                           fix=f"pass a writable C-contiguous float32 array of shape {shape} (or no out)")
    b = None if bias is None else np.ascontiguousarray(bias, dtype=np.float32)
    if b is not None and b.shape != (n,):
        raise EdgekitError("bad_shape", f"bias of shape {b.shape} must be ({n},)", fix=f"pass {n} values")
    fn = lib().ek_linear if activations == "fp32" else lib().ek_linear_q8
    rc = fn(w._h, xa.ctypes.data, m, None if b is None else b.ctypes.data, y.ctypes.data, int(threads), _isa(isa))
    if rc:
        raise EdgekitError("isa_unavailable" if rc == 3 else "kernel_failed", _error(f"ek_linear failed ({rc})"),
                           fix="pass isa='auto' or one that isa_supported() (q8: q8_isa_supported()) reports")
    return y


def attention(q: np.ndarray, k_cache: np.ndarray, v_cache: np.ndarray, start: int, t: int,
              isa: str = "auto") -> np.ndarray:
    """Causal attention of t new tokens over a KV cache, reading only positions 0 .. start + t - 1.

    q (kv, rep * t, hd): query head i of kv group g in rows i*t .. i*t+t-1; caches (kv, S, hd), already
    holding the new tokens at start .. start+t-1 -> (kv, rep * t, hd) (``ek_attention``)."""
    qa, ka, va = (np.ascontiguousarray(a, dtype=np.float32) for a in (q, k_cache, v_cache))
    if qa.ndim != 3 or ka.ndim != 3 or ka.shape != va.shape or ka.shape[0] != qa.shape[0] or ka.shape[2] != qa.shape[2]:
        raise EdgekitError("bad_shape", f"attention: q {qa.shape}, k_cache {ka.shape}, v_cache {va.shape} do not "
                           "match", fix="pass q (kv, rows, hd) and both caches (kv, S, hd)")
    out = np.empty_like(qa)
    kv, rows, hd = qa.shape
    rc = lib().ek_attention(_ptr(qa, ctypes.c_float), _ptr(ka, ctypes.c_float), _ptr(va, ctypes.c_float), kv, rows,
                            int(t), ka.shape[1], hd, int(start), _ptr(out, ctypes.c_float), _isa(isa))
    if rc:
        raise EdgekitError("isa_unavailable" if rc == 3 else "bad_shape", _error(f"ek_attention failed ({rc})"),
                           fix="rows must be a multiple of t and start + t <= S; isa one that isa_supported() reports")
    return out


def stream_sum(a: np.ndarray, threads: int = 1, isa: str = "auto") -> float:
    """Sum of a float32 array, read once (the bandwidth probe)."""
    arr = np.ascontiguousarray(a, dtype=np.float32).reshape(-1)
    return float(lib().ek_stream_sum(_ptr(arr, ctypes.c_float), arr.size, int(threads), _isa(isa)))


def fma_peak(iters: int, threads: int = 1, isa: str = "auto") -> float:
    """Run ``iters`` rounds of independent FMA chains per thread; returns the FLOPs done."""
    return float(lib().ek_fma_peak(int(iters), int(threads), _isa(isa)))
