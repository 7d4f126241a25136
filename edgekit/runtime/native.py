"""ctypes binding of the edgekit_runtime C library (native_runtime/, built by ``make native``).

    >>> from edgekit.runtime.native import NativeArtifact
    >>> art = NativeArtifact("out/resnet18/executorch")               # doctest: +SKIP
    >>> logits, = art.run("forward", [np.zeros((1, 3, 224, 224), np.float32)])  # doctest: +SKIP

Only numpy and the standard library: this is how a .pte runs from Python without torch.
"""

from __future__ import annotations

import ctypes
import os
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from edgekit.errors import EdgekitError

LIB_NAME = "libedgekit_runtime.so"
MAX_RANK = 8
STATUS = ("ok", "argument", "io", "manifest", "checksum", "version", "backend_unavailable", "load", "no_method",
          "input", "run", "nomem")
DTYPES = ("float32", "float16", "int64", "int32", "int8", "uint8", "bool", "float64", "int16")
_FIX = {
    "checksum": "the file changed after export: re-export the artifact or copy it again",
    "manifest": "re-export the artifact with this edgekit (`edgekit export`)",
    "version": "update edgekit (and `make native`), or re-export the artifact with this edgekit version",
    "backend_unavailable": "run `make native` in the edgekit checkout with executorch / ai-edge-litert installed",
    "load": "the model file is corrupted or from another executorch/LiteRT version: re-export it",
    "input": "pass inputs with the names, shapes and dtypes that `edgekit inspect` shows",
}


class _Tensor(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("dtype", ctypes.c_int), ("rank", ctypes.c_int32),
                ("shape", ctypes.c_int64 * MAX_RANK), ("data", ctypes.c_void_p), ("nbytes", ctypes.c_size_t)]


class _TensorInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("dtype", ctypes.c_int), ("rank", ctypes.c_int32),
                ("shape", ctypes.c_int64 * MAX_RANK)]


class _Options(ctypes.Structure):
    _fields_ = [("threads", ctypes.c_int), ("verify_checksums", ctypes.c_int)]


class NativeRuntimeError(EdgekitError):
    """A non-OK status from the C library: ``status`` is its name (``EK_ERR_CHECKSUM``, ...)."""

    def __init__(self, status: int, message: str):
        kind = STATUS[status] if 0 <= status < len(STATUS) else "unknown"
        self.status = f"EK_ERR_{kind.upper()}"
        super().__init__(f"native_{kind}", message, fix=_FIX.get(kind), details={"status": self.status})


def library_path() -> Path:
    env = os.environ.get("EDGEKIT_RUNTIME_LIB")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "native_runtime" / "_build" / LIB_NAME


@lru_cache(maxsize=1)
def lib() -> ctypes.CDLL:
    path = library_path()
    if not path.is_file():
        raise EdgekitError("native_runtime_missing", f"the native runtime library {path} is not built",
                           fix="run `make native` in the edgekit checkout (or set EDGEKIT_RUNTIME_LIB)",
                           details={"path": str(path)})
    so = ctypes.CDLL(str(path))
    so.ek_version.restype = ctypes.c_char_p
    so.ek_last_error.restype = ctypes.c_char_p
    so.ek_target.restype = ctypes.c_char_p
    so.ek_target.argtypes = [ctypes.c_void_p]
    so.ek_method_name.restype = ctypes.c_char_p
    so.ek_method_name.argtypes = [ctypes.c_void_p, ctypes.c_int]
    so.ek_method_count.argtypes = [ctypes.c_void_p]
    so.ek_open.argtypes = [ctypes.c_char_p, ctypes.POINTER(_Options), ctypes.POINTER(ctypes.c_void_p)]
    so.ek_close.argtypes = [ctypes.c_void_p]
    so.ek_close.restype = None
    so.ek_method_signature.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int),
                                       ctypes.POINTER(ctypes.POINTER(_TensorInfo)), ctypes.POINTER(ctypes.c_int),
                                       ctypes.POINTER(ctypes.POINTER(_TensorInfo))]
    so.ek_run.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(_Tensor), ctypes.c_int,
                          ctypes.POINTER(_Tensor), ctypes.c_int]
    return so


