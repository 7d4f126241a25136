"""ONNX Runtime wrapper (CPU execution provider)."""

from __future__ import annotations

import numpy as np

from edgekit.artifact import TensorSpec
from edgekit.errors import MissingDependency
from edgekit.inputspec import normalize_dim
from edgekit.runtime.base import Session

_ORT_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
               "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(int16)": "int16", "tensor(bool)": "bool",
               "tensor(uint8)": "uint8", "tensor(int8)": "int8"}


def _spec(arg) -> TensorSpec:
    # ORT reports a dim_param as its name, a dim_value as an int and a dimension with neither as None
    return TensorSpec(arg.name, tuple(normalize_dim(d) for d in (arg.shape or ())), _ORT_DTYPES.get(arg.type, arg.type))


class OnnxSession(Session):
    runtime = "onnxruntime"

    @classmethod
    def probe(cls) -> dict:
        try:
            import onnxruntime
        except ImportError:
            return {"available": False, "version": None, "reason": "onnxruntime not installed (extra: device)"}
        return {"available": True, "version": onnxruntime.__version__, "reason": None}

    def __init__(self, model_file, *, manifest=None, threads=None):
        super().__init__(model_file, manifest=manifest, threads=threads)
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise MissingDependency("onnxruntime", "device", "running .onnx artifacts") from e
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self._open = lambda f: ort.InferenceSession(str(f), opts, providers=["CPUExecutionProvider"])
        self._sess = self._open(self.model_file)
        self._by_file = {self.model_file.name: self._sess}  # multi-method artifacts: one .onnx per method
        self._in_names = [i.name for i in self._sess.get_inputs()]
        self._signature_from_manifest()
        if not self.inputs:
            self.inputs = [_spec(i) for i in self._sess.get_inputs()]
            self.outputs = [_spec(o) for o in self._sess.get_outputs()]

    def _run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        return list(self._sess.run(None, dict(zip(self._in_names, arrays))))

    def _load_method(self, spec):
        file = spec.file or self.model_file.name
        if file not in self._by_file:
            self._by_file[file] = self._open(self.model_file.parent / file)
        sess = self._by_file[file]
        names = [i.name for i in sess.get_inputs()]
        return lambda arrays: list(sess.run(None, dict(zip(names, arrays))))
