"""The manifest's compression ledger: per layer, what was asked for and what the artifact stores.

Each exporter declares ``capabilities`` (record kind -> native | decompressed |
rejected). The ledger row says the requested kind, the encoded kind, the bytes a
faithful encoding needs and the bytes written. An export whose recipe-compressed
layers take no fewer bytes than dense ones fails unless ``allow_decompressed``: the
compression would have been lost silently. A layer stored with more index bits (or a
bigger table) than its record asks for fails the export too, always (``compression_widened``):
the ledger reads the widths from the written artifact. Layers low-bit by design (DenseShift,
``record.architecture_records``) are listed too but not gated: no recipe asked for
them, and targets without an encoding keep them dense as before (the row says so).
"""

from __future__ import annotations

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.exporters.base import DECOMPRESSED, NATIVE, REJECTED
from edgekit.exporters.compression.record import compressed_layers, ledger_layers
from edgekit.targets import TARGETS

DENSE_BYTES = {"fp32": 4, "fp16": 2, "int8": 1}


# the opt-in re-quantizations that keep compressed layers small on targets without a table op (lossy, measured)
REQUANTIZE_FIX = {t.name: t.requantize_fix for t in TARGETS if t.requantize_fix}


class CompressionLost(EdgekitError):
    def __init__(self, target: str, written: int, dense: int, layers: list[str], fix: str | None = None):
        shown = ", ".join(layers[:6]) + (f" and {len(layers) - 6} more" if len(layers) > 6 else "")
        super().__init__(
            "compression_lost",
            f"{target} stores the compressed layers in {written:,} B, no fewer than dense ({dense:,} B): "
            f"it decompressed {shown}",
            fix=fix or ((f"{REQUANTIZE_FIX[target]}; or " if target in REQUANTIZE_FIX else "")
                        + "export to a target that stores this kind natively (see the capability table in "
                        "docs/compression.md; Core ML stores LUT, shift and sparse weights), or pass "
                        "--allow-decompressed (export(..., allow_decompressed=True)) to keep a dense artifact"),
            details={"target": target, "bytes_written": written, "dense_bytes": dense, "layers": layers},
        )


class CompressionWidened(EdgekitError):
    def __init__(self, target: str, rows: list[dict]):
        wide = [r["widened"] | {"layer": r["layer"]} for r in rows]
        shown = "; ".join(f"layer '{w['layer']}' asked {w['bits_requested']} bits, written {w['bits_written']}"
                          + (f" ({w['table_size']}-entry table)" if w.get("table_size") else "")
                          for w in wide[:4]) + (f"; and {len(wide) - 4} more" if len(wide) > 4 else "")
        super().__init__(
            "compression_widened",
            f"{target} stores {len(wide)} compressed layer(s) with more index bits than the recipe asked: {shown}",
            fix=WIDENED_FIX.get(target, "pick bits the target stores natively")
                + "; if the bits are already supported this is an encoder bug: report it with `edgekit doctor --json`",
            details={"target": target, "layers": wide})


# Why a target may widen, by target: the bits it can store.
WIDENED_FIX = {
    "coreml": "Core ML stores 1, 2, 4, 6 or 8-bit tables (3-bit from iOS18): use a recipe with one of those bits",
}


def widening(rec_bits: int | None, enc: dict) -> dict | None:
    """The bits asked and written when ``enc`` (a target's facts for one layer) is wider than asked, else None.

    ``index_bits_allowed`` is the width the target's layout uses for ``rec_bits`` (ONNX packs a 3-bit
    index in a 4-bit field by design); default: exactly the bits asked."""
    written, size = enc.get("index_bits"), enc.get("table_size")
    if rec_bits is None or written is None:
        return None
    allowed = enc.get("index_bits_allowed", rec_bits)
    if written > allowed or (size is not None and size > 2 ** rec_bits):
        out = {"bits_requested": rec_bits, "bits_written": written}
        if size is not None:
            out |= {"table_size": size, "table_size_requested": 2 ** rec_bits}
        return out
    return None


