"""Core ML package of an LLM: one multifunction .mlpackage whose ``prefill`` and ``decode`` functions share one
copy of the weights; explicit KV cache I/O. Clustered layers (eDKM checkpoints) keep their tables
(``constexpr_lut_to_dense``, 3/4-bit indices; exporters/compression/coreml_encode.py).

Core ML cannot predict off macOS: there ``structural_parity`` checks each function's names, shapes,
ops and weights instead of the numbers.
"""

from __future__ import annotations

import platform
from pathlib import Path

from edgekit.errors import EdgekitError
from edgekit.exporters.coreml import DEPLOYMENT_TARGETS, CoreMLOptions

KV_CACHE = "explicit"
MULTIFUNCTION_SINCE = "iOS18"  # the first deployment target with multifunction packages


def check_options(options: CoreMLOptions) -> None:
    """Refuse a deployment target without multifunction packages, before any conversion work."""
    have, need = DEPLOYMENT_TARGETS.index(options.minimum_deployment_target), DEPLOYMENT_TARGETS.index(MULTIFUNCTION_SINCE)
    if have < need:
        raise EdgekitError("bad_option", f"a Core ML LLM is one multifunction package, which needs "
                           f"{MULTIFUNCTION_SINCE}; minimum_deployment_target is {options.minimum_deployment_target}",
                           fix=f"pass --coreml-target {MULTIFUNCTION_SINCE} (the default for LLMs)",
                           details={"value": options.minimum_deployment_target,
                                    "choices": list(DEPLOYMENT_TARGETS[need:])})


def convert(step, programs: dict, examples: dict, stage: Path, options: CoreMLOptions) -> dict:
    """{method: file} plus ``weights``: how the package stores each clustered layer (for the ledger).
    ``check_options`` has passed (export_llm calls it before tracing)."""
    import tempfile

    import coremltools as ct

    from edgekit.exporters.compression import coreml_encode
    from edgekit.exporters.compression.record import compressed_layers
    from edgekit.exporters.llm import METHODS, OUTPUT_NAMES

    clustered, encodings = compressed_layers(step.model), {}
    with tempfile.TemporaryDirectory() as tmp:
        desc = ct.utils.MultiFunctionDescriptor()
        for m in METHODS:
            mlmodel = ct.convert(programs[m].run_decompositions({}),
                                 minimum_deployment_target=getattr(ct.target, options.minimum_deployment_target),
                                 compute_precision=getattr(ct.precision, f"FLOAT{options.compute_precision[2:]}"),
                                 skip_model_load=True)
            if clustered:
                mlmodel, consts = coreml_encode.encode(mlmodel, clustered, options.compute_precision)
                encodings = coreml_encode.layer_encodings(mlmodel, consts)
            spec = mlmodel.get_spec()
            for old, new in zip([o.name for o in spec.description.output], OUTPUT_NAMES):
                ct.utils.rename_feature(spec, old, new)
            ct.models.MLModel(spec, weights_dir=mlmodel.weights_dir, skip_model_load=True).save(f"{tmp}/{m}.mlpackage")
            desc.add_function(f"{tmp}/{m}.mlpackage", src_function_name="main", target_function_name=m)
        desc.default_function_name = "decode"
        ct.utils.save_multifunction(desc, str(stage / "model.mlpackage"))
    return {m: "model.mlpackage" for m in METHODS} | {"weights": encodings}


def structural_parity(package: Path, signature: dict) -> dict | None:
    """Off macOS, the structural record (``coreml_llm_structure``); None where Core ML can predict (numeric parity)."""
    return None if platform.system() == "Darwin" else coreml_llm_structure(package, signature)


def coreml_llm_structure(package: Path, signature: dict) -> dict:
    """Each function's I/O names and shapes against the torch model's; ops and weight encodings."""
    from edgekit.exporters.coreml.structure import describe_mlpackage

    problems, functions = [], {}
    for m, sig in signature.items():
        found = describe_mlpackage(package, function=m)
        functions[m] = {"ops": sum(found["ops"].values()), "weight_encodings": found["weight_encodings"]}
        for kind in ("inputs", "outputs"):
            want = [(t["name"], list(t["shape"])) for t in sig[kind]]
            got = [(f["name"], f["shape"]) for f in found[kind]]
            if got != want:
                problems.append(f"{m} {kind}: package {got} vs model {want}")
        if not found["ops"]:
            problems.append(f"function {m} has no ops")
    return {"mode": "structural", "ok": not problems, "problems": problems, "functions": functions,
            "weight_file_bytes": found["weight_file_bytes"],
            "reason": "Core ML prediction needs macOS; checked each function's names, shapes, ops and weights"}
