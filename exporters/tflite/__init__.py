"""TFLite / LiteRT exporter through litert-torch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import EdgekitError
from edgekit.exporters.base import DECOMPRESSED, ConvertResult, Exporter


@dataclass(frozen=True)
class TFLiteOptions:
    pow2_int8: bool = True  # store ±2^k weights (2-3 bit shift layers) as int8 + DEQUANTIZE, exactly

    def __post_init__(self):
        if not isinstance(self.pow2_int8, bool):
            raise EdgekitError(
                "bad_option", f"TFLite pow2_int8={self.pow2_int8!r} is not a boolean; choose true or false",
                fix="pass options={'pow2_int8': False} to keep every weight float32 (default True: exact int8)",
            )


class TFLiteExporter(Exporter):
    name = "tflite"
    suffix = ".tflite"
    runtime = "tflite"
    requires = (("litert_torch", "export"),)
    Options = TFLiteOptions
    # compressed weight kind -> storage; see docs/compression.md (export matrix)
    capabilities = {"lut": DECOMPRESSED, "shift": DECOMPRESSED, "sparse": DECOMPRESSED, "lut+sparse": DECOMPRESSED,
                    "shift+sparse": DECOMPRESSED}

    def convert(self, model, exported_program, example_inputs, options: TFLiteOptions, out_dir: Path):
        import litert_torch

        from edgekit.exporters.tflite.pow2_int8 import encode, layer_of_tensor

        edge_model = litert_torch.convert(model, example_inputs)
        path = out_dir / "model.tflite"
        edge_model.export(str(path))
        info = {"converter": "litert-torch"}
        if options.pow2_int8:  # lossless: only weights that are exactly int8 x per-channel scale
            buf, converted = encode(path.read_bytes())
            if converted:
                path.write_bytes(buf)
            info["pow2_int8_weights"] = sorted(converted)
            # For the compression ledger: these layers are stored re-encoded (int8, exact), not dense.
            layers = layer_of_tensor(model, converted)
            info["weights"] = {layer: {"ops": ["int8", "DEQUANTIZE"], "encoded": "re-quantized", "error": 0.0,
                                       "bytes": converted[tensor], "index_bits": 8}
                               for tensor, layer in layers.items()}
        return ConvertResult("model.tflite", "fp32", info)


EXPORTER = TFLiteExporter()
