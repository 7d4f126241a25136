"""Recipe kind int8: config, calibration sources, native int8 per target, sensitivity and fallback, CLI."""

import json

import numpy as np
import pytest

from edgekit.errors import EdgekitError


def test_int8_config_is_validated_and_round_trips():
    from edgekit.exporters.compression import Recipe, Step, get_preset
    from edgekit.exporters.compression.int8 import Int8Config

    with pytest.raises(EdgekitError, match="observer = 'kl' is invalid; valid: minmax, percentile, mse, entropy"):
        Int8Config(observer="kl")
    with pytest.raises(EdgekitError, match="calibration_samples"):
        Int8Config(calibration_samples=0)
    with pytest.raises(EdgekitError, match="int8/uint8 I/O needs activations='static'"):
        Int8Config(activations="dynamic", io="int8")
    r = Recipe("mine", (Step(default=Int8Config(observer="percentile", max_loss=("top1_flip=0.01",))),))
    assert Recipe.from_json(r.to_json()) == r
    assert get_preset("int8_dynamic").steps[0].default.activations == "dynamic"


def test_parse_max_loss_accepts_the_agreed_syntax_and_names_the_metrics():
    from edgekit.exporters.compression.int8 import parse_max_loss

    assert parse_max_loss(["top1_flip=0.01", "logits:rel_l2=0.05", "cos_loss=2e-3"]) == [
        (None, "top1_flip", 0.01), ("logits", "rel_l2", 0.05), (None, "cos_loss", 0.002)]
    with pytest.raises(EdgekitError, match="choose one of top1_flip, cos_loss, rel_l2"):
        parse_max_loss(["accuracy=0.5"])
    with pytest.raises(EdgekitError, match="bad_max_loss"):
        parse_max_loss(["cos_loss"])


def test_calibration_from_npz_folder_iterable_and_a_wrong_shape(tmp_path, tiny_spec):
    from PIL import Image

    from edgekit.exporters.compression.calibration import resolve

    examples = tiny_spec.example_inputs(0)                                   # (1, 3, 32, 32)
    x = np.random.default_rng(0).standard_normal((10, 3, 32, 32)).astype(np.float32)
    np.savez(tmp_path / "cal.npz", image=x)                                   # no batch axis per sample
    samples, source = resolve(str(tmp_path / "cal.npz"), examples, 6)
    assert len(samples) == 6 and samples[0][0].shape == (1, 3, 32, 32) and source == "cal.npz"
    np.testing.assert_array_equal(samples[5][0][0], x[5])
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        Image.fromarray((np.arange(64 * 48).reshape(48, 64) * (i + 1) % 256).astype(np.uint8)).save(folder / f"{i}.png")
    samples, _ = resolve(str(folder), examples, 8)
    assert len(samples) == 3 and samples[0][0].shape == (1, 3, 32, 32) and samples[0][0].dtype == np.float32
    samples, source = resolve((s for s in x[:4]), examples, 8)
    assert len(samples) == 4 and source == "iterable (4 samples)"
    np.savez(tmp_path / "bad.npz", x[:, :, :16, :16])
    with pytest.raises(EdgekitError, match=r"expected 1 input\(s\) of shape \[1, 3, 32, 32\] float32") as err:
        resolve(str(tmp_path / "bad.npz"), examples, 4)
    assert err.value.code == "calibration_mismatch" and err.value.details["expected"] == [[1, 3, 32, 32]]


def test_percentile_observer_takes_the_percentile_over_all_calibration_values():
    """Batch-1 calibration with growing ranges: the range is the percentile of every value seen (histogram,
    re-binned as the range widens), not a mean of per-batch percentiles (which clips half the samples)."""
    import torch

    from edgekit.exporters.compression.int8_pt2e import percentile_observer

    obs = percentile_observer(99.9)(dtype=torch.quint8)
    rng = np.random.default_rng(0)
    seen = []
    for i in range(50):
        x = np.maximum(rng.standard_normal(4000) * (1 + i / 10), 0).astype(np.float32)  # ReLU-like, widening
        seen.append(x)
        obs(torch.from_numpy(x))
    seen = np.concatenate(seen)
    want = np.percentile(seen, 99.9)                                # 14.38; the mean of per-batch ones: 10.5
    assert float(obs.min_val) == 0.0 and abs(float(obs.max_val) - want) < 0.005 * want
    assert float(obs.max_val) < 0.7 * seen.max()


