"""TFLite / LiteRT exporter through litert-torch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgekit.exporters.base import DECOMPRESSED, ConvertResult, Exporter


@dataclass(frozen=True)
class TFLiteOptions:
    pass


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

        edge_model = litert_torch.convert(model, example_inputs)
        edge_model.export(str(out_dir / "model.tflite"))
        return ConvertResult("model.tflite", "fp32", {"converter": "litert-torch"})


EXPORTER = TFLiteExporter()
