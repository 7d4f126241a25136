import json

import pytest
import torch

from edgekit.errors import EdgekitError, UnknownChoice
from edgekit.exporters.compression import (PRESETS, ConfigError, PalettizeConfig, Recipe, ShiftQuantConfig,
                                           SparsityConfig, Step, compress, config_from_dict, get_record)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip_json_and_yaml(name):
    r = PRESETS[name]
    doc = json.loads(r.to_json())
    assert doc["kind"] == "edgekit-recipe" and doc["version"] == 1
    assert all("type" in s["default"] and "version" in s["default"] for s in doc["steps"] if s["default"])
    assert Recipe.from_json(r.to_json()) == r
    assert Recipe.from_yaml(r.to_yaml()) == r
    assert Recipe.from_json(r.to_json()).hash() == r.hash()


def test_configs_are_frozen_and_validated():
    cfg = PalettizeConfig(bits=4)
    with pytest.raises(Exception):
        cfg.bits = 3
    with pytest.raises(ConfigError, match=r"bits = 9 .* 1\.\.8"):
        PalettizeConfig(bits=9)
    with pytest.raises(ConfigError, match="group_size"):
        PalettizeConfig(granularity="per_grouped_channel")
    with pytest.raises(ConfigError, match="2, 3 or 4"):
        ShiftQuantConfig(bits=5)
    with pytest.raises(ConfigError, match="end_step=70"):  # the fix names a reachable end step
        SparsityConfig(schedule="gradual", end_step=63, frequency=10, epochs=1)
    with pytest.raises(UnknownChoice, match="palettize"):
        config_from_dict({"type": "palettise", "bits": 4})
    with pytest.raises(UnknownChoice, match="bits"):
        config_from_dict({"type": "palettize", "nbits": 4})


def test_selector_order_name_then_type_then_default(tiny_model):
    step = Step(default=PalettizeConfig(bits=4), by_type={"Linear": PalettizeConfig(bits=8)},
                by_name={r"layers\.0\..*": None, "layers.3.conv2": PalettizeConfig(bits=2)})
    new, rep = compress(tiny_model, Recipe("t", (step,)))
    bits = {r.name: r.bits for r in rep.layers}
    assert bits["layers.0.conv1"] is None and bits["layers.0.conv2"] is None      # name -> None skips
    assert bits["layers.3.conv2"] == 2                                             # name wins over default
    assert bits["fc"] == 8                                                         # type
    assert bits["layers.1.conv1"] == 4                                             # default
    assert get_record(dict(new.named_modules())["layers.0.conv1"]) is None


def test_compress_is_not_in_place_and_reports(tiny_model):
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    new, rep = compress(tiny_model, "palettize4")
    for k, v in tiny_model.state_dict().items():
        assert torch.equal(v, before[k])
    assert new is not tiny_model and not new.training
    assert len(rep.compressed) == 13 and 0.12 < rep.ratio() < 0.14
    for row in rep.compressed:
        assert row.unique_values <= 16 and row.bits == 4 and 0 < row.weight_rel_error < 0.15
    assert "layers.3.conv2" in rep.table()
    json.dumps(rep.to_json())


def test_training_recipe_needs_data(tiny_model):
    with pytest.raises(EdgekitError, match="TrainData"):
        compress(tiny_model, "dkm2")


def test_unknown_preset_lists_choices():
    with pytest.raises(UnknownChoice, match="palettize4"):
        compress(torch.nn.Linear(4, 4), "palettize5")


def test_recipe_file(tmp_path, tiny_model):
    path = tmp_path / "r.yaml"
    path.write_text(PRESETS["sparse50_shift3"].to_yaml())
    new, rep = compress(tiny_model, str(path))
    assert {r.kind for r in rep.compressed} == {"shift+sparse"}
    assert all(abs(r.sparsity - 0.5) < 0.02 for r in rep.compressed)
