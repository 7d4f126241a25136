"""Two parities per compressed export (fidelity vs the compressed model, cost vs the original), the
--max-loss gate, per-layer control, label-free fine-tuning, the compression cache, no empty folders."""

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from edgekit.cli import main
from edgekit.errors import EdgekitError
from edgekit.exporters.compression import DKMConfig, Recipe, Step, compress
from edgekit.exporters.pipeline import export_model

USER_FILE = Path(__file__).parents[1] / "fixtures" / "user_models.py"


def _detector():
    import importlib.util

    spec = importlib.util.spec_from_file_location("edgekit_test_user_models", USER_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model, (x,) = module.detector()
    return model, (x.numpy(),)


class Stemless(torch.nn.Module):
    """A 3-channel 3x3 first conv (rows of 27 weights: no 2:4) not named 'stem'."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.first = torch.nn.Conv2d(3, 8, 3)
        self.second = torch.nn.Conv2d(8, 8, 1)
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(self.second(torch.relu(self.first(x))).mean((2, 3)))


@pytest.fixture(scope="module")
def pal4_onnx(tmp_path_factory, tiny_spec):
    new, _ = compress(tiny_spec.build(), "palettize4")
    return export_model(new, tiny_spec.example_inputs(0), "onnx", tmp_path_factory.mktemp("pal4") / "a",
                        show_progress=False, dataset=tiny_spec.dataset, parity_samples=8)


def test_palettized_export_records_fidelity_and_cost(pal4_onnx):
    art = pal4_onnx
    par = art.manifest["parity"]
    assert par["ok"] and par["metrics"]["cosine_min"] >= 0.99999 and par["metrics"]["top1"] == 1.0  # fidelity
    cost = par["cost"]
    (out,) = cost["per_output"]
    assert cost["measured_on"] == "artifact" and cost["recipe"] == "palettize4" and cost["ok"] and cost["gate"]
    assert out["name"] == "output_0" and out["kind"] == "classes" and out["samples"] == 8
    # 4-bit tables move the logits (cosine ~0.998 on resnet_tiny) but flip no top-1 on these 8 digits
    assert 0.99 < out["cosine_mean"] < 0.99999 and 0 < out["cos_loss"] < 0.01 and out["top1_flip"] == 0.0
    assert 0.01 < out["rel_l2"] < 0.2
    assert cost["limits"] == [{"output": "output_0", "metric": "top1_flip", "max": 0.05,
                               "source": "default:palettize"}]
    assert art.manifest["signature"]["output_kinds"] == {"output_0": "classes"}
    assert art.manifest["compression"]["recipe"]["name"] == "palettize4"      # from the provenance
    assert stat.S_IMODE(art.path.stat().st_mode) == 0o777 & ~_umask()          # not mkdtemp's 0700


def test_demo_report_shows_the_cost_per_output(pal4_onnx, tiny_spec):
    from edgekit import demo

    md = demo._markdown(tiny_spec, [], ["target"], {"onnx": pal4_onnx}, {"onnx": "skipped"}, {"cpu_count": 2})
    assert "## Compression cost per output (artifact vs the original model)" in md
    assert "- **onnx**: output_0 (classes): top1_flip 0.0000, cos_loss 0.00" in md
    assert "limit top1_flip <= 0.05 (default:palettize)" in md and "Cost: the same inputs" in md


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_cost_gate_fails_with_both_numbers_and_leaves_nothing(tmp_path, tiny_spec, tiny_model):
    new, _ = compress(tiny_model, "sparse50")  # untrained resnet_tiny: 50% pruning changes every top-1
    args = dict(show_progress=False, dataset=tiny_spec.dataset, parity_samples=8, allow_decompressed=True)
    out = tmp_path / "out" / "resnet_tiny" / "onnx"
    with pytest.raises(EdgekitError) as err:
        export_model(new, tiny_spec.example_inputs(0), "onnx", out, **args)
    e = err.value
    assert e.code == "compression_cost" and e.details["output"] == "output_0" and e.details["metric"] == "top1_flip"
    assert "top1_flip 1 > max 0.1 (8 of 8 samples changed their top-1 class)" in e.message
    assert "Conversion fidelity (artifact vs compressed model): ok cos 1.0000000 top1 100.0%" in e.message
    assert "Compression cost (artifact vs original model): FAIL output_0 (classes) top1_flip 1.000" in e.message
    assert "--exclude REGEX" in e.fix and "--max-loss output_0:top1_flip=1.00" in e.fix and "milder" in e.fix
    assert not (tmp_path / "out").exists()  # no artifact, no staging dir, no empty OUT/<model>/
    art = export_model(new, tiny_spec.example_inputs(0), "onnx", out, max_loss=["top1_flip=1"], **args)
    assert art.manifest["parity"]["cost"]["per_output"][0]["top1_flip"] == 1.0
    off = export_model(new, tiny_spec.example_inputs(0), "onnx", tmp_path / "off", max_loss="off", **args)
    cost = off.manifest["parity"]["cost"]
    assert cost["gate"] is False and cost["limits"] == [] and cost["per_output"][0]["top1_flip"] == 1.0


def test_declared_kind_and_per_output_limit(tmp_path, tiny_spec, tiny_model):
    art = export_model(tiny_model, tiny_spec.example_inputs(0), "onnx", tmp_path / "a", show_progress=False,
                       parity_samples=4, recipe="palettize4", output_kinds=["output_0:embedding"],
                       max_loss=["output_0:cos_loss=0.01"])     # compressed by export_model itself
    par = art.manifest["parity"]
    assert "top1" not in par["metrics"] and "top1_flip" not in par["cost"]["per_output"][0]  # not class scores
    assert par["cost"]["limits"] == [{"output": "output_0", "metric": "cos_loss", "max": 0.01, "source": "user"}]
    assert par["cost"]["per_output"][0]["kind"] == "embedding" and par["cost"]["ok"]
    with pytest.raises(EdgekitError, match="output 'output_0' is not class scores"):
        export_model(tiny_model, tiny_spec.example_inputs(0), "onnx", tmp_path / "b", show_progress=False,
                     parity_samples=4, recipe="palettize4", output_kinds={"0": "embedding"},
                     max_loss="output_0:top1_flip=0.1")


def test_inapplicable_layer_is_skipped_and_recorded_or_an_error_under_strict(tmp_path, capsys):
    model = Stemless().eval()
    x = (np.random.default_rng(0).standard_normal((1, 3, 10, 10)).astype(np.float32),)
    art = export_model(model, x, "coreml", tmp_path / "a", show_progress=False, parity_samples=4,
                       recipe="sparse24", options={"minimum_deployment_target": "iOS17"}, max_loss="off")
    comp = art.manifest["compression"]
    assert [r["layer"] for r in comp["ledger"]] == ["second", "fc"]
    (skip,) = comp["skipped"]
    assert skip["layer"] == "first" and "rows have 27" in skip["reason"] and skip["type"] == "sparsity"
    assert art.manifest["parity"]["cost"]["measured_on"].startswith("compressed PyTorch model")
    assert main(["inspect", str(art.path)]) == 0
    assert "skipped    first (step 0, sparsity): 2:4 sparsity needs rows of a multiple of 4" in capsys.readouterr().out
    with pytest.raises(EdgekitError) as err:
        export_model(model, x, "coreml", tmp_path / "b", show_progress=False, recipe="sparse24", strict=True)
    assert err.value.code == "layer_not_applicable" and "layer 'first' (Conv2d 8x3x3x3)" in err.value.message
    assert "--exclude '^first$'" in err.value.fix
    # --exclude / --only restrict any recipe
    new, rep = compress(model, "palettize4", exclude=r"^first$")
    assert [r.name for r in rep.compressed] == ["second", "fc"]
    new, rep = compress(model, "palettize4", only=["fc", "sec"])
    assert [r.name for r in rep.compressed] == ["second", "fc"]
    assert rep.recipe_hash != compress(model, "palettize4")[1].recipe_hash  # the recipe document says so


def test_dkm2_on_a_detector_fine_tunes_by_distillation(tmp_path):
    from edgekit.exporters.compression.finetune import DistillData, distill_data

    model, x = _detector()
    data = distill_data(model, x, samples=64)
    assert isinstance(data, DistillData) and data.inputs[0].shape == (64, 3, 32, 32) and data.batch_size == 4
    recipe = Recipe("dkm2_short", (Step(default=DKMConfig(bits=2, epochs=0.5)),))
    new, rep = compress(model, recipe, data)
    assert rep.steps[0]["steps"] == 8 and np.isfinite(rep.steps[0]["final_loss"])
    assert all(r.unique_values <= 4 for r in rep.compressed) and len(rep.compressed) == 4
    art = export_model(new, x, "onnx", tmp_path / "a", show_progress=False, parity_samples=4,
                       max_loss="cos_loss=0.5", allow_decompressed=True)
    (out,) = art.manifest["parity"]["cost"]["per_output"]
    assert out["kind"] == "regression" and "top1_flip" not in out and "top1" not in art.manifest["parity"]["metrics"]
    assert 0.5 < out["cosine_mean"] < 1.0 and art.manifest["parity"]["cost"]["ok"]


def test_gradual_pruning_and_shift_qat_fine_tune_without_labels():
    from edgekit.exporters.compression import ShiftQuantConfig, SparsityConfig
    from edgekit.exporters.compression.finetune import distill_data

    model, x = _detector()
    data = distill_data(model, x, samples=64)   # 16 steps per epoch
    gradual = SparsityConfig(sparsity=0.5, schedule="gradual", end_step=8, frequency=2, epochs=0.75, lr=1e-3)
    qat = ShiftQuantConfig(bits=3, qat=True, epochs=0.25, lr=1e-4)
    new, rep = compress(model, Recipe("g", (Step(default=gradual), Step(default=qat))), data)
    assert rep.steps[0]["steps"] == 12 and rep.steps[0]["schedule"][-1] == (8, 0.5)
    assert rep.steps[1]["steps"] == 4 and all(np.isfinite(s["final_loss"]) for s in rep.steps)
    assert all(r.kind == "shift+sparse" and abs(r.sparsity - 0.5) < 0.01 for r in rep.compressed)


def test_training_recipe_on_a_non_digits_spec_uses_distillation():
    from edgekit.exporters.compression.finetune import DistillData, TrainData, data_for_spec
    from edgekit.model_zoo import get_spec
    from edgekit.userfile import load_user_spec

    assert isinstance(data_for_spec(get_spec("resnet_tiny")), TrainData)          # a digits classifier
    spec = load_user_spec(f"{USER_FILE}:detector")
    data = data_for_spec(spec)
    assert isinstance(data, DistillData) and data.source.startswith("random(seed=1000")
    assert spec.task == "unknown"


def test_compression_cache_hits_and_misses(tmp_path, monkeypatch, tiny_model):
    from edgekit.exporters.compression.cache import cache_dir, cached_compress
    from edgekit.exporters.compression.record import compressed_layers

    monkeypatch.setenv("EDGEKIT_COMPRESSION_CACHE", str(tmp_path / "cache"))
    assert cache_dir() == tmp_path / "cache"
    first, rep1 = cached_compress(tiny_model, "palettize4", exclude="fc")
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 1 and {"cache": "hit"} not in rep1.steps
    again, rep2 = cached_compress(tiny_model, "palettize4", exclude="fc")
    assert {"cache": "hit"} in rep2.steps and len(list((tmp_path / "cache").glob("*.pt"))) == 1
    for (k, a), b in zip(first.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), k
    recs1, recs2 = compressed_layers(first), compressed_layers(again)
    assert recs1.keys() == recs2.keys() and "fc" not in recs2
    for name in recs1:
        assert recs1[name][1] == recs2[name][1] and np.array_equal(recs1[name][1].lut, recs2[name][1].lut)
    assert rep2.table() == rep1.table()
    cached_compress(tiny_model, "palettize3")                                    # another recipe: a miss
    with torch.no_grad():
        tiny_model.fc.bias.add_(1.0)
    cached_compress(tiny_model, "palettize4", exclude="fc")                      # other weights: a miss
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 3
    monkeypatch.setenv("EDGEKIT_COMPRESSION_CACHE", "off")
    assert cache_dir() is None


def test_cli_prints_both_parities_and_inspect_shows_them(tmp_path, capsys):
    assert main(["export", "resnet_tiny", "--recipe", "palettize4", "--target", "onnx", "--out", str(tmp_path),
                 "--parity-samples", "8", "--max-loss", "top1_flip=0.1"]) == 0
    out, err = capsys.readouterr()
    assert "fidelity (artifact vs compressed model): ok cos 1.0000000 top1 100.0%" in err
    assert "cost (artifact vs original model): ok output_0 (classes) top1_flip 0.000 cos 0.99" in err
    assert "parity (vs compressed)" in out and "cost (vs original)" in out and " KiB" in out
    assert main(["inspect", str(tmp_path / "resnet_tiny" / "onnx")]) == 0
    out = capsys.readouterr().out
    assert "cost       output_0 (classes): top1_flip 0.0000, cos_loss 0.00" in out
    assert "limit top1_flip <= 0.1 (user)" in out and "kinds      output_0: classes" in out


def test_cli_rejects_bad_flags_before_converting(tmp_path, capsys):
    assert main(["export", "resnet_tiny", "--recipe", "palettize4", "--max-loss", "top5=1", "--out",
                 str(tmp_path)]) == 2
    assert "[bad_max_loss]" in capsys.readouterr().err
    assert main(["export", "resnet_tiny", "--recipe", "palettize4", "--exclude", "(", "--out", str(tmp_path)]) == 2
    assert "[bad_regex]" in capsys.readouterr().err
    assert main(["export", "resnet_tiny", "--recipe", "palettize4", "--output", "output_3:classes", "--target",
                 "onnx", "--out", str(tmp_path)]) == 1           # the output does not exist: before converting
    assert "[unknown_output]" in capsys.readouterr().err
    assert not (tmp_path / "resnet_tiny").exists()


@pytest.mark.slow
def test_cli_dkm2_preset_on_a_detector_runs_without_labels(tmp_path, capsys):
    rc = main(["export", f"{USER_FILE}:detector", "--recipe", "dkm2", "--target", "onnx", "--out", str(tmp_path),
               "--parity-samples", "8"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "Traceback" not in err and "cost (artifact vs original model): ok output_0 (regression) cos_loss" in err
    manifest = json.loads((tmp_path / "detector" / "onnx" / "manifest.json").read_text())
    assert manifest["parity"]["cost"]["per_output"][0]["cosine_mean"] > 0.95
