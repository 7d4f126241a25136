"""Training: a short run learns, is reproducible, and its safetensors checkpoint round-trips."""

from __future__ import annotations

import pytest
import torch

from edgekit.errors import EdgekitError
from edgekit.model_zoo.data import digits
from edgekit.model_zoo.train import TrainConfig, evaluate, load_checkpoint, train


def test_short_run_learns_and_checkpoint_round_trips(tmp_path):
    result = train("hourglass_tiny", TrainConfig(epochs=3), out_dir=tmp_path, show_progress=False)
    assert result.accuracy > 0.8
    again = load_checkpoint("hourglass_tiny", result.checkpoint)
    x, y = digits(8, 1, split="test")
    assert evaluate(again, x, y) == result.accuracy
    assert (tmp_path / "hourglass_tiny.json").exists()


def test_same_seed_same_weights():
    a = train("denseshift_tiny", TrainConfig(epochs=1, seed=3), show_progress=False).model
    b = train("denseshift_tiny", TrainConfig(epochs=1, seed=3), show_progress=False).model
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k


def test_bad_config_is_a_user_error():
    with pytest.raises(EdgekitError, match="epochs=0"):
        TrainConfig(epochs=0)


def test_cli_train(tmp_path, capsys):
    from edgekit.cli import main

    assert main(["train", "hourglass_tiny", "--epochs", "1", "--out", str(tmp_path)]) == 0
    assert "held-out accuracy" in capsys.readouterr().out
    assert (tmp_path / "hourglass_tiny.safetensors").exists()
