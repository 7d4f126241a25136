"""ExecuTorch: compressed layers re-quantized to XNNPACK int8 (opt-in), error in the ledger."""

import pytest

from edgekit.errors import EdgekitError


def test_requantize_option_names_the_choices():
    from edgekit.exporters.executorch import ExecuTorchOptions

    with pytest.raises(EdgekitError, match="'int4' unknown; choose one of none, dynamic_int8"):
        ExecuTorchOptions(requantize="int4")
    with pytest.raises(EdgekitError, match="needs delegate='xnnpack'") as err:
        ExecuTorchOptions(requantize="dynamic_int8", delegate="none")
    assert "requantize='none'" in err.value.fix


@pytest.mark.slow  # ~15-30 s: PT2E prepare/convert, lowering and parity
def test_dynamic_int8_stores_compressed_layers_in_int8(tmp_path, tiny_spec, tiny_model):
    from edgekit.exporters.compression import compress, load_recipe
    from edgekit.exporters.pipeline import export_model

    new, _ = compress(tiny_model, "palettize4")
    args = dict(show_progress=False, dataset=tiny_spec.dataset, parity_samples=8, recipe=load_recipe("palettize4"))
    art = export_model(new, tiny_spec.example_inputs(0), "executorch", tmp_path / "q",
                       options={"requantize": "dynamic_int8"}, **args)
    dense = export_model(new, tiny_spec.example_inputs(0), "executorch", tmp_path / "d", allow_decompressed=True,
                         **args)
    rows = art.manifest["compression"]["ledger"]
    requantized = [r for r in rows if r["encoded"]["kind"] == "re-quantized"]
    # XNNPACK's dynamic conv pattern skips convs followed directly by ReLU: those stay fp32, and say so
    assert {r["layer"] for r in requantized} >= {"fc", "layers.3.conv2", "layers.3.downsample.0"}
    assert all(r["encoded"]["format"] == "dense fp32" for r in rows if r not in requantized)
    for r in requantized:
        numel = 1
        for d in r["shape"]:
            numel *= d
        assert r["bytes_written"] == numel + 4 * r["shape"][0]      # int8 + one fp32 scale per channel
        assert 0 < r["encoded"]["max_abs_error"] < 2e-3              # half an int8 step of these weights
    assert art.manifest["precision"] == "int8" and art.manifest["parity"]["ok"]
    assert art.manifest["parity"]["metrics"]["top1"] == 1.0
    cost = art.manifest["parity"]["cost"]  # palettize4 + int8 re-quantization, against the original model
    assert cost["measured_on"] == "artifact" and cost["ok"] and 0 < cost["per_output"][0]["cos_loss"] < 0.05
    assert art.model_bytes < 0.6 * dense.model_bytes
