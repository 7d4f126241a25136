"""The Llama-style decoder: cache correctness, HF checkpoints, export parity and torch-free generation."""

from __future__ import annotations

import pytest

from conftest import needs_export, tiny_llm_with_tokenizer

pytestmark = needs_export
torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tiny_llm(tmp_path_factory):
    return tiny_llm_with_tokenizer(tmp_path_factory.mktemp("llm"))


@pytest.mark.parametrize("skip", [(), (1,), (0, 2)])
def test_cached_decoding_equals_full_recompute(tiny_llm, skip):
    model, _, _ = tiny_llm
    model.skip = frozenset(skip)
    try:
        tokens = torch.randint(0, 300, (2, 20), generator=torch.Generator().manual_seed(1))
        full = model.logits_full(tokens)
        k, v = model.empty_cache(2)
        out, k, v = model(tokens[:, :7], torch.tensor([0]), k, v)
        steps = [out]
        for i in range(7, 20):
            out, k, v = model(tokens[:, i:i + 1], torch.tensor([i]), k, v)
            steps.append(out)
        assert torch.allclose(full, torch.cat(steps, 1), atol=1e-5)
    finally:
        model.skip = frozenset()


def test_skipped_layers_change_the_output(tiny_llm):
    model, _, _ = tiny_llm
    tokens = torch.randint(0, 300, (1, 8), generator=torch.Generator().manual_seed(2))
    base = model.logits_full(tokens)
    model.skip = frozenset({1})
    try:
        assert not torch.allclose(base, model.logits_full(tokens), atol=1e-3)
    finally:
        model.skip = frozenset()


def test_loads_a_checkpoint_written_by_transformers(tmp_path):
    transformers = pytest.importorskip("transformers")
    from edgekit.model_zoo.llama import load_hf_checkpoint

    cfg = transformers.LlamaConfig(vocab_size=200, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                   rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False)
    torch.manual_seed(0)
    ref = transformers.LlamaForCausalLM(cfg).eval()
    ref.save_pretrained(tmp_path, safe_serialization=True)
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "config.json").exists()
    ours = load_hf_checkpoint(tmp_path)
    tokens = torch.randint(0, 200, (1, 24), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = ref(tokens).logits
        got = ours.logits_full(tokens)
    assert torch.allclose(expected, got, atol=1e-4), (expected - got).abs().max()


def test_save_and_reload_round_trip(tiny_llm, tmp_path):
    from edgekit.model_zoo.llama import load_hf_checkpoint, save_hf_checkpoint

    model, _, _ = tiny_llm
    save_hf_checkpoint(model, tmp_path)
    again = load_hf_checkpoint(tmp_path, max_seq_len=64)
    tokens = torch.randint(0, 300, (1, 10))
    assert torch.equal(model.logits_full(tokens), again.logits_full(tokens))


def test_bad_checkpoint_dir_is_a_user_error(tmp_path):
    from edgekit.errors import EdgekitError
    from edgekit.model_zoo.llama import load_hf_checkpoint

    with pytest.raises(EdgekitError, match="has no config.json"):
        load_hf_checkpoint(tmp_path)


def test_onnx_export_parity_and_generation_match_torch(tiny_llm, tmp_path):
    from edgekit.exporters.llm import export_llm
    from edgekit.generate import LLMSession
    from edgekit.model_zoo.text import encode_split

    model, tok_file, tok = tiny_llm
    art = export_llm(model, tok_file, "onnx", tmp_path / "onnx", prefill_len=8,
                     parity_tokens=encode_split(tok, "val")[:64])
    p = art.manifest["parity"]
    assert p["ok"] and p["metrics"]["samples"] == 33 and p["metrics"]["top1"] == 1.0
    assert p["metrics"]["cosine_min"] > 0.99999
    assert set(art.manifest["methods"]) == {"prefill", "decode"}

    llm = LLMSession(art.path)
    prompt = "The while statement is used for repeated execution"  # > 8 tokens: two prefill chunks
    result = llm.generate(prompt, max_new_tokens=12, temperature=0, stop_tokens=())
    # greedy decoding in torch from the same prompt
    ids = torch.tensor([tok.encode(prompt).ids])
    expected = []
    for _ in range(12):
        nxt = int(model.logits_full(ids)[0, -1].argmax())
        expected.append(nxt)
        ids = torch.cat([ids, torch.tensor([[nxt]])], 1)
    assert result.new_tokens == expected
    assert result.prompt_tokens > 8 and result.decode_tokens_per_s > 0


def test_generation_rejects_too_long_requests(tiny_llm, tmp_path):
    from edgekit.errors import EdgekitError
    from edgekit.exporters.llm import export_llm
    from edgekit.generate import LLMSession

    model, tok_file, _ = tiny_llm
    art = export_llm(model, tok_file, "onnx", tmp_path / "o", prefill_len=8)
    with pytest.raises(EdgekitError, match="exceeds the model's context of 64"):
        LLMSession(art.path).generate("hello", max_new_tokens=100)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["executorch", "tflite"])
def test_executorch_and_tflite_llm_parity(tiny_llm, tmp_path, target):
    from edgekit.exporters.llm import export_llm
    from edgekit.generate import LLMSession
    from edgekit.model_zoo.text import encode_split

    model, tok_file, tok = tiny_llm
    art = export_llm(model, tok_file, target, tmp_path / target, prefill_len=8,
                     parity_tokens=encode_split(tok, "val")[:64])
    assert art.manifest["parity"]["ok"] and art.manifest["parity"]["metrics"]["top1"] == 1.0
    r = LLMSession(art.path).generate("def", max_new_tokens=5, temperature=0, stop_tokens=())
    assert len(r.new_tokens) == 5