def check_capabilities(model, exporter) -> None:
    """Refuse before converting when the target rejects a recorded kind."""
    for name, (_, rec) in compressed_layers(model).items():
        if exporter.capabilities.get(rec.kind, REJECTED) == REJECTED:
            supported = [k for k, v in exporter.capabilities.items() if v != REJECTED]
            raise EdgekitError(
                "compression_rejected", f"target '{exporter.name}' cannot store '{rec.kind}' weights (layer '{name}')",
                fix=f"{exporter.name} takes: {', '.join(supported) or 'no compressed kinds'}; pick another target "
                    "or recipe",
                details={"target": exporter.name, "kind": rec.kind, "layer": name})


def build_ledger(model, exporter, result, stored: dict | None = None) -> list[dict]:
    """One row per compressed layer. Targets report per-layer encodings in ``result.info['weights']``;
    with ``stored`` (``file_ledger.match_file`` of the written file) the bytes are the file's."""
    encoded = result.info.get("weights", {})
    in_file = (stored or {}).get("layers", {})
    # the storage of weights left dense (a target can run int8 compute on some layers and keep others fp32)
    dense_format = result.info.get("dense_precision", result.precision)
    dense_width = DENSE_BYTES.get(dense_format, 4)
    rows = []
    for name, (module, rec) in ledger_layers(model).items():
        shape = tuple(module.weight.shape)
        numel = int(np.prod(shape))
        enc = encoded.get(name)
        if enc is not None and enc.get("encoded") == DECOMPRESSED:  # left dense by the target, with its reason
            row_enc = {"kind": DECOMPRESSED, "format": f"dense {dense_format}", "reason": enc.get("reason")}
            written = numel * dense_width
        elif enc is not None and enc.get("ops") != ["const"]:
            kind = enc.get("encoded", NATIVE)
            row_enc = {"kind": kind, "format": "+".join(enc["ops"]), "index_bits": enc.get("index_bits")}
            row_enc |= {k: enc[k] for k in ("tables", "table_size", "activations") if k in enc}
            if "error" in enc:
                row_enc["max_abs_error"] = enc["error"]
            written = int(enc["bytes"])
        else:
            row_enc = {"kind": DECOMPRESSED, "format": f"dense {dense_format}"}
            written = numel * dense_width
        copies = in_file.get(name)
        if copies is not None:  # what the file holds, every copy counted
            written = sum(c["bytes"] for c in copies)
            bits = min(c["bits_per_weight"] for c in copies)
            if row_enc["kind"] == DECOMPRESSED and bits <= 8.5:  # smaller in the file than any dense format
                row_enc = {"kind": "re-quantized", "format": "+".join(sorted({c["dtype"] for c in copies})),
                           "index_bits": round(bits)}
            row_enc["stored"] = [{"tensor": c["tensor"], "dtype": c["dtype"], "bytes": c["bytes"],
                                  "form": c["form"]} for c in copies]
        elif stored is not None and "layers" in stored:
            row_enc["stored"] = []  # not found in the file by value (e.g. rewritten by a converter pass)
        rows.append({
            "layer": name, "shape": list(shape),
            "requested": rec.to_json(),
            "capability": exporter.capabilities.get(rec.kind, REJECTED),
            "encoded": row_enc,
            "expected_bytes": rec.expected_bytes(shape),
            "dense_bytes": numel * dense_width,
            "bytes_written": written,
        })
        if row_enc["kind"] == NATIVE and (wide := widening(rec.bits, enc or {})):
            rows[-1]["widened"] = wide
    return rows


