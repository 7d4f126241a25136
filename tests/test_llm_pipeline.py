"""Classifier, LLM and FiRST exports run the one staged skeleton (exporters/staged.py), and LLM ledgers gate
like classifier ones: a clustered LLM stored dense fails with compression_lost unless allow_decompressed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import needs_export, tiny_llm_with_tokenizer

pytestmark = needs_export


def _clustered_tiny_llm(directory, bits: int = 3):
    """The suite's tiny LLM (1 layer) with every linear palettized to ``bits`` (per-tensor k-means tables)."""
    from edgekit.exporters.llm_kernels import apply_recipe

    model, tok_file, tok = tiny_llm_with_tokenizer(directory, n_layers=1)
    clustered, _ = apply_recipe(model, f"palettize{bits}")
    return clustered, tok_file, tok


def test_clustered_llm_to_onnx_fails_with_compression_lost_and_leaves_nothing(tmp_path):
    from edgekit.errors import EdgekitError
    from edgekit.exporters.compression.record import compressed_layers
    from edgekit.exporters.llm import export_llm

    model, tok_file, _ = _clustered_tiny_llm(tmp_path)
    layers = sorted(compressed_layers(model))
    assert len(layers) == 8  # q/k/v/o, gate/up/down, lm_head
    out = tmp_path / "out" / "tiny" / "onnx"
    with pytest.raises(EdgekitError) as e:
        export_llm(model, tok_file, "onnx", out, prefill_len=8)
    err = e.value
    assert err.code == "compression_lost"
    assert err.details["target"] == "onnx" and sorted(err.details["layers"]) == layers
    assert err.details["bytes_written"] == err.details["dense_bytes"] == sum(
        m.weight.numel() * 4 for m, _ in compressed_layers(model).values())
    assert "onnx" in err.message and "layers.0.self_attn.q_proj" in err.message
    assert "--allow-decompressed" in err.fix and "--executorch-kernels edgekit" in err.fix and "coreml" in err.fix
    assert not (tmp_path / "out").exists()  # no artifact, no staging directory, no empty parents


def test_export_llm_cli_allow_decompressed_keeps_a_dense_artifact_that_says_so(tmp_path, capsys):
    """A clustered checkpoint (the eDKM format) through `edgekit export-llm --allow-decompressed`."""
    from edgekit.cli import main
    from edgekit.exporters.llm_compress import save_clustered, size_report

    model, tok_file, _ = _clustered_tiny_llm(tmp_path, bits=4)
    ckpt = save_clustered(model, tmp_path / "tiny_pal4", tok_file)
    size = size_report(model)
    assert main(["export-llm", str(ckpt), "--target", "onnx", "--prefill-len", "8", "--allow-decompressed",
                 "--out", str(tmp_path / "art")]) == 0
    manifest = json.loads((tmp_path / "art" / "tiny_pal4" / "onnx" / "manifest.json").read_text())
    s = manifest["compression"]["summary"]
    assert s["allowed_decompressed"] is True and len(s["decompressed_layers"]) == s["layers"] == 8
    assert {r["encoded"]["format"] for r in manifest["compression"]["ledger"]} == {"dense fp32"}
    # expected: the clustered bytes; written: what the dense file holds (the ledger as before the gate)
    assert s["expected_bytes"] == size["linear_clustered_bytes"] and s["bytes_written"] == s["dense_bytes"]
    assert s["dense_bytes"] == size["linear_fp32_bytes"]
    assert manifest["parity"]["ok"] and manifest["parity"]["metrics"]["cosine_min"] > 0.9999
    assert manifest["options"]["opset"] == 18  # from ONNXOptions, as used
    assert "stores them dense fp32 where the target has no table op (--allow-decompressed)" in capsys.readouterr().err


@pytest.fixture
def spy(monkeypatch):
    """Replace the skeleton with a recorder that stops each export before any conversion."""
    from edgekit.exporters import staged

    calls = []

    class Stop(Exception):
        pass

    def recorder(out_dir, steps):
        calls.append((out_dir, steps))
        raise Stop

    monkeypatch.setattr(staged, "staged_export", recorder)
    return calls, Stop


