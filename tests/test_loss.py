"""--max-loss parsing, output kinds and the cost metrics (numpy only, no torch)."""

import math

import numpy as np
import pytest

from edgekit import parity
from edgekit.errors import EdgekitError
from edgekit.loss import LossLimit, cost_metrics, effective_limits, parse_max_loss, violations
from edgekit.outputs import parse_output_kinds, resolve_output_kinds


def test_parse_max_loss_items_percentages_and_off():
    got = parse_max_loss(["top1_flip=0.02", "output_1:cos_loss=5%", "0:rel_l2=0.3"])
    assert got == (LossLimit("top1_flip", 0.02), LossLimit("cos_loss", 0.05, "output_1"),
                   LossLimit("rel_l2", 0.3, "0"))
    assert parse_max_loss({"cos_loss": 0.1}) == (LossLimit("cos_loss", 0.1),)
    assert parse_max_loss(None) == () and parse_max_loss("off") is None and parse_max_loss(["OFF"]) is None


@pytest.mark.parametrize("bad,needle", [("top5=0.1", "metric 'top5' unknown"), ("cos_loss", "no '='"),
                                        ("cos_loss=abc", "not a number"), ("cos_loss=-1", "negative")])
def test_parse_max_loss_errors_name_the_value_and_the_choices(bad, needle):
    with pytest.raises(EdgekitError) as err:
        parse_max_loss([bad])
    assert err.value.code == "bad_max_loss" and needle in err.value.message
    assert "top1_flip, cos_loss, rel_l2" in err.value.fix
    with pytest.raises(EdgekitError, match="cannot be combined"):
        parse_max_loss(["off", "cos_loss=0.1"])


def test_class_outputs_need_a_classification_task_or_labels():
    shapes = [(1, 10), (1, 4, 8, 8), (1, 128)]
    assert resolve_output_kinds(shapes) == ["regression"] * 3                    # nothing says "classes"
    assert resolve_output_kinds(shapes, task="classification") == ["classes", "regression", "classes"]
    assert resolve_output_kinds(shapes, labelled=True)[:2] == ["classes", "regression"]  # a 4-D map never is
    declared = parse_output_kinds(["output_2:embedding", "1:boxes"])
    assert resolve_output_kinds(shapes, task="classification", declared=declared) == ["classes", "boxes",
                                                                                     "embedding"]
    with pytest.raises(EdgekitError, match="output 'output_7' does not exist"):
        resolve_output_kinds(shapes, declared={"output_7": "classes"})
    with pytest.raises(EdgekitError) as err:
        parse_output_kinds(["output_0:logits"])
    assert err.value.code == "bad_output_kind" and "classes, embedding, boxes, regression" in err.value.message


def test_top1_only_for_class_outputs():
    rng = np.random.default_rng(0)
    maps = [rng.standard_normal((1, 5, 4, 4)) for _ in range(3)]
    assert "top1" not in parity.compare(maps, maps)                 # the old bug: argmax over the width axis
    assert "top1" not in parity.compare([m[:, :, 0, 0] for m in maps], [m[:, :, 0, 0] for m in maps],
                                        "embedding")
    assert parity.compare(maps, maps, "classes")["top1"] == 1.0      # declared: the user said so


def test_cost_metrics_known_values():
    orig = [np.array([[2.0, 1.0, 0.0]]), np.array([[0.0, 1.0, 0.0]])]
    got = [np.array([[2.0, 1.0, 0.0]]), np.array([[1.0, 0.0, 0.0]])]
    m = cost_metrics(orig, got, "classes")
    assert m["top1_flip"] == 0.5 and m["cos_loss"] == pytest.approx(0.5)   # cosines 1 and 0
    assert m["rel_l2"] == pytest.approx(math.sqrt(2) / math.sqrt(6))
    r = cost_metrics(orig, got, "regression")
    assert "top1_flip" not in r and "top1" not in r and r["cos_loss"] == pytest.approx(0.5)


def test_default_limits_per_recipe_kind_and_user_overrides():
    names, kinds = ["output_0", "output_1"], ["classes", "boxes"]
    lims = {(lim.output, lim.metric): lim for lim in effective_limits(names, kinds, ["palettize"], ())}
    assert lims[("output_0", "top1_flip")].value == 0.05 and lims[("output_1", "cos_loss")].value == 0.05
    assert lims[("output_0", "top1_flip")].source == "default:palettize" and len(lims) == 2
    mixed = {(lim.output, lim.metric): lim.value for lim in effective_limits(names, kinds, ["sparsity", "dkm"], ())}
    assert mixed[("output_1", "cos_loss")] == 0.10                      # the loosest of the recipe's kinds
    user = parse_max_loss(["top1_flip=0.2", "1:rel_l2=0.05"])
    over = {(lim.output, lim.metric): lim for lim in effective_limits(names, kinds, ["palettize"], user)}
    assert over[("output_0", "top1_flip")].value == 0.2 and over[("output_0", "top1_flip")].source == "user"
    assert over[("output_1", "rel_l2")].value == 0.05 and over[("output_1", "cos_loss")].value == 0.05
    assert effective_limits(names, kinds, ["palettize"], None) == []     # --max-loss off
    with pytest.raises(EdgekitError, match="output .output_1. is not class scores") as err:
        effective_limits(names, kinds, ["palettize"], parse_max_loss(["output_1:top1_flip=0.1"]))
    assert "--output NAME:classes" in err.value.fix
    found = violations(list(over.values()), {"output_0": {"top1_flip": 0.25, "samples": 4},
                                             "output_1": {"cos_loss": 0.01, "rel_l2": 0.04}})
    assert [(v["output"], v["metric"], v["value"]) for v in found] == [("output_0", "top1_flip", 0.25)]
