"""ExecuTorch wrapper through the `executorch.runtime` Python API.

The Python bindings of executorch import torch; on a phone the same .pte runs
in the native ExecuTorch runtime. The XNNPACK thread pool is sized before the
program loads: it cannot be resized safely afterwards (one process per thread count).
"""

from __future__ import annotations

import numpy as np

from edgekit.artifact import TensorSpec, method_specs
from edgekit.errors import MissingDependency
from edgekit.runtime.base import Session

_ET_DTYPES = {"Float": "float32", "Half": "float16", "Long": "int64", "Int": "int32", "Bool": "bool",
              "Byte": "uint8", "Char": "int8",
              # some executorch builds report the ScalarType as its number
              "0": "uint8", "1": "int8", "2": "int16", "3": "int32", "4": "int64", "5": "float16", "6": "float32",
              "7": "float64", "11": "bool"}


class ExecuTorchSession(Session):
    runtime = "executorch"

    @classmethod
    def probe(cls) -> dict:
        import importlib.util
        import importlib.metadata as md
        if importlib.util.find_spec("executorch") is None:
            return {"available": False, "version": None, "reason": "executorch not installed (extra: export)"}
        return {"available": True, "version": md.version("executorch"), "reason": None}

    def __init__(self, model_file, *, manifest=None, threads=None, method: str = "forward"):
        super().__init__(model_file, manifest=manifest, threads=threads)
        try:
            from executorch.extension.pybindings import portable_lib
            from executorch.runtime import Runtime
            import torch
        except ImportError as e:
            raise MissingDependency("executorch", "export", "running .pte artifacts from Python") from e
        self._torch = torch
        if threads:
            portable_lib._unsafe_reset_threadpool(int(threads))
        # the kernels' pool as large as XNNPACK's (its default: all cores) unless threads are given
        pool = threads or portable_lib._threadpool_get_thread_count()
        self._edgekit_ops = _load_edgekit_kernels(self.model_file, pool)
        self._program = Runtime.get().load_program(self.model_file)
        self._signature_from_manifest()
        if self.manifest and len(method_specs(self.manifest)) > 1:  # methods load on first use (session.method)
            return
        self._method = self._program.load_method(method)
        if not self.inputs:
            meta = self._method.metadata
            self.inputs = [_spec(f"input_{i}", meta.input_tensor_meta(i)) for i in range(meta.num_inputs())]
            self.outputs = [_spec(f"output_{i}", meta.output_tensor_meta(i)) for i in range(meta.num_outputs())]

    def _run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        return self._execute(self._method, arrays)

    def _load_method(self, spec):
        method = self._program.load_method(spec.name)  # every method of the .pte shares its mutable buffers
        return lambda arrays: self._execute(method, arrays)

    def _execute(self, method, arrays: list[np.ndarray]) -> list[np.ndarray]:
        try:
            outs = method.execute([self._torch.from_numpy(a) for a in arrays])
        except RuntimeError as e:
            if self._edgekit_ops:
                _raise_edgekit_op_error(self.model_file, e)
            raise
        return [o.detach().numpy().copy() if hasattr(o, "numpy") else np.asarray(o) for o in outs]


def _load_edgekit_kernels(model_file, threads) -> bool:
    """Programs exported with --executorch-kernels edgekit call edgekit:: ops: register their
    kernels (libedgekit_executorch_ops.so) before loading, and size their thread pool. Returns
    whether the program calls them."""
    import mmap

    with open(model_file, "rb") as f:
        try:
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:  # no copy of a large program
                if mm.find(b"edgekit::") < 0:
                    return False
        except ValueError:  # empty file: the runtime reports it
            return False
    from edgekit.kernels import _native
    from edgekit.kernels.executorch_ops import load_runtime_kernels

    load_runtime_kernels()
    _native.set_default_threads(int(threads))
    return True


def _raise_edgekit_op_error(model_file, error: RuntimeError) -> None:
    """ExecuTorch reports a failed edgekit op as a bare error code: raise the op's own message."""
    from edgekit.errors import EdgekitError
    from edgekit.kernels.executorch_ops import take_op_error

    message = take_op_error()
    if not message:
        return
    old = "re-export" in message
    raise EdgekitError(
        "packed_layout_mismatch" if old else "edgekit_op_failed", f"{model_file}: {message}",
        fix="re-export the artifact with this edgekit (`edgekit export` / `edgekit export-llm`)" if old
        else "check the inputs against the artifact's manifest (shapes, dtypes, positions below max_seq_len)",
        details={"runtime_error": str(error)}) from error


def _spec(name: str, info) -> TensorSpec:
    dtype = str(info.dtype()).split(".")[-1]
    return TensorSpec(name, tuple(info.sizes()), _ET_DTYPES.get(dtype, dtype.lower()))
