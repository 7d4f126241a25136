"""Bare third-party-style .onnx files built with the onnx helper API (no downloads, no torch).

- ``detector``: input ``x`` [N, 3, H, W] (all symbolic), a 3x3 conv with 8 filters, ReLU, global average
  pool -> ``scores`` [N, 8]: real work that grows with H x W.
- ``vad``: silero-vad's interface: ``input`` float32 [B, T], ``state`` float32 [2, B, 16], ``sr`` int64 [1];
  like silero-vad it runs only at the rate it was built for (16000): other rates fail inside the runtime.
- ``unbound``: input ``x`` [?, 4] (a dimension with neither a value nor a name) and ``y`` [B, 4].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _save(graph, path: Path, opset: int = 17) -> Path:
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="thirdparty")
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def detector(path: Path) -> Path:
    from onnx import TensorProto as T
    from onnx import helper, numpy_helper

    w = np.random.default_rng(0).standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.1
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["p"]),
             helper.make_node("Flatten", ["p"], ["scores"])]
    graph = helper.make_graph(nodes, "detector",
                              [helper.make_tensor_value_info("x", T.FLOAT, ["N", 3, "H", "W"])],
                              [helper.make_tensor_value_info("scores", T.FLOAT, ["N", 8])],
                              initializer=[numpy_helper.from_array(w, "w")])
    return _save(graph, path)


def vad(path: Path) -> Path:
    """out = sum(input) / sr * 3 + mean(state); new_state = state / 2. Like silero-vad, a rate the model was not
    built for fails in the runtime: sr / 8000 is the size of a Reshape of a 2-element table, so only 16000
    (integer division: 16000..23999) runs; 0 would divide by zero, 1..7999 fail the Reshape."""
    from onnx import TensorProto as T
    from onnx import helper, numpy_helper

    pair = numpy_helper.from_array(np.array([1.0, 2.0], np.float32), "pair")
    eight = numpy_helper.from_array(np.array(8000, np.int64), "eight")
    half = numpy_helper.from_array(np.array(0.5, np.float32), "half")
    nodes = [
        helper.make_node("Div", ["sr", "eight"], ["k"]),                   # [1] int64
        helper.make_node("Reshape", ["pair", "k"], ["two"], allowzero=1),  # fails unless k == 2
        helper.make_node("ReduceSum", ["two"], ["scale"], keepdims=0),     # 3.0
        helper.make_node("ReduceSum", ["input"], ["s"], keepdims=1),       # [1, 1]
        helper.make_node("Cast", ["sr"], ["srf"], to=T.FLOAT),
        helper.make_node("Div", ["s", "srf"], ["a"]),
        helper.make_node("Mul", ["a", "scale"], ["b"]),
        helper.make_node("ReduceMean", ["state"], ["m"], keepdims=0),      # scalar
        helper.make_node("Add", ["b", "m"], ["output"]),
        helper.make_node("Mul", ["state", "half"], ["stateN"]),
    ]
    graph = helper.make_graph(
        nodes, "vad",
        [helper.make_tensor_value_info("input", T.FLOAT, ["B", "T"]),
         helper.make_tensor_value_info("state", T.FLOAT, [2, "B", 16]),
         helper.make_tensor_value_info("sr", T.INT64, [1])],
        [helper.make_tensor_value_info("output", T.FLOAT, [1, 1]),
         helper.make_tensor_value_info("stateN", T.FLOAT, [2, "B", 16])],
        initializer=[pair, eight, half])
    return _save(graph, path)


def unbound(path: Path) -> Path:
    from onnx import TensorProto as T
    from onnx import helper

    nodes = [helper.make_node("Add", ["x", "y"], ["z"])]
    graph = helper.make_graph(nodes, "unbound",
                              [helper.make_tensor_value_info("x", T.FLOAT, [None, 4]),
                               helper.make_tensor_value_info("y", T.FLOAT, ["B", 4])],
                              [helper.make_tensor_value_info("z", T.FLOAT, [None, 4])])
    return _save(graph, path)


def all_models(directory: Path) -> dict[str, Path]:
    return {"detector": detector(directory / "detector.onnx"), "vad": vad(directory / "vad.onnx"),
            "unbound": unbound(directory / "unbound.onnx")}
