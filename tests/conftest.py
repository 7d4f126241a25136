"""Shared fixtures: one tiny model exported once per session to every target."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

HAS_EXPORT = all(importlib.util.find_spec(m) for m in ("torch", "executorch", "coremltools", "litert_torch", "onnx"))
needs_export = pytest.mark.skipif(not HAS_EXPORT, reason="needs the export extra (torch, executorch, ...)")


@pytest.fixture(scope="session", autouse=True)
def _compression_cache(tmp_path_factory):
    """The compression cache of the CLI lives in a per-session temp dir, never in ~/.cache."""
    import os

    old = os.environ.get("EDGEKIT_COMPRESSION_CACHE")
    os.environ["EDGEKIT_COMPRESSION_CACHE"] = str(tmp_path_factory.mktemp("compression_cache"))
    yield
    if old is None:
        os.environ.pop("EDGEKIT_COMPRESSION_CACHE", None)
    else:
        os.environ["EDGEKIT_COMPRESSION_CACHE"] = old


@pytest.fixture(scope="session")
def tiny_artifacts(tmp_path_factory) -> dict[str, Path]:
    """resnet_tiny exported to all four targets with parity on 16 real digits samples."""
    if not HAS_EXPORT:
        pytest.skip("needs the export extra")
    from edgekit.exporters.pipeline import export_spec
    from edgekit.model_zoo import get_spec

    out = tmp_path_factory.mktemp("tiny")
    results = export_spec(get_spec("resnet_tiny"), ("coreml", "executorch", "tflite", "onnx"), out,
                          parity_samples=16, show_progress=False)
    failed = {t: str(r) for t, r in results.items() if not hasattr(r, "path")}
    assert not failed, failed
    return {t: r.path for t, r in results.items()}


def tiny_llm_with_tokenizer(directory: Path, n_layers: int = 3, max_seq_len: int = 64):
    """A seeded 300-token Llama (dim 64, GQA 4/2 heads) and a BPE tokenizer saved in ``directory``:
    (model, tokenizer file, tokenizer)."""
    import torch

    from edgekit.model_zoo.llama import Llama, LlamaConfig
    from edgekit.model_zoo.text import train_tokenizer

    tok = train_tokenizer(300)
    tok.save(str(directory / "tokenizer.json"))
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=300, dim=64, n_layers=n_layers, n_heads=4, n_kv_heads=2, hidden_dim=128,
                      max_seq_len=max_seq_len)
    return Llama(cfg).eval(), directory / "tokenizer.json", tok


@pytest.fixture(scope="session")
def tiny_llm_artifacts(tmp_path_factory) -> dict[str, Path]:
    """A tiny LLM (2 layers) exported once to ONNX and TFLite, with parity: {target: artifact dir}."""
    if not HAS_EXPORT:
        pytest.skip("needs the export extra")
    from edgekit.exporters.llm import export_llm
    from edgekit.model_zoo.text import encode_split

    out = tmp_path_factory.mktemp("tiny_llm")
    model, tok_file, tok = tiny_llm_with_tokenizer(out, n_layers=2)
    val = encode_split(tok, "val")[:64]
    return {t: export_llm(model, tok_file, t, out / t, name="tiny_llm", prefill_len=8, parity_tokens=val).path
            for t in ("onnx", "tflite")}


@pytest.fixture(scope="session")
def tiny_llm_pte(tmp_path_factory) -> Path:
    """A tiny LLM (2 layers, prefill 8) exported once to ExecuTorch (prefill/decode/reset, in-place cache)."""
    if not HAS_EXPORT:
        pytest.skip("needs the export extra")
    from edgekit.exporters.llm import export_llm
    from edgekit.model_zoo.text import encode_split

    out = tmp_path_factory.mktemp("tiny_llm_pte")
    model, tok_file, tok = tiny_llm_with_tokenizer(out, n_layers=2)
    return export_llm(model, tok_file, "executorch", out / "executorch", name="tiny_llm", prefill_len=8,
                      parity_tokens=encode_split(tok, "val")[:64]).path