def _file_int8_bytes(target: str, path) -> int:
    """int8 weight bytes counted independently from the written file."""
    if target == "onnx":
        import onnx

        proto = onnx.load(str(path / "model.onnx"))
        return sum(int(np.prod(i.dims)) for i in proto.graph.initializer
                   if i.data_type == onnx.TensorProto.INT8 and len(i.dims) >= 2)
    from ai_edge_litert import schema_py_generated as fb

    m = fb.ModelT.InitFromPackedBuf((path / "model.tflite").read_bytes(), 0)
    sg = m.subgraphs[0]
    return sum(len(m.buffers[t.buffer].data) for t in sg.tensors
               if t.type == fb.TensorType.INT8 and len(t.shape) >= 2 and m.buffers[t.buffer].data is not None)


@pytest.mark.parametrize("target", ["onnx", "tflite", "executorch"])
def test_int8_export_of_a_tiny_cnn_is_native_int8_within_int8_tolerance(tmp_path, tiny_spec, tiny_model, target):
    from edgekit.exporters.compression import Recipe, Step, compress
    from edgekit.exporters.compression.int8 import Int8Config
    from edgekit.exporters.pipeline import export_model

    recipe = Recipe("int8_small", (Step(default=Int8Config(calibration_samples=32, sensitivity=False)),))
    cal = tiny_spec.dataset(96)[0][48:]                      # held-out digits not used for parity
    new, _ = compress(tiny_model, recipe, data=cal)
    art = export_model(new, tiny_spec.example_inputs(0), target, tmp_path / target, dataset=tiny_spec.dataset,
                       parity_samples=16, show_progress=False, recipe=recipe)
    m = art.manifest
    assert m["precision"] == "int8_static" and m["parity"]["ok"]
    assert m["parity"]["metrics"]["cosine_min"] >= 0.99 and m["parity"]["metrics"]["top1"] >= 0.9
    rows = m["compression"]["ledger"]
    assert len(rows) == 13 and all(r["encoded"]["kind"] == "native" and r["encoded"]["index_bits"] == 8
                                   for r in rows), [r["encoded"] for r in rows]
    weights = sum(r["shape"][0] * int(np.prod(r["shape"][1:])) for r in rows)   # 77,280 int8 values
    assert m["compression"]["summary"]["ratio_to_dense"] < 0.27
    assert all(r["bytes_written"] >= np.prod(r["shape"]) for r in rows)
    if target != "executorch":  # the ledger's int8 bytes are the ones in the file
        assert _file_int8_bytes(target, art.path) == weights
    if target == "onnx":  # no exporter debug metadata (stack traces, module paths) left in the QDQ file
        import onnx

        proto = onnx.load(str(art.path / "model.onnx"))
        assert not any(n.metadata_props or n.doc_string for n in proto.graph.node)
    assert m["compression"]["int8"]["calibration"] == {"source": "arrays (48 samples)", "samples": 32}


