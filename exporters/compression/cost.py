"""The compression cost of an export: the artifact's outputs against the ORIGINAL model's.

Parity (``pipeline.check_parity``) compares the artifact with the model it was
converted from, the compressed one: that is conversion fidelity. This module runs
the original, uncompressed model on the same inputs and compares the artifact
with it: what compression cost, per output, with metrics that fit the output's
kind (``edgekit.loss``). Where the artifact cannot run here (Core ML on Linux)
the compressed PyTorch model stands in for it, and the record says so.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from edgekit.loss import CompressionCostError, LossLimit, cost_metrics, effective_limits, recipe_kinds, violations


def measure_cost(original, cases: list[tuple], outputs: list[list[np.ndarray]], names: Sequence[str],
                 kinds: Sequence[str], measured_on: str, recipe, user_limits: tuple[LossLimit, ...] | None) -> dict:
    """``outputs[i][j]``: output i of the artifact (or its stand-in) on ``cases[j]``."""
    from edgekit.exporters.pipeline import run_torch

    original.eval()  # as the pipeline does for the model it exports (BatchNorm must not update its statistics)
    refs: list[list[np.ndarray]] = [[] for _ in names]
    for case in cases:
        for i, r in enumerate(run_torch(original, case)):
            refs[i].append(r)
    per_output = {}
    for name, kind, ref, got in zip(names, kinds, refs, outputs):
        per_output[name] = {"name": name, "kind": kind} | cost_metrics(ref, [g.reshape(r.shape) for r, g in
                                                                             zip(ref, got)], kind)
    limits = effective_limits(names, kinds, recipe_kinds(recipe), user_limits)
    found = violations(limits, per_output)
    return {"reference": "original model (before compression)", "measured_on": measured_on,
            "recipe": getattr(recipe, "name", None), "per_output": list(per_output.values()),
            "limits": [lim.to_json() for lim in limits], "gate": user_limits is not None,
            "violations": found, "ok": not found}


def cost_gate(target: str, parity: dict) -> None:
    """Raise ``compression_cost`` when the cost exceeds its limits (the gate is on unless --max-loss off)."""
    from edgekit.report import cost_cell, parity_cell

    cost = parity.get("cost") or {}
    if cost.get("gate") and cost.get("violations"):
        kinds = {o["name"]: o["kind"] for o in cost["per_output"]}
        raise CompressionCostError(target, cost.get("recipe") or "?", cost["violations"], parity_cell(parity),
                                   cost_cell(parity), kinds)
