"""TFLite / LiteRT wrapper: ai_edge_litert, or the older tflite_runtime on devices that ship it."""

from __future__ import annotations

import numpy as np

from edgekit.artifact import TensorSpec
from edgekit.errors import MissingDependency
from edgekit.runtime.base import Session


def _interpreter_module():
    try:
        from ai_edge_litert import interpreter
        return interpreter, "ai_edge_litert"
    except ImportError:
        pass
    try:
        from tflite_runtime import interpreter
        return interpreter, "tflite_runtime"
    except ImportError:
        return None, None


class TFLiteSession(Session):
    runtime = "litert"

    @classmethod
    def probe(cls) -> dict:
        module, name = _interpreter_module()
        if module is None:
            return {"available": False, "version": None,
                    "reason": "neither ai_edge_litert nor tflite_runtime is installed (extra: device)"}
        import importlib.metadata as md
        dist = "ai-edge-litert" if name == "ai_edge_litert" else "tflite-runtime"
        return {"available": True, "version": md.version(dist), "reason": None}

    def __init__(self, model_file, *, manifest=None, threads=None):
        super().__init__(model_file, manifest=manifest, threads=threads)
        module, self.runtime = _interpreter_module()
        if module is None:
            raise MissingDependency("ai-edge-litert", "device", "running .tflite artifacts")
        self._interp = module.Interpreter(model_path=str(self.model_file), num_threads=threads or 1)
        self._interp.allocate_tensors()
        signatures = self._interp.get_signature_list()
        # litert-torch writes one signature whose inputs are args_0.. and outputs output_0..
        if signatures:
            key = next(iter(signatures))
            self._runner = self._interp.get_signature_runner(key)
            self._arg_names = signatures[key]["inputs"]
            self._out_names = signatures[key]["outputs"]
            # litert-torch narrows int64 inputs to int32: cast at the boundary, keep the model's signature
            details = self._runner.get_input_details()
            self._arg_dtypes = [details[n]["dtype"] for n in self._arg_names]
            # int8/uint8 I/O (int8 recipe, io="int8"|"uint8"): float arrays are (de)quantized at the boundary
            self._in_quant = [details[n].get("quantization", (0.0, 0)) for n in self._arg_names]
            out_details = self._runner.get_output_details()
            self._out_quant = [out_details[n].get("quantization", (0.0, 0)) for n in self._out_names]
        else:
            self._runner = None
        self._signature_from_manifest()
        if not self.inputs:
            self.inputs = [_spec(d) for d in self._interp.get_input_details()]
            self.outputs = [_spec(d) for d in self._interp.get_output_details()]

    def _load_method(self, spec):
        """A method of a multi-method artifact is one signature of the .tflite."""
        runner = self._interp.get_signature_runner(spec.name)
        sig = self._interp.get_signature_list()[spec.name]
        names, outs = sig["inputs"], sig["outputs"]
        details = runner.get_input_details()
        dtypes = [details[n]["dtype"] for n in names]  # int64 narrowed to int32, as for the one signature

        def call(arrays: list[np.ndarray]) -> list[np.ndarray]:
            result = runner(**{n: a.astype(d, copy=False) for n, a, d in zip(names, arrays, dtypes)})
            return [np.array(result[name]) for name in outs]
        return call

    def _run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        if self._runner is not None:
            result = self._runner(**{n: _to_io(a, d, q)
                                     for n, a, d, q in zip(self._arg_names, arrays, self._arg_dtypes, self._in_quant)})
            return [_from_io(np.array(result[name]), q) for name, q in zip(self._out_names, self._out_quant)]
        for detail, arr in zip(self._interp.get_input_details(), arrays):
            self._interp.set_tensor(detail["index"], arr)
        self._interp.invoke()
        return [np.array(self._interp.get_tensor(d["index"])) for d in self._interp.get_output_details()]


def _spec(detail: dict) -> TensorSpec:
    # shape_signature keeps -1 for a dynamic axis (shape shows it as 1): report it as unknown
    dims = detail.get("shape_signature", detail["shape"])
    return TensorSpec(detail["name"], tuple(None if int(s) < 0 else int(s) for s in dims),
                      np.dtype(detail["dtype"]).name)


def _to_io(a: np.ndarray, dtype, quant) -> np.ndarray:
    """Cast to the model's input type; float data into an int8/uint8 input is quantized with its scale."""
    scale, zero = quant
    if scale and np.issubdtype(np.dtype(dtype), np.integer) and np.dtype(dtype).itemsize == 1 \
            and np.issubdtype(a.dtype, np.floating):
        info = np.iinfo(dtype)
        return np.clip(np.round(a / scale) + zero, info.min, info.max).astype(dtype)
    return a.astype(dtype, copy=False)


def _from_io(y: np.ndarray, quant) -> np.ndarray:
    scale, zero = quant
    if scale and y.dtype in (np.int8, np.uint8):
        return ((y.astype(np.float32) - zero) * scale).astype(np.float32)
    return y
