"""Session over the edgekit_runtime C library (``edgekit.runtime.native``): .pte without torch, .tflite optionally.

``edgekit.runtime.load`` uses it for a .pte when ExecuTorch's Python bindings cannot be imported (no torch),
or always with ``EDGEKIT_PTE_BACKEND=native``; for a .tflite with ``EDGEKIT_TFLITE_BACKEND=native``.
``EDGEKIT_VERIFY_CHECKSUMS=0`` skips the sha256 check of the artifact's files on load.
"""

from __future__ import annotations

import os

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.runtime.base import Session


class NativeSession(Session):
    runtime = "edgekit_runtime"

    @classmethod
    def probe(cls) -> dict:
        from edgekit.runtime import native

        path = native.library_path()
        if not path.is_file():
            return {"available": False, "version": None, "reason": f"{path.name} not built (run `make native`)"}
        return {"available": True, "version": native.version(), "reason": None}

    def __init__(self, model_file, *, manifest=None, threads=None):
        super().__init__(model_file, manifest=manifest, threads=threads)
        if not manifest:
            raise EdgekitError("native_needs_artifact", f"{model_file} has no manifest.json beside it; the native "
                               "runtime opens artifact directories", fix="pass the directory `edgekit export` wrote")
        from edgekit.runtime.native import NativeArtifact

        verify = os.environ.get("EDGEKIT_VERIFY_CHECKSUMS", "1") != "0"
        self._art = NativeArtifact(self.model_file.parent, threads=threads, verify_checksums=verify)
        self._signature_from_manifest()

    def _run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        return self._art.run(next(iter(self.methods)), arrays)

    def _load_method(self, spec):
        return lambda arrays: self._art.run(spec.name, arrays)

    def close(self) -> None:
        self._art.close()
