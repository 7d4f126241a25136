"""ExecuTorch LLM artifacts: in-place KV cache, int4/int8 linear weights and their ledger."""

from __future__ import annotations

import pytest

from conftest import needs_export, tiny_llm_with_tokenizer

pytestmark = needs_export
torch = pytest.importorskip("torch")
pytest.importorskip("executorch")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from edgekit.model_zoo.text import encode_split

    model, tok_file, tok = tiny_llm_with_tokenizer(tmp_path_factory.mktemp("llm-w"), n_layers=2)
    return model, tok_file, encode_split(tok, "val")[:48]


def test_in_place_cache_matches_the_explicit_cache_model(tiny):
    from edgekit.model_zoo.llama import LlamaInPlaceStep

    model, _, tokens = tiny
    step = LlamaInPlaceStep(model).eval()
    ids = torch.from_numpy(tokens[None, :20])
    with torch.no_grad():
        ref = model.logits_full(ids)[0]
        first = step(ids[:, :8], torch.tensor([0]))[0]           # prefill 8
        rest = [step(ids[:, p:p + 1], torch.tensor([p]))[0, -1] for p in range(8, 20)]  # decode 12
    got = torch.cat([first, torch.stack(rest)])
    assert torch.allclose(got, ref, atol=1e-5), float((got - ref).abs().max())


def test_int4_executorch_artifact_ledger_parity_and_generation(tiny, tmp_path):
    from edgekit.exporters.llm import export_llm
    from edgekit.generate import LLMSession

    model, tok_file, tokens = tiny
    art = export_llm(model, tok_file, "executorch", tmp_path / "q4", prefill_len=8, parity_tokens=tokens,
                     weights="int4", group_size=32)
    m = art.manifest
    assert m["kv_cache"] == "in_place" and m["weights"] == "int4" and m["precision"] == "int8"
    assert [t["name"] for t in m["methods"]["decode"]["inputs"]] == ["tokens", "start_pos"]
    ledger = m["compression"]["ledger"]
    linears = [n for n, x in model.named_modules() if isinstance(x, torch.nn.Linear)]
    assert [r["layer"] for r in ledger] == linears
    for r in ledger:
        numel = r["shape"][0] * r["shape"][1]
        assert r["bytes_written"] == numel // 2 + numel // 32 * 4            # 4-bit + an fp32 scale per 32
        assert r["encoded"]["kind"] == "re-quantized" and 0 < r["encoded"]["max_abs_error"] < 0.05
    assert m["compression"]["summary"]["ratio_to_dense"] == pytest.approx(0.15625)
    assert m["parity"]["ok"] and m["parity"]["tolerance"]["cosine_min"] == 0.99
    assert m["parity"]["metrics"]["cosine_min"] > 0.999
    assert isinstance(model.layers[0].self_attn.q_proj.weight, torch.nn.Parameter)  # the user's model untouched
    r = LLMSession(art.path).generate("def", max_new_tokens=6, temperature=0, stop_tokens=())
    assert len(r.new_tokens) == 6


def test_per_channel_int4_takes_one_scale_a_row(tiny):
    from edgekit.exporters.llm_weights import quantized_copy

    model, _, _ = tiny
    qmodel, rows = quantized_copy(model, "int4", group_size=0)
    for r in rows:
        out_f, in_f = r["shape"]
        assert r["bytes_written"] == out_f * in_f // 2 + out_f * 4 and "per channel" in r["encoded"]["format"]
    assert max(r["encoded"]["rel_rms_error"] for r in rows) < 0.15
    x = torch.zeros(1, 4, dtype=torch.long)
    with torch.no_grad():
        assert torch.isfinite(qmodel.logits_full(x)).all()


@pytest.mark.parametrize("weights, target, group, code", [
    ("int3", "executorch", 32, "unknown_LLM_weight_format"),
    ("int4", "onnx", 32, "weights_unsupported_for_target"),
    ("int4", "executorch", 24, "bad_group_size"),
])
def test_bad_weight_options_are_named(weights, target, group, code):
    from edgekit.errors import EdgekitError
    from edgekit.exporters.llm_weights import check_weights

    with pytest.raises(EdgekitError) as err:
        check_weights(weights, target, group)
    assert err.value.code == code and err.value.fix
