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
        arrays = [tflite_dequantized(it, i) for i in sorted(consts)]
    elif target == "coreml":
        import coremltools as ct
        ml = ct.models.MLModel(str(path), skip_model_load=True)
        arrays = [m.val for m in ct.optimize.coreml.get_weights_metadata(ml, weight_threshold=0).values()]
    else:
        raise AssertionError(target)
    return [np.asarray(a) for a in arrays if np.asarray(a).ndim >= 2 and np.issubdtype(np.asarray(a).dtype, np.floating)]


def tflite_dequantized(it, index: int) -> np.ndarray:
    """A TFLite constant as the model computes with it: int8 (pow2_int8) times its per-channel scale."""
    value = it.get_tensor(index)
    q = next(t for t in it.get_tensor_details() if t["index"] == index)["quantization_parameters"]
    if value.dtype != np.int8 or not len(q["scales"]):
        return value
    assert not q["zero_points"].any()
    shape = [1] * value.ndim
    shape[q["quantized_dimension"]] = -1
    return value.astype(np.float32) * q["scales"].reshape(shape)


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    """denseshift_tiny exported once per (target, options) for this module's tests."""
    import edgekit

    spec = get_spec("denseshift_tiny")  # quantize_all: stem and head are shift layers too
    model = spec.build()
    done = {}

    def export(target: str, **options):
        key = (target, tuple(sorted(options.items())))
        if key not in done:
            out = tmp_path_factory.mktemp(target)
            done[key] = edgekit.export(model, spec.example_inputs(0), target, out, options=options, input_names=spec.input_names, dataset=spec.dataset,
                                       parity_samples=8, show_progress=False)
        return done[key]

    export.model = model
    return export


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
def test_every_exported_weight_is_pm_power_of_two(tiny_export, target):
    art = tiny_export(target)
    weights = artifact_weights(art)
    assert len(weights) == len(shift_layers(tiny_export.model))
    forms = [pow2_form(w) for w in weights]
    assert None not in forms, forms
    for w, form in zip(weights, forms):
        rows = [np.abs(w)] if form == "layer" else list(np.abs(w).reshape(w.shape[0], -1))
        assert all(len(np.unique(r)) <= 2 ** (3 - 1) for r in rows)  # at most 4 magnitudes at 3 bits


@pytest.mark.export
def test_tflite_stores_shift_weights_as_exact_int8(tiny_export):
    from ai_edge_litert.interpreter import Interpreter

    art = tiny_export("tflite")  # pow2_int8 on by default
    layers = shift_layers(tiny_export.model)
    assert len(art.manifest["target_info"]["pow2_int8_weights"]) == len(layers) == 13
    it = Interpreter(model_path=str(art.model_file))
    it.allocate_tensors()
    int8 = [t for t in it.get_tensor_details() if t["dtype"] == np.int8]
    assert len(int8) == 13
    for t in int8:  # every stored code is +-2^k (k <= 6), at most 4 magnitudes per output channel (3 bits)
        q = it.get_tensor(t["index"])
        assert set(np.unique(np.abs(q)).tolist()) <= {1, 2, 4, 8, 16, 32, 64}
        axis = t["quantization_parameters"]["quantized_dimension"]
        assert all(len(np.unique(np.abs(row))) <= 4 for row in np.moveaxis(q, axis, 0).reshape(q.shape[axis], -1))
    comp = art.manifest["compression"]
    assert {r["layer"] for r in comp["ledger"]} == set(layers)
    for row in comp["ledger"]:
        assert row["requested"]["origin"] == "architecture" and row["requested"]["bits"] == 3
        stored = row["encoded"].pop("stored")  # read back from the .tflite by value: one int8 copy
        assert [s["dtype"] for s in stored] == ["int8"] and stored[0]["bytes"] == row["bytes_written"]
        assert row["encoded"] == {"kind": "re-quantized", "format": "int8+DEQUANTIZE", "index_bits": 8,
                                  "max_abs_error": 0.0}
        numel, out_ch = np.prod(row["shape"]), row["shape"][0]
        assert row["bytes_written"] == numel + 4 * out_ch and row["dense_bytes"] == 4 * numel
    # int8 codes + fp32 per-channel scales: 78,752 B instead of 309,088 B of fp32 weights
    assert comp["summary"]["bytes_written"] == 78_752 and comp["summary"]["dense_bytes"] == 309_088
    parity = art.manifest["parity"]
    assert parity["ok"] and parity["metrics"]["top1"] == 1.0 and parity["metrics"]["max_abs_err"] < 1e-4


