"""Low-bit linear weights for ExecuTorch LLM artifacts (XNNPACK), with a ledger of what was stored.

XNNPACK runs linear layers with int4 (grouped) or int8 (per channel) weights and
int8 dynamically quantized activations ("8da4w" / "8da8w", through torchao). A
decode step streams every weight once, so 4-bit weights cut both the file and
the bytes read per token. A clustered (palettized) model has no lookup-table
kernel in XNNPACK: its weights are re-quantized onto the int grid, and the
ledger says so, with the error.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from edgekit.errors import EdgekitError, UnknownChoice
from edgekit.sortsafe import unique
from edgekit.targets import LLM_WEIGHTS, names_with

WEIGHT_FORMATS = ("fp32", "int4", "int8")
WEIGHT_TARGETS = names_with(LLM_WEIGHTS)


def check_weights(weights: str, target: str, group_size: int) -> None:
    if weights not in WEIGHT_FORMATS:
        raise UnknownChoice("LLM weight format", weights, WEIGHT_FORMATS)
    if weights != "fp32" and target not in WEIGHT_TARGETS:
        raise EdgekitError("weights_unsupported_for_target",
                           f"--weights {weights} is built for {', '.join(WEIGHT_TARGETS)}, not {target!r}",
                           fix=f"export {target} with --weights fp32, or choose --target executorch")
    if weights == "int4" and group_size != 0 and (group_size < 16 or group_size & (group_size - 1)):
        raise EdgekitError("bad_group_size", f"int4 group size {group_size} is not 0 or a power of two >= 16",
                           fix="use --group-size 32 (the default), 64, 128, 256, or 0 for one scale per channel")


def quantized_copy(model, weights: str, group_size: int = 32):
    """A copy of ``model`` whose nn.Linear layers hold int4/int8 weights; and the ledger rows.
    int4 takes one scale per ``group_size`` weights of a row, or per row when ``group_size`` is 0."""
    from torchao.quantization import Int8DynamicActivationIntxWeightConfig, quantize_
    from torchao.quantization.granularity import PerAxis, PerGroup

    qmodel = copy.deepcopy(model).eval()
    linears = {n: m for n, m in qmodel.named_modules() if isinstance(m, torch.nn.Linear)}
    for n, m in linears.items():
        if weights == "int4" and group_size and m.in_features % group_size:
            raise EdgekitError("bad_group_size", f"layer {n} has {m.in_features} inputs, not a multiple of "
                               f"group size {group_size}", fix="choose a --group-size that divides every layer's width")
    source = {n: m.weight.detach().clone() for n, m in linears.items()}
    bits = 4 if weights == "int4" else 8
    per_channel = bits == 8 or group_size == 0
    config = Int8DynamicActivationIntxWeightConfig(
        weight_dtype=torch.int4 if bits == 4 else torch.int8,
        weight_granularity=PerAxis(0) if per_channel else PerGroup(group_size))
    with torch.no_grad():
        quantize_(qmodel, config, filter_fn=lambda mod, fqn: isinstance(mod, torch.nn.Linear))
    rows = []
    for n, m in linears.items():
        w = source[n]
        stored = m.weight.dequantize()
        scales = w.shape[0] if per_channel else w.numel() // group_size
        levels = int(unique(w.numpy()).size)  # sort-safe: never NumPy's float16 sort
        # a clustered layer holds few distinct values: the ledger says what was asked of it
        requested = {"kind": "lut", "bits": int(np.ceil(np.log2(levels)))} if levels <= 256 else \
            {"kind": "dense", "bits": 32}
        packed = w.numel() * bits // 8 + scales * 4  # packed ints + one fp32 scale a group (int4) or row (int8)
        rows.append({
            "layer": n, "shape": list(w.shape), "requested": requested, "capability": "re-quantized",
            "encoded": {"kind": "re-quantized",
                        "format": f"int{bits} " + ("per channel" if per_channel else f"groups of {group_size}")
                        + ", int8 dynamic activations",
                        "max_abs_error": float((stored - w).abs().max()),
                        "rel_rms_error": float((stored - w).pow(2).mean().sqrt() / w.pow(2).mean().sqrt())},
            "expected_bytes": packed, "bytes_written": packed, "dense_bytes": w.numel() * 4,
        })
    return qmodel, rows


def weights_section(weights: str, group_size: int, rows: list[dict], file_bytes: int, fp32_file_bytes: int) -> dict:
    written, dense = sum(r["bytes_written"] for r in rows), sum(r["dense_bytes"] for r in rows)
    per_channel = weights == "int8" or group_size == 0
    return {"recipe": {"name": f"{weights}-weights", "hash": "per-channel" if per_channel else f"g{group_size}",
                       "document": {"weights": weights, "group_size": group_size}},
            "ledger": rows,
            "summary": {"layers": len(rows), "bytes_written": written, "dense_bytes": dense,
                        "expected_bytes": written, "ratio_to_dense": written / dense if dense else 1.0,
                        "decompressed_layers": [], "allowed_decompressed": False,
                        # the linear bytes are computed; the file's are measured, with what is not linear
                        "file_bytes": file_bytes, "fp32_file_bytes_estimate": fp32_file_bytes}}
