"""What the model file itself calls its methods and tensors, and the types at its boundary.

The manifest keeps the PyTorch model's names and dtypes. The converters rename and narrow:
litert-torch writes signature inputs ``args_0..`` / outputs ``output_0..`` and takes int64 as
int32; Core ML names features after the traced graph (``x``, ``linear``), takes int64 as int32
and returns fp16 from an fp16 program. A wrapper has to use the file's names at the boundary,
so they are read from the file here. Returns None when the reader is not installed (the
README then says the names were assumed).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
from pathlib import Path

import numpy as np

from edgekit.artifact import Artifact, method_specs

log = logging.getLogger(__name__)

_COREML_DTYPES = {"fp32": "float32", "fp16": "float16", "fp64": "float64", "int32": "int32",
                  "int8": "int8", "uint8": "uint8", "float32": "float32", "float16": "float16", "int64": "int64"}


def probe(artifact: Artifact) -> dict[str, dict] | None:
    """{method: {key, input_names, input_dtypes, output_names, output_dtypes}} for .tflite and .mlpackage;
    for .pte the manifest's names are the program's (inputs are positional), so it is the identity."""
    target = artifact.target
    methods = method_specs(artifact.manifest)
    if target == "executorch":
        return {name: {"key": name} for name in methods}
    if target == "tflite":
        return _probe_tflite(artifact.model_file, methods) if importlib.util.find_spec("ai_edge_litert") else None
    if target == "coreml":
        return _probe_coreml(artifact.model_file, methods) if importlib.util.find_spec("coremltools") else None
    return None


def _probe_tflite(path: Path, methods: dict) -> dict[str, dict]:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    sigs = interp.get_signature_list()
    found = {}
    fallback = None
    for name, spec in methods.items():
        # one method: the file's only signature (serving_default); several: one signature per method name
        key = name if name in sigs else next(iter(sigs)) if len(methods) == 1 and sigs else None
        if key is None:  # the file lacks this signature: the converter's conventions, as when unreadable
            fallback = fallback or assumed_methods("tflite", methods)
            found[name] = fallback[name]
            continue
        runner = interp.get_signature_runner(key)
        ins, outs = runner.get_input_details(), runner.get_output_details()
        in_names, out_names = sigs[key]["inputs"], sigs[key]["outputs"]
        found[name] = {"key": key, "input_names": in_names, "output_names": out_names,
                       "input_dtypes": [np.dtype(ins[n]["dtype"]).name for n in in_names],
                       "output_dtypes": [np.dtype(outs[n]["dtype"]).name for n in out_names]}
    return found


def _probe_coreml(path: Path, methods: dict) -> dict[str, dict]:
    from edgekit.exporters.coreml.structure import describe_mlpackage

    found = {}
    for name in methods:
        function = "main" if len(methods) == 1 else name
        # coremltools prints its version warnings on import; they are not the user's business here
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            desc = describe_mlpackage(path, function=function)
        found[name] = {"key": function,
                       "input_names": [f["name"] for f in desc["inputs"]],
                       "output_names": [f["name"] for f in desc["outputs"]],
                       "input_dtypes": [_COREML_DTYPES.get(f["dtype"], f["dtype"]) for f in desc["inputs"]],
                       "output_dtypes": [_COREML_DTYPES.get(f["dtype"], f["dtype"]) for f in desc["outputs"]]}
    return found


def assumed(artifact: Artifact) -> dict[str, dict]:
    """The converters' known conventions, used when the file cannot be read here (stated in the README)."""
    return assumed_methods(artifact.target, method_specs(artifact.manifest))


def assumed_methods(target: str, methods: dict) -> dict[str, dict]:
    """`assumed` for a target and its methods (also the fallback for a .tflite lacking a method's signature)."""
    narrow = {"int64": "int32"}
    out = {}
    for name, spec in methods.items():
        if target == "tflite":
            out[name] = {"key": name if len(methods) > 1 else "serving_default",
                         "input_names": [f"args_{i}" for i in range(len(spec.inputs))],
                         "output_names": [f"output_{i}" for i in range(len(spec.outputs))]}
        else:
            out[name] = {"key": name if len(methods) > 1 else "main"}
        out[name]["input_dtypes"] = [narrow.get(t.dtype, t.dtype) for t in spec.inputs]
        out[name]["output_dtypes"] = [t.dtype for t in spec.outputs]
    return out
