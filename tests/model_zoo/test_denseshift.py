"""DenseShift: zero-free +-2^k weights, the sign-scale decomposition, STE gradients, exported weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgekit.errors import EdgekitError
from edgekit.model_zoo import get_spec
from edgekit.model_zoo.denseshift import (DenseShiftConfig, ShiftConv2d, ShiftLinear, cfgs, shift_exponent,
                                          shift_layers, shift_weight)


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_weight_set_is_zero_free_powers_of_two(bits):
    torch.manual_seed(bits)
    layer = ShiftConv2d(16, 32, 3, bits=bits)
    for p in (layer.weight_sign, layer.weight_scale):
        torch.nn.init.normal_(p)  # spread the latents so every code shows up
    layer.eval()
    mags = (layer.weight / layer.scale).abs().unique()
    assert sorted(mags.tolist()) == [2.0**k for k in range(2 ** (bits - 1))]  # all 2^(b-1) magnitudes, no 0
    sign, S = layer.codes()
    assert set(sign.unique().tolist()) == {-1.0, 1.0}
    torch.testing.assert_close(layer.weight, layer.scale * sign * 2.0**S)


def test_scale_chain_is_the_trailing_run_of_ones():
    # (B_1, B_2, B_3) -> S: trailing run of ones (ALGORITHMS.md §3.2)
    cases = {(1, 1, 1): 3, (0, 1, 1): 2, (1, 0, 1): 1, (1, 1, 0): 0, (0, 0, 1): 1, (0, 0, 0): 0}
    for bits, want in cases.items():
        lat = torch.tensor([[1.0 if b else -1.0] for b in bits])
        assert shift_exponent(lat).item() == want


def test_zero_latents_map_to_zero_and_plus_one():
    sign = torch.zeros(1)
    scale = torch.zeros(3, 1)
    assert shift_weight(sign, scale).item() == 1.0  # bin+-(0) = +1, bin01(0) = 0 -> S = 0


def test_backward_uses_sqrt_surrogate_and_reaches_all_latents():
    sign = torch.tensor([0.5, -0.5], requires_grad=True)
    scale = torch.tensor([[0.3, 0.3], [0.2, -0.2], [0.1, -0.1]], requires_grad=True)  # S = 3 and S = 0
    w = shift_weight(sign, scale)
    assert w.tolist() == [8.0, -1.0]
    w.sum().backward()
    # d w / d sign-latent = sqrt(S + 1): 2 for S=3, 1 for S=0
    torch.testing.assert_close(sign.grad, torch.tensor([2.0, 1.0]))
    assert (scale.grad != 0).any(dim=1).all()


def test_training_mode_matches_deployed_weight_and_latents_get_gradients():
    layer = ShiftLinear(12, 5, bits=3)
    x = torch.randn(4, 12)
    layer.train()
    y = layer(x)
    y.square().sum().backward()
    assert layer.weight_sign.grad.abs().sum() > 0 and layer.weight_scale.grad.abs().sum() > 0
    layer.eval()
    torch.testing.assert_close(layer(x), y.detach())


def test_low_variance_init():
    layer = ShiftConv2d(64, 64, 3)
    assert layer.weight_sign.std().item() == pytest.approx(1e-3, rel=0.1)
    assert layer.weight_scale.std().item() == pytest.approx(1e-3, rel=0.1)


def test_state_dict_round_trip_refreshes_the_deployed_weight():
    a, b = ShiftConv2d(4, 4, 3).eval(), ShiftConv2d(4, 4, 3).eval()
    with torch.no_grad():
        a.weight_sign.normal_()
    a.train().eval()
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.weight, b.weight)


def test_bad_bits_names_the_choices():
    with pytest.raises(EdgekitError, match=r"bits=5 unsupported; choose one of \(2, 3, 4\)"):
        DenseShiftConfig(**(cfgs["denseshift_tiny"] | {"bits": 5}))


# ---- every weight of every exported artifact is exactly +-2^k times a scale


def pow2_form(w: np.ndarray) -> str | None:
    """"layer" if w = scale * +-2^k for one scale, "channel" if one scale per output channel, else None.

    A converter that folds the following BatchNorm into the conv multiplies each
    output channel by one factor, so the per-channel form is what a folded
    artifact can keep. Multiplying by 2^k is exact in binary floating point.
    """
    a = np.abs(w.astype(np.float64))
    if (a == 0).any():
        return None

    def exact(arr):
        r = np.log2(arr / arr.min())
        return bool(np.all(r == np.round(r)))

    if exact(a):
        return "layer"
    rows = a.reshape(a.shape[0], -1)
    return "channel" if all(exact(r) for r in rows) else None


def artifact_weights(art) -> list[np.ndarray]:
    """The conv/linear weight tensors (rank >= 2, float) stored in an artifact."""
    path, target = art.model_file, art.target
    if target == "onnx":
        import onnx
        from onnx import numpy_helper
        graph = onnx.load(str(path)).graph
        inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        arrays = [v for k, v in inits.items() if v.dtype.kind == "f" and not k.endswith("_scale")]
        for node in graph.node:  # int8 weights (pow2_int8): the value the model computes with
            if node.op_type == "DequantizeLinear" and node.input[0] in inits:
                q, scale = inits[node.input[0]], inits[node.input[1]]
                axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
                shape = [1] * q.ndim
                shape[axis] = -1
                arrays.append(q.astype(np.float32) * scale.reshape(shape))
    elif target == "tflite":
        from ai_edge_litert.interpreter import Interpreter
        it = Interpreter(model_path=str(path))
        it.allocate_tensors()
        # Constants: op inputs that no op produces and that are not graph inputs.
        ops = it._get_ops_details()
        produced = {int(i) for op in ops for i in op["outputs"]} | {d["index"] for d in it.get_input_details()}
        consts = {int(i) for op in ops for i in op["inputs"] if int(i) >= 0} - produced
        arrays = [it.get_tensor(i) for i in sorted(consts)]
    elif target == "coreml":
        import coremltools as ct
        ml = ct.models.MLModel(str(path), skip_model_load=True)
        arrays = [m.val for m in ct.optimize.coreml.get_weights_metadata(ml, weight_threshold=0).values()]
    else:
        raise AssertionError(target)
    return [np.asarray(a) for a in arrays if np.asarray(a).ndim >= 2 and np.issubdtype(np.asarray(a).dtype, np.floating)]


@pytest.mark.export
def test_onnx_stores_shift_weights_as_exact_int8(tmp_path):
    import edgekit
    import onnx
    from onnx import numpy_helper

    spec = get_spec("denseshift_tiny")
    model = spec.build()
    args = dict(input_names=spec.input_names, dataset=spec.dataset, parity_samples=8, show_progress=False)
    packed = edgekit.export(model, spec.example_inputs(0), "onnx", tmp_path / "int8", **args)
    dense = edgekit.export(model, spec.example_inputs(0), "onnx", tmp_path / "f32",
                           options={"pow2_int8": False}, **args)
    converted = packed.manifest["target_info"]["pow2_int8_weights"]
    assert len(converted) == len(shift_layers(model))
    graph = onnx.load(str(packed.model_file)).graph
    int8 = [numpy_helper.to_array(t) for t in graph.initializer if t.name.endswith("_int8")]
    assert len(int8) == len(converted) and all(a.dtype == np.int8 for a in int8)
    assert all(set(np.unique(np.abs(a))) <= {1, 2, 4, 8, 16, 32, 64} for a in int8)
    assert packed.model_bytes < 0.5 * dense.model_bytes  # weights at 1 byte instead of 4
    assert packed.manifest["parity"]["ok"] and packed.manifest["parity"]["metrics"]["top1"] == 1.0


@pytest.mark.export
@pytest.mark.parametrize("target", ["onnx", "tflite", "coreml"])
def test_every_exported_weight_is_pm_power_of_two(tmp_path, target):
    import edgekit

    spec = get_spec("denseshift_tiny")  # quantize_all: stem and head are shift layers too
    model = spec.build()
    art = edgekit.export(model, spec.example_inputs(0), target, tmp_path, input_names=spec.input_names,
                         dataset=spec.dataset, parity_samples=8, show_progress=False)
    weights = artifact_weights(art)
    assert len(weights) == len(shift_layers(model))
    forms = [pow2_form(w) for w in weights]
    assert None not in forms, forms
    for w, form in zip(weights, forms):
        rows = [np.abs(w)] if form == "layer" else list(np.abs(w).reshape(w.shape[0], -1))
        assert all(len(np.unique(r)) <= 2 ** (3 - 1) for r in rows)  # at most 4 magnitudes at 3 bits