def version() -> str:
    return lib().ek_version().decode()


def _check(status: int) -> None:
    if status != 0:
        raise NativeRuntimeError(status, lib().ek_last_error().decode(errors="replace"))


def _info(t: _TensorInfo) -> dict:
    return {"name": t.name.decode(), "dtype": DTYPES[t.dtype],
            "shape": [None if t.shape[d] < 0 else int(t.shape[d]) for d in range(t.rank)]}


class NativeArtifact:
    """An artifact opened by the C library; ``run`` takes and returns numpy arrays in signature order."""

    def __init__(self, path: str | os.PathLike, *, threads: int | None = None, verify_checksums: bool = True):
        self._lib = lib()
        self._handle = ctypes.c_void_p()
        opts = _Options(int(threads or 0), int(bool(verify_checksums)))
        _check(self._lib.ek_open(os.fsencode(path), ctypes.byref(opts), ctypes.byref(self._handle)))
        self.target = self._lib.ek_target(self._handle).decode()
        self._n_outputs: dict[str, int] = {}
        self.methods = [self._lib.ek_method_name(self._handle, i).decode()
                        for i in range(self._lib.ek_method_count(self._handle))]

    def signature(self, method: str) -> tuple[list[dict], list[dict]]:
        n_in, n_out = ctypes.c_int(), ctypes.c_int()
        ins, outs = ctypes.POINTER(_TensorInfo)(), ctypes.POINTER(_TensorInfo)()
        _check(self._lib.ek_method_signature(self._handle, method.encode(), ctypes.byref(n_in), ctypes.byref(ins),
                                             ctypes.byref(n_out), ctypes.byref(outs)))
        return [_info(ins[i]) for i in range(n_in.value)], [_info(outs[i]) for i in range(n_out.value)]

    def run(self, method: str, arrays: Sequence[np.ndarray], names: Sequence[str] | None = None) -> list[np.ndarray]:
        """Runs ``method``; arrays are positional (or matched to ``names``). Outputs are copies."""
        arrays = [np.ascontiguousarray(a) for a in arrays]
        ins = (_Tensor * max(len(arrays), 1))()
        for i, a in enumerate(arrays):
            if a.dtype.name not in DTYPES:
                raise EdgekitError("native_input", f"dtype {a.dtype} is not supported by the native runtime",
                                   fix=f"use one of {', '.join(DTYPES)}")
            if a.ndim > MAX_RANK:
                raise EdgekitError("native_input", f"rank {a.ndim} > {MAX_RANK}", fix="reshape the input")
            t = ins[i]
            t.name = names[i].encode() if names else None
            t.dtype, t.rank = DTYPES.index(a.dtype.name), a.ndim
            for d, s in enumerate(a.shape):
                t.shape[d] = s
            t.data, t.nbytes = a.ctypes.data, a.nbytes
        if method not in self._n_outputs:
            self._n_outputs[method] = len(self.signature(method)[1])
        out_info = range(self._n_outputs[method])
        outs = (_Tensor * max(len(out_info), 1))()
        _check(self._lib.ek_run(self._handle, method.encode(), ins, len(arrays), outs, len(out_info)))
        result = []
        for o in outs[:len(out_info)]:
            shape = tuple(o.shape[d] for d in range(o.rank))
            buf = (ctypes.c_char * o.nbytes).from_address(o.data) if o.nbytes else b""
            result.append(np.frombuffer(buf, dtype=DTYPES[o.dtype]).reshape(shape).copy())
        return result

    def close(self) -> None:
        if getattr(self, "_handle", None):
            self._lib.ek_close(self._handle)
            self._handle = None

    def __del__(self) -> None:
        self.close()

    def __enter__(self) -> "NativeArtifact":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
