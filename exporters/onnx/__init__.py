"""ONNX exporter: the dynamo-based torch.onnx.export at a chosen opset.

Compressed weights stay compressed where ONNX Runtime can execute the encoding:
lookup-table weights (k-means, DKM, sparse + k-means) as packed indices + ``Gather``
from their table (``lut_gather.py``), 2-3 bit shift weights as exact int8 +
``DequantizeLinear`` (``pow2_int8.py``). With such weights the graph is exported
unoptimised, encoded, then optimised by onnxscript with the encoding nodes kept
(not folded back): the optimiser's Conv+BatchNorm fusion would otherwise rescale
each channel of a clustered weight and destroy its table. ONNX Runtime fuses
Conv+BatchNorm itself when it loads the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import EdgekitError
from edgekit.exporters.base import NATIVE, ConvertResult, Exporter, option

MIN_OPSET, MAX_OPSET = 17, 23
LUT_KINDS = ("lut", "lut+sparse", "shift", "shift+sparse")  # kinds with a finite table of values


@dataclass(frozen=True)
class ONNXOptions:
    opset: int = option(18, f"ONNX opset, {MIN_OPSET}..{MAX_OPSET}", llm=True)
    pow2_int8: bool = option(True, "store ±2^k weights (2-3 bit shift layers) as int8 + DequantizeLinear, "
                             "exactly (default); --no-onnx-pow2-int8 keeps them float32")
    lut_encoding: str = option("packed", "lookup-table weights in ONNX: packed (default), uint4 (opset >= 21), "
                               "uint8 or dense")

    def __post_init__(self):
        from edgekit.exporters.onnx.lut_gather import check_encoding

        if not (MIN_OPSET <= int(self.opset) <= MAX_OPSET):
            raise EdgekitError(
                "bad_option", f"ONNX opset {self.opset} outside the supported range {MIN_OPSET}..{MAX_OPSET}",
                fix=f"pass --onnx-opset between {MIN_OPSET} and {MAX_OPSET} (default 18)",
            )
        check_encoding(self.lut_encoding, int(self.opset))


class ONNXExporter(Exporter, target="onnx"):  # name, suffix, capabilities: edgekit.targets
    requires = (("onnx", "export"), ("onnxscript", "export"))
    Options = ONNXOptions

    def convert(self, model, exported_program, example_inputs, options: ONNXOptions, out_dir: Path):
        import torch

        import onnx

        from edgekit.exporters.compression.record import compressed_layers
        from edgekit.exporters.onnx import lut_gather, pow2_int8

        records = {f"{name}.weight": rec for name, (_, rec) in compressed_layers(model).items()
                   if rec.kind in LUT_KINDS}
        keep_tables = bool(records) and options.lut_encoding != "dense"
        program = torch.onnx.export(exported_program, example_inputs, dynamo=True,
                                    opset_version=int(options.opset), verbose=False, optimize=not keep_tables)
        path = out_dir / "model.onnx"
        program.save(str(path))
        info = {"opset": int(options.opset)}
        weights: dict[str, dict] = {}
        proto = onnx.load(str(path))
        converted: dict[str, int] = {}
        from edgekit.exporters.compression.int8 import get_plan, int8_layers

        int8 = get_plan(model) if int8_layers(model) else None
        if options.pow2_int8 and int8 is None:  # lossless: only weights that are exactly int8 x per-channel scale
            converted = pow2_int8.encode(proto)
            info["pow2_int8_weights"] = sorted(converted)
            # For the compression ledger: these layers are stored re-encoded (int8, exact), not dense.
            weights |= {name: {"ops": ["int8", "DequantizeLinear"], "encoded": "re-quantized", "error": 0.0,
                               "bytes": size, "index_bits": 8} for name, size in converted.items()}
        if keep_tables:
            todo = {name: (rec.bits + (1 if rec.kind == "shift+sparse" else 0),  # zero is one more value
                           1 if rec.per_channel_scale else rec.group_size)
                    for name, rec in records.items() if name not in converted}
            encoded = lut_gather.encode(proto, todo, options.lut_encoding)
            info["lut_encoding"] = options.lut_encoding
            info["lut_weights"] = sorted(encoded)
            weights |= {name: {"ops": e["ops"], "encoded": NATIVE, "error": 0.0, "bytes": e["bytes"],
                               "index_bits": e["index_bits"], "table_entries": e["table_entries"],
                               # the packed layout's field for these bits (ledger: wider is refused)
                               "index_bits_allowed": lut_gather.field_bits(todo[name][0], options.lut_encoding)}
                        for name, e in encoded.items()}
            proto = _optimize_keeping(proto, lut_gather.ENCODING_NODE_PREFIXES)
        from edgekit.exporters.onnx.clean import strip_debug_metadata

        strip_debug_metadata(proto)  # no stack traces or source paths of this machine in the artifact
        onnx.save(proto, str(path))
        # For the compression ledger, by layer name.
        info["weights"] = {name.removesuffix(".weight"): facts for name, facts in weights.items()
                           if name.endswith(".weight")}
        if int8 is not None:  # int8 recipe: ONNX Runtime's QDQ on the fp32 model
            from edgekit.exporters.onnx.int8 import quantize_int8

            info["weights"] = quantize_int8(model, path, int8)
            info["dense_precision"] = "fp32"
            return ConvertResult("model.onnx", "int8_static" if int8.config.activations == "static" else "int8", info)
        return ConvertResult("model.onnx", "fp32", info)


def _optimize_keeping(proto, prefixes: tuple[str, ...]):
    """onnxscript's default optimisation, except that the encoding nodes are never constant-folded."""
    import onnx_ir as ir
    from onnxscript.optimizer import optimize_ir

    model = ir.serde.deserialize_model(proto)
    optimize_ir(model, should_fold=lambda node: False if any(p in (node.name or "") for p in prefixes) else None)
    return ir.serde.serialize_model(model)


EXPORTER = ONNXExporter()
