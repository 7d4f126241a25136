"""ONNX keeps lookup-table weights compressed: indices + Gather, exact, native in the ledger."""

import numpy as np
import pytest

from edgekit.errors import EdgekitError
from edgekit.exporters.onnx import lut_gather


def test_lut_form_round_trips_exactly_per_group():
    rng = np.random.default_rng(0)
    tables = rng.standard_normal((2, 16)).astype(np.float32)
    idx = rng.integers(0, 16, size=(8, 3, 3, 3))
    w = np.concatenate([tables[0][idx[:4]], tables[1][idx[4:]]])
    indices, table, offsets = lut_gather.lut_form(w, 4, group_size=4)
    assert indices.dtype == np.uint8 and indices.max() < 16 and table.size <= 32
    np.testing.assert_array_equal(table[offsets[:, None, None, None] + indices], w)
    assert lut_gather.lut_form(w, 4) is None              # 32 values do not fit one 4-bit table
    assert lut_gather.lut_form(rng.standard_normal((8, 9)).astype(np.float32), 3) is None  # 72 values > 8


@pytest.mark.parametrize("field", [1, 2, 4, 8])
def test_planar_packing_round_trips(field):
    rng = np.random.default_rng(field)
    idx = rng.integers(0, 2 ** field, size=1001).astype(np.uint8)   # odd count: the last byte is partial
    from edgekit.kernels.bitpack import pack_bits, pack_planar, unpack_planar

    packed = pack_planar(idx, field)
    assert packed.size == -(-1001 // (8 // field))
    np.testing.assert_array_equal(unpack_planar(packed, field, idx.size), idx)
    if field == 4:  # ONNX's uint4 tensors: the LSB-first stream, low nibble first
        assert pack_bits(idx[:3], 4).tolist() == [int(idx[0]) | int(idx[1]) << 4, int(idx[2])]


def test_uint4_needs_opset_21_and_names_the_fix():
    from edgekit.exporters.onnx import ONNXOptions

    with pytest.raises(EdgekitError, match="opset >= 21") as err:
        ONNXOptions(lut_encoding="uint4")
    assert "lut_encoding='packed'" in err.value.fix
    with pytest.raises(EdgekitError, match="'nibble' unknown; choose one of packed, uint4, uint8, dense"):
        ONNXOptions(lut_encoding="nibble")


def _weights_from_onnx(path) -> dict[str, np.ndarray]:
    """Run the graph's encoding nodes in ONNX Runtime: the dense weights the model computes with."""
    import onnx
    import onnxruntime as ort
    from onnx import helper

    model = onnx.load(str(path))
    names = [n.output[0] for n in model.graph.node if n.op_type == "Gather" and "_lut_" in n.name]
    del model.graph.output[:]
    model.graph.output.extend(helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in names)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    feeds = {i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape], np.float32)
             for i in sess.get_inputs()}
    return dict(zip(names, sess.run(names, feeds)))


SLOW = pytest.mark.slow  # ~5-10 s each on a quiet machine; the default encoding runs in the fast suite


@pytest.mark.parametrize("recipe,encoding,opset,field", [
    ("palettize4", "packed", 18, 4), pytest.param("palettize2", "packed", 18, 2, marks=SLOW),
    pytest.param("palettize4", "uint4", 21, 4, marks=SLOW), pytest.param("palettize4", "uint8", 18, 8, marks=SLOW),
    pytest.param("palettize4_scaled", "packed", 18, 4, marks=SLOW),
])
def test_onnx_stores_lut_weights_natively_and_exactly(tmp_path, tiny_spec, tiny_model, recipe, encoding, opset,
                                                      field):
    from edgekit.exporters.compression import compress, compressed_layers, load_recipe
    from edgekit.exporters.pipeline import export_model

    new, _ = compress(tiny_model, recipe)
    art = export_model(new, tiny_spec.example_inputs(0), "onnx", tmp_path / "a", show_progress=False,
                       options={"lut_encoding": encoding, "opset": opset}, recipe=load_recipe(recipe),
                       dataset=tiny_spec.dataset, parity_samples=8)
    comp = art.manifest["compression"]
    assert comp["summary"]["decompressed_layers"] == []          # no export without --allow-decompressed
    layers = compressed_layers(new)
    weights = _weights_from_onnx(art.model_file)
    for row in comp["ledger"]:
        assert row["capability"] == "native" and row["encoded"]["kind"] == "native"
        assert row["encoded"]["max_abs_error"] == 0.0 and row["encoded"]["index_bits"] == field
        assert row["encoded"]["format"].endswith("Gather") or row["encoded"]["format"].endswith("Add")
        numel, tables = int(np.prod(row["shape"])), row["shape"][0] if row["requested"]["per_channel_scale"] else 1
        # indices at `field` bits + fp32 table(s) (+ int32 group offsets) + a few shape/shift constants
        assert -(-numel * field // 8) < row["bytes_written"] <= -(-numel * field // 8) + tables * (64 + 4) + 64
        # the weight ONNX Runtime rebuilds is bit-identical to the compressed PyTorch weight
        np.testing.assert_array_equal(weights[f"{row['layer']}.weight"],
                                      layers[row["layer"]][0].weight.detach().numpy())
    assert comp["summary"]["bytes_written"] < 0.3 * comp["summary"]["dense_bytes"] * field / 4 + 1
    par = art.manifest["parity"]
    assert par["ok"] and par["metrics"]["top1"] == 1.0 and par["metrics"]["max_abs_err"] < 1e-5
    assert par["cost"]["measured_on"] == "artifact" and par["cost"]["per_output"][0]["cos_loss"] > 0  # vs original


def test_sparse_only_weights_stay_dense_and_say_so(tmp_path, tiny_spec, tiny_model):
    from edgekit.exporters.compression import compress
    from edgekit.exporters.pipeline import export_model

    new, _ = compress(tiny_model, "sparse50")
    art = export_model(new, tiny_spec.example_inputs(0), "onnx", tmp_path / "a", show_progress=False,
                       allow_decompressed=True, parity_samples=4)
    rows = art.manifest["compression"]["ledger"]
    assert all(r["capability"] == "decompressed" and r["encoded"]["format"] == "dense fp32" for r in rows)


def test_inspect_shows_the_onnx_lut_encoding(tmp_path, capsys):
    from edgekit.cli import main

    assert main(["export", "resnet_tiny", "--recipe", "palettize4", "--target", "onnx",
                 "--out", str(tmp_path / "e")]) == 0
    capsys.readouterr()
    assert main(["inspect", str(tmp_path / "e" / "resnet_tiny" / "onnx")]) == 0
    out = capsys.readouterr().out
    assert "uint4-packed+BitShift+Mod+Cast+Gather" in out and "native" in out and "decompressed layers: 0" in out
