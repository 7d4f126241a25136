"""LLM exports take their per-target options from the exporters' options dataclasses (no option hard-coded)."""

from __future__ import annotations

import pytest

from edgekit.errors import EdgekitError
from edgekit.exporters.llm_options import llm_fields, llm_options


def test_llm_defaults_come_from_the_options_dataclasses():
    assert llm_options("onnx").opset == 18
    coreml = llm_options("coreml")
    assert (coreml.minimum_deployment_target, coreml.compute_precision) == ("iOS18", "fp16")
    assert llm_options("executorch").delegate == "xnnpack"
    assert list(llm_fields("tflite")) == [] and list(llm_fields("onnx")) == ["opset"]
    assert llm_options("onnx", {"opset": 21}).opset == 21


def test_options_an_llm_export_does_not_take_are_refused_by_name():
    with pytest.raises(EdgekitError, match="onnx option\\(s\\) lut_encoding do not apply to LLM exports; they take "
                                           "opset") as e:
        llm_options("onnx", {"lut_encoding": "uint4"})
    assert e.value.code == "option_not_for_llm"
    with pytest.raises(EdgekitError, match="opset 30 outside the supported range 17..23"):
        llm_options("onnx", {"opset": 30})


def test_export_llm_flags_are_generated_with_llm_defaults():
    from edgekit.cli import build_parser
    from edgekit.cli.target_flags import target_options
    from edgekit.targets import LLM, names_with

    args = build_parser().parse_args(["export-llm", "ckpt", "--onnx-opset", "20", "--coreml-precision", "fp32"])
    assert target_options(args, names_with(LLM), llm=True) == {
        "coreml": {"minimum_deployment_target": "iOS18", "compute_precision": "fp32"},
        "executorch": {"delegate": "xnnpack"}, "tflite": {}, "onnx": {"opset": 20}}
    with pytest.raises(SystemExit):  # an option LLM exports do not take is not a flag of export-llm
        build_parser().parse_args(["export-llm", "ckpt", "--onnx-lut-encoding", "uint4"])
