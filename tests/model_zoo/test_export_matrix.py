"""Every registered ``*_tiny`` variant x every target: export with the parity gate on.

Core ML cannot predict off macOS, so there the pipeline's structural check stands
in for numeric parity (names, shapes, ops, weight encodings).
"""

from __future__ import annotations

import pytest

import edgekit
from edgekit.model_zoo import get_spec, list_models

TINY = list_models("*_tiny")


@pytest.mark.export
@pytest.mark.parametrize("target", edgekit.TARGETS)
@pytest.mark.parametrize("name", TINY)
def test_export_tiny(tmp_path, name, target):
    spec = get_spec(name)
    model = spec.build().eval()
    art = edgekit.export(model, spec.example_inputs(0), target, tmp_path / target, name=name,
                         input_names=spec.input_names, dataset=spec.dataset, parity_samples=8,
                         show_progress=False)
    parity = art.manifest["parity"]
    assert parity["ok"], parity
    if target == "coreml" and parity["mode"] == "structural":
        assert not parity["problems"] and parity["ops"] > 0
    else:
        assert parity["mode"] == "numeric" and parity["metrics"]["samples"] == 8
    assert art.model_bytes > 0