def compression_section(model, exporter, result, recipe=None, report=None, *, allow_decompressed: bool = False,
                        model_file=None) -> dict:
    from edgekit.exporters.compression.provenance import get_provenance

    stored = file_section(model, model_file) if model_file is not None else None
    ledger = build_ledger(model, exporter, result, stored)
    if widened := [r for r in ledger if "widened" in r]:  # never silent, even with allow_decompressed
        raise CompressionWidened(exporter.name, widened)
    section = {"recipe": None, "ledger": ledger}
    if stored is not None:
        section["file"] = {k: v for k, v in stored.items() if k != "layers"} | {
            "layer_bytes": {name: sum(c["bytes"] for c in copies) for name, copies in stored.get("layers", {}).items()},
            "duplicated_layers": sorted(n for n, c in stored.get("layers", {}).items() if len(c) > 1)}
    if recipe is not None:
        section["recipe"] = {"name": recipe.name, "hash": recipe.hash(), "document": recipe.to_dict()}
    prov = get_provenance(model)
    if prov is not None and prov.skipped:  # layers the recipe could not apply to: left dense, with the reason
        section["skipped"] = list(prov.skipped)
    from edgekit.exporters.compression.int8 import get_plan

    if (plan := get_plan(model)) is not None:  # calibration, sensitivity and fallback of an int8 recipe
        section["int8"] = plan.to_json()
    if not ledger:
        return section
    written = sum(r["bytes_written"] for r in ledger)
    dense = sum(r["dense_bytes"] for r in ledger)
    decompressed = [r["layer"] for r in ledger if r["encoded"]["kind"] == DECOMPRESSED]
    section["summary"] = {"layers": len(ledger), "bytes_written": written, "dense_bytes": dense,
                          "expected_bytes": sum(r["expected_bytes"] for r in ledger),
                          "ratio_to_dense": written / dense if dense else 1.0,
                          "measured_from_file": stored is not None and "layers" in stored,
                          "decompressed_layers": decompressed, "allowed_decompressed": allow_decompressed}
    raise_if_lost(exporter.name, ledger, allow_decompressed)
    return section


def raise_if_lost(target: str, ledger: list[dict], allow_decompressed: bool, fix: str | None = None) -> None:
    """``compression_lost`` when the layers a recipe compressed take no fewer bytes than dense, unless allowed.

    Classifier and LLM ledgers alike; ``fix`` replaces the classifier's advice (LLMs keep tables otherwise)."""
    gated = [r for r in ledger if r["requested"].get("origin", "recipe") == "recipe"]  # what a recipe asked for
    g_written, g_dense = (sum(r[key] for r in gated) for key in ("bytes_written", "dense_bytes"))
    if gated and g_written >= g_dense and not allow_decompressed:
        raise CompressionLost(target, g_written, g_dense,
                              [r["layer"] for r in gated if r["encoded"]["kind"] == DECOMPRESSED], fix=fix)


def file_section(model, model_file) -> dict:
    """The weight tensors of the written file mapped to layers by value; an unreadable file is reported,
    never fatal (the ledger then shows the exporter's own accounting)."""
    from edgekit.exporters.compression.file_ledger import match_file

    try:
        return match_file(model, model_file)
    except Exception as exc:  # noqa: BLE001 - reading back is a check; the export itself succeeded
        return {"error": f"{type(exc).__name__}: {exc}"[:400]}


def ledger_table(section: dict) -> str:
    """The ledger as a text table (for `edgekit inspect`)."""
    from edgekit.report import table

    rows = [[r["layer"], f"{r['requested']['kind']}/{r['requested']['bits'] or '-'}", r["capability"],
             r["encoded"]["kind"], r["encoded"]["format"], r["expected_bytes"], r["bytes_written"], r["dense_bytes"]]
            for r in section["ledger"]]
    text = table(["layer", "requested", "capability", "encoded", "format", "expected B", "written B", "dense B"],
                 rows)
    s = section.get("summary")
    if s:
        text += (f"\ntotal: {s['bytes_written']:,} B written vs {s['dense_bytes']:,} B dense "
                 f"({s['ratio_to_dense']:.3f}); decompressed layers: {len(s['decompressed_layers'])}")
    line = file_line(section)
    return text + ("\n" + line if line else "")


def file_line(section: dict) -> str:
    """One line on the weight tensors read back from the model file ('' when it was not read)."""
    f = section.get("file") or {}
    if "error" in f:
        return f"file: not read back ({f['error']})"
    if "weight_bytes" not in f:
        return ""
    return (f"file: {f['weight_bytes']:,} B of weight tensors, {f['matched_bytes']:,} B matched to layers by value; "
            f"stored twice: {', '.join(f['duplicated_layers']) or 'none'}; unmatched tensors: {len(f['unmatched'])}")
