"""FiRST on llama_tiny: threshold 0 is the base model, cached decoding equals recomputation for every skip set,
routers decide from the prompt alone, LoRA merges exactly, the routers file describes itself."""

from __future__ import annotations

import itertools

import pytest

from conftest import needs_export

pytestmark = needs_export
torch = pytest.importorskip("torch")

N_LAYERS = 4  # llama_tiny


@pytest.fixture(scope="module")
def tiny():
    from edgekit.model_zoo import get_spec
    from edgekit.model_zoo.first import Routers

    model = get_spec("llama_tiny").build()
    routers = Routers.for_model(model)
    with torch.no_grad():  # random routers that do skip at 0.5, so the tests below are not vacuous
        g = torch.Generator().manual_seed(0)
        for r in routers.layers:
            r.proj.weight.copy_(torch.randn(r.proj.weight.shape, generator=g))
            r.proj.bias.zero_()
    return model, routers


def _tokens(seed: int, n: int, batch: int = 1):
    return torch.randint(0, 1024, (batch, n), generator=torch.Generator().manual_seed(seed))


def test_threshold_zero_is_the_base_model_bit_for_bit(tiny):
    from edgekit.model_zoo.first import first_prefill, routed_logits

    model, routers = tiny
    never = routers.with_threshold(0.0)
    tokens = _tokens(1, 24, batch=3)
    with torch.no_grad():
        routed, _, gates = routed_logits(model, never, tokens, 8)
        assert torch.equal(routed, model.logits_full(tokens)) and bool((gates == 1).all())
        logits, k, v, skip = first_prefill(model, never, tokens[:1])
        k0, v0 = model.empty_cache(1)
        ref, rk, rv = model(tokens[:1], torch.tensor([0]), k0, v0)
    assert skip == frozenset() and torch.equal(logits, ref) and torch.equal(k, rk) and torch.equal(v, rv)


@pytest.mark.parametrize("skip", [s for n in range(N_LAYERS) for s in itertools.combinations(range(N_LAYERS), n)],
                         ids=lambda s: "skip-" + ("".join(map(str, s)) or "none"))
def test_cached_decoding_equals_full_recompute_for_every_skip_set(tiny, skip):
    model, _ = tiny
    model.skip = frozenset(skip)
    try:
        tokens = _tokens(2, 14)
        with torch.no_grad():
            full = model.logits_full(tokens)
            k, v = model.empty_cache(1)
            out, k, v = model(tokens[:, :6], torch.tensor([0]), k, v)
            steps = [out]
            for i in range(6, 14):
                out, k, v = model(tokens[:, i:i + 1], torch.tensor([i]), k, v)
                steps.append(out)
        assert torch.allclose(full, torch.cat(steps, 1), atol=1e-5)
        for i in skip:  # a skipped layer writes no cache rows
            assert not k[i].any() and not v[i].any()
    finally:
        model.skip = frozenset()


def test_routed_prefill_then_decode_equals_routed_recompute(tiny):
    from edgekit.model_zoo.first import first_prefill, routed_logits

    model, routers = tiny
    tokens = _tokens(3, 20)
    with torch.no_grad():
        logits, k, v, skip = first_prefill(model, routers, tokens[:, :8])
        assert 0 < len(skip) < N_LAYERS, skip  # the random routers skip some layers for this prompt
        model.skip = skip
        try:
            steps = [logits]
            for i in range(8, 20):
                out, k, v = model(tokens[:, i:i + 1], torch.tensor([i]), k, v)
                steps.append(out)
        finally:
            model.skip = frozenset()
        full, _, gates = routed_logits(model, routers, tokens, 8)
    assert {i for i in range(N_LAYERS) if gates[0, i] == 0} == set(skip)
    assert torch.allclose(full, torch.cat(steps, 1), atol=1e-5)


def test_routers_decide_from_the_prompt_alone_and_deterministically(tiny):
    from edgekit.model_zoo.first import first_prefill, routed_logits

    model, routers = tiny
    prompt = _tokens(4, 10)
    a = torch.cat([prompt, _tokens(5, 6)], 1)
    b = torch.cat([prompt, _tokens(6, 6)], 1)
    with torch.no_grad():
        sets = {first_prefill(model, routers, prompt)[3] for _ in range(3)}
        _, pa, ga = routed_logits(model, routers, a, 10)
        _, pb, gb = routed_logits(model, routers, b, 10)
        chosen = {first_prefill(model, routers, _tokens(s, 10))[3] for s in range(20)}
    assert len(sets) == 1                                  # same prompt, same decision
    assert torch.equal(pa, pb) and torch.equal(ga, gb)     # what follows the prompt does not matter
    assert len(chosen) > 1                                 # ... but the prompt does


def test_lora_merge_equals_unmerged(tiny):
    import copy

    from edgekit.model_zoo.first import LoRALinear, add_lora, merge_lora

    model, _ = tiny
    m = copy.deepcopy(model)
    names = add_lora(m, rank=4, alpha=8.0)
    assert len(names) == 7 * N_LAYERS and all(isinstance(m.get_submodule(n), LoRALinear) for n in names)
    trainable = {n for n, p in m.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    tokens = _tokens(7, 16)
    with torch.no_grad():
        assert torch.equal(m.logits_full(tokens), model.logits_full(tokens))  # B = 0: the base model
        for n in names:
            m.get_submodule(n).lora_b.normal_(0, 0.05)
        unmerged = m.logits_full(tokens)
        merge_lora(m)
        merged = m.logits_full(tokens)
    assert not any(isinstance(x, LoRALinear) for x in m.modules())
    assert not torch.allclose(unmerged, model.logits_full(tokens), atol=1e-3)
    assert torch.allclose(merged, unmerged, atol=1e-5), (merged - unmerged).abs().max()


def test_routers_file_round_trip_and_errors(tiny, tmp_path):
    from edgekit.errors import EdgekitError
    from edgekit.model_zoo.first import load_routers, save_routers

    model, routers = tiny
    save_routers(routers, tmp_path / "r.safetensors", extra={"target_skip": 0.5})
    again = load_routers(tmp_path / "r.safetensors")
    assert again.cfg == routers.cfg
    assert load_routers(tmp_path / "r.safetensors", threshold=0.0).cfg.threshold == 0.0
    tokens = _tokens(8, 12)
    from edgekit.model_zoo.first import first_prefill
    with torch.no_grad():
        assert first_prefill(model, routers, tokens)[3] == first_prefill(model, again, tokens)[3]
    from safetensors.torch import save_file
    save_file({"x": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(EdgekitError, match="not 'edgekit-first-routers'"):
        load_routers(tmp_path / "other.safetensors")
    with pytest.raises(EdgekitError, match="outside"):
        load_routers(tmp_path / "r.safetensors", threshold=1.5)


def test_router_training_moves_towards_the_skip_budget(tiny):
    import copy

    import numpy as np

    from edgekit.model_zoo.first import Routers
    from edgekit.model_zoo.first_train import train_routers

    model, _ = tiny
    m = copy.deepcopy(model)
    routers = Routers.for_model(m)
    ids = np.tile(np.random.default_rng(0).integers(0, 1024, 40), 100)  # a repeated 'text': prompts alike
    log = train_routers(m, routers, ids, target_skip=0.5, steps=8, batch=1, seq_len=16, prompt_lens=(4, 8),
                        lr=0.05, show_progress=False)
    assert log[0]["kept"] == 1.0 and log[-1]["kept"] < 1.0
    assert all(not p.requires_grad for p in m.parameters())  # the base stays frozen
