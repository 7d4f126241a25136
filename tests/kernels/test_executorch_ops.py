"""--executorch-kernels edgekit: clustered / shift / 2:4 Linear layers stay at their bit width in the
.pte as edgekit:: ops; edgekit.runtime.load registers the native kernels and runs it."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import needs_export


def _compressed_mlp():
    import torch
    from torch import nn

    from edgekit.exporters.compression.palettize import palettize_array, write_lut
    from edgekit.exporters.compression.shift import _record, shift_quantize

    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(64, 96), nn.ReLU(), nn.Linear(96, 40), nn.ReLU(), nn.Linear(40, 24), nn.ReLU(),
                      nn.Linear(24, 10)).eval()
    w = m[0].weight.detach().numpy()
    clustered, tables, _ = palettize_array(w, 3, group_size=16)           # 3-bit, a table per 16 rows
    write_lut(m[0], clustered, 3, tables, "palettize", group_size=16)
    w = m[2].weight.detach().numpy().copy()
    w.reshape(40, -1, 4)[:, :, :2] = 0                                    # 2:4 sparse + 4-bit table
    clustered, tables, _ = palettize_array(w, 4, keep_zeros=w == 0)
    write_lut(m[2], clustered, 4, tables, "palettize", sparsity=float((w == 0).mean()))
    q, scale = shift_quantize(m[4].weight.detach().numpy(), 3)            # 3-bit shift
    with torch.no_grad():
        m[4].weight.copy_(torch.from_numpy(q))
    _record(m[4], 3, scale, None)
    w = m[6].weight.detach().numpy()
    clustered, tables, _ = palettize_array(w, 2)                          # 2-bit table
    write_lut(m[6], clustered, 2, tables, "palettize")
    return m


@needs_export
def test_edgekit_kernels_pte_runs_compressed(nk, tmp_path):
    import torch

    from edgekit import runtime
    from edgekit.exporters.pipeline import export_model
    from edgekit.kernels.executorch_ops import ops_library_path

    if not ops_library_path().is_file():
        pytest.fail(f"{ops_library_path().name} not built although executorch is installed: run `make native`")
    model = _compressed_mlp()
    x = np.random.default_rng(0).standard_normal((1, 64)).astype(np.float32)
    art = export_model(model, (x,), "executorch", tmp_path / "pte", options={"kernels": "edgekit"},
                       parity_samples=8, show_progress=False)
    ledger = {r["layer"]: r for r in art.manifest["compression"]["ledger"]}
    expect = {"0": ("edgekit::lut_linear", 3), "2": ("edgekit::sparse_lut_linear", 4),
              "4": ("edgekit::shift_linear", 3), "6": ("edgekit::lut_linear", 2)}
    for layer, (op, bits) in expect.items():
        enc = ledger[layer]["encoded"]
        assert (enc["kind"], enc["format"], enc["index_bits"]) == ("native", op, bits), ledger[layer]
        assert ledger[layer]["bytes_written"] < ledger[layer]["dense_bytes"] / 3  # vs fp32 (small layers pad to 16 rows)
    assert art.manifest["parity"]["ok"], art.manifest["parity"]
    pte = (tmp_path / "pte" / "model.pte").read_bytes()
    assert all(f"edgekit::{op}".encode() in pte for op in ("lut_linear", "shift_linear", "sparse_lut_linear"))

    from edgekit.kernels.executorch_ops import wrap_cache_stats

    session = runtime.load(tmp_path / "pte")
    xs = np.random.default_rng(1).standard_normal((1, 64)).astype(np.float32)
    y, = session.run([xs])
    ref = model(torch.from_numpy(xs)).detach().numpy()                     # the clustered torch model
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)
    # later calls reuse the 4 wrapped weights (2:4 too: its int8 corrections are stored, not derived), same bits
    before = wrap_cache_stats()
    for _ in range(3):
        assert np.array_equal(session.run([xs])[0], y)
    after = wrap_cache_stats()
    assert (after["hits"] - before["hits"], after["misses"] - before["misses"]) == (12, 0), (before, after)
    # the same kernels through ctypes (torch eager of the swapped model): identical bits
    from edgekit.exporters.executorch.native_kernels import swap_compressed_linears

    swapped, _ = swap_compressed_linears(model)
    assert np.array_equal(y, swapped(torch.from_numpy(xs)).detach().numpy())


@pytest.mark.parametrize("kernels", ["edgekit", "edgekit-q8"])
def test_kernels_option_is_checked(kernels):
    from edgekit.errors import EdgekitError
    from edgekit.exporters.executorch import ExecuTorchOptions

    assert ExecuTorchOptions(kernels=kernels).kernels == kernels
    with pytest.raises(EdgekitError, match="edgekit-q8"):  # the error lists the valid choices
        ExecuTorchOptions(kernels="tmac")
    with pytest.raises(EdgekitError, match="pick one"):
        ExecuTorchOptions(kernels=kernels, requantize="dynamic_int8")


@needs_export
def test_conv1x1_runs_as_edgekit_op(nk, tmp_path):
    import torch
    from torch import nn

    from edgekit import runtime
    from edgekit.exporters.compression.palettize import palettize_array, write_lut
    from edgekit.exporters.pipeline import export_model
    from edgekit.kernels.executorch_ops import ops_library_path

    if not ops_library_path().is_file():
        pytest.fail(f"{ops_library_path().name} not built although executorch is installed: run `make native`")
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(3, 24, 3, padding=1), nn.ReLU(), nn.Conv2d(24, 40, 1), nn.ReLU()).eval()
    w = model[2].weight.detach().numpy()
    clustered, tables, _ = palettize_array(w, 4)
    write_lut(model[2], clustered, 4, tables, "palettize")
    x = np.random.default_rng(2).standard_normal((1, 3, 7, 9)).astype(np.float32)
    art = export_model(model, (x,), "executorch", tmp_path / "pte", options={"kernels": "edgekit"},
                       parity_samples=4, show_progress=False)
    row = next(r for r in art.manifest["compression"]["ledger"] if r["layer"] == "2")
    # the packed kernel layout is not a form the file ledger matches by value: the exporter's count stands
    assert row["encoded"] == {"kind": "native", "format": "edgekit::lut_linear", "index_bits": 4, "stored": []}
    y, = runtime.load(tmp_path / "pte").run([x])
    np.testing.assert_allclose(y, model(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


def former_layout_module(nk):
    """(an edgekit::lut_linear module 64 -> 40 whose 3-bit arrays have the former layout's size (10 indices
    a word, 3.2 bits a weight), an input)"""
    import torch

    from edgekit.kernels.executorch_ops import edgekit_linear

    n, k = 40, 64
    rng = np.random.default_rng(4)
    arrays = nk.pack_lut(rng.integers(0, 8, (n, k), dtype=np.uint8), rng.standard_normal((1, 8)).astype(np.float32),
                         3).arrays()
    arrays["data"] = rng.integers(0, 2 ** 32, -(-n // 16) * 16 * -(-k // 10), dtype=np.uint32)  # the former size
    return edgekit_linear("lut_linear", arrays, None).eval(), torch.from_numpy(rng.standard_normal((1, k)).astype(np.float32))


@needs_export
def test_pte_with_the_former_3bit_layout_is_refused(nk, tmp_path, capfd):
    """A .pte whose 3-bit arrays were packed in the former layout (10 indices a word, 3.2 bits a weight)
    fails with the fix (re-export) instead of computing garbage: in the runtime op and in torch eager."""
    import torch
    from executorch.exir import to_edge
    from executorch.runtime import Runtime

    from edgekit.errors import EdgekitError
    from edgekit.kernels.executorch_ops import load_runtime_kernels, ops_library_path

    if not ops_library_path().is_file():
        pytest.fail(f"{ops_library_path().name} not built although executorch is installed: run `make native`")
    module, x = former_layout_module(nk)
    with pytest.raises(EdgekitError, match="another layout") as err:  # the AOT op (parity, torch eager)
        module(x)
    assert err.value.code == "packed_layout_mismatch" and "re-export" in err.value.fix
    pte = tmp_path / "old_layout.pte"
    pte.write_bytes(to_edge(torch.export.export(module, (x,))).to_executorch().buffer)
    load_runtime_kernels()
    method = Runtime.get().load_program(str(pte)).load_method("forward")
    capfd.readouterr()
    with pytest.raises(RuntimeError):
        method.execute([x])
    assert "re-export this .pte" in capfd.readouterr().err
    from edgekit import runtime

    with pytest.raises(EdgekitError, match="re-export this .pte with this edgekit: packed data of 336 words, the 3-bit layout for 40 x 64 has 288") as err:
        runtime.load(pte).run([x.numpy()])  # the runtime raises the op's own message, with the fix
    assert err.value.code == "packed_layout_mismatch" and "re-export" in err.value.fix
