"""Load a user's model from ``path/to/file.py:function``.

The function takes no arguments and returns ``(module, example_inputs)``, or a
ModelSpec, or a dict with keys ``model``, ``example_inputs`` and optionally
``dataset``, ``name``, ``task`` and ``output_kinds``. Example inputs may be torch
tensors or numpy arrays. A model that says nothing about its task has task
"unknown": its outputs are not taken for class scores unless declared.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.spec import ModelSpec


def is_user_ref(ref: str) -> bool:
    return ".py:" in ref


def load_user_spec(ref: str) -> ModelSpec:
    file_part, _, func_name = ref.rpartition(":")
    path = Path(file_part)
    if not path.is_file():
        raise EdgekitError("not_found", f"model file {file_part} does not exist",
                           fix="pass path/to/file.py:function with an existing file")
    module_name = f"edgekit_user_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    fn = getattr(module, func_name, None)
    if fn is None or not callable(fn):
        choices = [n for n in dir(module) if callable(getattr(module, n)) and not n.startswith("_")]
        raise EdgekitError("unknown_function", f"{path} has no function {func_name!r}",
                           fix=f"choose one of: {', '.join(choices) or '(none)'}")
    value = fn()
    if isinstance(value, ModelSpec):
        return value
    if isinstance(value, dict):
        model, examples = value.get("model"), value.get("example_inputs")
        dataset, name = value.get("dataset"), value.get("name", func_name)
        task, kinds = value.get("task", "unknown"), dict(value.get("output_kinds") or {})
    elif isinstance(value, tuple) and len(value) == 2:
        (model, examples), dataset, name = value, None, func_name
        task, kinds = "unknown", {}
    else:
        raise EdgekitError("bad_model_function", f"{ref} returned {type(value).__name__}",
                           fix="return (module, example_inputs), a ModelSpec, or a dict with model and example_inputs")
    if not isinstance(examples, (tuple, list)):
        examples = (examples,)
    arrays = tuple(_to_numpy(x) for x in examples)
    return ModelSpec(name=name, build=lambda: model, example_inputs=lambda seed=0: arrays, dataset=dataset,
                     task=task, output_kinds=kinds)


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)
