"""export-llm --executorch-kernels edgekit: a clustered LLM's linears stay at their bit width in the .pte
(edgekit::lut_linear / shift_linear), and generate, bench, the runtime and perplexity see the same model."""

from __future__ import annotations

import json

import pytest
from conftest import needs_export, tiny_llm_with_tokenizer


def _ops_built():
    from edgekit.kernels.executorch_ops import ops_library_path

    if not ops_library_path().is_file():
        pytest.fail(f"{ops_library_path().name} not built although executorch is installed: run `make native`")


def _tables(row, ledger) -> int:
    """Tables a ledger row owns: one, or for a layer fused with its siblings (q/k/v, gate/up: llm_fuse.py)
    one per group of rows, the group the gcd of the fused layers' rows."""
    import math

    fused = row["encoded"].get("fused_into")
    if fused is None:
        return 1
    return row["shape"][0] // math.gcd(*(r["shape"][0] for r in ledger if r["encoded"].get("fused_into") == fused))


def _fused(row) -> dict:
    """The ledger's encoded facts of a layer: q/k/v and gate/up are fused into one op per block."""
    layer = row["layer"]
    for sub, parts, name in (("self_attn", ("q_proj", "k_proj", "v_proj"), "qkv_proj"),
                             ("mlp", ("gate_proj", "up_proj"), "gate_up_proj")):
        if layer.rsplit(".", 1)[-1] in parts:
            return {"fused_into": f"{layer.rsplit('.', 1)[0]}.{name}"}
    return {}


@pytest.fixture(scope="module")
def nk():
    """The native kernels, built on demand (cmake, seconds) as tests/kernels does."""
    import shutil
    import subprocess
    from pathlib import Path

    from edgekit.kernels import _native

    if not _native.library_path().is_file():
        if not shutil.which("cmake"):
            pytest.skip("native kernels not built and cmake is absent: run `make native`")
        subprocess.run(["make", "-s", "-C", str(Path(__file__).resolve().parents[1]), "native"], check=True,
                       capture_output=True)
        _native.lib.cache_clear()
    return _native


@pytest.fixture(scope="module")
def edkm3(tmp_path_factory, nk):
    """A tiny LLM whose decoder linears are clustered to 3 bits (one table each), saved as a clustered
    (eDKM-format) checkpoint and exported by the CLI with edgekit kernels: (torch model, artifact, val ids)."""
    from edgekit.exporters.llm_checkpoint import load_clustered, save_clustered
    from edgekit.exporters.llm_kernels import apply_recipe
    from edgekit.model_zoo.text import encode_split

    from edgekit.cli import main

    _ops_built()
    d = tmp_path_factory.mktemp("llmk")
    model, tok_file, tok = tiny_llm_with_tokenizer(d, n_layers=2)
    clustered, _ = apply_recipe(model, "palettize3", exclude="lm_head")  # k-means: eDKM's final form
    save_clustered(clustered, d / "tiny_edkm3", tok_file)
    assert main(["export-llm", str(d / "tiny_edkm3"), "--executorch-kernels", "edgekit", "--prefill-len", "8",
                 "--out", str(d / "art")]) == 0
    return load_clustered(d / "tiny_edkm3"), d / "art" / "tiny_edkm3" / "executorch", encode_split(tok, "val")


