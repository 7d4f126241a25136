"""benchmarks/int8.py's bookkeeping: top-1 changes vs fp32 and the merge of runs into the results file."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("int8_bench", ROOT / "benchmarks" / "int8.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_agreement_counts_changed_top1_both_ways_with_their_fp32_margins():
    b = _bench()
    fp32 = np.array([[3.0, 0.0, 0.0], [1.0, 0.98, 0.0], [0.0, 2.0, 1.9], [0.0, 0.0, 5.0]], np.float32)
    int8 = np.array([[2.9, 0.1, 0.0], [0.97, 1.0, 0.0], [0.0, 1.8, 1.95], [0.1, 0.0, 4.8]], np.float32)
    y = np.array([0, 1, 1, 2])  # image 1: int8 fixes it; image 2: int8 breaks it
    a = b.agreement(fp32, int8, y)
    assert (a["fp32_accuracy"], a["int8_accuracy"]) == (0.75, 0.75)
    assert (a["flips_vs_fp32"], a["fixed"], a["broken"]) == (2, 1, 1)
    np.testing.assert_allclose(a["flipped_fp32_margins"], [0.02, 0.1], atol=1e-6)
    assert abs(a["median_fp32_margin"] - 1.55) < 1e-6


def test_merge_keeps_other_models_and_replaces_the_rerun_ones(tmp_path):
    b = _bench()
    out = tmp_path / "r.json"
    first = {"command": "a", "machine_before": {}, "machine_after": {},
             "models": {"m1": {"v": 1}, "m2": {"v": 1}}}
    out.write_text(json.dumps(b.merge(out, first)))
    second = {"command": "b", "machine_before": {}, "machine_after": {}, "models": {"m2": {"v": 2}}}
    merged = b.merge(out, second)
    assert merged["models"] == {"m1": {"v": 1}, "m2": {"v": 2}}
    assert [r["command"] for r in merged["runs"]] == ["a", "b"]
    out.write_text(json.dumps(merged))
    again = b.merge(out, {"command": "c", "machine_before": {}, "models": {"m1": {"v": 3}, "m2": {"v": 3}}})
    assert [r["command"] for r in again["runs"]] == ["c"]  # both earlier runs superseded
