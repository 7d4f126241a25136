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


def test_shift_codes_counts_the_weights_in_exact_shift_form(tmp_path):
    import onnx
    from onnx import helper, numpy_helper

    b = _bench()
    rng = np.random.default_rng(0)
    # 3-bit DenseShift weights: +-2^k, k in 0..3, times a per-output-channel scale (as after BatchNorm folding)
    shift = rng.choice([-8, -4, -2, -1, 1, 2, 4, 8], size=(6, 4, 3, 3)).astype(np.float32)
    shift[:, 0, 0, 0] = 8  # every channel reaches its peak code
    exact = shift * rng.uniform(0.01, 0.2, (6, 1, 1, 1)).astype(np.float32)
    dense = rng.normal(0, 0.1, (6, 6, 3, 3)).astype(np.float32)  # an ordinary float conv
    nodes = [helper.make_node("Conv", ["x", "w1"], ["h"], pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["h", "w2"], ["y"], pads=[1, 1, 1, 1])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4, 5, 5])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 6, 5, 5])],
                              [numpy_helper.from_array(exact, "w1"), numpy_helper.from_array(dense, "w2")])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    assert b.shift_codes(path) == {"weight_tensors": 2, "exact_shift_int8": 1}
    exact[0, 0, 1, 1] *= 1.01  # one code off the +-2^k grid: no longer exact
    graph.initializer[0].CopyFrom(numpy_helper.from_array(exact, "w1"))
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    assert b.shift_codes(path) == {"weight_tensors": 2, "exact_shift_int8": 0}


def _render_docs():
    spec = importlib.util.spec_from_file_location("render_docs", ROOT / "benchmarks" / "render_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cell(fp32_bytes, int8_bytes, speed, fastest=None, dense=None):
    lat = {"speedup_median": speed} | ({} if fastest is None else {"speedup_min_median": fastest})
    cell = {"accuracy_delta_points": 0.0, "bytes_ratio": int8_bytes / fp32_bytes, "latency": {"1": lat},
            "fp32": {"bytes": fp32_bytes, "file_bytes": {"weights": fp32_bytes}},
            "int8": {"bytes": int8_bytes, "file_bytes": {"weights": int8_bytes}}}
    if dense is not None:
        cell |= {"fp32_dense": {"bytes": dense, "file_bytes": {"weights": dense}}, "bytes_ratio_dense": int8_bytes / dense}
    return cell


def test_int8_acceptance_judges_bytes_against_dense_fp32_and_speed_on_both_ratios(monkeypatch):
    rd = _render_docs()
    shift = {"targets": {"executorch": _cell(400, 100, 3.0, 2.9), "tflite": _cell(101, 100, 9.0, 9.0, dense=400),
                         "onnx": _cell(101, 100, 2.5, 2.5, dense=400)}}
    slow = {"targets": {"executorch": _cell(400, 100, 3.0, 1.9), "tflite": _cell(400, 100, 9.0, 9.0),
                        "onnx": _cell(400, 100, 2.5)}}
    monkeypatch.setattr(rd, "_load", lambda name: {"models": {"denseshift_resnet18_digits": shift,
                                                              "vovnet19_slim_digits": slow}})
    rows = {tuple(c.strip() for c in line.split("|")[1:3]): line.split("|")[4].strip()
            for line in rd.int8_acceptance().splitlines()[3:]}
    # the shift model's TFLite/ONNX int8 files are ~1.0x its default fp32 artifact but 0.25x a dense fp32 one
    assert rows[("denseshift_resnet18_digits", "bytes <= 0.27x a dense fp32 file")] == "pass"
    assert rows[("denseshift_resnet18_digits", "1 thread >= 2x ET, ORT; >= 1.5x TFLite")] == "pass"
    # a p50 ratio over the bar does not pass when the fastest runs' ratio is under it (1.9x on ExecuTorch)
    assert rows[("vovnet19_slim_digits", "1 thread >= 2x ET, ORT; >= 1.5x TFLite")] == "**miss**"
    assert rows[("vovnet19_slim_digits", "accuracy within 0.5 points")] == "pass"
