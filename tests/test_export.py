"""The export pipeline: artifacts, manifests, parity on real data, failure leaves nothing behind."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import needs_export
from edgekit.artifact import load_artifact, sha256_of

pytestmark = needs_export


@pytest.mark.parametrize("target", ["coreml", "executorch", "tflite", "onnx"])
def test_manifest_describes_the_artifact(tiny_artifacts, target):
    art = load_artifact(tiny_artifacts[target])
    m = art.manifest
    assert m["schema_version"] == 1 and m["target"] == target
    assert m["model"]["name"] == "resnet_tiny" and m["model"]["parameters"] > 10_000
    assert m["producer"]["torch"].startswith("2.13.0")
    assert m["signature"]["inputs"] == [{"name": "image", "shape": [1, 3, 32, 32], "dtype": "float32"}]
    assert m["signature"]["outputs"] == [{"name": "output_0", "shape": [1, 10], "dtype": "float32"}]
    files = {f["path"]: f for f in m["files"]}
    model_entry = files[m["model_file"]]
    assert model_entry["sha256"] == sha256_of(art.model_file)
    assert model_entry["bytes"] > 50_000
    assert "reference_io.npz" in files
    ins, outs = art.reference_io()
    assert ins["image"].shape == (1, 3, 32, 32) and outs["output_0"].shape == (1, 10)
    assert m["compression"]["recipe"] is None and m["compression"]["ledger"] == []
    f = m["compression"]["file"]  # weights read back from the file: all of them belong to a layer
    assert f["matched_bytes"] == f["weight_bytes"] > 0 and f["unmatched"] == []
    assert not list(art.path.parent.glob(".*.partial"))


@pytest.mark.parametrize("target", ["executorch", "tflite", "onnx"])
def test_numeric_parity_on_real_digits(tiny_artifacts, target):
    p = load_artifact(tiny_artifacts[target]).manifest["parity"]
    assert p["mode"] == "numeric" and p["ok"] and p["input_source"] == "dataset"
    assert p["metrics"]["samples"] == 16
    assert p["metrics"]["cosine_min"] >= 0.99999
    assert p["metrics"]["top1"] == 1.0
    assert p["metrics"]["max_abs_err"] < 1e-3
    assert p["metrics"]["psnr_db"] > 60


def test_coreml_structural_check(tiny_artifacts):
    m = load_artifact(tiny_artifacts["coreml"]).manifest
    assert m["parity"]["mode"] == "structural" and m["parity"]["ok"]
    assert "macOS" in m["parity"]["reason"]
    s = m["target_info"]["structure"]
    assert s["inputs"][0]["shape"] == [1, 3, 32, 32] and s["outputs"][0]["shape"] == [1, 10]
    assert s["ops"]["conv"] == 12  # stem + 4 blocks x 2 + 3 downsample 1x1 convs: one Core ML conv each
    assert s["weight_encodings"].get("const:float16", 0) > 0  # fp16 default precision
    assert m["options"]["minimum_deployment_target"] == "iOS17"


def test_executorch_records_delegation(tiny_artifacts):
    d = load_artifact(tiny_artifacts["executorch"]).manifest["target_info"]["delegation"]
    assert d["backend"] == "XnnpackBackend"
    assert d["delegated_share"] > 0.9
    assert isinstance(d["portable_ops"], dict)


def test_onnx_opset_recorded(tiny_artifacts):
    import onnx

    m = load_artifact(tiny_artifacts["onnx"]).manifest
    model = onnx.load(str(load_artifact(tiny_artifacts["onnx"]).model_file))
    assert m["options"]["opset"] == 18
    assert next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) == 18


def test_parity_gate_failure_leaves_no_artifact(tmp_path, monkeypatch):
    import torch

    import edgekit
    from edgekit import parity
    from edgekit.errors import ParityError

    monkeypatch.setitem(parity.TOLERANCES, "fp32", {"cosine_min": 1.5, "top1": 0.99})  # impossible
    model = torch.nn.Sequential(torch.nn.Linear(4, 3)).eval()
    with pytest.raises(ParityError) as err:
        edgekit.export(model, (np.ones((1, 4), np.float32),), "onnx", tmp_path / "a", parity_samples=4,
                       show_progress=False)
    assert "cosine_min=" in err.value.message and "needed: cosine_min 1.5" in err.value.message
    assert "--no-parity-gate" in err.value.fix
    assert list(tmp_path.iterdir()) == []  # no artifact, no staging directory
    art = edgekit.export(model, (np.ones((1, 4), np.float32),), "onnx", tmp_path / "a", parity_samples=4,
                         parity_gate=False, show_progress=False)
    assert art.manifest["parity"]["ok"] is False and art.manifest["parity"]["gate"] is False


def test_bad_options_name_the_value_and_choices(tmp_path):
    import torch

    import edgekit
    from edgekit.errors import EdgekitError

    model = torch.nn.Linear(4, 3)
    with pytest.raises(EdgekitError, match=r"compute_precision 'fp8' unknown; choose one of fp16, fp32"):
        edgekit.export(model, (np.ones((1, 4), np.float32),), "coreml", tmp_path / "c",
                       options={"compute_precision": "fp8"})
    with pytest.raises(EdgekitError, match=r"target 'tflit' unknown; choose one of coreml, executorch, tflite, onnx"):
        edgekit.export(model, (np.ones((1, 4), np.float32),), "tflit", tmp_path / "c")
    with pytest.raises(EdgekitError, match="opset 9 outside"):
        edgekit.export(model, (np.ones((1, 4), np.float32),), "onnx", tmp_path / "c", options={"opset": 9})
    assert not (tmp_path / "c").exists()


def test_coreml_options_reach_the_package(tmp_path):
    import torch

    import edgekit

    model = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU()).eval()
    art = edgekit.export(model, (np.ones((1, 8), np.float32),), "coreml", tmp_path / "c",
                         options={"minimum_deployment_target": "iOS18", "compute_precision": "fp32"},
                         show_progress=False)
    s = art.manifest["target_info"]["structure"]
    assert s["spec_version"] >= 9  # iOS18 = Core ML spec 9
    assert "const:float16" not in s["weight_encodings"] and s["weight_encodings"]["const:float32"] >= 1
    assert json.loads((art.path / "manifest.json").read_text())["precision"] == "fp32"
