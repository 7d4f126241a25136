"""TFLite: clustered layers rounded to int8 per channel + DEQUANTIZE (opt-in, lossy), error in the ledger."""

import numpy as np
import pytest

from edgekit.errors import EdgekitError


def test_requantize_option_names_the_choices():
    from edgekit.exporters.tflite import TFLiteOptions

    with pytest.raises(EdgekitError, match="'int4' unknown; choose one of none, int8"):
        TFLiteOptions(requantize="int4")


def test_rounded_int8_is_within_half_a_step_per_channel():
    from edgekit.exporters.tflite.pow2_int8 import rounded_int8

    w = np.random.default_rng(0).standard_normal((8, 3, 3, 4)).astype(np.float32)
    w[3] = 0.0                                                     # an all-zero channel keeps scale 1
    q, scale = rounded_int8(w)
    assert q.dtype == np.int8 and scale.shape == (8,) and scale[3] == 1.0
    back = q.astype(np.float32) * scale[:, None, None, None]
    assert np.all(np.abs(back - w) <= scale[:, None, None, None] / 2 + 1e-7)
    assert np.abs(q).max() == 127


def test_int8_stores_clustered_layers_in_a_quarter_of_the_bytes(tmp_path, tiny_spec, tiny_model):
    pytest.importorskip("litert_torch")
    from edgekit.exporters.compression import compress, load_recipe
    from edgekit.exporters.pipeline import export_model

    new, _ = compress(tiny_model, "palettize4")
    args = dict(show_progress=False, dataset=tiny_spec.dataset, parity_samples=8, recipe=load_recipe("palettize4"))
    art = export_model(new, tiny_spec.example_inputs(0), "tflite", tmp_path / "q",
                       options={"requantize": "int8"}, **args)
    with pytest.raises(EdgekitError, match="compression_lost|no fewer than dense"):
        export_model(new, tiny_spec.example_inputs(0), "tflite", tmp_path / "d", **args)
    rows = art.manifest["compression"]["ledger"]
    assert rows and all(r["encoded"]["kind"] == "re-quantized" for r in rows)
    for r in rows:
        numel = int(np.prod(r["shape"]))
        assert r["bytes_written"] == numel + 4 * r["shape"][0]      # int8 + one fp32 scale per channel
        assert 0 < r["encoded"]["max_abs_error"] < 0.02
    assert art.manifest["precision"] == "int8" and art.manifest["parity"]["ok"]
    assert art.manifest["parity"]["metrics"]["top1"] >= 0.9
    cost = art.manifest["parity"]["cost"]  # palettize4 + int8 re-quantization, against the original model
    assert cost["measured_on"] == "artifact" and cost["ok"] and 0 < cost["per_output"][0]["cos_loss"] < 0.05
    assert art.manifest["compression"]["summary"]["ratio_to_dense"] < 0.27
