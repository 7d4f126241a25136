"""Core ML encoding of recorded weights with coremltools' own compression passes.

The converted program keeps BatchNorm separate (the conv/BN fusion passes are
removed from the pipeline) so each conv's const holds exactly the clustered values;
then ``prune_weights`` (threshold: exact zeros) and ``palettize_weights``
(``mode="unique"``, joint with the sparse form) turn them into
``constexpr_sparse_to_dense`` / ``constexpr_lut_to_dense`` / ``constexpr_lut_to_sparse``.
"unique" stores the values the weights hold, so the tables are the recorded ones
bit for bit; a per-channel-scaled table becomes one table per output channel.
"""

from __future__ import annotations

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.exporters.compression.record import WeightRecord, architecture_records, compressed_layers

# Passes that rescale conv/linear weights; with them on, a clustered weight would
# be multiplied per channel by gamma/sigma and lose its table.
WEIGHT_REWRITING_PASSES = ("common::fuse_conv_batchnorm", "common::fuse_conv_scale",
                           "common::fuse_elementwise_to_batchnorm")
IOS16_NBITS = (1, 2, 4, 6, 8)
_BITS_OF = {"uint1": 1, "uint2": 2, "uint3": 3, "uint4": 4, "uint6": 6, "uint8": 8, "int8": 8,
            "fp16": 16, "fp32": 32, "int32": 32, "int16": 16, "bool": 1}


def pass_pipeline():
    import coremltools as ct

    pipeline = ct.PassPipeline.DEFAULT
    pipeline.remove_passes(WEIGHT_REWRITING_PASSES)
    return pipeline


def layers_to_encode(model, deployment_target: str) -> dict[str, tuple[object, WeightRecord]]:
    """Recipe records, plus from iOS18 the DenseShift layers as b-bit tables of ±2^k x scale.

    Before iOS18 DenseShift layers stay dense fp16 with BatchNorm folded, as they always were
    (3-bit tables need iOS18's uint3 indices)."""
    layers = compressed_layers(model)
    if deployment_target == "iOS18":
        layers = layers | architecture_records(model)
    return layers


def check_target(layers: dict[str, tuple[object, WeightRecord]], deployment_target: str) -> None:
    """Refuse encodings the deployment target lacks, naming the fix."""
    if deployment_target == "iOS18":
        return
    for name, (module, rec) in layers.items():
        needs = None
        if rec.bits is not None and "lut" in rec.kind or "shift" in rec.kind:
            if rec.bits not in IOS16_NBITS:
                needs = f"a {rec.bits}-bit lookup table (iOS16/17 support {IOS16_NBITS} bits)"
            elif rec.group_size or rec.per_channel_scale:
                needs = "per-grouped-channel lookup tables"
            elif "sparse" in rec.kind:
                needs = "sparse + lookup-table (joint) storage"
        if needs:
            raise EdgekitError(
                "coreml_target_too_old",
                f"layer '{name}' ({rec.kind}, {rec.bits} bits) needs {needs}, available from iOS18; "
                f"minimum_deployment_target is {deployment_target}",
                fix="export with --coreml-target iOS18 (minimum_deployment_target='iOS18')",
                details={"layer": name, "kind": rec.kind, "bits": rec.bits},
            )


def encode(mlmodel, layers: dict[str, tuple[object, WeightRecord]], compute_precision: str):
    """Compress the recorded weights of ``layers`` inside ``mlmodel``; returns (mlmodel, {layer: const name})."""
    import coremltools.optimize as cto

    consts = _weight_consts(mlmodel)
    dtype = np.float16 if compute_precision == "fp16" else np.float32
    names: dict[str, str] = {}
    for layer, (module, rec) in layers.items():
        w = module.weight.detach().cpu().numpy().astype(dtype)
        match = [n for n, v in consts.items() if v.shape == w.shape and np.array_equal(v.astype(dtype), w)
                 and n not in names.values()]
        if not match:
            raise EdgekitError("coreml_weight_not_found",
                               f"layer '{layer}': no weight constant in the converted program holds its values",
                               fix="report this: a conversion pass rewrote the weight (see WEIGHT_REWRITING_PASSES)")
        names[layer] = match[0]
    prune = {names[l]: cto.coreml.OpThresholdPrunerConfig(threshold=1e-30, minimum_sparsity_percentile=0.0,
                                                           weight_threshold=1)
             for l, (_, r) in layers.items() if "sparse" in r.kind}
    if prune:
        mlmodel = cto.coreml.prune_weights(mlmodel, cto.coreml.OptimizationConfig(op_name_configs=prune))
    # after pruning, a sparse+LUT weight's values live in the sparse op's nonzero_data const
    ops = {op.name: op for op in mlmodel._mil_program.functions["main"].operations}
    lut = {}
    for layer, (module, rec) in layers.items():
        if rec.kind == "sparse":
            continue
        target = names[layer]
        sparse_op = ops.get(target + "_sparsified")
        if "sparse" in rec.kind and sparse_op is not None:
            target = sparse_op.nonzero_data.op.name
        lut[target] = _palettizer_config(rec, module.weight.shape[0])
    if lut:
        mlmodel = cto.coreml.palettize_weights(mlmodel, cto.coreml.OptimizationConfig(op_name_configs=lut),
                                               joint_compression=bool(prune))
    return mlmodel, names


