"""Core ML encoding of recorded weights: coremltools' passes, fed the tables compression knows.

The converted program keeps BatchNorm separate (the conv/BN fusion passes are
removed from the pipeline) so each conv's const holds exactly the clustered values;
then ``prune_weights`` (threshold: exact zeros) and ``palettize_weights``
(``mode="custom"``, joint with the sparse form) turn them into
``constexpr_sparse_to_dense`` / ``constexpr_lut_to_dense`` / ``constexpr_lut_to_sparse``.

The tables are never re-derived by sorting the fp16 weight: coremltools' ``"unique"``
mode calls ``np.unique`` on it, and NumPy 2.x's AVX-512 float16 sort returns duplicates
on some CPUs, which silently widened 4-bit tables to 6 bits. ``TableFunction`` hands
Core ML the record's own table (padded to 2^bits entries) and indices found by exact
lookup; a per-channel-scaled table (one table per output channel) and layers without a
recorded table (DenseShift, eDKM checkpoints) use the weight's distinct values, found
with a sort-safe unique. The ledger then refuses any layer stored wider than asked
(``compression_widened``).
"""

from __future__ import annotations

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.sortsafe import argsort, unique
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
        joint = "sparse" in rec.kind and sparse_op is not None
        if joint:
            target = sparse_op.nonzero_data.op.name
        lut[target] = _palettizer_config(rec, module.weight.shape[0], joint)
    if lut:
        mlmodel = cto.coreml.palettize_weights(mlmodel, cto.coreml.OptimizationConfig(op_name_configs=lut),
                                               joint_compression=bool(prune))
    return mlmodel, names


# index widths constexpr_lut_to_dense stores (uint3 from iOS18; check_target refuses it before)
CORE_ML_NBITS = (1, 2, 3, 4, 6, 8)


def stored_bits(bits: int) -> int:
    """Index bits Core ML stores for a ``bits``-bit table: the smallest width it has that holds it."""
    return next((b for b in CORE_ML_NBITS if b >= bits), bits)


