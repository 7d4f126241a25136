"""TFLite / LiteRT exporter through litert-torch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import EdgekitError
from edgekit.exporters.base import ConvertResult, Exporter, option


REQUANTIZE = ("none", "int8")


@dataclass(frozen=True)
class TFLiteOptions:
    pow2_int8: bool = option(True, "store ±2^k weights (2-3 bit shift layers) as int8 + DEQUANTIZE, exactly "
                             "(default); --no-tflite-pow2-int8 keeps them float32")
    # "int8": clustered (lut) layers rounded to int8 per channel + DEQUANTIZE (lossy, error in the ledger);
    # TFLite has no table op, so "none" keeps them dense fp32
    requantize: str = option("none", "clustered layers in TFLite: none (dense fp32, exact) or int8 (per channel + "
                             "DEQUANTIZE, lossy)")

    def __post_init__(self):
        from edgekit.exporters.base import check_choice

        check_choice("TFLite requantize", self.requantize, REQUANTIZE)
        if not isinstance(self.pow2_int8, bool):
            raise EdgekitError(
                "bad_option", f"TFLite pow2_int8={self.pow2_int8!r} is not a boolean; choose true or false",
                fix="pass options={'pow2_int8': False} to keep every weight float32 (default True: exact int8)",
            )


class TFLiteExporter(Exporter, target="tflite"):  # name, suffix, capabilities: edgekit.targets
    requires = (("litert_torch", "export"),)
    Options = TFLiteOptions

    def convert(self, model, exported_program, example_inputs, options: TFLiteOptions, out_dir: Path):
        import litert_torch

        from edgekit.exporters.compression.record import compressed_layers
        from edgekit.exporters.tflite.pow2_int8 import encode, layer_of_tensor, weight_tensor_names

        from edgekit.exporters.compression.int8 import get_plan, int8_layers

        path = out_dir / "model.tflite"
        if int8_layers(model) and (plan := get_plan(model)) is not None:  # int8 recipe: full-integer model
            from edgekit.exporters.tflite.int8 import convert_int8

            weights = convert_int8(model, example_inputs, plan, path)
            precision = "int8_static" if plan.config.activations == "static" else "int8"
            return ConvertResult("model.tflite", precision, {"converter": "litert-torch", "weights": weights,
                                                          "io": plan.config.io, "dense_precision": "fp32"})
        edge_model = litert_torch.convert(model, example_inputs)
        edge_model.export(str(path))
        info = {"converter": "litert-torch"}
        lossy, errors = None, {}
        if options.requantize == "int8":
            clustered = {n for n, (_, rec) in compressed_layers(model).items() if rec.kind.startswith("lut")}
            tensors = layer_of_tensor(model, weight_tensor_names(path.read_bytes()))
            lossy = {t for t, layer in tensors.items() if layer in clustered}.__contains__
        if options.pow2_int8 or lossy:  # exact int8 where the weight is int8 x scale; rounded only if asked
            buf, converted = encode(path.read_bytes(), lossy=lossy, errors=errors, exact=options.pow2_int8)
            if converted:
                path.write_bytes(buf)
            info["pow2_int8_weights"] = sorted(t for t in converted if t not in errors)
            # For the compression ledger: these layers are stored re-encoded as int8 (exact or rounded), not dense.
            layers = layer_of_tensor(model, converted)
            info["weights"] = {layer: {"ops": ["int8", "DEQUANTIZE"], "encoded": "re-quantized",
                                       "error": errors.get(tensor, 0.0), "bytes": converted[tensor], "index_bits": 8}
                               for tensor, layer in layers.items()}
        if errors:  # rounded weights: parity against the compressed model at int8 tolerance
            info["requantize"], info["dense_precision"] = options.requantize, "fp32"
            return ConvertResult("model.tflite", "int8", info)
        return ConvertResult("model.tflite", "fp32", info)


EXPORTER = TFLiteExporter()
