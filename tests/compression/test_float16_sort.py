"""Core ML tables never depend on NumPy's float16 sort, and a widened table fails the export.

The broken AVX-512 float16 sort is emulated (tests/buggy_sort.py), so these fail on any CPU
when the encoder sorts float16 weights (coremltools' ``mode="unique"`` did).
"""

import numpy as np
import pytest

from buggy_sort import install as install_buggy_sort
from edgekit.errors import EdgekitError

pytest.importorskip("coremltools")
torch = pytest.importorskip("torch")


def _mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                               torch.nn.ReLU(), torch.nn.Linear(256, 10)).eval()


def _export(model, out, **options):
    from edgekit.exporters.pipeline import export_model

    x = np.random.default_rng(0).standard_normal((1, 256)).astype(np.float32)
    return export_model(model, (x,), "coreml", out, options=options, parity_samples=4, show_progress=False)


def test_the_emulation_is_the_bug():
    """Sanity: the emulated sort does what the broken one does, so the tests below can fail."""
    import buggy_sort

    x = np.repeat(np.arange(-8, 8, dtype=np.float16), 50)
    np.random.default_rng(0).shuffle(x)
    assert buggy_sort.buggy_unique(x).size > 16
    assert np.any(np.diff(buggy_sort.buggy_sort(x).astype(np.float32)) < 0)
    values, inverse = buggy_sort.buggy_unique(x, return_inverse=True)
    assert np.array_equal(values[inverse], x)  # wrong, not lossy: duplicates, values still right


def test_sortsafe_helpers_are_immune(monkeypatch):
    from edgekit import sortsafe

    install_buggy_sort(monkeypatch)
    x = np.repeat(np.arange(-8, 8, dtype=np.float16), 50)
    np.random.default_rng(1).shuffle(x)
    u, inv = sortsafe.unique(x, return_inverse=True)
    assert u.dtype == np.float16 and u.tolist() == list(range(-8, 8)) and np.array_equal(u[inv], x)
    assert np.all(np.diff(sortsafe.sort(x).astype(np.float32)) >= 0)
    assert np.all(np.diff(x[sortsafe.argsort(x)].astype(np.float32)) >= 0)


def test_palettize4_mlp_stays_4bit_under_a_broken_float16_sort(tmp_path, monkeypatch):
    from edgekit.exporters.compression import compress

    fp32 = _export(_mlp(), tmp_path / "fp32", compute_precision="fp32")
    new, _ = compress(_mlp(), "palettize4")
    install_buggy_sort(monkeypatch)
    art = _export(new, tmp_path / "p4")
    rows = art.manifest["compression"]["ledger"]
    assert [r["encoded"]["index_bits"] for r in rows] == [4, 4, 4]
    assert [r["encoded"]["table_size"] for r in rows] == [16, 16, 16]
    assert not any("widened" in r for r in rows)
    ratio = art.model_bytes / fp32.model_bytes
    assert ratio <= 0.16, ratio  # 6-bit tables (the bug) give ~0.19


def test_widened_tables_fail_the_export(tmp_path, monkeypatch, tiny_spec, tiny_model):
    """Force the encoder to store 6-bit tables for a 4-bit recipe: the export fails, naming the layer."""
    from edgekit.exporters.compression import compress, coreml_encode

    new, rep = compress(tiny_model, "palettize4")
    monkeypatch.setattr(coreml_encode, "stored_bits", lambda bits: 6)
    out = tmp_path / "a"
    with pytest.raises(EdgekitError) as err:
        _export_tiny(new, tiny_spec, out)
    e = err.value
    assert e.code == "compression_widened"
    layer = e.details["layers"][0]
    assert layer["bits_requested"] == 4 and layer["bits_written"] == 6 and layer["table_size"] == 64
    assert layer["layer"] in {r.name for r in rep.compressed}
    assert f"layer '{layer['layer']}' asked 4 bits, written 6" in e.message
    assert "Core ML stores" in e.fix
    assert not out.exists()  # no half-written artifact


def _export_tiny(model, spec, out):
    from edgekit.exporters.pipeline import export_model

    return export_model(model, spec.example_inputs(0), "coreml", out, dataset=spec.dataset, show_progress=False)


def test_grouped_and_sparse_tables_are_the_records(tmp_path, monkeypatch, tiny_spec, tiny_model):
    """Per-grouped-channel and joint sparse+shift forms keep the recipe's bits under the broken sort."""
    from edgekit.exporters.compression import compress

    install_buggy_sort(monkeypatch)
    for recipe, target, bits in (("palettize4_grouped", "iOS18", 4), ("sparse50_shift3", "iOS18", 3)):
        new, _ = compress(tiny_model, recipe)
        from edgekit.exporters.pipeline import export_model

        art = export_model(new, tiny_spec.example_inputs(0), "coreml", tmp_path / recipe, dataset=tiny_spec.dataset,
                           options={"minimum_deployment_target": target}, show_progress=False,
                           max_loss="off")  # the bits are under test, not the untrained model's accuracy
        for row in art.manifest["compression"]["ledger"]:
            assert row["encoded"]["index_bits"] == bits and row["encoded"]["table_size"] == 2 ** bits, row


def test_table_function_hands_core_ml_the_record_tables(monkeypatch):
    """Grouped tables (Core ML's gcd groups nest in the record's) and joint sparse zeros, under the broken sort."""
    from edgekit.exporters.compression.coreml_encode import TableFunction
    from edgekit.exporters.compression.record import WeightRecord

    install_buggy_sort(monkeypatch)
    rng = np.random.default_rng(0)
    tables = np.stack([np.arange(-8, 8), np.arange(0, 16) * 0.5]).astype(np.float32)  # 2 groups of 16 channels
    w = np.concatenate([tables[0][rng.integers(0, 16, (16, 36))], tables[1][rng.integers(0, 16, (8, 36))]])
    w = w.astype(np.float16)
    fn = TableFunction(WeightRecord(kind="lut", bits=4, group_size=16, lut=tables), 24, 8)
    for g, record_table in ((0, 0), (1, 0), (2, 1)):  # Core ML groups of 8 channels
        lut, idx = fn(w[g * 8:(g + 1) * 8])
        assert lut.dtype == np.float16 and np.array_equal(lut, tables[record_table].astype(np.float16))
        assert idx.dtype == np.uint8 and np.array_equal(lut[idx], w[g * 8:(g + 1) * 8].reshape(-1))
    # shift+sparse: 8 nonzero levels fill a 3-bit table; zeros need no entry in the joint sparse form
    levels = np.array([-4, -2, -1, -0.5, 0.5, 1, 2, 4], np.float32)
    s = np.where(rng.random((8, 36)) < 0.5, 0, levels[rng.integers(0, 8, (8, 36))]).astype(np.float16)
    lut, idx = TableFunction(WeightRecord(kind="shift+sparse", bits=3, lut=levels[None]), 8, 8, joint_sparse=True)(s)
    assert lut.size == 8 and np.array_equal(lut[idx][s.reshape(-1) != 0], s.reshape(-1)[s.reshape(-1) != 0])
