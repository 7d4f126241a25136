"""--executorch-kernels edgekit-q8: compressed Linear layers run on the int8-activation kernels
(edgekit::lut_linear_q8 / shift_linear_q8 / sparse_lut_linear_q8) in the .pte; the runtime computes the ctypes q8 kernels' bits."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.errors import EdgekitError

from tests.conftest import needs_export


def _ops_built():
    from edgekit.kernels.executorch_ops import ops_library_path

    if not ops_library_path().is_file():
        pytest.fail(f"{ops_library_path().name} not built although executorch is installed: run `make native`")


def _mlp(sparse: bool = False):
    """3-bit tables (a table per 16 rows, with a bias), 3-bit shift, 2-bit table; ``sparse``: a 2:4 layer too."""
    import torch
    from torch import nn

    from edgekit.exporters.compression.palettize import palettize_array, write_lut
    from edgekit.exporters.compression.shift import _record, shift_quantize

    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(64, 96), nn.ReLU(), nn.Linear(96, 40), nn.ReLU(), nn.Linear(40, 10)).eval()
    clustered, tables, _ = palettize_array(m[0].weight.detach().numpy(), 3, group_size=16)
    write_lut(m[0], clustered, 3, tables, "palettize", group_size=16)
    w = m[2].weight.detach().numpy().copy()
    if sparse:
        w.reshape(40, -1, 4)[:, :, :2] = 0
        clustered, tables, _ = palettize_array(w, 4, keep_zeros=w == 0)
        write_lut(m[2], clustered, 4, tables, "palettize", sparsity=float((w == 0).mean()))
    else:
        q, scale = shift_quantize(w, 3)
        with torch.no_grad():
            m[2].weight.copy_(torch.from_numpy(q))
        _record(m[2], 3, scale, None)
    clustered, tables, _ = palettize_array(m[4].weight.detach().numpy(), 2)
    write_lut(m[4], clustered, 2, tables, "palettize")
    return m


def _q8_reference(model, x: np.ndarray) -> np.ndarray:
    """The same layers through the ctypes q8 kernels on the scalar reference path, ReLU in NumPy."""
    from edgekit.exporters.executorch.native_kernels import pack_layer
    from edgekit.exporters.compression.record import compressed_layers
    from edgekit.kernels import _native as nk

    layers = compressed_layers(model)
    y = x
    for i in (0, 2, 4):
        module, rec = layers[str(i)]
        _, packed = pack_layer(module, rec)
        y = nk.linear(packed, y, module.bias.detach().numpy(), activations="q8", isa="scalar")
        y = np.maximum(y, 0) if i < 4 else y
    return y


@needs_export
def test_q8_pte_calls_q8_ops_and_equals_the_ctypes_kernels(nk, tmp_path):
    import torch

    from edgekit import runtime
    from edgekit.exporters.pipeline import export_model

    _ops_built()
    model = _mlp()
    x = np.random.default_rng(0).standard_normal((1, 64)).astype(np.float32)
    art = export_model(model, (x,), "executorch", tmp_path / "pte", options={"kernels": "edgekit-q8"},
                       parity_samples=8, show_progress=False)
    ledger = {r["layer"]: r for r in art.manifest["compression"]["ledger"]}
    expect = {"0": ("edgekit::lut_linear_q8", 3), "2": ("edgekit::shift_linear_q8", 3),
              "4": ("edgekit::lut_linear_q8", 2)}
    for layer, (op, bits) in expect.items():
        enc = ledger[layer]["encoded"]
        assert (enc["kind"], enc["format"], enc["index_bits"], enc["activations"]) == \
            ("native", op, bits, "int8 per row"), ledger[layer]
        assert ledger[layer]["bytes_written"] < ledger[layer]["dense_bytes"] / 3
    # int8 activations: gated at the int8 tolerance (the fp32 gate is for exact kernels), and passing it
    parity = art.manifest["parity"]
    assert art.manifest["precision"] == "int8" and parity["precision"] == "int8" and parity["ok"], parity
    assert 0.99 <= parity["metrics"]["cosine_min"] < 1.0, parity                  # quantized: not bit-exact
    assert art.manifest["options"]["kernels"] == "edgekit-q8"
    pte = (tmp_path / "pte" / "model.pte").read_bytes()
    assert b"edgekit::lut_linear_q8" in pte and b"edgekit::shift_linear_q8" in pte
    assert b"edgekit::lut_linear.out" not in pte                                   # no exact op left

    xs = np.random.default_rng(1).standard_normal((1, 64)).astype(np.float32)
    session = runtime.load(tmp_path / "pte", threads=2)
    y, = session.run([xs])
    np.testing.assert_array_equal(y, _q8_reference(model, xs))                     # the C q8 kernels' bits
    from edgekit.kernels.executorch_ops import set_decode_threads

    try:  # batch-1 GEMVs on the calling thread, or split over ExecuTorch's (XNNPACK's) pool: the same bits
        for where in ("calling", "executorch"):
            set_decode_threads(where)
            np.testing.assert_array_equal(session.run([xs])[0], y)
    finally:
        set_decode_threads("edgekit")  # the default: the kernels' pool, as above
    with pytest.raises(EdgekitError, match="gpu.*unknown; choose one of edgekit, calling, executorch"):
        set_decode_threads("gpu")
    ref = model(torch.from_numpy(xs)).detach().numpy()                             # the exact clustered model
    rel = np.linalg.norm(y - ref) / np.linalg.norm(ref)
    assert 1e-5 < rel < 0.05, rel


def test_q8_aot_op_equals_the_scalar_q8_reference(nk):
    """The torch.library CPU implementation (what torch.export traces and parity compares) is the C q8
    math: bit-exact against the scalar reference, for a GEMV and a small GEMM, LUT (row scales, bias) and SHIFT."""
    import torch

    from edgekit.kernels.executorch_ops import define_ops

    define_ops()
    rng = np.random.default_rng(3)
    n, k = 37, 75
    tables = np.sort(rng.standard_normal((3, 8)), -1).astype(np.float16)
    lut = nk.pack_lut(rng.integers(0, 8, (n, k), np.uint8), tables, 3, group_size=16,
                      row_scale=rng.uniform(0.5, 2, n).astype(np.float32))
    shift = nk.pack_shift(rng.integers(0, 16, (n, k), np.uint8), 4, 0.03)
    bias = rng.standard_normal(n).astype(np.float32)
    for w, op in ((lut, torch.ops.edgekit.lut_linear_q8), (shift, torch.ops.edgekit.shift_linear_q8)):
        a = w.arrays()
        args = [torch.from_numpy(a["data"].view(np.int32)), torch.from_numpy(a["tables"]),
                torch.from_numpy(a["row_scale"]) if a["row_scale"] is not None else torch.zeros(0),
                torch.from_numpy(bias), a["bits"], a["group_size"], n, k]
        for m in (1, 5):
            x = rng.standard_normal((m, k)).astype(np.float32)
            got = op(torch.from_numpy(x), *args).numpy()
            want = nk.linear(w, x, bias, activations="q8", isa="scalar")
            np.testing.assert_array_equal(got, want)
            exact = nk.linear(w, x, bias)
            assert not np.array_equal(got, exact)                                  # really the q8 path


@needs_export
def test_q8_pte_runs_2_4_layers(nk, tmp_path):
    """A 2:4 layer becomes edgekit::sparse_lut_linear_q8; its int8 corrections come stored in the data,
    and the runtime gives the C q8 kernels' bits."""
    from edgekit import runtime
    from edgekit.exporters.pipeline import export_model

    _ops_built()
    model = _mlp(sparse=True)
    x = np.random.default_rng(0).standard_normal((1, 64)).astype(np.float32)
    art = export_model(model, (x,), "executorch", tmp_path / "pte", options={"kernels": "edgekit-q8"},
                       parity_samples=4, show_progress=False)
    enc = {r["layer"]: r for r in art.manifest["compression"]["ledger"]}["2"]["encoded"]
    assert (enc["format"], enc["index_bits"], enc["activations"]) == \
        ("edgekit::sparse_lut_linear_q8", 4, "int8 per row"), enc
    assert art.manifest["parity"]["ok"], art.manifest["parity"]
    assert b"edgekit::sparse_lut_linear_q8" in (tmp_path / "pte" / "model.pte").read_bytes()
    xs = np.random.default_rng(1).standard_normal((3, 64)).astype(np.float32)
    session = runtime.load(tmp_path / "pte", threads=2)
    for row in xs:
        y, = session.run([row[None]])
        np.testing.assert_array_equal(y, _q8_reference(model, row[None]))
