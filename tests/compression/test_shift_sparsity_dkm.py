"""Shift quantization, sparsity schedules and masks, DKM and eDKM."""

import numpy as np
import pytest
import torch

from edgekit.exporters.compression import (DKMConfig, Recipe, ShiftQuantConfig, SparsityConfig, Step, compress,
                                           compressed_layers)
from edgekit.exporters.compression.finetune import TrainData
from edgekit.exporters.compression.shift import dense_shift_weight, shift_quantize
from edgekit.exporters.compression.sparsity import block_mask, cubic_sparsity, magnitude_mask, nm_mask


@pytest.fixture(scope="module")
def tiny_data():
    from edgekit.exporters.compression.finetune import digits_data

    d = digits_data(32, 3)
    return TrainData(d.x_train[:256], d.y_train[:256], d.x_test[:64], d.y_test[:64], batch_size=64)


def _pow2(values, scale):
    k = np.log2(np.abs(values) / scale)
    return np.allclose(k, np.round(k))


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_shift_ptq_is_zero_free_pow2(bits):
    w = np.random.default_rng(0).normal(0, 0.1, (16, 8, 3, 3)).astype(np.float32)
    q, scale = shift_quantize(w, bits)
    assert np.all(q != 0) and _pow2(q, scale)
    assert np.unique(np.abs(q)).size <= 2 ** (bits - 1)
    assert np.array_equal(q.astype(np.float16).astype(np.float32), q)


def test_dense_shift_param_forward_backward():
    from torch.nn.utils import parametrize

    conv = torch.nn.Conv2d(4, 8, 3)
    q, scale = shift_quantize(conv.weight.detach().numpy(), 3)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(q))
    parametrize.register_parametrization(conv, "weight", dense_shift_weight(3, scale), unsafe=True)
    assert torch.allclose(conv.weight, torch.from_numpy(q))  # latents reproduce the PTQ rounding
    x = torch.randn(2, 4, 6, 6)
    assert torch.allclose(conv(x), torch.nn.functional.conv2d(x, torch.from_numpy(q), conv.bias))
    conv(x).square().sum().backward()
    sign, latents = conv.parametrizations.weight.original0, conv.parametrizations.weight.original1
    assert sign.grad.abs().sum() > 0 and all(latents.grad[j].abs().sum() > 0 for j in range(3))


def test_shift_qat_with_override_and_sparsity(tiny_model, tiny_data):
    recipe = Recipe("q", (Step(default=SparsityConfig(sparsity=0.5), by_name={"fc": None}),
                          Step(default=ShiftQuantConfig(bits=3, qat=True, epochs=0.5),
                               by_name={"fc": ShiftQuantConfig(bits=4, qat=True, epochs=0.5)})))
    new, rep = compress(tiny_model, recipe, tiny_data)
    layers = compressed_layers(new)
    assert layers["fc"][1].kind == "shift" and layers["fc"][1].bits == 4
    for name, (m, rec) in layers.items():
        w = m.weight.detach().numpy()
        assert not hasattr(m, "parametrizations")
        assert _pow2(w[w != 0], rec.scale), name
        if name != "fc":
            assert rec.kind == "shift+sparse" and abs((w == 0).mean() - 0.5) < 0.02


def test_cubic_schedule_reaches_final_sparsity_at_end_step():
    cfg = SparsityConfig(sparsity=0.8, schedule="gradual", initial_sparsity=0.1, begin_step=10, end_step=50,
                         frequency=10, epochs=1)
    assert cubic_sparsity(10, cfg) == pytest.approx(0.1)
    assert cubic_sparsity(50, cfg) == pytest.approx(0.8) == cubic_sparsity(99, cfg)
    vals = [cubic_sparsity(t, cfg) for t in range(10, 51, 10)]
    assert all(np.diff(vals) > 0) and np.all(np.diff(np.diff(vals)) < 0)  # fast first, slow near s_f


def test_masks():
    w = np.arange(1, 17, dtype=np.float32).reshape(2, 8)
    assert magnitude_mask(w, 0.5).sum() == 8 and magnitude_mask(w, 0.5)[1].all()
    tied = np.ones((4, 4), np.float32)
    assert magnitude_mask(tied, 0.5).all()  # ties at the threshold are kept
    nm = nm_mask(np.random.default_rng(0).normal(size=(4, 16)), 2, 4)
    assert np.all(nm.reshape(4, 4, 4).sum(-1) == 2)
    b = block_mask(np.random.default_rng(0).normal(size=(4, 16)), 0.5, 4)
    blocks = b.reshape(4, 4, 4)
    assert np.all(blocks.all(-1) | ~blocks.any(-1)) and b.mean() == 0.5