def _sensitive_mlp():
    """fc2 holds one huge weight per row on an input that is always 0: fp32 ignores it, int8 loses the row."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 32), torch.nn.ReLU(),
                                torch.nn.Linear(32, 10)).eval()
    with torch.no_grad():
        model[0].weight[0] = 0.0
        model[0].bias[0] = -1.0          # relu(-1) = 0: fc2's input 0 is always zero
        model[2].weight[:, 0] = 500.0    # the outlier sets every channel's int8 scale
    return model


def _artifact_cost(art, model, samples):
    import torch

    from edgekit import runtime
    from edgekit.exporters.compression.int8 import cost

    session = runtime.load(art.path)
    with torch.no_grad():
        ref = [model(torch.from_numpy(s[0])).numpy() for s in samples]
    return cost(ref, [session.run([s[0]])[0] for s in samples])


def test_sensitivity_finds_the_one_sensitive_layer_and_fallback_keeps_exactly_it(tmp_path):
    from edgekit.exporters.compression import Recipe, Step, compress
    from edgekit.exporters.compression.int8 import Int8Config, get_plan, prepare_export
    from edgekit.exporters.pipeline import export_model

    model = _sensitive_mlp()
    x = np.random.default_rng(1).standard_normal((96, 1, 16)).astype(np.float32)
    limit = "cos_loss=0.002"
    base = Recipe("all", (Step(default=Int8Config(calibration_samples=64)),))
    mixed = Recipe("mixed", (Step(default=Int8Config(calibration_samples=64, max_loss=(limit,))),))
    all_int8, _ = compress(model, base, data=x[:64])
    new, _ = compress(model, mixed, data=x[:64])
    plan = prepare_export(new, (x[0],))
    ranked = sorted(plan.sensitivity, key=lambda r: -r["costs"]["output_0"]["cos_loss"])
    assert ranked[0]["layer"] == "2" and ranked[0]["costs"]["output_0"]["cos_loss"] > 0.05
    assert ranked[1]["costs"]["output_0"]["cos_loss"] < 0.002
    assert list(plan.keep_fp32) == ["2"] and "sensitivity" in plan.keep_fp32["2"]
    assert plan.fallback["costs"]["output_0"]["cos_loss"] <= 0.002 < plan.fallback["all_int8_costs"]["output_0"][
        "cos_loss"]
    held_out = [(x[i],) for i in range(64, 96)]
    with pytest.raises(EdgekitError, match="compression_cost"):  # the default int8 gate (cos_loss 0.01) refuses it
        export_model(all_int8, (x[0],), "onnx", tmp_path / "gated", parity_gate=False, show_progress=False)
    assert not (tmp_path / "gated").exists()
    a_all = export_model(all_int8, (x[0],), "onnx", tmp_path / "all", parity_gate=False, show_progress=False,
                         max_loss="off")
    a_mix = export_model(new, (x[0],), "onnx", tmp_path / "mix", show_progress=False, recipe=mixed)
    assert _artifact_cost(a_all, model, held_out)["cos_loss"] > 0.002        # all int8 misses the limit
    assert _artifact_cost(a_mix, model, held_out)["cos_loss"] <= 0.002       # the fallback meets it
    rows = {r["layer"]: r for r in a_mix.manifest["compression"]["ledger"]}
    assert rows["2"]["encoded"]["kind"] == "decompressed" and "max-loss" in rows["2"]["encoded"]["reason"]
    assert rows["0"]["encoded"]["kind"] == rows["4"]["encoded"]["kind"] == "native"
    assert get_plan(new).to_json()["fallback"]["keep_fp32"] == ["2"]
    assert a_mix.manifest["compression"]["int8"]["keep_fp32"] == {"2": plan.keep_fp32["2"]}
    try:
        import matplotlib  # noqa: F401  (bench extra)
    except ImportError:
        return
    assert (a_mix.path / "int8_sensitivity.png").stat().st_size > 1000


def test_cli_export_with_int8_recipe_and_calibration_file(tmp_path, capsys, tiny_spec):
    from edgekit.cli import main

    x = tiny_spec.dataset(80)[0][40:, 0]
    np.savez(tmp_path / "cal.npz", x)
    np.savez(tmp_path / "bad.npz", x[:, :1])
    out = tmp_path / "e"
    assert main(["export", "resnet_tiny", "--recipe", "int8", "--calibration", str(tmp_path / "cal.npz"),
                 "--target", "onnx", "--out", str(out), "--parity-samples", "8"]) == 0
    manifest = json.loads((out / "resnet_tiny" / "onnx" / "manifest.json").read_text())
    assert manifest["precision"] == "int8_static" and manifest["compression"]["int8"]["calibration"] == {
        "source": "cal.npz", "samples": 40}
    assert len(manifest["compression"]["int8"]["sensitivity"]) == 13
    capsys.readouterr()
    assert main(["export", "resnet_tiny", "--recipe", "int8", "--calibration", str(tmp_path / "bad.npz"),
                 "--target", "onnx", "--out", str(tmp_path / "b")]) == 1
    assert "calibration_mismatch" in capsys.readouterr().err and not (tmp_path / "b" / "resnet_tiny" / "onnx").exists()
    assert main(["export", "resnet_tiny", "--recipe", "palettize4", "--calibration", str(tmp_path / "cal.npz"),
                 "--target", "onnx", "--out", str(tmp_path / "p")]) == 2
    assert "needs_int8_recipe" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("io", ["uint8", "int8"])
def test_tflite_int8_io_on_request_runs_from_float_arrays(tmp_path, tiny_spec, tiny_model, io):
    from ai_edge_litert.interpreter import Interpreter

    from edgekit.exporters.compression import Recipe, Step, compress
    from edgekit.exporters.compression.int8 import Int8Config
    from edgekit.exporters.pipeline import export_model

    recipe = Recipe("io", (Step(default=Int8Config(io=io, sensitivity=False, calibration_samples=32)),))
    new, _ = compress(tiny_model, recipe)
    art = export_model(new, tiny_spec.example_inputs(0), "tflite", tmp_path / io, dataset=tiny_spec.dataset,
                       parity_samples=8, show_progress=False)
    interp = Interpreter(str(art.path / "model.tflite"))
    assert interp.get_input_details()[0]["dtype"] == np.dtype(io) == interp.get_output_details()[0]["dtype"]
    assert art.manifest["parity"]["ok"] and art.manifest["parity"]["metrics"]["cosine_min"] > 0.999


@pytest.mark.slow
def test_coreml_int8_stores_8_bit_linear_weights(tmp_path, tiny_spec, tiny_model):
    from edgekit.exporters.compression import Recipe, Step, compress
    from edgekit.exporters.compression.int8 import Int8Config
    from edgekit.exporters.pipeline import export_model

    new, _ = compress(tiny_model, Recipe("w8", (Step(default=Int8Config(sensitivity=False)),)))
    art = export_model(new, tiny_spec.example_inputs(0), "coreml", tmp_path / "cm", dataset=tiny_spec.dataset,
                       show_progress=False)
    rows = art.manifest["compression"]["ledger"]
    assert all("constexpr_affine_dequantize" in r["encoded"]["format"] for r in rows)
    assert art.manifest["target_info"]["structure"]["weight_encodings"]["constexpr_affine_dequantize"] == 13


def test_shift_weights_stay_exact_under_int8_and_coreml_refuses_the_combination(tmp_path):
    import torch

    from edgekit.exporters.compression import compress
    from edgekit.exporters.compression.int8_pt2e import exact_weight_observer
    from edgekit.exporters.pipeline import export_model
    from edgekit.model_zoo import get_spec

    spec = get_spec("denseshift_tiny")
    new, _ = compress(spec.build(), "int8")
    w = new.layers[0].conv1.weight * torch.linspace(0.5, 2.0, 8)[:, None, None, None]  # BatchNorm-folded form
    obs = exact_weight_observer()(dtype=torch.qint8, qscheme=torch.per_channel_symmetric, ch_axis=0)
    obs(w)
    scale, zero = obs.calculate_qparams()
    q = w / scale[:, None, None, None]
    assert torch.equal(q, q.round()) and q.abs().max() == 64 and not zero.any()       # exact int8 for XNNPACK/TFLite
    art = export_model(new, spec.example_inputs(0), "onnx", tmp_path / "o", dataset=spec.dataset,
                       parity_samples=8, show_progress=False)
    rows = {r["layer"]: r for r in art.manifest["compression"]["ledger"]}
    assert len(rows) == 13 and all(r["encoded"].get("max_abs_error") == 0.0 for r in rows.values())
    with pytest.raises(EdgekitError, match="target 'coreml' cannot run shift weights as exact int8"):
        export_model(new, spec.example_inputs(0), "coreml", tmp_path / "c", show_progress=False)
    assert not (tmp_path / "c").exists()
