"""The .mlpackage stores the recorded compressed form: LUT, sparse, sparse+LUT, exactly."""

import numpy as np
import pytest

from edgekit.errors import EdgekitError
from edgekit.exporters.compression import compress, compressed_layers
from edgekit.exporters.compression.coreml_encode import read_tables
from edgekit.exporters.pipeline import export_model

pytest.importorskip("coremltools")

CASES = [  # recipe, deployment target, expected constexpr ops, index bits
    ("palettize4", "iOS17", {"constexpr_lut_to_dense"}, 4),
    ("palettize4_grouped", "iOS18", {"constexpr_lut_to_dense"}, 4),
    ("palettize4_scaled", "iOS18", {"constexpr_lut_to_dense"}, 4),
    ("palettize3", "iOS18", {"constexpr_lut_to_dense"}, 3),
    ("shift3", "iOS18", {"constexpr_lut_to_dense"}, 3),
    ("sparse50", "iOS17", {"constexpr_sparse_to_dense"}, None),
    ("sparse50_shift3", "iOS18", {"constexpr_lut_to_sparse", "constexpr_sparse_to_dense"}, 3),
]


def _export(model, spec, tmp_path, target):
    # max_loss off: the encoding is under test; the untrained model's cost (every top-1 flips at 50%
    # sparsity) is still measured and recorded
    return export_model(model, spec.example_inputs(0), "coreml", tmp_path / "a", max_loss="off",
                        options={"minimum_deployment_target": target}, dataset=spec.dataset, show_progress=False)


@pytest.mark.parametrize("recipe,target,ops,bits", CASES, ids=[c[0] for c in CASES])
def test_coreml_stores_the_compressed_form(tmp_path, tiny_spec, tiny_model, recipe, target, ops, bits):
    new, rep = compress(tiny_model, recipe)
    art = _export(new, tiny_spec, tmp_path, target)
    ledger = art.manifest["compression"]["ledger"]
    assert len(ledger) == len(rep.compressed)
    for row in ledger:
        assert row["encoded"]["kind"] == "native", row
        assert set(row["encoded"]["format"].split("+")) == ops
        # a per-channel table may need fewer bits than the recipe's (rows use a subset of values)
        got = row["encoded"]["index_bits"]
        assert got == bits if "scaled" not in recipe else got <= bits
        assert row["bytes_written"] < row["dense_bytes"] or "sparse" == row["requested"]["kind"]
    assert art.manifest["parity"]["ok"]
    cost = art.manifest["parity"]["cost"]
    assert cost["recipe"] == recipe and cost["per_output"][0]["kind"] == "classes" and cost["gate"] is False


def test_lut_values_are_the_clustered_values(tmp_path, tiny_spec, tiny_model):
    new, _ = compress(tiny_model, "shift3")
    art = _export(new, tiny_spec, tmp_path, "iOS18")
    tables = read_tables(art.path / "model.mlpackage")
    for name, (module, rec) in compressed_layers(new).items():
        const = "p_" + name.replace(".", "_") + "_weight_to_fp16_palettized"
        stored = np.sort(tables[const].ravel())
        values = np.unique(module.weight.detach().numpy())
        assert np.array_equal(stored, values.astype(np.float16).astype(np.float32)), name
        # every value is ±2^k times the layer scale
        k = np.log2(np.abs(stored) / rec.scale)
        assert np.allclose(k, np.round(k)) and np.all(stored != 0)


def test_three_bit_table_before_ios18_is_refused(tmp_path, tiny_spec, tiny_model):
    new, _ = compress(tiny_model, "shift3")
    with pytest.raises(EdgekitError, match="iOS18"):
        _export(new, tiny_spec, tmp_path, "iOS17")