def test_gradual_sparsity_hits_target_exactly_and_global_scope(tiny_model, tiny_data):
    cfg = SparsityConfig(sparsity=0.6, schedule="gradual", begin_step=0, end_step=4, frequency=2, epochs=1.0)
    new, rep = compress(tiny_model, Recipe("g", (Step(default=cfg),)), tiny_data)
    sched = rep.steps[0]["schedule"]
    assert sched[-1] == (4, pytest.approx(0.6)) and [s for s, _ in sched] == [0, 2, 4]
    assert all(abs(r.sparsity - 0.6) < 0.01 for r in rep.compressed)
    new, rep = compress(tiny_model, Recipe("g", (Step(default=SparsityConfig(sparsity=0.6, scope="global")),)))
    total = sum(r.sparsity * np.prod(r.shape) for r in rep.compressed) / sum(np.prod(r.shape) for r in rep.compressed)
    assert abs(total - 0.6) < 0.01 and len({round(r.sparsity, 2) for r in rep.compressed}) > 1


def test_dkm_finalizes_to_a_table(tiny_model, tiny_data):
    recipe = Recipe("d", (Step(default=DKMConfig(bits=2, epochs=0.25)),))
    new, rep = compress(tiny_model, recipe, tiny_data)
    for r in rep.compressed:
        assert r.kind == "lut" and r.unique_values <= 4
    assert not any(hasattr(m, "parametrizations") for m in new.modules())


def test_dkm_soft_output_converges_to_hard_as_tau_shrinks():
    from edgekit.exporters.compression.dkm import dkm_iterate

    x = torch.randn(500, 1)
    c = torch.tensor([-1.5, -0.5, 0.5, 1.5])
    soft, cc = dkm_iterate(x, c, 1e-6, 1)
    hard = cc[(x - c.view(1, -1)).abs().argmin(1)]  # assignment made against the input centroids
    assert torch.allclose(soft, hard, atol=1e-5)


@pytest.mark.parametrize("bits", [3, 4])
def test_edkm_saves_less_with_equal_gradients(bits):
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "edkm_memory.py"
    spec = importlib.util.spec_from_file_location("edkm_memory", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    r = mod.measure(512, 512, bits)
    assert r["grad_equal_to_no_hooks"] and r["grad_max_abs_diff"] == 0.0
    assert r["ratio"] > 20


@pytest.mark.parametrize("bits", [1, 3, 8, 12, 16])
def test_edkm_index_packing_matches_reference_and_round_trips(bits, monkeypatch):
    from edgekit.exporters.compression import edkm
    from edgekit.kernels import bitpack

    monkeypatch.setattr(bitpack, "TORCH_CHUNK", 64)  # several chunks, one of them partial
    g = torch.Generator().manual_seed(bits)
    values = torch.randint(0, 2 ** bits, (1001,), generator=g)
    packed = bitpack.pack_bits_torch(values, bits)
    assert packed.dtype == torch.uint8 and packed.numel() == -(-1001 * bits // 8)
    v = values.numpy()  # the layout: entry i at bits [i*bits, (i+1)*bits), least significant first
    reference = np.packbits(((v[:, None] >> np.arange(bits)) & 1).astype(np.uint8).ravel(), bitorder="little")
    np.testing.assert_array_equal(packed.numpy(), reference)
    if bits <= 8:  # the numpy packer of kernels/ writes the same bytes
        np.testing.assert_array_equal(packed.numpy(), bitpack.pack_bits(v, bits))
    assert torch.equal(bitpack.unpack_bits_torch(packed, bits, 1001), values)
    assert edkm.index_bits(3570) == 12 and edkm.index_bits(256) == 8 and edkm.index_bits(257) == 9


def test_edkm_row_index_is_packed_below_two_bytes_per_weight():
    from edgekit.exporters.compression.dkm import dkm_iterate
    from edgekit.exporters.compression.edkm import SavedTensorPacker

    g = torch.Generator().manual_seed(0)
    w = (torch.randn(256, 256, generator=g) * 0.02).to(torch.bfloat16).requires_grad_(True)
    x = (w / float(w.detach().float().std())).reshape(-1, 1)
    packer = SavedTensorPacker()
    with packer.scope(x):
        soft, _ = dkm_iterate(x, torch.tensor([-1.0, 0.0, 1.0, 2.0], dtype=torch.bfloat16), 0.01, 3)
    distinct = int(torch.unique(x.detach()).numel())
    soft.sum().backward()
    grad = w.grad.clone()
    w.grad = None
    soft2, _ = dkm_iterate((w / float(w.detach().float().std())).reshape(-1, 1),
                           torch.tensor([-1.0, 0.0, 1.0, 2.0], dtype=torch.bfloat16), 0.01, 3)
    soft2.sum().backward()
    assert torch.equal(grad, w.grad)  # packing is lossless: gradients bit-identical to no hooks
    bits = max(1, (distinct - 1).bit_length())
    assert 8 <= bits < 16 and packer.index_bits == bits
    assert packer.index_bytes == -(-x.shape[0] * bits // 8) < 2 * x.shape[0]