class TableFunction:
    """coremltools ``lut_function`` for one weight: called once per channel group, in channel order.

    Returns (table of 2^stored_bits entries in the weight's dtype, uint8 indices). The table is the
    record's (``rec.lut[group]``) when it holds every value of the group, else the group's distinct
    values (sort-safe). Zeros of a joint sparse weight need no entry: the sparse form drops them.
    """

    def __init__(self, rec: WeightRecord, out_channels: int, coreml_group: int, joint_sparse: bool = False):
        self.rec, self.coreml_group, self.joint_sparse, self.calls = rec, coreml_group, joint_sparse, 0
        self.record_group = rec.group_size or out_channels
        usable = rec.lut is not None and not rec.per_channel_scale
        self.tables = np.asarray(rec.lut, np.float32).reshape(-1, np.shape(rec.lut)[-1]) if usable else None

    def __call__(self, val: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        group, self.calls = self.calls, self.calls + 1
        flat = val.reshape(-1)
        live = flat[flat != 0] if self.joint_sparse else flat
        table = None
        if self.tables is not None:
            t = (group * self.coreml_group) // self.record_group
            if t < len(self.tables):
                table = self.tables[t].astype(val.dtype)
                # compared as float32: np.isin sorts its input too
                if not np.all(np.isin(unique(live).astype(np.float32), table.astype(np.float32))):
                    table = None  # the weight no longer matches its record: store what it holds
        if table is None:
            table = unique(live)
        if table.size > 256:
            raise EdgekitError("coreml_table_too_large",
                               f"a weight holds {table.size} distinct values; Core ML tables hold at most 256",
                               fix="re-run compress() on the model: its weights no longer match their record")
        # 2^bits entries (more only when the weight holds more values: the ledger then refuses it)
        size = 2 ** stored_bits(max(self.rec.bits or 1, int(np.ceil(np.log2(max(table.size, 2))))))
        table = np.pad(table, (0, size - table.size))
        return table, lookup(table, flat, skip_zeros=self.joint_sparse)


def lookup(table: np.ndarray, values: np.ndarray, *, skip_zeros: bool = False) -> np.ndarray:
    """uint8 index of each value in ``table`` (exact match, first of equal entries), never sorting float16."""
    t32 = table.astype(np.float32)
    order = argsort(t32, kind="stable")
    v32 = values.astype(np.float32)
    pos = np.minimum(np.searchsorted(t32[order], v32), table.size - 1)
    idx = order[pos].astype(np.uint8)
    found = t32[idx] == v32
    if skip_zeros:  # the joint sparse form stores no index for a zero
        zero = v32 == 0
        idx[zero & ~found] = 0
        found |= zero
    if not np.all(found):
        raise EdgekitError("coreml_weight_not_found", "a weight value is missing from its lookup table",
                           fix="report this: the table built for Core ML does not hold every weight value")
    return idx


def _palettizer_config(rec: WeightRecord, out_channels: int, joint_sparse: bool):
    import math

    import coremltools.optimize as cto

    if rec.per_channel_scale:  # one table per output channel holds scale * table exactly
        group = 1
    elif rec.group_size:
        # Core ML needs equal groups; gcd groups nest inside ours, so the tables stay exact
        group = math.gcd(out_channels, rec.group_size)
    else:
        fn = TableFunction(rec, out_channels, out_channels, joint_sparse)
        return cto.coreml.OpPalettizerConfig(mode="custom", lut_function=fn, granularity="per_tensor",
                                             weight_threshold=1)
    fn = TableFunction(rec, out_channels, group, joint_sparse)
    return cto.coreml.OpPalettizerConfig(mode="custom", lut_function=fn, granularity="per_grouped_channel",
                                         group_size=group, channel_axis=0, weight_threshold=1)


def _weight_consts(mlmodel) -> dict[str, np.ndarray]:
    out = {}
    for op in mlmodel._mil_program.functions["main"].operations:
        if op.op_type == "const":
            val = op.outputs[0].val
            if isinstance(val, np.ndarray) and val.ndim >= 2:
                out[op.name] = val
    return out


def layer_encodings(model, names: dict[str, str]) -> dict[str, dict]:
    """Per layer: the constexpr ops now producing its weight, their index bits, tables and stored bytes.

    ``model`` is a saved .mlpackage path (what the artifact holds: the ledger reads this), an
    MLModel or a MIL program."""
    ops = list(_program(model).functions["main"].operations)
    out = {}
    for layer, const in names.items():
        mine = [op for op in ops if op.name.startswith(const) and op.op_type != "const"
                or op.op_type == "const" and op.name == const]
        nbytes, kinds, bits, tables, entries = 0, [], None, None, None
        for op in mine:
            kinds.append(op.op_type)
            for var in op.inputs.values():
                v = getattr(var, "val", None)
                if v is None or not hasattr(v, "size") or var.op is None or var.op.op_type != "const":
                    continue
                dt = _dtype_name(var)
                width = _BITS_OF.get(dt, v.dtype.itemsize * 8)
                nbytes += -(-int(v.size) * width // 8)
                name = _input_name(op, var)
                if name == "lut":
                    # iOS18 luts are (groups..., K, vector); iOS16 luts are (K,) (indices packed in uint8)
                    k, vec = (v.shape[-1], 1) if "shape" in op.inputs else (v.shape[-2], v.shape[-1])
                    tables, entries = int(v.size // (k * vec)), int(k)
                    bits = max(bits or 0, int(np.ceil(np.log2(k))))
                elif name.startswith("indices") and dt.startswith("uint") and "shape" not in op.inputs:
                    bits = max(bits or 0, width)  # iOS18: the indices' own type (uint3, uint4, ...)
        if not mine:  # still a plain const (not compressed)
            kinds = ["const"]
        out[layer] = {"const": const, "ops": sorted(set(kinds)), "index_bits": bits, "bytes": nbytes}
        if entries is not None:
            out[layer] |= {"tables": tables, "table_size": entries}
    return out


def _program(model):
    if hasattr(model, "functions"):
        return model
    if hasattr(model, "_mil_program"):
        return model._mil_program
    import coremltools as ct
    from coremltools.converters.mil.frontend.milproto.load import load as load_program

    spec = ct.utils.load_spec(str(model))
    return load_program(spec, specification_version=spec.specificationVersion,
                        file_weights_dir=str(model) + "/Data/com.apple.CoreML/weights")


def _input_name(op, var) -> str:
    return next((k for k, v in op.inputs.items() if v is var), "")


def _dtype_name(var) -> str:
    from coremltools.converters.mil.mil import types

    dt = var.dtype
    return types.builtin_to_string(dt) if dt is not None else ""


def read_tables(path) -> dict[str, np.ndarray]:
    """Lookup tables stored in a saved .mlpackage, by constexpr op name (for checks and tests)."""
    return {op.name: np.asarray(op.lut.val, dtype=np.float32) for op in _program(path).functions["main"].operations
            if op.op_type in ("constexpr_lut_to_dense", "constexpr_lut_to_sparse")}
