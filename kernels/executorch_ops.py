"""ExecuTorch custom ops that run compressed Linear layers on the native kernels (needs torch).

AOT side of ``kernels/executorch/edgekit_ops.cpp``: ``torch.library`` definitions of
``edgekit::lut_linear``, ``edgekit::shift_linear`` and ``edgekit::sparse_lut_linear`` (exact, fp32
activations) and their ``_q8`` forms ``edgekit::lut_linear_q8``, ``shift_linear_q8``, ``sparse_lut_linear_q8``
(opt-in int8 activations, one scale per row: ``ek_linear_q8``), each with functional + ``.out`` variants, a Meta implementation for
export and a CPU implementation through the same C kernels via ctypes (so the torch program computes the
.pte's bits: parity and perplexity compare like with like), and ``EdgekitLinear``: the module that
replaces a compressed ``nn.Linear``, holding the packed arrays (``PackedMatrix.arrays()``) as buffers so
they are stored in the .pte at their bit width.

    y = torch.ops.edgekit.lut_linear(x, data, tables, scale, bias, bits, group_size, n, k)
"""

from __future__ import annotations

import ctypes
from functools import lru_cache
from pathlib import Path

import numpy as np

from edgekit.errors import EdgekitError

OPS = {"lut_linear": 0, "shift_linear": 1, "sparse_lut_linear": 2}  # exact: op -> ek_format
Q8_SUFFIX = "_q8"  # the int8-activation op of a format: lut_linear_q8, shift_linear_q8, sparse_lut_linear_q8
Q8_OPS = {f"{name}{Q8_SUFFIX}": fmt for name, fmt in OPS.items()}
OPS_LIB_NAME = "libedgekit_executorch_ops.so"
_SCHEMA = ("(Tensor x, Tensor data, Tensor tables, Tensor scale, Tensor bias, int bits, int group_size, "
           "int n, int k")


def ops_library_path() -> Path:
    from edgekit.kernels._native import library_path

    return library_path().parent / OPS_LIB_NAME


@lru_cache(maxsize=1)
def load_runtime_kernels() -> ctypes.CDLL:
    """Register the runtime kernels with ExecuTorch (before loading a program that uses them)."""
    path = ops_library_path()
    if not path.is_file():
        raise EdgekitError("native_kernels_missing", f"the ExecuTorch kernel library {path} is not built",
                           fix="run `make native` in the edgekit checkout with the export extra installed "
                               "(it builds against the executorch wheel's headers)", details={"path": str(path)})
    return ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)


def wrap_cache_stats() -> dict[str, int]:
    """The runtime ops' cache of wrapped weights: {"hits", "misses", "entries"} since the library loaded."""
    out = (ctypes.c_int64 * 3)()
    load_runtime_kernels().edgekit_ops_cache_stats(out)
    return {"hits": out[0], "misses": out[1], "entries": out[2]}


def take_op_error() -> str:
    """The message of the last edgekit op that failed in the ExecuTorch runtime ("" if none; cleared)."""
    fn = load_runtime_kernels().edgekit_ops_take_error
    fn.restype = ctypes.c_char_p
    return (fn() or b"").decode(errors="replace")


def _run(fmt: int, activations: str, x, data, tables, scale, bias, bits: int, group_size: int, n: int, k: int):
    import torch

    from edgekit.kernels import _native as nk

    w = nk.wrap(fmt, n, k, bits, group_size, data.detach().numpy(), tables.detach().numpy(),
                scale.detach().numpy() if scale.numel() else None)
    x2 = x.detach().reshape(-1, k).contiguous().numpy()
    y = nk.linear(w, x2, bias.detach().numpy() if bias.numel() else None, threads=0, activations=activations)
    return torch.from_numpy(y).reshape(*x.shape[:-1], n)


_ATTENTION_SCHEMA = "(Tensor q, Tensor k_cache, Tensor v_cache, Tensor start_pos, int t"


def _attention(q, k_cache, v_cache, start_pos, t: int):
    import torch

    from edgekit.kernels import _native as nk

    out = nk.attention(q.detach().numpy(), k_cache.detach().numpy(), v_cache.detach().numpy(),
                       int(start_pos.reshape(-1)[0]), t)
    return torch.from_numpy(out)


def _define_attention(lib) -> None:
    """``edgekit::attention``: causal attention over an in-place KV cache, reading only the positions in use
    (``ek_attention``; q (kv, rep*t, hd), caches (kv, S, hd), start_pos (1,) int64)."""
    lib.define(f"attention{_ATTENTION_SCHEMA}) -> Tensor")
    lib.define(f"attention.out{_ATTENTION_SCHEMA}, *, Tensor(a!) out) -> Tensor(a!)")

    def cpu_out(q, k_cache, v_cache, start_pos, t, *, out):
        return out.resize_(q.shape).copy_(_attention(q, k_cache, v_cache, start_pos, t))

    lib.impl("attention", _attention, "CPU")
    lib.impl("attention.out", cpu_out, "CPU")
    lib.impl("attention", lambda q, k_cache, v_cache, start_pos, t: q.new_empty(q.shape), "Meta")
    lib.impl("attention.out", lambda q, k_cache, v_cache, start_pos, t, *, out: out.resize_(q.shape), "Meta")


