"""Capability tables and the manifest ledger: no silent decompression."""

import pytest

from edgekit.exporters import TARGETS, get_exporter
from edgekit.exporters.base import DECOMPRESSED, NATIVE, REJECTED
from edgekit.exporters.compression import compress
from edgekit.exporters.compression.ledger import CompressionLost
from edgekit.exporters.compression.record import KINDS
from edgekit.exporters.pipeline import export_model


@pytest.mark.parametrize("target", TARGETS)
def test_every_exporter_declares_every_kind(target):
    caps = get_exporter(target).capabilities
    assert set(caps) == set(KINDS)
    assert set(caps.values()) <= {NATIVE, DECOMPRESSED, REJECTED}


def test_decompressing_target_fails_with_an_explanation(tmp_path, tiny_spec, tiny_model):
    new, _ = compress(tiny_model, "palettize4")
    with pytest.raises(CompressionLost, match="allow-decompressed") as err:
        export_model(new, tiny_spec.example_inputs(0), "tflite", tmp_path / "a", show_progress=False)
    assert "layers.0.conv1" in err.value.details["layers"]
    assert "--tflite-requantize int8" in err.value.fix  # the option that keeps the layers small comes first
    assert not (tmp_path / "a").exists()


def test_allowed_decompression_is_written_in_the_ledger(tmp_path, tiny_spec, tiny_model):
    from edgekit.exporters.compression import load_recipe

    new, rep = compress(tiny_model, "palettize4")
    art = export_model(new, tiny_spec.example_inputs(0), "tflite", tmp_path / "a", show_progress=False,
                       recipe=load_recipe("palettize4"), allow_decompressed=True, dataset=tiny_spec.dataset)
    comp = art.manifest["compression"]
    assert comp["recipe"]["name"] == "palettize4" and len(comp["recipe"]["hash"]) == 16
    assert len(comp["ledger"]) == 13
    row = comp["ledger"][0]
    assert row["requested"]["kind"] == "lut" and row["requested"]["bits"] == 4
    assert row["capability"] == DECOMPRESSED and row["encoded"]["kind"] == DECOMPRESSED
    assert row["bytes_written"] == row["dense_bytes"] > row["expected_bytes"]
    assert comp["summary"]["decompressed_layers"][0] == row["layer"]
    assert art.manifest["parity"]["ok"]  # parity is against the compressed PyTorch model
    assert art.manifest["parity"]["cost"]["ok"]  # and the cost against the original one


def test_uncompressed_model_has_empty_ledger(tmp_path, tiny_spec, tiny_model):
    art = export_model(tiny_model, tiny_spec.example_inputs(0), "onnx", tmp_path / "a", show_progress=False)
    comp = art.manifest["compression"]
    assert comp["recipe"] is None and comp["ledger"] == []
    # the file is still read back: every weight tensor in it belongs to a layer (BatchNorm folded or not)
    assert comp["file"]["matched_bytes"] == comp["file"]["weight_bytes"] > 0 and comp["file"]["unmatched"] == []


@pytest.mark.export
def test_shift3_recipe_survives_tflite_as_exact_int8(tmp_path, tiny_spec, tiny_model):
    # no --allow-decompressed needed: 2-3 bit shift weights are stored as int8 + DEQUANTIZE, exactly
    new, rep = compress(tiny_model, "shift3")
    art = export_model(new, tiny_spec.example_inputs(0), "tflite", tmp_path / "a", show_progress=False,
                       dataset=tiny_spec.dataset, parity_samples=8)
    comp = art.manifest["compression"]
    assert len(comp["ledger"]) == len(rep.compressed) and not comp["summary"]["decompressed_layers"]
    for row in comp["ledger"]:
        assert row["requested"]["kind"] == "shift" and "origin" not in row["requested"]
        assert row["encoded"]["kind"] == "re-quantized" and row["encoded"]["max_abs_error"] == 0.0
    assert comp["summary"]["bytes_written"] < 0.26 * comp["summary"]["dense_bytes"]
    assert art.manifest["parity"]["ok"]


def _ledger_of(model, exporter, weights: dict):
    from edgekit.exporters.base import ConvertResult
    from edgekit.exporters.compression.ledger import compression_section

    return compression_section(model, exporter, ConvertResult("model.x", "fp16", {"weights": weights}))


def test_ledger_refuses_more_bits_than_the_recipe_asked(tiny_model):
    """Index bits and table size read from the artifact vs the record: wider fails, equal or narrower passes."""
    from edgekit.exporters.compression.ledger import CompressionWidened, widening
    from edgekit.exporters.compression.record import compressed_layers

    new, _ = compress(tiny_model, "palettize4")
    layers = compressed_layers(new)
    coreml = get_exporter("coreml")

    def facts(bits, size):
        return {"ops": ["constexpr_lut_to_dense"], "bytes": 10, "index_bits": bits, "tables": 1, "table_size": size}

    section = _ledger_of(new, coreml, {name: facts(4, 16) for name in layers})
    assert all(r["encoded"]["index_bits"] == 4 and r["encoded"]["table_size"] == 16 and "widened" not in r
               for r in section["ledger"])
    wide = {name: facts(4, 16) for name in layers} | {"layers.1.conv2": facts(6, 64)}
    with pytest.raises(CompressionWidened) as err:
        _ledger_of(new, coreml, wide)
    assert err.value.code == "compression_widened"
    assert err.value.details["layers"] == [{"bits_requested": 4, "bits_written": 6, "table_size": 64,
                                            "table_size_requested": 16, "layer": "layers.1.conv2"}]
    assert "layer 'layers.1.conv2' asked 4 bits, written 6 (64-entry table)" in err.value.message
    # a bigger table at the same index width is widening too; a layout's own wider field is not
    assert widening(4, facts(4, 32))["table_size"] == 32
    assert widening(3, {"index_bits": 4, "index_bits_allowed": 4}) is None
    assert widening(3, {"index_bits": 8, "index_bits_allowed": 4})["bits_written"] == 8
    assert widening(4, facts(3, 8)) is None and widening(None, facts(8, 256)) is None
