"""The Session interface every runtime wrapper implements."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from edgekit.artifact import TensorSpec
from edgekit.errors import EdgekitError, InputMismatch

Inputs = Mapping[str, np.ndarray] | Sequence[np.ndarray] | np.ndarray


class Session:
    """A loaded model. ``run`` takes arrays (positional, by name, or one array)
    and returns the outputs as a list of numpy arrays in signature order."""

    runtime: str = ""

    def __init__(self, model_file: Path, *, manifest: dict | None = None, threads: int | None = None):
        self.model_file = Path(model_file)
        self.manifest = manifest
        self.threads = threads
        self.inputs: list[TensorSpec] = []
        self.outputs: list[TensorSpec] = []

    @classmethod
    def probe(cls) -> dict:
        """{"available": bool, "version": str | None, "reason": str | None}."""
        raise NotImplementedError

    def run(self, inputs: Inputs) -> list[np.ndarray]:
        return self._run(self._check(inputs))

    def _run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError

    def _signature_from_manifest(self) -> None:
        if self.manifest:
            sig = self.manifest["signature"]
            self.inputs = [TensorSpec.from_json(t) for t in sig["inputs"]]
            self.outputs = [TensorSpec.from_json(t) for t in sig["outputs"]]

    def _check(self, inputs: Inputs) -> list[np.ndarray]:
        """Order inputs by signature and check count, shape and dtype."""
        if isinstance(inputs, np.ndarray):
            inputs = [inputs]
        if isinstance(inputs, Mapping):
            unknown = set(inputs) - {s.name for s in self.inputs}
            if unknown:
                raise EdgekitError(
                    "input_unknown",
                    f"unknown input name(s) {sorted(unknown)}; the model takes {[s.name for s in self.inputs]}",
                    fix="use the input names shown by `edgekit inspect`",
                )
            missing = [s.name for s in self.inputs if s.name not in inputs]
            if missing:
                raise EdgekitError("input_missing", f"missing input(s) {missing}", fix="pass every input")
            arrays = [np.asarray(inputs[s.name]) for s in self.inputs]
        else:
            arrays = [np.asarray(a) for a in inputs]
            if len(arrays) != len(self.inputs):
                raise InputMismatch("*", f"{len(self.inputs)} inputs", f"{len(arrays)}", what="count")
        bound: dict[str, int] = {}  # a symbolic dimension has one size across all inputs of a call
        for spec, arr in zip(self.inputs, arrays):
            _check_shape(spec, tuple(arr.shape), bound)
            if str(arr.dtype) != spec.dtype:
                raise InputMismatch(spec.name, spec.dtype, str(arr.dtype), what="dtype")
        # Copy only when needed: runtimes want C order, and ExecuTorch rejects 0 strides (numpy views).
        return [a if a.flags.c_contiguous and 0 not in a.strides else a.copy(order="C") for a in arrays]


def _check_shape(spec: TensorSpec, shape: tuple[int, ...], bound: dict[str, int]) -> None:
    """Concrete dims must match, symbolic ones take any size but the same one everywhere, unknown ones any."""
    if len(shape) != len(spec.shape):
        raise InputMismatch(spec.name, spec.shape, shape, why=f"rank {len(spec.shape)}, given {len(shape)}")
    for axis, (want, got) in enumerate(zip(spec.shape, shape)):
        if isinstance(want, int) and want != got:
            raise InputMismatch(spec.name, spec.shape, shape, why=f"dimension {axis} must be {want}")
        if isinstance(want, str):
            if bound.setdefault(want, got) != got:
                raise InputMismatch(spec.name, spec.shape, shape,
                                    why=f"dimension {axis} '{want}' is {bound[want]} elsewhere in this call")