@lru_cache(maxsize=1)
def define_ops():
    """Define the ops once per process (torch.library)."""
    import torch

    lib = torch.library.Library("edgekit", "DEF")
    _define_attention(lib)
    for name, (fmt, act) in ({n: (f, "fp32") for n, f in OPS.items()} | {n: (f, "q8") for n, f in Q8_OPS.items()}).items():
        lib.define(f"{name}{_SCHEMA}) -> Tensor")
        lib.define(f"{name}.out{_SCHEMA}, *, Tensor(a!) out) -> Tensor(a!)")

        def cpu(x, data, tables, scale, bias, bits, group_size, n, k, _fmt=fmt, _act=act):
            return _run(_fmt, _act, x, data, tables, scale, bias, bits, group_size, n, k)

        def cpu_out(x, data, tables, scale, bias, bits, group_size, n, k, *, out, _fmt=fmt, _act=act):
            y = _run(_fmt, _act, x, data, tables, scale, bias, bits, group_size, n, k)
            out.resize_(y.shape).copy_(y)
            return out

        def meta(x, data, tables, scale, bias, bits, group_size, n, k):
            return x.new_empty((*x.shape[:-1], n))

        def meta_out(x, data, tables, scale, bias, bits, group_size, n, k, *, out):
            return out.resize_((*x.shape[:-1], n))

        lib.impl(name, cpu, "CPU")
        lib.impl(f"{name}.out", cpu_out, "CPU")
        lib.impl(name, meta, "Meta")
        lib.impl(f"{name}.out", meta_out, "Meta")
    return lib


@lru_cache(maxsize=1)
def _module_class():
    import torch
    from torch import nn

    class EdgekitLinear(nn.Module):
        """A compressed Linear executed by an edgekit op; the packed arrays are buffers."""

        def __init__(self, op: str, packed: dict, bias, conv1x1: bool = False):
            super().__init__()
            self.conv1x1 = conv1x1  # NCHW in and out: a Linear over channels at every pixel
            self.op, self.bits, self.group_size = op, packed["bits"], packed["group_size"]
            self.out_features, self.in_features = packed["n"], packed["k"]
            self.register_buffer("data", torch.from_numpy(packed["data"].view(np.int32).copy()))
            self.register_buffer("tables", torch.from_numpy(packed["tables"].copy()))
            scale = packed["row_scale"]
            self.register_buffer("scale", torch.from_numpy(scale.copy()) if scale is not None else torch.zeros(0))
            self.register_buffer("bias", bias.detach().clone().float() if bias is not None else torch.zeros(0))

        def forward(self, x):
            if self.conv1x1:
                n, c, h, w = x.shape
                y = self._op(x.permute(0, 2, 3, 1).reshape(n * h * w, c))
                return y.reshape(n, h, w, self.out_features).permute(0, 3, 1, 2)
            return self._op(x)

        def _op(self, x):
            return getattr(torch.ops.edgekit, self.op)(x, self.data, self.tables, self.scale, self.bias, self.bits,
                                                       self.group_size, self.out_features, self.in_features)

        def stored_bytes(self) -> int:
            return sum(int(t.numel() * t.element_size()) for t in (self.data, self.tables, self.scale))

    return EdgekitLinear


def edgekit_linear(op: str, packed: dict, bias, conv1x1: bool = False):
    define_ops()
    return _module_class()(op, packed, bias, conv1x1)


DECODE_POOLS = {"edgekit": 0, "calling": 1, "executorch": 2}


def set_decode_threads(where: str | int) -> None:
    """Where the runtime ops run decode GEMVs (batch 1): ``"edgekit"`` (0, the default) the kernels' pool with
    the session's threads (``_native.set_default_threads``), as prefill does; ``"calling"`` (1) the calling
    thread; or ``"executorch"`` (2) row blocks on ExecuTorch's threadpool, whose workers are XNNPACK's."""
    mode = DECODE_POOLS.get(where, where)
    if mode not in DECODE_POOLS.values():
        raise EdgekitError("bad_option", f"decode GEMVs on {where!r}: unknown; choose one of {', '.join(DECODE_POOLS)}",
                           fix="pass 'calling', 'edgekit' or 'executorch'")
    load_runtime_kernels().edgekit_ops_set_decode_threads(ctypes.c_int(mode))
