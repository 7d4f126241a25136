"""Core ML LLM export: one iOS18 multifunction package, structure checked here, prediction on macOS."""

from __future__ import annotations

import platform

import numpy as np
import pytest

from conftest import needs_export, tiny_llm_with_tokenizer

pytestmark = needs_export
torch = pytest.importorskip("torch")
pytest.importorskip("coremltools")


@pytest.fixture(scope="module")
def coreml_llm(tmp_path_factory):
    from edgekit.exporters.llm import export_llm
    from edgekit.model_zoo.text import encode_split

    d = tmp_path_factory.mktemp("llm-coreml")
    model, tok_file, tok = tiny_llm_with_tokenizer(d)
    art = export_llm(model, tok_file, "coreml", d / "coreml", prefill_len=8,
                     parity_tokens=encode_split(tok, "val")[:64])
    return model, art


def test_both_methods_are_functions_of_one_package_with_the_models_io(coreml_llm):
    from edgekit.exporters.coreml.structure import describe_mlpackage

    model, art = coreml_llm
    assert art.manifest["precision"] == "fp16"
    assert {m["file"] for m in art.manifest["methods"].values()} == {"model.mlpackage"}
    package = art.path / "model.mlpackage"
    cache = [3, 1, 2, 64, 16]
    for method, length in (("prefill", 8), ("decode", 1)):
        found = describe_mlpackage(package, function=method)
        assert [(f["name"], f["shape"]) for f in found["inputs"]] == [
            ("tokens", [1, length]), ("start_pos", [1]), ("k_cache", cache), ("v_cache", cache)]
        assert [(f["name"], f["shape"]) for f in found["outputs"]] == [
            ("logits", [1, length, 300]), ("k_cache_out", cache), ("v_cache_out", cache)]
        assert found["ops"].get("matmul", 0) + found["ops"].get("linear", 0) >= 3 * 7
    if platform.system() != "Darwin":
        parity = art.manifest["parity"]
        assert parity["mode"] == "structural" and parity["ok"] and parity["problems"] == []
        assert set(parity["functions"]) == {"prefill", "decode"}


def test_the_two_functions_share_one_copy_of_the_weights(coreml_llm):
    model, art = coreml_llm
    params = sum(p.numel() for p in model.parameters())
    weight_bytes = (art.path / "model.mlpackage" / "Data" / "com.apple.CoreML" / "weights" / "weight.bin").stat().st_size
    # fp16: 2 bytes a parameter, once (two copies would be ~4 bytes a parameter)
    assert 1.9 * params < weight_bytes < 2.3 * params


@pytest.mark.skipif(platform.system() == "Darwin", reason="checks the message shown where Core ML cannot run")
def test_generation_off_macos_says_it_needs_macos(coreml_llm):
    from edgekit.errors import EdgekitError
    from edgekit.generate import LLMSession

    with pytest.raises(EdgekitError, match="needs macOS") as err:
        LLMSession(coreml_llm[1].path)
    assert err.value.code == "coreml_needs_macos"


@pytest.mark.skipif(platform.system() != "Darwin", reason="Core ML prediction needs macOS")
def test_numeric_parity_and_generation_on_macos(coreml_llm):
    from edgekit.generate import LLMSession

    model, art = coreml_llm
    parity = art.manifest["parity"]
    assert parity["mode"] == "numeric" and parity["ok"] and parity["metrics"]["top1"] >= 0.95
    r = LLMSession(art.path).generate("def", max_new_tokens=5, temperature=0, stop_tokens=())
    assert len(r.new_tokens) == 5 and np.isfinite(r.decode_tokens_per_s)


def test_clustered_llm_keeps_its_three_bit_tables_in_the_package(tmp_path):
    from edgekit.exporters.llm import export_llm
    from edgekit.exporters.llm_compress import layer_bytes, post_training

    model, tok_file, _ = tiny_llm_with_tokenizer(tmp_path, n_layers=2, max_seq_len=32)
    clustered = post_training(model, 3)
    art = export_llm(clustered, tok_file, "coreml", tmp_path / "cm", prefill_len=8)
    ledger = art.manifest["compression"]["ledger"]
    assert len(ledger) == 2 * 7                                       # q/k/v/o + gate/up/down per layer
    for row in ledger:
        assert row["encoded"]["kind"] == "native" and row["encoded"]["format"] == "constexpr_lut_to_dense"
        assert row["encoded"]["index_bits"] == 3
        b = layer_bytes(tuple(row["shape"]), 3)
        assert row["bytes_written"] == b["indices"] + b["table"] == row["expected_bytes"]
    assert art.manifest["compression"]["summary"]["decompressed_layers"] == []