@needs_export
def test_clustered_checkpoint_keeps_3_bits_in_the_pte(edkm3):
    from edgekit.exporters.file_weights import read_stored

    model, art, _ = edkm3
    manifest = json.loads((art / "manifest.json").read_text())
    assert manifest["parity"]["ok"] and manifest["parity"]["metrics"]["max_abs_err"] < 1e-4, manifest["parity"]
    assert manifest["options"]["executorch_kernels"] == "edgekit"
    ledger = manifest["compression"]["ledger"]
    assert len(ledger) == 2 * 7                                            # q/k/v/o + gate/up/down; lm_head fp32
    for row in ledger:
        assert row["encoded"] == {"kind": "native", "format": "edgekit::lut_linear", "index_bits": 3,
                                  "bytes_from": "file"} | _fused(row), row
        n, k = row["shape"]
        # the kernel layout: 32 3-bit indices in 3 32-bit words, rows in blocks of 16, tables of 16 fp32
        assert row["bytes_written"] == -(-n // 16) * 16 * 3 * -(-k // 32) * 4 + _tables(row, ledger) * 16 * 4, row
        assert row["bytes_written"] < n * k * 4 * 0.11  # 3.0 bits a weight (k a multiple of 32) + tables: 3.25 at 64x64
        assert row["dense_bytes"] == n * k * 4
    pte = (art / "model.pte").read_bytes()
    assert b"edgekit::lut_linear" in pte
    # the packed indices are in the file once, as int32 words, although prefill and decode both use them
    stored = {s.name: s for s in read_stored(art / "model.pte")}
    packed = sum(s.nbytes for s in stored.values() if s.dtype == "int32" and s.name.startswith("decode."))
    tables = sum(_tables(r, ledger) for r in ledger)  # the rest: fp32 tables (fused layers: one a row group)
    assert packed == sum(r["bytes_written"] for r in ledger) - tables * 16 * 4
    assert pte.count(b"edgekit::lut_linear") >= 1 and tables > 14
    # 66% of the weights at 3 bits; embeddings, lm_head and the three methods' programs stay as they were
    assert len(pte) < sum(p.numel() * 4 for p in model.parameters()) * 0.7


@needs_export
def test_generate_and_runtime_run_the_edgekit_pte(edkm3, capsys):
    import torch

    from edgekit.cli import main
    from edgekit.generate import LLMSession

    model, art, _ = edkm3
    llm = LLMSession(art)
    r = llm.generate("The for statement", max_new_tokens=12, temperature=0)
    ids = list(llm.tokenizer.encode("The for statement").ids)
    with torch.no_grad():                                                  # greedy continuation in torch
        for _ in range(12):
            ids.append(int(model.logits_full(torch.tensor([ids]))[0, -1].argmax()))
    assert list(r.new_tokens) == ids[-12:]
    assert main(["generate", str(art), "--prompt", "The for statement", "--max-new-tokens", "8",
                 "--temperature", "0", "--threads", "2"]) == 0
    err = capsys.readouterr().err
    assert "8 new tokens" in err and "tok/s decode" in err


@needs_export
def test_bench_cli_times_the_edgekit_pte(edkm3, tmp_path, capsys):
    from edgekit.cli import main

    _, art, _ = edkm3
    assert main(["bench", str(art), "--runs", "16", "--warmup", "2", "--min-seconds", "0", "--threads", "2",
                 "--prompt-tokens", "8", "--new-tokens", "16", "--json", str(tmp_path / "r.json")]) == 0
    assert "decode tok/s" in capsys.readouterr().out
    (r,) = json.loads((tmp_path / "r.json").read_text())
    assert r["kind"] == "llm" and r["target"] == "executorch" and r["runtime"] == "executorch"
    assert r["llm"]["decode_tokens_per_s"] > 0 and r["llm"]["prompt_tokens"] == 8 and r["latency"]["runs"] == 16


@needs_export
def test_edgekit_pte_perplexity_equals_the_clustered_torch_model(edkm3):
    """The kernels use the same tables and indices: only the fp32 summation order differs (blocked /
    vectorized dot products vs torch's), ~1e-6 relative per logit, so the perplexity agrees to 1e-5."""
    from edgekit.exporters.llm_kernels import perplexities

    from edgekit.generate import LLMSession

    model, art, val = edkm3
    p = perplexities(model, LLMSession(art), val, seq_len=32, max_windows=8)
    assert p["windows"] == 8 and p["max_abs_logit_diff"] < 1e-4, p
    assert p["rel_diff"] < 1e-5, p
    assert 100 < p["torch"] < 3 * 300                # untrained, 300 tokens: about uniform, a real value


@needs_export
def test_any_recipe_runs_native_lut2_lut4_shift3(tmp_path, nk):
    """One recipe (a .json) putting 2-bit tables, 4-bit grouped tables and 3-bit shift on different layers."""
    from edgekit.exporters.compression import Recipe, Step
    from edgekit.exporters.compression.palettize import PalettizeConfig
    from edgekit.exporters.compression.shift import ShiftQuantConfig

    from edgekit.cli import main
    from edgekit.generate import LLMSession

    _ops_built()
    model, _, _ = tiny_llm_with_tokenizer(tmp_path, n_layers=1)
    from edgekit.model_zoo.llama import save_hf_checkpoint

    save_hf_checkpoint(model, tmp_path)
    recipe = Recipe("mixed", (Step(default=PalettizeConfig(bits=4, granularity="per_grouped_channel",
                                                           group_size=16),
                                   by_name={r".*self_attn\.[qk]_proj": PalettizeConfig(bits=2),
                                            r".*mlp\.down_proj": ShiftQuantConfig(bits=3)}),))
    (tmp_path / "mixed.json").write_text(recipe.to_json())
    assert main(["export-llm", str(tmp_path), "--recipe", str(tmp_path / "mixed.json"), "--executorch-kernels",
                 "edgekit", "--prefill-len", "8", "--out", str(tmp_path / "art")]) == 0
    art = tmp_path / "art" / tmp_path.name / "executorch"
    manifest = json.loads((art / "manifest.json").read_text())
    assert manifest["parity"]["ok"] and manifest["compression"]["recipe"]["name"] == "mixed"
    got = {r["layer"]: (r["encoded"]["format"], r["encoded"]["index_bits"]) for r in manifest["compression"]["ledger"]}
    assert got["layers.0.self_attn.q_proj"] == got["layers.0.self_attn.k_proj"] == ("edgekit::lut_linear", 2)
    assert got["layers.0.mlp.down_proj"] == ("edgekit::shift_linear", 3)
    assert got["layers.0.mlp.up_proj"] == got["lm_head"] == ("edgekit::lut_linear", 4)
    assert len(got) == 8
    r = LLMSession(art).generate("def", max_new_tokens=4, temperature=0)
    assert len(r.new_tokens) == 4


@needs_export
def test_kernels_option_refuses_what_it_cannot_do(tmp_path, capsys):
    from edgekit.exporters.llm import export_llm
    from edgekit.exporters.llm_kernels import apply_recipe

    from edgekit.cli import main
    from edgekit.errors import EdgekitError

    model, tok_file, _ = tiny_llm_with_tokenizer(tmp_path, n_layers=1)
    with pytest.raises(EdgekitError, match="executorch target"):
        export_llm(model, tok_file, "onnx", tmp_path / "a", kernels="edgekit")
    with pytest.raises(EdgekitError, match="pick one"):
        export_llm(model, tok_file, "executorch", tmp_path / "b", kernels="edgekit", weights="int4")
    with pytest.raises(EdgekitError, match="no clustered or shift"):
        export_llm(model, tok_file, "executorch", tmp_path / "c", kernels="edgekit")
    with pytest.raises(EdgekitError, match="compress-llm"):
        apply_recipe(model, "edkm3")
    assert not any((tmp_path / d).exists() for d in ("a", "b", "c"))      # nothing half-written
    from edgekit.model_zoo.llama import save_hf_checkpoint

    save_hf_checkpoint(model, tmp_path / "ck")
    (tmp_path / "ck" / "tokenizer.json").write_bytes(tok_file.read_bytes())
    assert main(["export-llm", str(tmp_path / "ck"), "--recipe", "int8", "--out", str(tmp_path / "d")]) != 0
    assert "recipe_unsupported_for_llm" in capsys.readouterr().err


@needs_export
def test_server_benchmark_job_runs_the_edgekit_pte(edkm3, tmp_path):
    from tests.server.conftest import make_client, upload, wait_job, zip_dir

    _, art, _ = edkm3
    with make_client(tmp_path / "data") as client:
        a = upload(client, zip_dir(art), "llm.zip").json()
        assert a["format"] == "executorch" and a["runnable"], a
        body = {"artifact_id": a["id"], "inputs": "random", "runs": 16, "warmup": 0, "min_seconds": 0,
                "prompt_tokens": 8, "new_tokens": 16}
        job = wait_job(client, client.post("/v1/benchmarks", json=body).json()["id"], timeout=180)
    assert job["status"] == "succeeded", job
    r = job["result"]
    assert r["kind"] == "llm" and r["latency"]["runs"] == 16 and r["llm"]["decode_tokens_per_s"] > 0


@pytest.fixture(scope="module")
def edkm3_q8(edkm3):
    """The same clustered checkpoint exported by the CLI with ``--executorch-kernels edgekit-q8``."""
    from edgekit.cli import main

    model, art, val = edkm3
    d = art.parents[2]
    assert main(["export-llm", str(d / "tiny_edkm3"), "--executorch-kernels", "edgekit-q8", "--prefill-len", "8",
                 "--out", str(d / "art_q8")]) == 0
    return model, d / "art_q8" / "tiny_edkm3" / "executorch", val


@needs_export
def test_q8_kernels_pte_runs_int8_activations(edkm3_q8, tmp_path, capsys):
    """edgekit-q8: the ledger says native / lut_linear_q8 / 3 bits / int8 activations per row, parity passes the
    int8 gate, the runtime computes what the same q8 kernels compute in torch (ctypes), and perplexity moves a
    little from the exact clustered model's (quantized activations), not a lot."""
    import numpy as np
    import torch

    from edgekit.exporters.executorch.native_kernels import swap_compressed_linears
    from edgekit.exporters.llm_kernels import perplexities
    from edgekit.generate import LLMSession

    model, art, val = edkm3_q8
    manifest = json.loads((art / "manifest.json").read_text())
    assert manifest["options"]["executorch_kernels"] == "edgekit-q8" and manifest["precision"] == "int8"
    assert manifest["parity"]["ok"] and manifest["parity"]["precision"] == "int8", manifest["parity"]
    assert manifest["parity"]["metrics"]["cosine_min"] > 0.999, manifest["parity"]
    for row in manifest["compression"]["ledger"]:
        assert row["encoded"] == {"kind": "native", "format": "edgekit::lut_linear_q8", "index_bits": 3,
                                  "bytes_from": "file", "activations": "int8 per row"} | _fused(row), row
        n, k = row["shape"]
        ledger = manifest["compression"]["ledger"]   # the exact ops' arrays
        assert row["bytes_written"] == -(-n // 16) * 16 * 3 * -(-k // 32) * 4 + _tables(row, ledger) * 16 * 4, row
    pte = (art / "model.pte").read_bytes()
    assert b"edgekit::lut_linear_q8" in pte and b"edgekit::lut_linear.out" not in pte

    session = LLMSession(art)
    swapped, _ = swap_compressed_linears(model, "edgekit-q8")               # torch + the ctypes q8 kernels
    ids = np.asarray(val[:9], np.int64)
    k, v = session.empty_cache()
    got, k, v = session.prefill_chunk(ids[:8], 0, k, v)
    with torch.no_grad():
        want = swapped.logits_full(torch.from_numpy(ids[None, :8]))[0].numpy()
        exact = model.logits_full(torch.from_numpy(ids[None, :8]))[0].numpy()
    # same int8 math; the graph around the ops (norms, attention) rounds like torch to ~1e-7, which can move an
    # activation across an int8 rounding boundary now and then: far below the quantization error itself
    q8_err = np.abs(exact - want).max()
    assert np.abs(got - want).max() < 1e-3 * q8_err + 1e-5 < q8_err, (np.abs(got - want).max(), q8_err)
    p = perplexities(model, session, val, seq_len=32, max_windows=8)
    assert 1e-7 < p["rel_diff"] < 1e-2, p                                  # int8 activations: close, not exact
    from edgekit.cli import main

    assert main(["generate", str(art), "--prompt", "The for statement", "--max-new-tokens", "6",
                 "--temperature", "0", "--threads", "2"]) == 0
    assert "6 new tokens" in capsys.readouterr().err
    assert main(["bench", str(art), "--runs", "8", "--warmup", "1", "--min-seconds", "0", "--threads", "2",
                 "--prompt-tokens", "8", "--new-tokens", "8", "--json", str(tmp_path / "r.json")]) == 0
    (r,) = json.loads((tmp_path / "r.json").read_text())
    assert r["kind"] == "llm" and r["llm"]["decode_tokens_per_s"] > 0


@pytest.mark.parametrize("kernels", ["edgekit", "edgekit-q8"])
def test_fused_qkv_and_gate_up_compute_what_the_separate_ops_compute(nk, kernels):
    """q/k/v and gate/up as one op each (per-group tables): the same logits, bit for bit, as one op a layer."""
    import torch

    from edgekit.exporters.executorch.native_kernels import swap_compressed_linears
    from edgekit.exporters.llm_kernels import apply_recipe, swap_llm
    from edgekit.model_zoo import get_spec

    _ops_built()
    model = get_spec("llama_tiny").build()
    clustered, _ = apply_recipe(model, "palettize3", exclude="lm_head")
    plain, _ = swap_compressed_linears(clustered, kernels)
    fused, enc = swap_llm(clustered, kernels)
    assert sum("fused_into" in e for e in enc.values()) == 4 * 5                # 4 blocks x (q, k, v, gate, up)
    assert not hasattr(fused.layers[0].self_attn, "q_proj") and hasattr(fused.layers[0].mlp, "gate_up_proj")
    assert fused.layers[0].self_attn.qkv_proj.out_features == 128 + 2 * 64
    tokens = torch.randint(0, 1024, (1, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(fused.logits_full(tokens), plain.logits_full(tokens))


@needs_export
def test_edgekit_pte_runs_its_attention_on_the_kernels_op(edkm3):
    """--executorch-kernels implies --executorch-attention auto -> edgekit: one edgekit::attention op a layer
    (its numbers: the greedy and perplexity tests above, which run prefill and decode through it)."""
    _, art, _ = edkm3
    manifest = json.loads((art / "manifest.json").read_text())
    assert manifest["options"]["executorch_attention"] == "edgekit"
    assert b"edgekit::attention" in (art / "model.pte").read_bytes()


@needs_export
def test_attention_option_on_a_plain_llm_equals_the_graph_attention(nk, tmp_path, capsys):
    """An fp32 .pte with --executorch-attention edgekit decodes what the graph attention decodes (to fp32
    rounding); graph keeps the .pte free of edgekit ops; the option is refused where it cannot apply."""
    import numpy as np

    from edgekit.errors import EdgekitError
    from edgekit.exporters.llm import export_llm
    from edgekit.generate import LLMSession

    import subprocess
    import sys

    from edgekit.model_zoo.llama import save_hf_checkpoint

    _ops_built()
    model, tok_file, _ = tiny_llm_with_tokenizer(tmp_path, n_layers=2)
    ids = np.random.default_rng(3).integers(0, 300, 8 + 12)
    arts = {"graph": export_llm(model, tok_file, "executorch", tmp_path / "graph", prefill_len=8, parity_tokens=ids,
                                attention="graph").path}
    # the CLI, in a fresh process (the op must be defined there without any edgekit linear)
    save_hf_checkpoint(model, tmp_path / "ck")
    (tmp_path / "ck" / "tokenizer.json").write_bytes(tok_file.read_bytes())
    run = subprocess.run([sys.executable, "-m", "edgekit.cli", "export-llm", str(tmp_path / "ck"), "--prefill-len",
                          "8", "--executorch-attention", "edgekit", "--out", str(tmp_path / "edgekit")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    arts["edgekit"] = tmp_path / "edgekit" / "ck" / "executorch"
    logits = {}
    for a, path in arts.items():
        manifest = json.loads((path / "manifest.json").read_text())
        assert manifest["parity"]["ok"] and manifest["parity"]["metrics"]["max_abs_err"] < 1e-4
        assert manifest["options"]["executorch_attention"] == a
        assert (b"edgekit::attention" in (path / "model.pte").read_bytes()) == (a == "edgekit")
        s = LLMSession(path)
        out, state = s._prefill_prompt(ids[:8])
        steps = [out]
        for i, t in enumerate(ids[8:]):
            steps.append(s._decode_state(int(t), 8 + i, state))
        logits[a] = np.concatenate([np.asarray(x, np.float32).reshape(-1) for x in steps])
    np.testing.assert_allclose(logits["edgekit"], logits["graph"], rtol=0, atol=2e-5)
    with pytest.raises(EdgekitError, match="executorch target"):
        export_llm(model, tok_file, "onnx", tmp_path / "x", attention="edgekit")
    with pytest.raises(EdgekitError, match="auto, graph, edgekit"):
        export_llm(model, tok_file, "executorch", tmp_path / "y", attention="flash")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
