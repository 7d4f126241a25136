"""ExecuTorch exporter: torch.export -> edge dialect -> XNNPACK delegate -> .pte."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from edgekit.exporters.base import ConvertResult, Exporter, check_choice, op_name, option

DELEGATES = ("xnnpack", "none")


@dataclass(frozen=True)
class ExecuTorchOptions:
    delegate: str = option("xnnpack", "xnnpack or none", llm=True)
    # compressed Conv2d/Linear weights: "none" keeps them dense fp32 (exact); "dynamic_int8" re-quantizes them
    # to int8 per channel with XNNPACK dynamic int8 activations (lossy, error in the ledger); see requantize.py
    requantize: str = option("none", "compressed layers in ExecuTorch: none (dense fp32, exact) or dynamic_int8 "
                             "(lossy)")
    # "edgekit": compressed Linear layers run on edgekit's native kernels at their bit width (native_kernels.py);
    # "edgekit-q8": the same with int8 activations (opt-in, not exact: parity at the int8 tolerance)
    kernels: str = option("none", "compressed Linear layers in ExecuTorch: none (dense), edgekit (native "
                          "LUT/shift/2:4 kernels at their bit width, exact; needs `make native`) or edgekit-q8 "
                          "(the same kernels with int8 activations, one scale per row: faster, not exact)")

    def __post_init__(self):
        from edgekit.exporters.executorch.native_kernels import KERNELS
        from edgekit.exporters.executorch.requantize import REQUANTIZE

        check_choice("ExecuTorch delegate", self.delegate, DELEGATES)
        check_choice("ExecuTorch requantize", self.requantize, REQUANTIZE)
        check_choice("ExecuTorch kernels", self.kernels, KERNELS)
        if self.kernels != "none" and self.requantize != "none":
            from edgekit.errors import EdgekitError

            raise EdgekitError("bad_option", f"ExecuTorch kernels='{self.kernels}' and requantize='{self.requantize}' "
                               "both claim the compressed layers; pick one",
                               fix=f"pass requantize='none' with kernels='{self.kernels}', or kernels='none'")
        if self.requantize != "none" and self.delegate != "xnnpack":
            from edgekit.errors import EdgekitError

            raise EdgekitError("bad_option", f"ExecuTorch requantize='{self.requantize}' needs delegate='xnnpack'; "
                               f"delegate is '{self.delegate}'",
                               fix="pass delegate='xnnpack' (default) or requantize='none'")


class ExecuTorchExporter(Exporter, target="executorch"):  # name, suffix, capabilities: edgekit.targets
    requires = (("executorch", "export"),)
    Options = ExecuTorchOptions

    def convert(self, model, exported_program, example_inputs, options: ExecuTorchOptions, out_dir: Path):
        from executorch.exir import to_edge_transform_and_lower

        from edgekit.exporters.compression.record import compressed_layers

        weights, precision = {}, "fp32"
        int8 = _int8_plan(model)
        if int8 is not None:
            from edgekit.exporters.executorch.int8 import quantize_int8

            exported_program, weights = quantize_int8(model, exported_program, example_inputs, int8)
            precision = "int8_static" if int8.config.activations == "static" else "int8"
        elif options.kernels != "none" and compressed_layers(model):
            import torch

            from edgekit.exporters.executorch.native_kernels import Q8_KERNELS, swap_compressed_linears

            swapped, weights = swap_compressed_linears(model, options.kernels)
            if weights:  # re-export: the compressed layers are now edgekit ops holding packed weights
                exported_program = torch.export.export(swapped.eval(), tuple(example_inputs))
                precision = "int8" if options.kernels == Q8_KERNELS else precision  # int8 activations: its gate
        elif options.requantize == "dynamic_int8" and compressed_layers(model):
            from edgekit.exporters.executorch.requantize import requantize

            exported_program, weights = requantize(model, exported_program, example_inputs)
            precision = "int8" if weights else "fp32"
        partitioners = []
        if options.delegate == "xnnpack":
            from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
            partitioners.append(XnnpackPartitioner())
        edge = to_edge_transform_and_lower(exported_program, partitioner=partitioners)
        info = delegation_report(edge.exported_program().graph_module)
        program = edge.to_executorch()
        (out_dir / "model.pte").write_bytes(program.buffer)
        result = {"delegation": info}
        if int8 is not None:
            result |= {"weights": weights, "dense_precision": "fp32"}
        elif options.requantize != "none":
            result |= {"requantize": options.requantize, "weights": weights, "dense_precision": "fp32"}
        if options.kernels != "none":
            result |= {"kernels": options.kernels, "weights": weights, "dense_precision": "fp32"}
        return ConvertResult("model.pte", precision, result)


def _int8_plan(model):
    from edgekit.exporters.compression.int8 import get_plan, int8_layers

    plan = get_plan(model)
    return plan if plan is not None and int8_layers(model) else None


def delegation_report(graph_module) -> dict:
    """Share of compute nodes inside delegates, and the ops left on portable kernels."""
    delegated = 0
    for _, child in graph_module.named_children():
        original = getattr(child, "original_module", None)
        if original is not None:
            delegated += sum(1 for n in original.graph.nodes if n.op == "call_function")
    portable = Counter(
        op_name(n.target)
        for n in graph_module.graph.nodes
        if n.op == "call_function" and "getitem" not in str(n.target) and "call_delegate" not in str(n.target)
    )
    total = delegated + sum(portable.values())
    return {
        "backend": "XnnpackBackend" if delegated else None,
        "delegated_nodes": delegated,
        "portable_nodes": sum(portable.values()),
        "delegated_share": delegated / total if total else 1.0,
        "portable_ops": dict(sorted(portable.items())),
    }


EXPORTER = ExecuTorchExporter()
