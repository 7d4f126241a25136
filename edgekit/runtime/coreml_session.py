"""Core ML wrapper. Prediction needs macOS; elsewhere loading says so."""

from __future__ import annotations

import platform

import numpy as np

from edgekit.errors import EdgekitError, MissingDependency
from edgekit.runtime.base import Session


class CoreMLSession(Session):
    runtime = "coreml"

    @classmethod
    def probe(cls) -> dict:
        if platform.system() != "Darwin":
            return {"available": False, "version": None,
                    "reason": f"Core ML prediction needs macOS (this is {platform.system()})"}
        try:
            import coremltools
        except ImportError:
            return {"available": False, "version": None, "reason": "coremltools not installed (extra: export)"}
        return {"available": True, "version": coremltools.__version__, "reason": None}

    def __init__(self, model_file, *, manifest=None, threads=None):
        super().__init__(model_file, manifest=manifest, threads=threads)
        if platform.system() != "Darwin":
            raise EdgekitError(
                "coreml_needs_macos",
                f"Core ML prediction needs macOS; this machine runs {platform.system()}",
                fix="run the .mlpackage on a Mac or iPhone (e.g. through `edgekit serve` there); "
                "here use `edgekit inspect` for its structure",
            )
        try:
            import coremltools as ct
        except ImportError as e:
            raise MissingDependency("coremltools", "export", "running .mlpackage artifacts") from e
        self._model = ct.models.MLModel(str(self.model_file))
        self._signature_from_manifest()
        desc = self._model.get_spec().description
        self._in_names = [i.name for i in desc.input]
        self._out_names = [o.name for o in desc.output]

    def _run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        result = self._model.predict(dict(zip(self._in_names, arrays)))
        return [np.asarray(result[name]) for name in self._out_names]

    def _load_method(self, spec):
        """A method of a multi-method artifact is one function of the multifunction .mlpackage."""
        import coremltools as ct

        model = ct.models.MLModel(str(self.model_file), function_name=spec.name)
        names = [t.name for t in spec.inputs]
        outs = [(t.name, t.dtype) for t in spec.outputs]

        def call(arrays: list[np.ndarray]) -> list[np.ndarray]:
            # Core ML takes integer ids as int32
            res = model.predict({n: (a.astype(np.int32) if a.dtype == np.int64 else a) for n, a in zip(names, arrays)})
            return [np.asarray(res[n], dtype) for n, dtype in outs]
        return call
