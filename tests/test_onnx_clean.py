"""ONNX artifacts ship without torch.onnx's per-node debug metadata: no stack traces, no source paths of the
exporting machine (classifier and LLM exports; the int8 path is covered in tests/compression/test_int8.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

onnx = pytest.importorskip("onnx")

import edgekit  # noqa: E402

CHECKOUT = str(Path(edgekit.__file__).resolve().parent.parent)


def _node_metadata(path: Path) -> int:
    proto = onnx.load(str(path))
    return sum(len(n.metadata_props) for n in proto.graph.node) + sum(1 for n in proto.graph.node if n.doc_string)


def test_classifier_onnx_has_no_debug_metadata_or_local_paths(tiny_artifacts):
    model = next(tiny_artifacts["onnx"].glob("*.onnx"))
    assert _node_metadata(model) == 0
    assert CHECKOUT.encode() not in model.read_bytes()
    assert b"stack_trace" not in model.read_bytes()


def test_llm_onnx_has_no_debug_metadata_or_local_paths(tiny_llm_artifacts):
    files = sorted(tiny_llm_artifacts["onnx"].glob("*.onnx"))
    assert len(files) >= 2  # prefill and decode
    for f in files:
        assert _node_metadata(f) == 0, f.name
        assert CHECKOUT.encode() not in f.read_bytes(), f.name


def test_strip_reaches_subgraphs():
    from onnx import helper

    from edgekit.exporters.onnx.clean import strip_debug_metadata

    inner = helper.make_node("Identity", ["x"], ["y"], doc_string="inner")
    helper.set_metadata_props(inner, {"pkg.torch.onnx.stack_trace": "/home/someone/model.py"})
    body = helper.make_graph([inner], "body", [], [])
    outer = helper.make_node("If", ["c"], ["z"], then_branch=body, else_branch=body, doc_string="outer")
    helper.set_metadata_props(outer, {"namespace": "m"})
    model = helper.make_model(helper.make_graph([outer], "g", [], []))
    strip_debug_metadata(model)
    assert b"/home/someone" not in model.SerializeToString()
    assert b"inner" not in model.SerializeToString() and not model.graph.node[0].doc_string