@pytest.mark.slow
@pytest.mark.export
def test_tflite_int8_weights_equal_the_fp32_export_bit_for_bit(tiny_export):
    from ai_edge_litert.interpreter import Interpreter

    packed, dense = tiny_export("tflite"), tiny_export("tflite", pow2_int8=False)
    assert packed.model_bytes < 0.4 * dense.model_bytes  # 113,256 vs 333,928 B
    assert not dense.manifest["target_info"].get("pow2_int8_weights")
    a, b = artifact_weights(packed), artifact_weights(dense)
    assert len(a) == len(b) == 13
    for x in a:  # every dequantized weight equals a float32 weight of the plain export exactly
        assert any(x.shape == y.shape and np.array_equal(x, y) for y in b)
    images = get_spec("denseshift_tiny").dataset(8)[0]
    outs = []
    for art in (packed, dense):
        it = Interpreter(model_path=str(art.model_file))
        it.allocate_tensors()
        inp, out = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
        got = []
        for x in images:
            it.set_tensor(inp, np.ascontiguousarray(x, np.float32))
            it.invoke()
            got.append(it.get_tensor(out).copy())
        outs.append(np.stack(got))
    np.testing.assert_array_equal(outs[0], outs[1])


@pytest.mark.export
def test_coreml_ios18_stores_shift_layers_as_exact_three_bit_tables(tiny_export):
    import coremltools as ct
    from coremltools.converters.mil.frontend.milproto.load import load as load_program
    from coremltools.converters.mil.mil import types

    art = tiny_export("coreml", minimum_deployment_target="iOS18")
    layers = shift_layers(tiny_export.model)
    comp = art.manifest["compression"]
    assert {r["layer"] for r in comp["ledger"]} == set(layers)
    for row in comp["ledger"]:
        stored = row["encoded"].pop("stored")  # read back from the package's weight blobs by value
        assert [s["dtype"] for s in stored] == ["constexpr_lut_to_dense"]
        assert row["encoded"] == {"kind": "native", "format": "constexpr_lut_to_dense", "index_bits": 3,
                                  "tables": 1, "table_size": 8}
        # 3-bit indices + an 8-entry fp16 table; the file's blob adds a few bytes of its own packing
        assert row["expected_bytes"] == -(-np.prod(row["shape"]) * 3 // 8) + 8 * 2
        assert row["bytes_written"] == sum(s["bytes"] for s in stored)
        assert row["expected_bytes"] <= row["bytes_written"] <= row["expected_bytes"] + 16
    assert comp["summary"]["bytes_written"] == sum(r["bytes_written"] for r in comp["ledger"])
    assert 29_185 <= comp["summary"]["bytes_written"] <= 29_185 * 1.02 and comp["summary"]["dense_bytes"] == 154_544
    path = str(art.model_file)
    spec = ct.utils.load_spec(path)
    prog = load_program(spec, specification_version=spec.specificationVersion,
                        file_weights_dir=path + "/Data/com.apple.CoreML/weights")
    luts = {op.name: op for op in prog.functions["main"].operations if op.op_type == "constexpr_lut_to_dense"}
    assert len(luts) == 13
    for name, layer in layers.items():
        op = luts["b_" + name.replace(".", "_") + "_weight_to_fp16_palettized"]
        assert types.builtin_to_string(op.indices.dtype) == "uint3"
        lut = op.lut.val.astype(np.float32).ravel()  # one table of 8 entries per tensor
        scale = np.float32(np.float16(layer.scale.item()))
        assert sorted((lut / scale).tolist()) == [-8, -4, -2, -1, 1, 2, 4, 8]  # exactly +-2^k x scale
        # every weight read back through its table equals the PyTorch weight (in fp16) exactly
        dense = lut[op.indices.val.astype(np.int64)]
        np.testing.assert_array_equal(dense, layer.weight.numpy().astype(np.float16).astype(np.float32))
    assert art.manifest["parity"]["ok"]


@pytest.mark.export
def test_coreml_before_ios18_keeps_shift_layers_dense(tiny_export):
    comp = tiny_export("coreml").manifest["compression"]  # default iOS17: no 3-bit tables
    assert len(comp["ledger"]) == 13
    assert all(r["encoded"]["format"] == "dense fp16" for r in comp["ledger"])