def test_classifier_llm_and_first_exports_all_run_the_staged_skeleton(spy, tmp_path):
    import torch

    from edgekit.exporters.llm import export_llm
    from edgekit.exporters.llm_first import export_first_llm
    from edgekit.exporters.pipeline import export_model
    from edgekit.model_zoo.first import Routers

    calls, Stop = spy
    torch.manual_seed(0)
    classifier = torch.nn.Sequential(torch.nn.Linear(4, 3))
    with pytest.raises(Stop):
        export_model(classifier, (np.zeros((1, 4), np.float32),), "onnx", tmp_path / "c", show_progress=False)
    model, tok_file, _ = tiny_llm_with_tokenizer(tmp_path, n_layers=1)
    with pytest.raises(Stop):
        export_llm(model, tok_file, "executorch", tmp_path / "l", prefill_len=8, options={"delegate": "none"})
    routers = Routers.for_model(model)
    with pytest.raises(Stop):
        export_first_llm(model, routers, tok_file, tmp_path / "f", prefill_len=8, fused_sets=[()])
    assert [(out.name, steps.target, steps.diagnose_method) for out, steps in calls] == [
        ("c", "onnx", "forward"), ("l", "executorch", "decode"), ("f", "executorch", "layer_0_decode")]
    (_, c), (_, llm), (_, first) = calls
    # each passes its own steps, and the target's options dataclass (no option spelled in the LLM path)
    assert type(c.options).__name__ == "ONNXOptions"
    assert (type(llm.options).__name__, llm.options.delegate) == ("ExecuTorchOptions", "none")
    assert type(first.options).__name__ == "ExecuTorchOptions"
    assert c.describe is not llm.describe and llm.parity is not None and first.parity is not None
    assert sorted(llm.trace()) == ["decode", "prefill"]
    assert "forward" in c.trace() and "decode_skip_none" in first.trace()
    assert not any((tmp_path / d).exists() for d in "clf")


def test_no_exporter_stages_or_diagnoses_outside_the_skeleton():
    """The one skeleton: no other module of the exporters package opens a staging dir or turns converter
    failures into errors itself."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "exporters"
    offenders = [str(p.relative_to(root)) for p in sorted(root.rglob("*.py")) if p.name != "staged.py"
                 and ("staging_dir(" in p.read_text() or "diagnose(" in p.read_text().replace("def diagnose(", ""))]
    assert offenders == []


def test_every_llm_target_has_its_converter_in_its_own_package():
    """exporters/<target>/llm.py for each target with the LLM capability, taking its options dataclass."""
    import inspect

    from edgekit.exporters import get_exporter
    from edgekit.exporters.llm import target_module
    from edgekit.targets import LLM, names_with

    for target in names_with(LLM):
        mod = target_module(target)
        assert mod.__name__ == f"edgekit.exporters.{target}.llm"
        assert mod.KV_CACHE in ("in_place", "explicit")
        hint = inspect.signature(mod.convert).parameters["options"].annotation
        assert hint == get_exporter(target).Options.__name__, (target, hint)
    assert [t for t in names_with(LLM) if target_module(t).KV_CACHE == "in_place"] == ["executorch"]


def test_coreml_llm_deployment_target_comes_from_its_options():
    from edgekit.errors import EdgekitError
    from edgekit.exporters.llm import target_module
    from edgekit.exporters.llm_options import llm_options

    coreml = target_module("coreml")
    coreml.check_options(llm_options("coreml"))  # the LLM default: iOS18
    with pytest.raises(EdgekitError, match="multifunction package, which needs iOS18; minimum_deployment_target "
                                           "is iOS17") as e:
        coreml.check_options(llm_options("coreml", {"minimum_deployment_target": "iOS17"}))
    assert e.value.details["choices"] == ["iOS18"] and "--coreml-target iOS18" in e.value.fix
