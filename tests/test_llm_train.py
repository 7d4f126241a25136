"""`edgekit train llama_*`: resumable LLM training that ends where an uninterrupted run ends."""

from __future__ import annotations

import json

import pytest

from conftest import needs_export
from edgekit.cli import main
from edgekit.errors import EdgekitError

pytestmark = needs_export
torch = pytest.importorskip("torch")


class Stop(Exception):
    pass


def test_interrupted_training_resumes_to_the_same_weights(tmp_path):
    from safetensors.torch import load_file

    from edgekit.model_zoo.llama import LlamaConfig
    from edgekit.model_zoo.llm_train import train_llm

    cfg = LlamaConfig(vocab_size=300, dim=32, n_layers=2, n_heads=2, n_kv_heads=1, hidden_dim=64, max_seq_len=64)
    opts = dict(steps=6, batch=2, seq_len=32, show_progress=False, save_every=4)
    whole = train_llm(cfg, tmp_path / "whole", **opts)

    def stop_at_3(done, loss):
        if done == 3:
            raise Stop
    with pytest.raises(Stop):
        train_llm(cfg, tmp_path / "parts", on_step=stop_at_3, **opts)
    state = json.loads((tmp_path / "parts" / "train_state" / "state.json").read_text())
    assert state["step"] == 3 and not (tmp_path / "parts" / "model.safetensors").exists()
    with pytest.raises(EdgekitError, match="other options \\(lr\\)") as err:
        train_llm(cfg, tmp_path / "parts", **(opts | {"lr": 1e-3}))
    assert err.value.code == "resume_mismatch"
    resumed = train_llm(cfg, tmp_path / "parts", **opts)
    assert resumed["resumed_at"] == 3 and not (tmp_path / "parts" / "train_state").exists()
    a, b = load_file(str(tmp_path / "whole" / "model.safetensors")), load_file(str(tmp_path / "parts" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["val_perplexity"] == whole["val_perplexity"]


def test_train_cli_writes_the_checkpoint_export_llm_reads(tmp_path, capsys):
    from edgekit.model_zoo.llama import load_hf_checkpoint

    rc = main(["train", "llama_tiny", "--steps", "2", "--batch-size", "2", "--out", str(tmp_path)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "llama_tiny: validation perplexity" in out and "2 steps of 2 x 128 tokens" in out
    ckpt = tmp_path / "llama_tiny"
    assert (ckpt / "tokenizer.json").is_file() and json.loads((ckpt / "train_result.json").read_text())["steps"] == 2
    assert load_hf_checkpoint(ckpt).cfg.n_layers == 4
    assert main(["train", "llama_tiny", "--steps", "2", "--out", str(tmp_path)]) == 0
    assert "already trained (2 steps" in capsys.readouterr().out
