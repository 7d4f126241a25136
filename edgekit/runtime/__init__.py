"""Torch-free runtime: ``load(path).run(inputs)`` with numpy in and out.

    >>> from edgekit import runtime
    >>> session = runtime.load("out/resnet18/onnx")          # doctest: +SKIP
    >>> logits, = session.run([np.zeros((1, 3, 224, 224), np.float32)])  # doctest: +SKIP

Each runtime wrapper imports its native library only when a model of its
format is loaded, so ``import edgekit.runtime`` needs nothing but numpy. A .pte runs
through the edgekit_runtime C library (``native_session``) when ExecuTorch's Python
bindings are missing, or with ``EDGEKIT_PTE_BACKEND=native`` (``python`` forbids it);
a .tflite with ``EDGEKIT_TFLITE_BACKEND=native``.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from edgekit.artifact import MANIFEST_NAME, MODEL_SUFFIXES, load_artifact
from edgekit.errors import EdgekitError, MissingDependency, UnknownChoice
from edgekit.runtime.base import Session

from edgekit.targets import TARGETS

RUNTIMES = {t.name: t.session for t in TARGETS}  # target -> "module:Session class"

__all__ = ["load", "Session", "RUNTIMES", "runtime_for", "available_runtimes", "available_runtimes_for"]


def _session_class(target: str) -> type[Session]:
    if target not in RUNTIMES:
        raise UnknownChoice("target", target, sorted(RUNTIMES))
    module, cls = RUNTIMES[target].split(":")
    return getattr(importlib.import_module(module), cls)


def runtime_for(path: str | os.PathLike) -> tuple[str, Path, dict | None]:
    """(target, model file, manifest or None) for an artifact dir or a bare model file."""
    p = Path(path)
    if not p.exists():
        raise EdgekitError("not_found", f"{path} does not exist", fix="check the path")
    if p.is_dir() and (p / MANIFEST_NAME).exists():
        art = load_artifact(p)
        return art.target, art.model_file, art.manifest
    if p.suffix in MODEL_SUFFIXES:
        manifest_path = p.parent / MANIFEST_NAME
        manifest = load_artifact(p.parent).manifest if manifest_path.exists() else None
        return MODEL_SUFFIXES[p.suffix], p, manifest
    raise EdgekitError(
        "unknown_format",
        f"cannot tell the format of {path}: expected an artifact directory or a file ending in "
        + ", ".join(sorted(MODEL_SUFFIXES)),
        fix="pass the directory written by `edgekit export`, or a model file with its usual suffix",
    )


def load(path: str | os.PathLike, *, threads: int | None = None) -> Session:
    """Load an artifact directory or model file and return a ready Session."""
    target, model_file, manifest = runtime_for(path)
    env = next((t.backend_env for t in TARGETS if t.name == target), None)  # EDGEKIT_PTE_BACKEND, ...
    backend = os.environ.get(env) if env else None
    if backend == "native":
        from edgekit.runtime.native_session import NativeSession
        return NativeSession(model_file, manifest=manifest, threads=threads)
    try:
        return _session_class(target)(model_file, manifest=manifest, threads=threads)
    except MissingDependency:
        # No ExecuTorch Python bindings (no torch): the edgekit_runtime C library runs the .pte when it is built.
        if target != "executorch" or backend == "python" or not manifest:
            raise
        from edgekit.runtime.native import library_path
        if not library_path().is_file():
            raise
        from edgekit.runtime.native_session import NativeSession
        return NativeSession(model_file, manifest=manifest, threads=threads)


def available_runtimes_for(target: str) -> dict:
    """Whether ``target``'s runtime can run here: {"available", "version", "reason"}."""
    return _session_class(target).probe()


def available_runtimes() -> dict[str, dict]:
    """Each runtime: whether it can run here, its version, or the reason it cannot."""
    return {name: available_runtimes_for(name) for name in RUNTIMES}
