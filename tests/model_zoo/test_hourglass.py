"""Hourglass MLP (ALGORITHMS.md §4.3): frozen stored lift, parameter formula, shape rules, identity at init."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgekit.errors import EdgekitError
from edgekit.model_zoo import get_spec
from edgekit.model_zoo.hourglass import HourglassConfig, HourglassMLP, cfgs, trainable_params


def test_lift_is_frozen_and_unchanged_by_training():
    model = HourglassMLP(HourglassConfig(**cfgs["hourglass_tiny"])).train()
    before = model.w_in.clone()
    assert not model.w_in.requires_grad and "w_in" not in dict(model.named_parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(8, 1, 8, 8)).square().mean().backward()
        opt.step()
    assert torch.equal(model.w_in, before)
    assert "w_in" in model.state_dict()  # stored with the weights, not regenerated


@pytest.mark.parametrize("name", sorted(cfgs))
def test_trainable_params_formula(name):
    cfg = HourglassConfig(**cfgs[name])
    w, h, L = cfg.width, cfg.d_h, cfg.depth
    per_block = (w * h + h) + (h * w + w) + 2 * w  # fc1, fc2, LayerNorm
    expected = L * per_block + 2 * w + w * cfg.d_out + cfg.d_out
    assert trainable_params(HourglassMLP(cfg)) == expected


def test_bottleneck_must_be_narrower_than_the_stream():
    with pytest.raises(EdgekitError, match="d_h < d_z"):
        HourglassConfig(**(cfgs["hourglass_tiny"] | {"d_h": 256}))
    with pytest.raises(EdgekitError, match="kind='pyramid' unknown"):
        HourglassConfig(**(cfgs["hourglass_tiny"] | {"kind": "pyramid"}))


def test_blocks_are_identity_at_init():
    model = HourglassMLP(HourglassConfig(**cfgs["hourglass_tiny"]))
    z = torch.randn(3, 128)
    torch.testing.assert_close(model.blocks(z), z)


@pytest.mark.export
def test_lift_is_a_constant_in_the_onnx_artifact(tmp_path):
    import onnx
    from onnx import numpy_helper

    import edgekit

    spec = get_spec("hourglass_tiny")
    model = spec.build()
    art = edgekit.export(model, spec.example_inputs(0), "onnx", tmp_path, parity_samples=8, show_progress=False)
    stored = [numpy_helper.to_array(t) for t in onnx.load(str(art.model_file)).graph.initializer]
    lift = model.w_in.numpy()
    assert any(a.shape == lift.shape and np.array_equal(a, lift) or a.shape == lift.T.shape
               and np.array_equal(a, lift.T) for a in stored)
