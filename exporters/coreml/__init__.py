"""Core ML exporter: torch.export -> coremltools -> .mlpackage (ML program)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgekit.exporters.base import ConvertResult, Exporter, check_choice, option
from edgekit.exporters.coreml.structure import describe_mlpackage

DEPLOYMENT_TARGETS = ("iOS16", "iOS17", "iOS18")
PRECISIONS = ("fp16", "fp32")
COMPUTE_UNITS = ("ALL", "CPU_ONLY", "CPU_AND_GPU", "CPU_AND_NE")


@dataclass(frozen=True)
class CoreMLOptions:
    # LLMs: one multifunction package, which needs iOS18
    minimum_deployment_target: str = option("iOS17", "iOS16, iOS17 or iOS18", flag="target", llm="iOS18")
    # Core ML's own default; what the Neural Engine runs
    compute_precision: str = option("fp16", "fp16 or fp32", flag="precision", llm=True)
    compute_units: str = option("ALL", "ALL, CPU_ONLY, CPU_AND_GPU, CPU_AND_NE")

    def __post_init__(self):
        check_choice("Core ML minimum_deployment_target", self.minimum_deployment_target, DEPLOYMENT_TARGETS)
        check_choice("Core ML compute_precision", self.compute_precision, PRECISIONS)
        check_choice("Core ML compute_units", self.compute_units, COMPUTE_UNITS)


class CoreMLExporter(Exporter, target="coreml"):  # name, suffix, capabilities: edgekit.targets
    requires = (("coremltools", "export"),)
    Options = CoreMLOptions

    def convert(self, model, exported_program, example_inputs, options: CoreMLOptions, out_dir: Path):
        import coremltools as ct

        from edgekit.exporters.compression import coreml_encode

        from edgekit.exporters.compression.int8 import get_plan, int8_layers

        layers = {k: v for k, v in coreml_encode.layers_to_encode(model, options.minimum_deployment_target).items()
                  if v[1].kind != "int8"}
        int8 = get_plan(model) if int8_layers(model) else None
        if int8 is not None:
            from edgekit.exporters.coreml.int8 import refuse_shift

            refuse_shift(model)
        compressed = bool(layers) or int8 is not None
        if compressed:
            coreml_encode.check_target(layers, options.minimum_deployment_target)
        program = exported_program.run_decompositions({})
        lint = None
        if options.compute_precision == "fp16":  # Core ML fp16 cannot run here: check its numerics in torch
            from edgekit.exporters.coreml.fp16_lint import as_numpy_summary, fp16_guard

            lint = as_numpy_summary(fp16_guard(program, example_inputs))
        mlmodel = ct.convert(
            program,
            minimum_deployment_target=getattr(ct.target, options.minimum_deployment_target),
            compute_precision=ct.precision.FLOAT16 if options.compute_precision == "fp16" else ct.precision.FLOAT32,
            compute_units=getattr(ct.ComputeUnit, options.compute_units),
            skip_model_load=True,
            # compressed weights: keep BN unfused so each weight const holds the recorded values
            **({"pass_pipeline": coreml_encode.pass_pipeline()} if compressed else {}),
        )
        info, names = ({} if lint is None else {"fp16_lint": lint}), []
        if layers:
            mlmodel, names = coreml_encode.encode(mlmodel, layers, options.compute_precision)
        int8_weights: dict = {}
        if int8 is not None:  # 8-bit linear weights (exporters/coreml/int8.py)
            from edgekit.exporters.coreml.int8 import quantize_weights

            mlmodel, int8_weights = quantize_weights(model, mlmodel, options.compute_precision, int8)
            info["int8"] = {"weights": "int8 per channel", "activations": options.compute_precision,
                            "activation_quantization": "not applied: calibration needs Core ML predictions (macOS)"}
        path = out_dir / "model.mlpackage"
        mlmodel.save(str(path))
        if compressed:  # read back from the saved package: the ledger checks what the artifact stores
            info["weights"] = (coreml_encode.layer_encodings(path, names) if names else {}) | int8_weights
        info["structure"] = describe_mlpackage(path)
        return ConvertResult("model.mlpackage", options.compute_precision, info)


EXPORTER = CoreMLExporter()
