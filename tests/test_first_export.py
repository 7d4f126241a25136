"""The FiRST ExecuTorch artifact: per-layer methods + routers + fused decode, driven by the torch-free loop."""

from __future__ import annotations

import pytest

from conftest import needs_export

pytestmark = [needs_export, pytest.mark.slow]  # one 16-method ExecuTorch export: minutes
torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def first_artifact(tmp_path_factory):
    from edgekit.exporters.llm_first import export_first_llm
    from edgekit.model_zoo.first import Routers
    from edgekit.model_zoo.llama import Llama, LlamaConfig
    from edgekit.model_zoo.text import encode_split, train_tokenizer

    d = tmp_path_factory.mktemp("first")
    tok = train_tokenizer(300)
    tok.save(str(d / "tokenizer.json"))
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=300, dim=64, n_layers=3, n_heads=4, n_kv_heads=2, hidden_dim=128, max_seq_len=64)
    model = Llama(cfg).eval()
    routers = Routers.for_model(model)
    with torch.no_grad():  # random routers: different prompts skip different layers
        g = torch.Generator().manual_seed(0)
        for r in routers.layers:
            r.proj.weight.copy_(torch.randn(r.proj.weight.shape, generator=g))
            r.proj.bias.zero_()
    val = encode_split(tok, "val")
    art = export_first_llm(model, routers, d / "tokenizer.json", d / "art", prefill_len=8,
                           calibration_tokens=val, parity_tokens=val)
    return model, routers, tok, val, art


def test_artifact_parity_same_skip_sets_both_decode_paths(first_artifact):
    _, _, _, _, art = first_artifact
    p = art.manifest["parity"]
    assert p["ok"] and not p["skip_set_mismatches"] and p["metrics"]["top1"] == 1.0, p
    assert p["metrics"]["cosine_min"] > 0.99999
    methods = set(art.manifest["methods"])
    assert {"embed_prefill", "embed_decode", "head_prefill", "head_decode", "routers", "layer_2_decode",
            "decode_skip_none"} <= methods
    assert "prefill" not in methods and "decode" not in methods


def _greedy_torch(model, routers, prompt_ids, n):
    from edgekit.model_zoo.first import first_prefill

    ids = torch.tensor([prompt_ids])
    logits, k, v, skip = first_prefill(model, routers, ids)
    out = [int(logits[0, -1].argmax())]
    model.skip = skip
    try:
        for i in range(n - 1):
            lg, k, v = model(torch.tensor([[out[-1]]]), torch.tensor([len(prompt_ids) + i]), k, v)
            out.append(int(lg[0, -1].argmax()))
    finally:
        model.skip = frozenset()
    return out, skip


@pytest.mark.parametrize("fused", [True, False], ids=["fused-decode", "per-layer-decode"])
def test_generate_matches_torch_and_skips_what_the_routers_chose(first_artifact, fused):
    from edgekit.generate import open_llm

    model, routers, tok, _, art = first_artifact
    llm = open_llm(art.path, use_fused=fused)
    prompt = "The while statement is used for repeated execution"  # > 8 tokens: layer-major chunked prefill
    r = llm.generate(prompt, max_new_tokens=10, temperature=0, stop_tokens=())
    with torch.no_grad():
        expected, skip = _greedy_torch(model, routers, tok.encode(prompt).ids, 10)
    assert r.new_tokens == expected and r.skipped_layers == sorted(skip)


def test_threshold_zero_artifact_is_the_base_model(first_artifact):
    from edgekit.generate import open_llm

    model, _, tok, _, art = first_artifact
    llm = open_llm(art.path, threshold=0.0)
    prompt = "def f(x): return"
    r = llm.generate(prompt, max_new_tokens=8, temperature=0, stop_tokens=())
    ids = torch.tensor([tok.encode(prompt).ids])
    expected = []
    with torch.no_grad():
        for _ in range(8):
            expected.append(int(model.logits_full(ids)[0, -1].argmax()))
            ids = torch.cat([ids, torch.tensor([[expected[-1]]])], 1)
    assert r.skipped_layers == [] and r.new_tokens == expected


def test_skipped_layers_are_never_called(first_artifact):
    from edgekit.first_session import FiRSTSession

    _, _, _, val, art = first_artifact
    llm = FiRSTSession(art.path, use_fused=False)
    calls = []
    for name, fn in list(llm._methods.items()):
        llm._methods[name] = (lambda arrays, fn=fn, name=name: calls.append(name) or fn(arrays))
    skipped = None
    for w in range(8):  # find a prompt for which the routers skip something
        calls.clear()
        _, state = llm.prefill(val[w * 16: w * 16 + 8])
        if state.skip:
            skipped = state
            break
    assert skipped is not None
    llm.decode_step(5, 8, skipped)
    assert not any(c.startswith(f"layer_{i}_") for c in calls for i in skipped.skip)
    assert all(c == "routers" or c.startswith(("embed", "head")) or
               int(c.split("_")[1]) in skipped.kept for c in calls)
    assert skipped.k.shape[0] == len(skipped.kept)  # no cache allocated for skipped layers


def test_plain_session_refuses_a_first_artifact_and_other_targets_are_refused(first_artifact, tmp_path):
    from edgekit.errors import EdgekitError
    from edgekit.exporters.llm_first import export_first_llm
    from edgekit.generate import LLMSession

    model, routers, _, _, art = first_artifact
    with pytest.raises(EdgekitError, match="open_llm"):
        LLMSession(art.path)
    with pytest.raises(EdgekitError, match="choose one of executorch"):
        export_first_llm(model, routers, art.path / "tokenizer.json", tmp_path / "x", target="onnx")
