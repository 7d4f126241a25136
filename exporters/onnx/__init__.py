"""ONNX exporter: the dynamo-based torch.onnx.export at a chosen opset."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import EdgekitError
from edgekit.exporters.base import DECOMPRESSED, ConvertResult, Exporter

MIN_OPSET, MAX_OPSET = 17, 23


@dataclass(frozen=True)
class ONNXOptions:
    opset: int = 18
    pow2_int8: bool = True  # store ±2^k weights (2-3 bit shift layers) as int8 + DequantizeLinear, exactly

    def __post_init__(self):
        if not (MIN_OPSET <= int(self.opset) <= MAX_OPSET):
            raise EdgekitError(
                "bad_option", f"ONNX opset {self.opset} outside the supported range {MIN_OPSET}..{MAX_OPSET}",
                fix=f"pass --onnx-opset between {MIN_OPSET} and {MAX_OPSET} (default 18)",
            )


class ONNXExporter(Exporter):
    name = "onnx"
    suffix = ".onnx"
    runtime = "onnx"
    requires = (("onnx", "export"), ("onnxscript", "export"))
    Options = ONNXOptions
    # compressed weight kind -> storage; see docs/compression.md (export matrix)
    capabilities = {"lut": DECOMPRESSED, "shift": DECOMPRESSED, "sparse": DECOMPRESSED, "lut+sparse": DECOMPRESSED,
                    "shift+sparse": DECOMPRESSED}

    def convert(self, model, exported_program, example_inputs, options: ONNXOptions, out_dir: Path):
        import torch

        import onnx

        from edgekit.exporters.onnx.pow2_int8 import encode

        program = torch.onnx.export(exported_program, example_inputs, dynamo=True,
                                    opset_version=int(options.opset), verbose=False)
        path = out_dir / "model.onnx"
        program.save(str(path))
        info = {"opset": int(options.opset)}
        if options.pow2_int8:  # lossless: only weights that are exactly int8 x per-channel scale
            model = onnx.load(str(path))
            converted = encode(model)
            if converted:
                onnx.save(model, str(path))
            info["pow2_int8_weights"] = sorted(converted)
            # For the compression ledger: these layers are stored re-encoded (int8, exact), not dense.
            info["weights"] = {name.removesuffix(".weight"): {
                "ops": ["int8", "DequantizeLinear"], "encoded": "re-quantized", "error": 0.0, "bytes": size,
                "index_bits": 8} for name, size in converted.items() if name.endswith(".weight")}
        return ConvertResult("model.onnx", "fp32", info)


EXPORTER = ONNXExporter()
