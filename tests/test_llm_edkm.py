"""eDKM on the Llama decoder: sharded gradients vs naive DKM over 2 gloo ranks, the clustered checkpoint, bit packing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

LAYER = "layers.0.mlp.gate_proj"   # 384 x 128 = 49,152 weights in llama_tiny


@pytest.mark.parametrize("bits", range(1, 9))
def test_bitpack_round_trip(bits):
    from edgekit.kernels.bitpack import pack_bits, packed_nbytes, unpack_bits

    v = np.random.default_rng(bits).integers(0, 2 ** bits, size=1001).astype(np.uint8)
    packed = pack_bits(v, bits)
    assert packed.nbytes == packed_nbytes(v.size, bits) == -(-1001 * bits // 8)
    assert np.array_equal(unpack_bits(packed, bits, v.size), v)


def test_bitpack_refuses_values_too_wide():
    from edgekit.kernels.bitpack import pack_bits

    with pytest.raises(ValueError, match="outside 0..7"):
        pack_bits(np.array([8], np.uint8), 3)


def _layer_grad(bits: int, *, naive: bool, seed: int = 0):
    """One DKM forward/backward of LAYER of llama_tiny; returns (weight grad, centroids, saved bytes)."""
    from edgekit.exporters.llm_compress import attach_dkm, llm_recipe
    from edgekit.model_zoo import get_spec

    model = get_spec("llama_tiny").build()
    recipe = llm_recipe(bits, edkm=not naive, pattern=LAYER.replace(".", r"\."))
    targets = attach_dkm(model, recipe, naive=naive)
    module, _, hooks = targets[LAYER]
    module.train()
    w = module.weight                                   # runs DKM (3 soft k-means iterations)
    upstream = torch.randn(w.shape, generator=torch.Generator().manual_seed(seed))
    (w * upstream).sum().backward()
    grad = module.parametrizations.weight.original.grad.clone()
    return grad, module.parametrizations.weight[0].centroids.clone(), hooks.bytes_peak


def _rank_worker(rank: int, world: int, port: int, bits: int, out: str) -> None:
    import os

    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        grad, cents, saved = _layer_grad(bits, naive=False)
        torch.save({"grad": grad, "centroids": cents, "saved": saved}, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("bits", [3, 4])
def test_sharded_edkm_on_two_gloo_ranks_matches_naive_dkm(bits, tmp_path):
    """2 processes, gloo: each rank keeps half of the row index; gradients equal single-process naive DKM."""
    import torch.multiprocessing as mp

    from edgekit.exporters.llm_compress import _free_port

    torch.set_num_threads(1)
    mp.spawn(_rank_worker, args=(2, _free_port(), bits, str(tmp_path / "r")), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"r.{r}") for r in range(2)]
    ref_grad, ref_cents, naive_bytes = _layer_grad(bits, naive=True)
    _, _, single_bytes = _layer_grad(bits, naive=False)      # eDKM, one process (no sharding)
    for r in ranks:
        assert torch.allclose(r["grad"], ref_grad, rtol=1e-5, atol=1e-7), (r["grad"] - ref_grad).abs().max()
        assert torch.equal(r["centroids"], ref_cents)
        assert r["saved"] < single_bytes                    # sharding: half the row index per rank
        assert naive_bytes / r["saved"] > 20, (naive_bytes, r["saved"])


def _tiny_checkpoint(d: Path):
    from edgekit.model_zoo import get_spec
    from edgekit.model_zoo.llama import save_hf_checkpoint

    model = get_spec("llama_tiny").build()
    save_hf_checkpoint(model, d)
    (d / "tokenizer.json").write_text("{}")             # stands in: this test never tokenizes
    return model


@pytest.mark.parametrize("bits", [3, 4])
def test_clustered_checkpoint_round_trips(bits, tmp_path):
    from edgekit.errors import EdgekitError
    from edgekit.exporters.llm import llm_compression_section
    from edgekit.exporters.llm_compress import (
        FinetuneConfig, finalize, finetune, llm_recipe, load_clustered, save_clustered, size_report)
    from edgekit.model_zoo.llama import load_hf_checkpoint

    torch.set_num_threads(1)
    model = _tiny_checkpoint(tmp_path / "src")
    ids = np.random.default_rng(0).integers(0, 1024, size=4096)
    cfg = FinetuneConfig(steps=2, batch=2, seq_len=16, nproc=1)
    targets, stats = finetune(model, llm_recipe(bits), ids, cfg)
    assert stats["dkm_saved_bytes_peak"] > 0 and np.isfinite(stats["final_loss"])
    finalize(model, targets)
    assert len(targets) == 4 * 7 and "lm_head" not in targets        # q/k/v/o + gate/up/down per layer
    save_clustered(model, tmp_path / "c", tmp_path / "src" / "tokenizer.json")
    again = load_clustered(tmp_path / "c")
    for name, (module, _, _) in targets.items():
        w = again.get_submodule(name).weight
        assert torch.equal(w, module.weight)
        assert torch.unique(w).numel() <= 2 ** bits
    tokens = torch.randint(0, 1024, (1, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model.logits_full(tokens), again.logits_full(tokens))
    size = size_report(again)
    assert size["linear_clustered_bytes"] == sum(-(-m.weight.numel() * bits // 8) + 2 ** bits * 2
                                                 for m, _, _ in targets.values())
    assert size["ratio"] <= {4: 0.16, 3: 0.13}[bits]
    with pytest.raises(EdgekitError) as lost:  # stored dense without being allowed to: as for classifiers
        llm_compression_section(again, target="onnx")
    assert lost.value.code == "compression_lost" and len(lost.value.details["layers"]) == 28
    section = llm_compression_section(again, target="onnx", allow_decompressed=True)
    assert section["summary"]["expected_bytes"] == size["linear_clustered_bytes"]
    assert {r["encoded"]["format"] for r in section["ledger"]} == {"dense fp32"}
    with pytest.raises(EdgekitError, match="clustered"):
        load_hf_checkpoint(tmp_path / "c")


def test_sparse_recipes_in_the_llm_ledger(tmp_path):
    """2:4 alone (no table) is ledgered with its own expected bytes and lost with the fix that names the
    recipe adding a table; 2:4 + 4-bit tables pack as edgekit::sparse_lut_linear (2.75 bits a weight)."""
    from edgekit.errors import EdgekitError
    from edgekit.exporters.compression.recipe import compress
    from edgekit.exporters.executorch.native_kernels import swap_compressed_linears
    from edgekit.exporters.llm import llm_compression_section

    torch.set_num_threads(1)
    model = _tiny_checkpoint(tmp_path / "src")
    sparse, _ = compress(model, "sparse24", exclude="lm_head")
    with pytest.raises(EdgekitError) as lost:
        llm_compression_section(sparse, target="executorch")
    assert lost.value.code == "compression_lost" and "sparse24_palettize4" in lost.value.fix
    rows = llm_compression_section(sparse, target="executorch", allow_decompressed=True)["ledger"]
    q = next(r for r in rows if r["layer"].endswith("layers.0.self_attn.q_proj"))
    numel = int(np.prod(q["shape"]))
    assert q["expected_bytes"] == numel // 8 + numel // 2 * 2      # a bit mask + fp16 kept values
    both, _ = compress(model, "sparse24_palettize4", exclude="lm_head")
    _, weights = swap_compressed_linears(both, "edgekit")
    fmt = {w["ops"][0] for w in weights.values()}
    assert fmt == {"edgekit::sparse_lut_linear"}, fmt
    w = next(v for k, v in weights.items() if k.endswith("layers.0.self_attn.q_proj"))
    # 128 x 128: 11 words a row per 128 columns (2.75 bits a weight) + the layout mark + a correction a row
    # + the 16-entry fp32 table
    assert w["index_bits"] == 4 and w["bytes"] == 128 * 11 * 4 + 64 + 128 * 4 + 16 * 4, w


@pytest.mark.slow
def test_compress_llm_cli_on_two_ranks_then_export_llm(tmp_path):
    """The CLI end to end: 2 gloo ranks x 2 steps on pydoc text, then an ONNX artifact of the clustered model."""
    from conftest import HAS_EXPORT
    from edgekit.cli import main
    from edgekit.model_zoo.text import train_tokenizer

    if not HAS_EXPORT:
        pytest.skip("needs the export extra")
    _tiny_checkpoint(tmp_path / "tiny")
    train_tokenizer(1024).save(str(tmp_path / "tiny" / "tokenizer.json"))
    assert main(["compress-llm", str(tmp_path / "tiny"), "--bits", "3", "--nproc", "2", "--steps", "2",
                 "--seq-len", "32", "--batch", "2", "--out", str(tmp_path / "c")]) == 0
    ckpt = tmp_path / "c" / "tiny_edkm3"
    result = json.loads((ckpt / "compress_result.json").read_text())
    assert len(result["ranks"]) == 2 and result["size"]["ratio"] <= 0.13
    assert main(["export-llm", str(ckpt), "--target", "onnx", "--allow-decompressed",
                 "--out", str(tmp_path / "art")]) == 0
    manifest = json.loads((tmp_path / "art" / "tiny_edkm3" / "onnx" / "manifest.json").read_text())
    assert manifest["parity"]["ok"] and manifest["compression"]["summary"]["layers"] == 28