def _palettizer_config(rec: WeightRecord, out_channels: int):
    import math

    import coremltools.optimize as cto

    if rec.per_channel_scale:  # one table per output channel holds scale * table exactly
        return cto.coreml.OpPalettizerConfig(mode="unique", granularity="per_grouped_channel", group_size=1,
                                             channel_axis=0, weight_threshold=1)
    if rec.group_size:
        # Core ML needs equal groups; gcd groups nest inside ours, so the tables stay exact
        group = math.gcd(out_channels, rec.group_size)
        return cto.coreml.OpPalettizerConfig(mode="unique", granularity="per_grouped_channel",
                                             group_size=group, channel_axis=0, weight_threshold=1)
    return cto.coreml.OpPalettizerConfig(mode="unique", granularity="per_tensor", weight_threshold=1)


def _weight_consts(mlmodel) -> dict[str, np.ndarray]:
    out = {}
    for op in mlmodel._mil_program.functions["main"].operations:
        if op.op_type == "const":
            val = op.outputs[0].val
            if isinstance(val, np.ndarray) and val.ndim >= 2:
                out[op.name] = val
    return out


def layer_encodings(mlmodel, names: dict[str, str]) -> dict[str, dict]:
    """Per layer: the constexpr ops now producing its weight, their index bits and stored bytes."""
    ops = list(mlmodel._mil_program.functions["main"].operations)
    out = {}
    for layer, const in names.items():
        mine = [op for op in ops if op.name.startswith(const) and op.op_type != "const"
                or op.op_type == "const" and op.name == const]
        nbytes, kinds, bits = 0, [], None
        for op in mine:
            kinds.append(op.op_type)
            for var in op.inputs.values():
                v = getattr(var, "val", None)
                if v is None or not hasattr(v, "size") or var.op is None or var.op.op_type != "const":
                    continue
                dt = _dtype_name(var)
                width = _BITS_OF.get(dt, v.dtype.itemsize * 8)
                nbytes += -(-int(v.size) * width // 8)
                if "lut" == _input_name(op, var):
                    # iOS18 luts are (..., K, vector); iOS16 luts end in K (indices packed in uint8)
                    k = v.shape[-2] if "shape" not in op.inputs else v.shape[-1]
                    bits = int(np.ceil(np.log2(k)))
        if not mine:  # still a plain const (not compressed)
            kinds = ["const"]
        out[layer] = {"const": const, "ops": sorted(set(kinds)), "index_bits": bits, "bytes": nbytes}
    return out


def _input_name(op, var) -> str:
    return next((k for k, v in op.inputs.items() if v is var), "")


def _dtype_name(var) -> str:
    from coremltools.converters.mil.mil import types

    dt = var.dtype
    return types.builtin_to_string(dt) if dt is not None else ""


def read_tables(path) -> dict[str, np.ndarray]:
    """Lookup tables stored in a saved .mlpackage, by constexpr op name (for checks and tests)."""
    import coremltools as ct
    from coremltools.converters.mil.frontend.milproto.load import load as load_program

    spec = ct.utils.load_spec(str(path))
    weights_dir = str(path) + "/Data/com.apple.CoreML/weights"
    prog = load_program(spec, specification_version=spec.specificationVersion, file_weights_dir=weights_dir)
    out = {}
    for op in prog.functions["main"].operations:
        if op.op_type in ("constexpr_lut_to_dense", "constexpr_lut_to_sparse"):
            out[op.name] = np.asarray(op.lut.val, dtype=np.float32)
    return out
