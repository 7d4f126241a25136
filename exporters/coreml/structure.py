"""Read an .mlpackage's structure without running it (works on Linux)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

_ARRAY_TYPES = {65568: "fp32", 65552: "fp16", 131080: "int8", 262152: "uint8", 131104: "int32"}
_CONSTEXPR = ("constexpr_lut_to_dense", "constexpr_lut_to_sparse", "constexpr_affine_dequantize", "constexpr_sparse_to_dense",
              "constexpr_blockwise_shift_scale", "constexpr_cast")


def describe_mlpackage(path: Path, function: str = "main") -> dict:
    """Inputs, outputs (names, shapes), op histogram and weight encodings of an ML program
    (of one ``function`` in a multifunction package)."""
    import coremltools as ct

    spec = ct.utils.load_spec(str(path))
    desc = spec.description
    for fn in desc.functions:  # multifunction packages describe I/O per function
        if fn.name == function:
            desc = fn
    result = {
        "inputs": [_feature(f) for f in desc.input],
        "outputs": [_feature(f) for f in desc.output],
        "spec_version": spec.specificationVersion,
    }
    ops: Counter = Counter()
    encodings: Counter = Counter()
    for block in spec.mlProgram.functions[function].block_specializations.values():
        for op in block.operations:
            ops[op.type] += 1
            if op.type in _CONSTEXPR:
                encodings[op.type] += 1
            elif op.type == "const":
                out_type = op.outputs[0].type
                if out_type.HasField("tensorType") and len(out_type.tensorType.dimensions) > 0:
                    encodings[f"const:{_dtype_name(out_type.tensorType.dataType)}"] += 1
    result["ops"] = dict(sorted(ops.items()))
    result["weight_encodings"] = dict(sorted(encodings.items()))
    weights = path / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"
    result["weight_file_bytes"] = weights.stat().st_size if weights.exists() else 0
    return result


def _feature(f) -> dict:
    arr = f.type.multiArrayType
    return {"name": f.name, "shape": [int(s) for s in arr.shape],
            "dtype": _ARRAY_TYPES.get(arr.dataType, str(arr.dataType))}


def _dtype_name(code: int) -> str:
    from coremltools.proto import MIL_pb2
    return MIL_pb2.DataType.Name(code).lower()


def structural_check(structure: dict, inputs: dict[str, np.ndarray], outputs: dict[str, np.ndarray]) -> dict:
    """Compare the package's I/O against the source model's; Core ML can't run here."""
    problems = []
    if len(structure["inputs"]) != len(inputs):
        problems.append(f"{len(structure['inputs'])} inputs in package, {len(inputs)} in model")
    for feat, (name, arr) in zip(structure["inputs"], inputs.items()):
        if tuple(feat["shape"]) != arr.shape:
            problems.append(f"input {feat['name']}: shape {feat['shape']} vs model {list(arr.shape)}")
    if len(structure["outputs"]) != len(outputs):
        problems.append(f"{len(structure['outputs'])} outputs in package, {len(outputs)} in model")
    for feat, (name, arr) in zip(structure["outputs"], outputs.items()):
        if feat["shape"] and tuple(feat["shape"]) != arr.shape:
            problems.append(f"output {feat['name']}: shape {feat['shape']} vs model {list(arr.shape)}")
    if not structure["ops"]:
        problems.append("the ML program has no ops")
    return {"mode": "structural", "ok": not problems, "problems": problems,
            "reason": "Core ML prediction needs macOS; checked names, shapes, ops and weight encodings",
            "ops": sum(structure["ops"].values()), "weight_encodings": structure["weight_encodings"]}
