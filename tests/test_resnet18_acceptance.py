"""Acceptance: a ResNet-18 at 224x224 exported to all four targets, parity on 256 real inputs (slow)."""

from __future__ import annotations

import pytest

from conftest import needs_export

pytestmark = [needs_export, pytest.mark.slow]


def test_resnet18_all_targets_parity_on_256_inputs(tmp_path):
    from edgekit.exporters.pipeline import export_spec
    from edgekit.model_zoo import get_spec

    results = export_spec(get_spec("resnet18"), ("coreml", "executorch", "tflite", "onnx"), tmp_path,
                          parity_samples=256, show_progress=False)
    for target in ("executorch", "tflite", "onnx"):
        parity = results[target].manifest["parity"]
        assert parity["input_source"] == "dataset" and parity["metrics"]["samples"] == 256
        assert parity["metrics"]["cosine_min"] >= 0.99999, (target, parity["metrics"])
        assert parity["metrics"]["top1"] == 1.0, (target, parity["metrics"])
    coreml = results["coreml"].manifest
    assert coreml["parity"]["mode"] == "structural" and coreml["parity"]["ok"]
    assert coreml["target_info"]["structure"]["outputs"][0]["shape"] == [1, 1000]
