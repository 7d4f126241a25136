"""The Session interface every runtime wrapper implements.

A session is one loaded artifact; each of the artifact's methods (a classifier's
``forward``; an LLM's ``prefill``, ``decode``, ``reset``; FiRST's routers and
per-layer steps) is a :class:`Method` with its own signature: ``session.method(name).run(...)``.
``session.run(...)`` is the one method of a single-method artifact.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from edgekit.artifact import MethodSpec, TensorSpec, method_specs
from edgekit.errors import EdgekitError, InputMismatch, UnknownChoice

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
        self._loaded: dict[str, Method] = {}

    @classmethod
    def probe(cls) -> dict:
        """{"available": bool, "version": str | None, "reason": str | None}."""
        raise NotImplementedError

    def run(self, inputs: Inputs) -> list[np.ndarray]:
        if len(self.methods) > 1:
            raise EdgekitError(
                "multi_method", f"{self.model_file.parent.name} has {len(self.methods)} methods "
                f"({', '.join(list(self.methods)[:6])}{', ...' if len(self.methods) > 6 else ''}); run() needs one",
                fix="call session.method(name).run(inputs); `edgekit inspect` lists the methods")
        return self._run(self._check(inputs))

    def _run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError

    @functools.cached_property
    def methods(self) -> dict[str, MethodSpec]:
        """The artifact's methods by name; a bare model file has one, ``forward``."""
        if self.manifest:
            return method_specs(self.manifest)
        return {"forward": MethodSpec("forward", tuple(self.inputs), tuple(self.outputs), self.model_file.name)}

    def method(self, name: str) -> "Method":
        """The named method, loaded on first use."""
        if name not in self._loaded:
            if name not in self.methods:
                raise UnknownChoice("method", name, list(self.methods))
            spec = self.methods[name]
            call = self._run if len(self.methods) == 1 else self._load_method(spec)
            self._loaded[name] = Method(spec, call)
        return self._loaded[name]

    def _load_method(self, spec: MethodSpec) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
        """A callable for one method of a multi-method artifact (each runtime knows where its methods live)."""
        raise EdgekitError("multi_method_unsupported", f"the {self.runtime} runtime cannot run multi-method "
                           "artifacts", fix="export to executorch, onnx or tflite")

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


class Method:
    """One method of a loaded artifact; ``run`` checks inputs against this method's own signature."""

    def __init__(self, spec: MethodSpec, call: Callable[[list[np.ndarray]], list[np.ndarray]]):
        self.spec, self.name = spec, spec.name
        self.inputs, self.outputs = list(spec.inputs), list(spec.outputs)
        self._call = call

    def run(self, inputs: Inputs) -> list[np.ndarray]:
        return self._call(self._check(inputs))

    _check = Session._check  # the session's input checks, against this method's inputs

    def __repr__(self) -> str:
        return f"Method({self.name!r}, inputs={[t.name for t in self.inputs]})"
